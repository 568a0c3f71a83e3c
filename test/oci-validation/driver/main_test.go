package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// fakeSuite lays out a runtime-tools directory whose validation programs are
// shell scripts, one per behaviour the driver must judge.
func fakeSuite(t *testing.T, programs map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "runtimetest"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range programs {
		d := filepath.Join(dir, "validation", name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, name+".t"), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "validation", "util"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// requireLines fails the test for each of lines that is not a whole line
// of out.
func requireLines(t *testing.T, out string, lines ...string) {
	t.Helper()
	for _, want := range lines {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("output lacks line %q", want)
		}
	}
}

// noScratchLeft checks that the driver removed its scratch directory.
func noScratchLeft(t *testing.T, tmp string) {
	t.Helper()
	left, _ := filepath.Glob(filepath.Join(tmp, "hako-ocival-*"))
	if len(left) > 0 {
		t.Errorf("scratch directories left behind: %q", left)
	}
}

func TestRunJudgesCleansUpAndAppliesAllowList(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	rt, state := fakeRuntime(t)
	suite := fakeSuite(t, map[string]string{
		"good": `echo "TAP version 13"; echo "ok 1 - fine"; echo "1..1"`,
		// Checks it runs in the suite directory with RUNTIME and its own TMPDIR.
		"env": `[ -e runtimetest ] && [ -x "$RUNTIME" ] && case "$TMPDIR" in */hako-ocival-*/env) ;; *) exit 3;; esac
mkdir "$TMPDIR/ocitest123"; echo "1..0"`,
		"bad":   `echo "not ok 1 - kernel memory is set"; echo "# expect: 1, actual: 2"; echo "1..1"`,
		"host":  `echo "failed to create the container" >&2; exit 1`,
		"leaky": `touch "` + state + `/3b241101-e2bb-4255-8caf-4136c566a962"; echo "ok 1"; echo "1..1"`,
		"hang":  `sleep 60 & sleep 60; echo "ok 1"; echo "1..1"`,
	})
	allow := writeFile(t, t.TempDir(), "known-failures.txt",
		"host # host: the machine lacks it\nleaky # suite: allowed, but leaks are never excused\nhang # suite: hangs\ngood # suite: stale entry\n")

	var out, errb bytes.Buffer
	cg := t.TempDir() // never the host's cgroups: other tests and suites may be running
	code := run(context.Background(), []string{"-runtime", rt, "-suite", suite, "-timeout", "2s", "-known-failures", allow, "-cgroup-roots", cg}, &out, &errb)
	o := out.String()
	t.Log(o)
	if code != 1 {
		t.Errorf("exit code %d, want 1 (bad and leaky are not excused); stderr:\n%s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(o), "\n")
	if last := lines[len(lines)-1]; last != "2 passed, 4 failed" {
		t.Errorf("last line %q, want \"2 passed, 4 failed\"", last)
	}
	requireLines(t, o,
		"PASS good", "PASS env",
		"FAIL bad (1 of 1 subtests failed)", "    not ok 1 - kernel memory is set", "        # expect: 1, actual: 2",
		"FAIL host (0 of 0 subtests failed; exit status 1)", "    stderr: failed to create the container",
		"FAIL leaky (0 of 1 subtests failed; left 1 thing(s) behind)",
		"    leak: container 3b241101-e2bb-4255-8caf-4136c566a962 still listed by the runtime (force-deleted)",
		"FAIL hang (0 of 0 subtests failed; timed out after 2s)",
		"Allowed failures caused by host limits (1):", "    host (host: the machine lacks it)",
		"Allowed failures for other known reasons (1):", "    hang (suite: hangs)",
		"Listed as known failures but passed (consider removing): good",
		"Failures not covered by the allow-list (2): bad leaky",
	)
	if ents, _ := os.ReadDir(state); len(ents) != 0 {
		t.Errorf("containers left in the fake runtime's root: %v", ents)
	}
	noScratchLeft(t, tmp)
}

func TestRunExitsZeroWhenEveryFailureIsAllowed(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	rt, _ := fakeRuntime(t)
	suite := fakeSuite(t, map[string]string{
		"good": `echo "ok 1"; echo "1..1"`,
		"host": `exit 1`,
		"skip": `echo "ok 1 - x"; echo "1..1"`,
	})
	allow := writeFile(t, t.TempDir(), "kf", "host # host: no such controller\n")
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"-runtime", rt, "-suite", suite, "-run", "^(good|host)$", "-known-failures", allow, "-cgroup-roots", t.TempDir()}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit code %d; out:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	if !strings.HasSuffix(out.String(), "Every failure is covered by the allow-list.\n1 passed, 1 failed\n") {
		t.Errorf("output:\n%s", out.String())
	}
	if strings.Contains(out.String(), "skip") {
		t.Errorf("-run did not filter: %s", out.String())
	}
	noScratchLeft(t, tmp)
}

// A racy program is run again when it fails: it passes if one of
// RaceAttempts attempts passes, and fails the run if none does.
func TestRunRetriesRacyPrograms(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	rt, _ := fakeRuntime(t)
	count := t.TempDir()
	suite := fakeSuite(t, map[string]string{
		// Fails on its first attempt only.
		"flaky": `echo x >> "` + count + `/flaky"
[ "$(wc -l < "` + count + `/flaky")" -ge 2 ] && { echo "ok 1"; echo "1..1"; exit 0; }
echo '  ---'; echo '  {"error": "post-start hook ran first"}'; echo '  ...'; echo "1..0"`,
		"broken": `echo x >> "` + count + `/broken"; echo "not ok 1 - hook order"; echo "1..1"`,
		// Not listed as racy: one failure is final.
		"once": `echo x >> "` + count + `/once"; exit 1`,
	})
	allow := writeFile(t, t.TempDir(), "kf", "flaky # race: two writers at once\nbroken # race: two writers at once\nonce # suite: fails\n")
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"-runtime", rt, "-suite", suite, "-known-failures", allow, "-cgroup-roots", t.TempDir()}, &out, &errb)
	o := out.String()
	t.Log(o, errb.String())
	if code != 1 {
		t.Errorf("exit code %d, want 1 (broken fails every attempt)", code)
	}
	requireLines(t, o,
		"PASS flaky", "    attempt 1 of 2: FAIL flaky (0 of 0 subtests failed; error diagnostic)",
		"FAIL broken (1 of 1 subtests failed)", fmt.Sprintf("    attempt 2 of %d: FAIL broken (1 of 1 subtests failed)", RaceAttempts),
		"Failures not covered by the allow-list (1): broken",
		"1 passed, 2 failed",
	)
	if strings.Contains(o, "consider removing") {
		t.Errorf("a racy program that passed is not a stale entry:\n%s", o)
	}
	for name, want := range map[string]int{"flaky": 2, "broken": RaceAttempts, "once": 1} {
		data, _ := os.ReadFile(filepath.Join(count, name))
		if got := strings.Count(string(data), "x"); got != want {
			t.Errorf("%s ran %d times, want %d", name, got, want)
		}
	}
	noScratchLeft(t, tmp)
}

