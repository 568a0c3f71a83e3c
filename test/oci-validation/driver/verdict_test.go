package main

import (
	"strings"
	"testing"
	"time"
)

func TestJudge(t *testing.T) {
	okStream := parse(t, "TAP version 13\nok 1\nok 2 # SKIP x\n1..2\n")
	cases := []struct {
		name     string
		out      Outcome
		pass     bool
		line     string
		detailRe string // substring expected in the details
	}{
		{"all ok", Outcome{Stream: okStream}, true, "PASS p", ""},
		{"not ok", Outcome{Stream: parse(t, "ok 1\nnot ok 2 - boom\n# expect: 1, actual: 2\n1..2\n")}, false,
			"FAIL p (1 of 2 subtests failed)", "# expect: 1, actual: 2"},
		{"exit status", Outcome{ExitCode: 1, Stderr: "failed to create the container\ncapset: Operation not permitted\n"}, false,
			"FAIL p (0 of 0 subtests failed; exit status 1)", "stderr: failed to create the container | capset: Operation not permitted"},
		{"signal", Outcome{ExitCode: -1, Signal: "killed", Stream: okStream}, false,
			"FAIL p (0 of 2 subtests failed; killed by signal: killed)", ""},
		{"timeout", Outcome{ExitCode: -1, TimedOut: 90 * time.Second}, false,
			"FAIL p (0 of 0 subtests failed; timed out after 1m30s)", ""},
		{"plan mismatch", Outcome{Stream: parse(t, "ok 1\n1..3\n")}, false,
			"FAIL p (0 of 1 subtests failed; planned 3 subtests, ran 1)", ""},
		{"no plan", Outcome{Stream: parse(t, "ok 1\n")}, false, "FAIL p (0 of 1 subtests failed; no TAP plan)", ""},
		{"silent success", Outcome{}, true, "PASS p", ""},
		{"hook error", Outcome{Stream: parse(t, "  ---\n  {\"error\": \"Pre-start hooks MUST be called\"}\n  ...\n1..0\n")}, false,
			"FAIL p (0 of 0 subtests failed; error diagnostic)", "error: Pre-start hooks MUST be called"},
		{"hook fine", Outcome{Stream: parse(t, "TAP version 13\n1..0\n")}, true, "PASS p", ""},
		{"leak", Outcome{Stream: okStream, Leaks: []string{"cgroup /sys/fs/cgroup/pids/cgrouptest (removed)"}}, false,
			"FAIL p (0 of 2 subtests failed; left 1 thing(s) behind)", "leak: cgroup /sys/fs/cgroup/pids/cgrouptest"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := c.out.Judge()
			if v.Pass != c.pass {
				t.Errorf("pass = %v, want %v (%+v)", v.Pass, c.pass, v)
			}
			if got := v.Line("p"); got != c.line {
				t.Errorf("line = %q, want %q", got, c.line)
			}
			if c.detailRe != "" && !strings.Contains(strings.Join(v.Details, "\n"), c.detailRe) {
				t.Errorf("details %q lack %q", v.Details, c.detailRe)
			}
		})
	}
}
