package main

import (
	"fmt"
	"strings"
	"time"
)

// Outcome is everything observed about one validation program's run.
type Outcome struct {
	Name     string
	ExitCode int           // -1 when the program did not exit by itself
	Signal   string        // the signal that killed it, if one did
	TimedOut time.Duration // the timeout that killed it, 0 if it was not killed
	StartErr error         // the program could not be started at all
	Stream   Stream
	ParseErr error
	Stderr   string
	Leaks    []string // what the program left behind on the host (already cleaned up)
	Notes    []string // harmless leftovers worth a line (e.g. bundles in its TMPDIR)
}

// Verdict is the judgement of one Outcome.
type Verdict struct {
	Pass    bool
	Failed  int      // failed subtests
	Total   int      // subtests run
	Reasons []string // why the program failed beyond failed subtests
	Details []string // lines explaining each failure, ready to print
}

// Judge decides whether a program passed. The programs are not uniform TAP
// producers, so the rules follow how runtime-tools writes them:
//   - a program that exits non-zero, times out or cannot start fails;
//   - every "not ok" (except TODO) fails it;
//   - a plan that disagrees with the number of points fails it;
//   - a program with no test points fails if it wrote an error diagnostic
//     (the hook programs report their verdict only that way);
//   - a program that writes nothing and exits 0 passes: the *_fail programs
//     (process_rlimits_fail, process_capabilities_fail) only call
//     util.Fatal, and so exit 1, when the runtime wrongly accepts the config;
//   - anything left behind on the host (container, mount, cgroup) fails it.
func (o Outcome) Judge() Verdict {
	v := Verdict{Total: len(o.Stream.Points)}
	switch {
	case o.StartErr != nil:
		v.Reasons = append(v.Reasons, fmt.Sprintf("could not start: %v", o.StartErr))
	case o.TimedOut > 0:
		v.Reasons = append(v.Reasons, fmt.Sprintf("timed out after %s", o.TimedOut))
	case o.Signal != "":
		v.Reasons = append(v.Reasons, "killed by signal: "+o.Signal)
	case o.ExitCode != 0:
		v.Reasons = append(v.Reasons, fmt.Sprintf("exit status %d", o.ExitCode))
	}
	if o.ParseErr != nil {
		v.Reasons = append(v.Reasons, fmt.Sprintf("unreadable TAP: %v", o.ParseErr))
	}
	for _, p := range o.Stream.Points {
		if !p.Failed() {
			continue
		}
		v.Failed++
		v.Details = append(v.Details, fmt.Sprintf("not ok %d - %s", p.Num, clip(p.Desc)))
		for i, c := range p.Comments {
			if i == 3 {
				break
			}
			v.Details = append(v.Details, "    # "+clip(c))
		}
		for _, d := range p.Diag {
			v.Details = append(v.Details, indent(d.Summary(), "    ")...)
		}
	}
	if o.Stream.HasPlan && o.Stream.Plan != len(o.Stream.Points) {
		v.Reasons = append(v.Reasons, fmt.Sprintf("planned %d subtests, ran %d", o.Stream.Plan, len(o.Stream.Points)))
	}
	if !o.Stream.HasPlan && len(o.Stream.Points) > 0 {
		v.Reasons = append(v.Reasons, "no TAP plan")
	}
	if len(o.Stream.Points) == 0 {
		for _, d := range o.Stream.Orphans {
			if e := d.Str("error"); e != "" {
				v.Reasons = append(v.Reasons, "error diagnostic")
				v.Details = append(v.Details, d.Summary()...)
			}
		}
	}
	if len(o.Leaks) > 0 {
		v.Reasons = append(v.Reasons, fmt.Sprintf("left %d thing(s) behind", len(o.Leaks)))
		for _, l := range o.Leaks {
			v.Details = append(v.Details, "leak: "+l)
		}
	}
	v.Pass = v.Failed == 0 && len(v.Reasons) == 0
	if !v.Pass && v.Failed == 0 && strings.TrimSpace(o.Stderr) != "" {
		// Without a failing point the program's stderr is the only
		// explanation (e.g. "failed to create the container").
		v.Details = append(v.Details, "stderr: "+lastLines(o.Stderr, 3))
	}
	return v
}

// Line is the one-line result: "PASS name" or
// "FAIL name (k of n subtests failed; reasons)".
func (v Verdict) Line(name string) string {
	if v.Pass {
		return "PASS " + name
	}
	s := fmt.Sprintf("FAIL %s (%d of %d subtests failed", name, v.Failed, v.Total)
	for _, r := range v.Reasons {
		s += "; " + r
	}
	return s + ")"
}
