package main

import (
	"strings"
	"testing"
)

func parse(t *testing.T, s string) Stream {
	t.Helper()
	st, err := ParseTAP(strings.NewReader(s))
	if err != nil {
		t.Fatalf("ParseTAP: %v", err)
	}
	return st
}

func TestParseTAPPointsDirectivesAndComments(t *testing.T) {
	st := parse(t, `TAP version 13
ok 1 - has expected hostname
not ok 2 - memory kernel is set correctly
# expect: 50593792, actual: 9223372036854771712
ok 3 # SKIP linux.sysctl not set
not ok 4 - known breakage # TODO later
ok 5
1..5
`)
	if !st.HasPlan || st.Plan != 5 || len(st.Points) != 5 {
		t.Fatalf("plan %v/%d points %d, want 5/5", st.HasPlan, st.Plan, len(st.Points))
	}
	p := st.Points
	if !p[0].OK || p[0].Desc != "has expected hostname" {
		t.Errorf("point 1 = %+v", p[0])
	}
	if p[1].OK || !p[1].Failed() || len(p[1].Comments) != 1 || !strings.HasPrefix(p[1].Comments[0], "expect: 50593792") {
		t.Errorf("point 2 = %+v", p[1])
	}
	if p[2].Directive != "SKIP" || p[2].Desc != "" || p[2].Failed() {
		t.Errorf("point 3 = %+v", p[2])
	}
	if p[3].Directive != "TODO" || p[3].Failed() {
		t.Errorf("a not ok TODO must not count as failed: %+v", p[3])
	}
	if p[4].Num != 5 || !p[4].OK {
		t.Errorf("point 5 = %+v", p[4])
	}
}

// RuntimeInsideValidate writes the inner runtimetest's output in a block
// before its point; SpecErrorOK writes its block after its point.
func TestParseTAPAttachesYAMLLikeRuntimeTools(t *testing.T) {
	st := parse(t, `TAP version 13
ok 1 - state MUST generate an error
  ---
  {
    "error": "exit status 1",
    "reference": "https://example/runtime.md#query-state"
  }
  ...
  ---
  {
    "stderr": "",
    "stdout": "TAP version 13\nok 1 - fine\nnot ok 2 - shared root propagation exposes \"/x\"\n1..2\n"
  }
  ...
not ok 2 - check root propagation: shared
1..2
`)
	if len(st.Points) != 2 || len(st.Orphans) != 0 {
		t.Fatalf("points %d orphans %d", len(st.Points), len(st.Orphans))
	}
	if len(st.Points[0].Diag) != 1 || st.Points[0].Diag[0].Str("error") != "exit status 1" {
		t.Errorf("point 1 diag = %+v", st.Points[0].Diag)
	}
	if len(st.Points[1].Diag) != 1 {
		t.Fatalf("point 2 diag = %+v", st.Points[1].Diag)
	}
	sum := strings.Join(st.Points[1].Diag[0].Summary(), "\n")
	if !strings.Contains(sum, `inner runtimetest: not ok 2 - shared root propagation exposes "/x"`) {
		t.Errorf("summary does not show the inner failure:\n%s", sum)
	}
}

func TestParseTAPOrphanErrorWithEmptyPlan(t *testing.T) {
	st := parse(t, `TAP version 13
  ---
  {
    "error": "Hooks MUST be called in the listed order\nRefer to: https://example"
  }
  ...
1..0
`)
	if len(st.Points) != 0 || len(st.Orphans) != 1 || !st.HasPlan || st.Plan != 0 {
		t.Fatalf("got %+v", st)
	}
	if got := st.Orphans[0].Summary(); len(got) != 1 || got[0] != "error: Hooks MUST be called in the listed order" {
		t.Errorf("summary %q", got)
	}
}

// linux_cgroups_cpus writes two complete TAP documents one after another.
func TestParseTAPTwoDocuments(t *testing.T) {
	st := parse(t, "TAP version 13\nok 1\nok 2\n1..2\nTAP version 13\nok 1\n1..1\n")
	if st.Plan != 3 || len(st.Points) != 3 {
		t.Fatalf("plan %d points %d, want 3 and 3", st.Plan, len(st.Points))
	}
}

func TestParseTAPRejectsTwoPlansInOneDocument(t *testing.T) {
	if _, err := ParseTAP(strings.NewReader("TAP version 13\nok 1\n1..1\n1..1\n")); err == nil {
		t.Fatal("two plans in one document were accepted")
	}
}

func TestDiagSummaryClipsAndHandlesNonJSON(t *testing.T) {
	d := newDiag(`message: ` + strings.Repeat("x", 1000))
	got := d.Summary()
	if len(got) != 1 || len(got[0]) > 320 || !strings.HasSuffix(got[0], "...") {
		t.Errorf("non-JSON block summary = %q", got)
	}
	d = newDiag(`{"stderr": "line one\n\nline two\nline three\n", "actual": 3999, "expected": 3000}`)
	got = d.Summary()
	want := []string{"stderr: line two | line three", "expected 3000, actual 3999"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("summary = %q, want %q", got, want)
	}
}
