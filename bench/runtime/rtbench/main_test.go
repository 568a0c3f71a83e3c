package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeRuntimeScript speaks the part of runc's CLI the benchmark uses.
// "create" leaves a process waiting on a fifo (as a real init waits on its
// exec fifo) and exits; "start" releases it. With leaky set, "delete"
// forgets to remove the state directory.
func fakeRuntimeScript(t *testing.T, leaky bool) string {
	t.Helper()
	del := `rm -rf "$root/$2"`
	if leaky {
		del = `:`
	}
	script := `#!/bin/sh
set -e
[ "$1" = --version ] && { echo "fake-runtime version 1"; exit 0; }
root=/nonexistent
if [ "$1" = --root ]; then root=$2; shift 2; fi
cmd=$1; shift
case $cmd in
spec)
	[ "$1" = --bundle ]
	echo '{"ociVersion":"1.0.2","process":{"terminal":true,"args":["sh"],"cwd":"/"},"root":{"path":"rootfs"}}' > "$2/config.json" ;;
run)
	[ "$1" = --bundle ]
	grep -q '"/bin/true"' "$2/config.json"
	"$2/rootfs/bin/true" ;;
create)
	[ "$1" = --bundle ] && [ "$3" = --pid-file ]
	bundle=$2 pidfile=$4 id=$5
	mkdir "$root/$id"
	mkfifo "$root/$id/fifo"
	sh -c 'read x < "$1"; exec "$2"' init "$root/$id/fifo" "$bundle/rootfs/bin/true" </dev/null >/dev/null 2>&1 &
	echo $! > "$pidfile" ;;
start)
	echo go > "$root/$1/fifo" ;;
delete)
	if [ "$1" = --force ]; then rm -rf "$root/$2"; exit 0; fi
	set -- x "$1"
	` + del + ` ;;
list)
	ls "$root" ;;
*)
	echo "fake-runtime: unsupported $cmd" >&2; exit 1 ;;
esac
`
	p := filepath.Join(t.TempDir(), "fake-runtime")
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func fakeBusybox(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "busybox")
	if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func noWorkLeft(t *testing.T, tmp string) {
	t.Helper()
	if left, _ := filepath.Glob(filepath.Join(tmp, "hako-rtbench-*")); len(left) > 0 {
		t.Errorf("work directories left behind: %q", left)
	}
}

func TestRunInterleavesAndReports(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	fake := fakeRuntimeScript(t, false)
	jsonOut := filepath.Join(t.TempDir(), "samples.json")
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"-n", "3", "-warmup", "1", "-busybox", fakeBusybox(t), "-json", jsonOut,
		"runc=" + fake, "crun=" + fake, "other=" + fake}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	o := out.String()
	for _, want := range []string{
		"runtimes, interleaved in this order: runc (fake-runtime version 1), crun (fake-runtime version 1), other (fake-runtime version 1)",
		"run: `RUNTIME --root R run --bundle B ID` of /bin/true",
		"create-start-delete:",
		"other/crun wall ", "runc/crun wall ", "other/runc wall ", "crun/runc wall ",
		"cleanup: no leftover containers, state directories, mounts or cgroups",
	} {
		if !strings.Contains(o, want) {
			t.Errorf("output lacks %q:\n%s", want, o)
		}
	}
	var samples map[string]map[string][]jsonSample
	data, err := os.ReadFile(jsonOut)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &samples); err != nil {
		t.Fatal(err)
	}
	for _, wl := range []string{"run", "create-start-delete"} {
		for _, rt := range []string{"runc", "crun", "other"} {
			s := samples[wl][rt]
			if len(s) != 3 {
				t.Errorf("%s/%s: %d samples, want 3 (warm-ups excluded)", wl, rt, len(s))
				continue
			}
			if s[0].WallNS <= 0 || s[0].Procs < 1 {
				t.Errorf("%s/%s: empty sample %+v", wl, rt, s[0])
			}
		}
		// create, start, the adopted init and delete are all reaped.
		if s := samples["create-start-delete"]["runc"]; len(s) > 0 && s[0].Procs < 4 {
			t.Errorf("create-start-delete reaped %d processes, want at least 4", s[0].Procs)
		}
	}
	noWorkLeft(t, tmp)
}

func TestRunFailsOnLeakedStateAndCleansUp(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"-n", "2", "-warmup", "0", "-busybox", fakeBusybox(t), "leaky=" + fakeRuntimeScript(t, true)}, &out, &errb)
	if code != 1 {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	if !strings.Contains(errb.String(), "left state") {
		t.Errorf("stderr does not name the leak: %s", errb.String())
	}
	noWorkLeft(t, tmp)
}

func TestRunRejectsBadInput(t *testing.T) {
	fake := fakeRuntimeScript(t, false)
	bb := fakeBusybox(t)
	failingSpec := filepath.Join(t.TempDir(), "nospec")
	if err := os.WriteFile(failingSpec, []byte("#!/bin/sh\necho 'spec: not supported' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		args []string
		code int
	}{
		"no runtimes":        {[]string{"-busybox", bb}, 2},
		"zero iterations":    {[]string{"-n", "0", "-busybox", bb, "a=" + fake}, 2},
		"negative warmup":    {[]string{"-warmup", "-1", "-busybox", bb, "a=" + fake}, 2},
		"missing busybox":    {[]string{"-busybox", "/nonexistent/busybox", "a=" + fake}, 2},
		"no name":            {[]string{"-busybox", bb, fake}, 2},
		"bad name":           {[]string{"-busybox", bb, "a/b=" + fake}, 2},
		"duplicate name":     {[]string{"-busybox", bb, "a=" + fake, "a=" + fake}, 2},
		"missing runtime":    {[]string{"-busybox", bb, "a=/nonexistent/runtime"}, 2},
		"unknown flag":       {[]string{"-frobnicate", "a=" + fake}, 2},
		"runtime spec fails": {[]string{"-n", "1", "-busybox", bb, "a=" + failingSpec}, 1},
	} {
		t.Run(name, func(t *testing.T) {
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			var out, errb bytes.Buffer
			if code := run(context.Background(), c.args, &out, &errb); code != c.code {
				t.Errorf("exit %d, want %d; stderr %s", code, c.code, errb.String())
			}
			if errb.Len() == 0 {
				t.Error("no error message")
			}
			noWorkLeft(t, tmp)
		})
	}
}

// TestRealRunc runs both workloads against runc for real (needs root, runc
// and busybox-static) and checks that nothing is left behind.
func TestRealRunc(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create containers; CI runs as root")
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("runc is not installed")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("busybox-static is not installed")
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"-n", "2", "-warmup", "1", "runc=" + runc}, &out, &errb); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "cleanup: no leftover") {
		t.Errorf("output:\n%s", out.String())
	}
	noWorkLeft(t, tmp)
}
