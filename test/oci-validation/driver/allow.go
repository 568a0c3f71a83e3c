package main

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// Allowed is one known-failures.txt entry: a program that may fail without
// failing the run, and why.
type Allowed struct {
	Name   string
	Reason string
	Line   int
}

// Kind is the reason's leading word before the colon ("host", "suite"...).
// Entries whose kind is "host" are limits of this machine, not of the
// runtime, and the report lists them apart.
func (a Allowed) Kind() string {
	k, _, ok := strings.Cut(a.Reason, ":")
	if !ok {
		return ""
	}
	return strings.ToLower(strings.TrimSpace(k))
}

// HostLimit reports whether the failure is caused by the host.
func (a Allowed) HostLimit() bool { return a.Kind() == "host" }

// Racy reports whether the entry names a program that passes or fails by
// timing ("race: reason"): it asserts an order between two processes that
// run at once, which the runtime-spec leaves open. A racy program is not
// excused when it fails; it is run again, up to RaceAttempts times in all,
// and passes if one attempt passes. So a runtime that always fails it
// (e.g. one that runs the hook too early) still fails the run.
func (a Allowed) Racy() bool { return a.Kind() == "race" }

// RaceAttempts is how many times a racy program is run before its failure
// counts. poststart's failure rate here moves with the machine's state: 6 of
// 40 idle runs on one day, 1 to 15 of 40 on another, and all three attempts
// failed once in CI. At the worst rate seen (15 of 40), eight failures in a
// row come about once in 2,500 runs; each attempt takes about half a second.
const RaceAttempts = 8

var programNameRe = regexp.MustCompile(`^[a-z0-9_]+$`)

// ParseAllowList reads known-failures.txt: one program name per line
// followed by "# kind: reason". Blank lines and lines starting with "#" are
// comments. An entry without a reason is an error, so that nobody can
// silence a failure without saying why.
func ParseAllowList(r io.Reader) (map[string]Allowed, error) {
	out := map[string]Allowed{}
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, reason, found := strings.Cut(line, "#")
		name, reason = strings.TrimSpace(name), strings.TrimSpace(reason)
		if !programNameRe.MatchString(name) {
			return nil, fmt.Errorf("line %d: %q is not a validation program name", n, name)
		}
		if !found || reason == "" {
			return nil, fmt.Errorf("line %d: %s has no \"# reason\"", n, name)
		}
		if prev, dup := out[name]; dup {
			return nil, fmt.Errorf("line %d: %s is already listed on line %d", n, name, prev.Line)
		}
		out[name] = Allowed{Name: name, Reason: reason, Line: n}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read allow-list: %w", err)
	}
	return out, nil
}
