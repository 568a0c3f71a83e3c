package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Point is one TAP test point ("ok 3 - desc" or "not ok 3 - desc # TODO").
type Point struct {
	OK        bool
	Num       int
	Desc      string
	Directive string   // "SKIP" or "TODO" (upper case) or ""
	Comments  []string // "# ..." lines that follow the point, without the "# "
	Diag      []Diag   // YAML diagnostics attached to the point
}

// Failed reports whether the point counts as a failure: TAP says a
// "not ok" marked TODO is expected to fail and does not count.
func (p Point) Failed() bool { return !p.OK && p.Directive != "TODO" }

// Diag is one YAML diagnostic block. tap-go writes the block as JSON, so
// Fields holds it decoded when it is a JSON object; Raw always holds the text.
type Diag struct {
	Raw    string
	Fields map[string]any
}

// Stream is a parsed TAP stream.
type Stream struct {
	HasPlan bool
	Plan    int // summed over the TAP documents in the stream
	Points  []Point
	// Orphans are diagnostics that belong to no test point. The
	// runtime-tools hook programs (hooks, prestart, poststart...) report
	// their only verdict this way: a block with an "error" key and plan 1..0.
	Orphans []Diag
}

var (
	pointRe = regexp.MustCompile(`^(not )?ok\b(?:\s+(\d+))?(?:\s*-)?\s*(.*)$`)
	planRe  = regexp.MustCompile(`^1\.\.(\d+)\b`)
	// A directive is "# SKIP ..." or "# TODO ..." at the end of the description.
	directiveRe = regexp.MustCompile(`(?i)(?:^|\s)#\s*(skip|todo)\S*(?:\s.*)?$`)
)

// ParseTAP reads a TAP stream as the runtime-tools validation programs write
// it. It attaches YAML blocks the way tap-go's callers in runtime-tools use
// them: a block carrying the inner runtimetest's "stdout" is written before
// the point it explains (util.RuntimeInsideValidate), every other block after
// it (util.SpecErrorOK), as plain TAP 13 says.
func ParseTAP(r io.Reader) (Stream, error) {
	var s Stream
	var pending []Diag // pre-point blocks waiting for their point
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 64*1024*1024)
	var yaml []string
	inYAML := false
	sectionPlanned := false // some programs (linux_cgroups_cpus) write two TAP documents
	for sc.Scan() {
		line := sc.Text()
		if inYAML {
			if strings.TrimSpace(line) == "..." {
				inYAML = false
				d := newDiag(strings.Join(yaml, "\n"))
				if _, pre := d.Fields["stdout"]; pre || len(s.Points) == 0 {
					pending = append(pending, d)
				} else {
					last := &s.Points[len(s.Points)-1]
					last.Diag = append(last.Diag, d)
				}
				continue
			}
			yaml = append(yaml, line)
			continue
		}
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "---" && strings.HasPrefix(line, " "):
			inYAML = true
			yaml = yaml[:0]
		case strings.HasPrefix(line, "TAP version"):
			sectionPlanned = false
		case planRe.MatchString(line):
			m := planRe.FindStringSubmatch(line)
			n, err := strconv.Atoi(m[1])
			if err != nil {
				return s, fmt.Errorf("TAP plan %q: %w", line, err)
			}
			if sectionPlanned {
				return s, fmt.Errorf("TAP document has a second plan %q", line)
			}
			sectionPlanned = true
			s.HasPlan = true
			s.Plan += n
		case pointRe.MatchString(line):
			m := pointRe.FindStringSubmatch(line)
			p := Point{OK: m[1] == "", Desc: m[3]}
			if m[2] != "" {
				p.Num, _ = strconv.Atoi(m[2])
			} else {
				p.Num = len(s.Points) + 1
			}
			if d := directiveRe.FindStringSubmatchIndex(p.Desc); d != nil {
				p.Directive = strings.ToUpper(p.Desc[d[2]:d[3]])
				p.Desc = strings.TrimSpace(p.Desc[:d[0]])
			}
			p.Diag, pending = pending, nil
			s.Points = append(s.Points, p)
		case strings.HasPrefix(trimmed, "#"):
			if len(s.Points) > 0 {
				last := &s.Points[len(s.Points)-1]
				last.Comments = append(last.Comments, strings.TrimSpace(strings.TrimPrefix(trimmed, "#")))
			}
		}
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("read TAP stream: %w", err)
	}
	if inYAML {
		pending = append(pending, newDiag(strings.Join(yaml, "\n")))
	}
	s.Orphans = pending
	return s, nil
}

func newDiag(raw string) Diag {
	d := Diag{Raw: raw}
	var m map[string]any
	if err := json.Unmarshal([]byte(raw), &m); err == nil {
		d.Fields = m
	}
	return d
}

// Str returns a string field of the block, or "".
func (d Diag) Str(key string) string {
	v, _ := d.Fields[key].(string)
	return v
}

// Summary condenses a diagnostic into a few lines worth printing: the error,
// the last lines of stderr, expected/actual, and the failing lines of an
// inner runtimetest run (whose whole TAP output is carried in "stdout").
func (d Diag) Summary() []string {
	var out []string
	if d.Fields == nil {
		if t := strings.TrimSpace(d.Raw); t != "" {
			out = append(out, "diagnostic: "+firstLine(t))
		}
		return out
	}
	if e := d.Str("error"); e != "" {
		out = append(out, "error: "+firstLine(e))
	}
	if st := d.Str("stdout"); st != "" {
		inner, err := ParseTAP(strings.NewReader(st))
		if err == nil {
			n := 0
			for _, p := range inner.Points {
				if !p.Failed() {
					continue
				}
				if n == 5 {
					out = append(out, "inner runtimetest: more failures omitted")
					break
				}
				out = append(out, fmt.Sprintf("inner runtimetest: not ok %d - %s", p.Num, p.Desc))
				for _, dd := range p.Diag {
					out = append(out, indent(dd.expectation(), "  ")...)
				}
				n++
			}
		}
	}
	if e := d.Str("stderr"); strings.TrimSpace(e) != "" {
		out = append(out, "stderr: "+lastLines(e, 2))
	}
	out = append(out, d.expectation()...)
	return out
}

func (d Diag) expectation() []string {
	_, hasA := d.Fields["actual"]
	_, hasE := d.Fields["expected"]
	if !hasA && !hasE {
		return nil
	}
	a, _ := json.Marshal(d.Fields["actual"])
	e, _ := json.Marshal(d.Fields["expected"])
	return []string{fmt.Sprintf("expected %s, actual %s", e, a)}
}

func indent(lines []string, pre string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = pre + l
	}
	return out
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return clip(s)
}

func lastLines(s string, n int) string {
	var keep []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if strings.TrimSpace(l) != "" {
			keep = append(keep, strings.TrimSpace(l))
		}
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	return clip(strings.Join(keep, " | "))
}

// clip keeps report lines readable: some runtimes put whole JSON documents
// in one error line.
func clip(s string) string {
	const max = 300
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