func TestRunRejectsBadInput(t *testing.T) {
	rt, _ := fakeRuntime(t)
	suite := fakeSuite(t, map[string]string{"good": `echo "ok 1"; echo "1..1"`})
	noReason := writeFile(t, t.TempDir(), "kf", "good\n")
	notExec := writeFile(t, t.TempDir(), "rt", "#!/bin/sh\n")
	for name, args := range map[string][]string{
		"no runtime":             {"-suite", suite},
		"missing runtime":        {"-runtime", "/nonexistent/runtime", "-suite", suite},
		"runtime not executable": {"-runtime", notExec, "-suite", suite},
		"runtime is a directory": {"-runtime", suite, "-suite", suite},
		"suite without programs": {"-runtime", rt, "-suite", t.TempDir()},
		"bad regex":              {"-runtime", rt, "-suite", suite, "-run", "("},
		"regex matches nothing":  {"-runtime", rt, "-suite", suite, "-run", "^nothing$"},
		"allow-list no reason":   {"-runtime", rt, "-suite", suite, "-known-failures", noReason},
		"allow-list missing":     {"-runtime", rt, "-suite", suite, "-known-failures", "/nonexistent/kf"},
		"zero timeout":           {"-runtime", rt, "-suite", suite, "-timeout", "0s"},
		"stray argument":         {"-runtime", rt, "-suite", suite, "extra"},
		"cgroup root missing":    {"-runtime", rt, "-suite", suite, "-cgroup-roots", "/nonexistent/cg"},
	} {
		t.Run(name, func(t *testing.T) {
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			var out, errb bytes.Buffer
			if code := run(context.Background(), args, &out, &errb); code != 2 {
				t.Errorf("exit code %d, want 2; stderr %s", code, errb.String())
			}
			if errb.Len() == 0 {
				t.Error("no error message")
			}
			if out.Len() != 0 {
				t.Errorf("printed a report for bad input: %s", out.String())
			}
			noScratchLeft(t, tmp)
		})
	}
}

func TestDiscoverSortsAndFilters(t *testing.T) {
	suite := fakeSuite(t, map[string]string{"b": "", "a": "", "ab": ""})
	ps, err := Discover(suite, regexp.MustCompile("^a"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].Name != "a" || ps[1].Name != "ab" || !filepath.IsAbs(ps[0].Path) {
		t.Errorf("Discover = %+v", ps)
	}
}
