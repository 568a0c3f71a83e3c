package shim_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hako-project/hako/shim"
	"github.com/hako-project/hako/shim/internal/proto"
	"github.com/hako-project/hako/trace"
)

// spares lists the pids of the `BIN --spare` processes that are this test
// process's children.
func spares(t *testing.T, bin string) []int {
	t.Helper()
	var out []int
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		if !bytes.HasPrefix(b, []byte(bin+"\x00--spare\x00")) {
			continue
		}
		pid, _ := strconv.Atoi(strings.Split(p, "/")[2])
		if alive(pid) && ppidOf(pid) == os.Getpid() {
			out = append(out, pid)
		}
	}
	return out
}

// ppidOf is pid's parent, 0 once it has gone.
func ppidOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// oneSpare waits for exactly one spare of bin and returns its pid.
func oneSpare(t *testing.T, bin string) int {
	t.Helper()
	var got []int
	eventually(t, "one spare shim", func() bool {
		got = spares(t, bin)
		return len(got) == 1
	})
	return got[0]
}

// runWithSpares runs `echo NAME` in a container started with sp (and
// adjust, if any) and checks its output, exit and clean-up; it returns the
// shim's pid.
func runWithSpares(t *testing.T, r rt, sp *shim.Spares, bin, name string, adjust ...func(*shim.Config)) int {
	t.Helper()
	ctx := testCtx(t)
	c, _ := startContainer(t, r, []string{"echo", name}, nil, func(cfg *shim.Config) {
		cfg.Spares = sp
		cfg.Binary = bin
		for _, a := range adjust {
			a(cfg)
		}
	})
	pid := shimPid(t, c.StateDir())
	var stdout syncBuffer
	stream, err := c.Attach(ctx, shim.AttachOptions{Stdout: &stdout, Stderr: io.Discard})
	must(t, err)
	must(t, c.Start(ctx))
	exit, err := c.Wait(ctx)
	must(t, err)
	must(t, stream.Wait())
	if exit.Code != 0 || stdout.String() != name+"\n" {
		t.Errorf("%s: exit %+v, output %q", name, exit, stdout.String())
	}
	deleteAndCheck(t, r, c, false)
	return pid
}

// TestSpares: a Start with Spares starts the next container's shim ahead
// of need; the next Start hands that spare its container, which then runs
// as any other (output, exit, clean-up), with its stdout and stderr on the
// container's shim log; a spare that died, or whose binary was replaced, is
// passed over (and the replaced one exits); Close ends the spare, and a
// closed Spares starts no more.
func TestSpares(t *testing.T) {
	r := runtimes(t)[0]
	bin := filepath.Join(t.TempDir(), "hako-shim") // ours alone, for spares()
	b, err := os.ReadFile(shimBin)
	must(t, err)
	must(t, os.WriteFile(bin, b, 0o755))
	sp := &shim.Spares{}
	defer sp.Close()

	first := runWithSpares(t, r, sp, bin, "first")
	spare := oneSpare(t, bin)
	if spare == first {
		t.Fatalf("the spare is the first container's shim %d", first)
	}

	// The spare serves the next container: the shim pid is the spare's.
	ctx := testCtx(t)
	c, _ := startContainer(t, r, []string{"sleep", "60"}, nil, func(cfg *shim.Config) {
		cfg.Spares = sp
		cfg.Binary = bin
	})
	if got := shimPid(t, c.StateDir()); got != spare {
		t.Errorf("second container's shim is %d, want the spare %d", got, spare)
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", spare))
	if want := bin + "\x00--state-dir\x00" + c.StateDir() + "\x00"; !strings.HasPrefix(string(cmdline), want) || strings.Trim(string(cmdline[len(want):]), "\x00") != "" {
		t.Errorf("the assigned spare's command line is %q, want %q", cmdline, want)
	}
	logLink, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/2", spare))
	if want := filepath.Join(c.StateDir(), proto.LogFile); logLink != want {
		t.Errorf("the assigned spare's stderr is %q, want %q", logLink, want)
	}
	must(t, c.Start(ctx))
	if _, err := c.Delete(ctx, true); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	assertGone(t, r, c.ID(), c.StateDir(), spare)

	// A spare that died is passed over.
	dead := oneSpare(t, bin)
	must(t, syscall.Kill(dead, syscall.SIGKILL))
	eventually(t, "the killed spare reaped", func() bool { return len(spares(t, bin)) == 0 })
	if got := runWithSpares(t, r, sp, bin, "after-kill"); got == dead {
		t.Errorf("the killed spare %d served", dead)
	}

	// A spare whose binary has been replaced is passed over, and exits.
	old := oneSpare(t, bin)
	later := time.Now().Add(time.Minute)
	must(t, os.Chtimes(bin, later, later))
	if got := runWithSpares(t, r, sp, bin, "replaced"); got == old {
		t.Errorf("the spare %d of the replaced binary served", old)
	}
	eventually(t, "the outdated spare gone", func() bool { return !alive(old) })

	// Close ends the spare before it returns; no more are started.
	last := oneSpare(t, bin)
	sp.Close()
	if alive(last) {
		t.Errorf("spare %d still runs after Close", last)
	}
	if got := runWithSpares(t, r, sp, bin, "closed"); got == last {
		t.Errorf("the closed spare %d served", last)
	}
	time.Sleep(200 * time.Millisecond)
	if left := spares(t, bin); len(left) != 0 {
		t.Errorf("a closed Spares started spares %v", left)
	}
}

// TestSpareLost: a spare that ends after it was handed a container but
// before it took it (here a stand-in that reads one byte of the
// assignment and exits, as a spare killed at that moment would) costs the
// container nothing: Start runs a shim of its own, and the container runs.
func TestSpareLost(t *testing.T) {
	r := runtimes(t)[0]
	dir := t.TempDir()
	bin := filepath.Join(dir, "hako-shim")
	script := "#!/bin/sh\n" +
		"if [ \"$1\" = --spare ]; then dd bs=1 count=1 <&3 >/dev/null 2>&1; touch " + filepath.Join(dir, "taken") + "; exit 1; fi\n" +
		"exec " + shimBin + " \"$@\"\n"
	must(t, os.WriteFile(bin, []byte(script), 0o755))
	sp := &shim.Spares{}
	defer sp.Close()

	runWithSpares(t, r, sp, bin, "first") // leaves a spare: the stand-in
	eventually(t, "the stand-in spare", func() bool {
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			b, _ := os.ReadFile(p)
			if bytes.Contains(b, []byte(bin+"\x00--spare")) {
				return true
			}
		}
		return false
	})
	runWithSpares(t, r, sp, bin, "second")
	if _, err := os.Stat(filepath.Join(dir, "taken")); err != nil {
		t.Errorf("the stand-in spare was not handed the second container: %v", err)
	}
}

// TestSpareNotNeeded: a spare whose socket is closed before it is
// assigned a container exits 0; one given a bad assignment reports the
// error to the client and exits 1.
func TestSpareNotNeeded(t *testing.T) {
	needRoot(t)
	for _, tc := range []struct {
		name   string
		assign string // "" closes the socket instead
		code   int
		report string
	}{
		{name: "eof", code: 0},
		{name: "relative", assign: `{"state_dir":"rel/dir"}`, code: 1, report: `not an absolute path`},
		{name: "missing", assign: `{"state_dir":"/nonexistent/hako-spare"}`, code: 1, report: `shim log`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
			must(t, err)
			ours, theirs := os.NewFile(uintptr(fds[0]), "ours"), os.NewFile(uintptr(fds[1]), "theirs")
			defer ours.Close()
			var stderr bytes.Buffer
			cmd := exec.Command(shimBin, "--spare")
			cmd.ExtraFiles = []*os.File{theirs}
			cmd.Stderr = &stderr
			must(t, cmd.Start())
			theirs.Close()
			if tc.assign != "" {
				msg := []byte(tc.assign)
				hdr := []byte{0, 0, 0, byte(len(msg))}
				if _, err := ours.Write(append(hdr, msg...)); err != nil {
					t.Fatal(err)
				}
				rep, _ := io.ReadAll(ours)
				if !strings.Contains(string(rep), tc.report) {
					t.Errorf("report %q, want it to say %q", rep, tc.report)
				}
			} else {
				ours.Close()
			}
			err = cmd.Wait()
			code := 0
			if ee, ok := err.(interface{ ExitCode() int }); ok {
				code = ee.ExitCode()
			}
			if code != tc.code {
				t.Errorf("exit %d (%v), want %d; stderr %q", code, err, tc.code, stderr.String())
			}
		})
	}
}

// TestSpareUsage: --spare takes neither --state-dir nor arguments other
// than its blank room; such a command line exits 2 with a message.
func TestSpareUsage(t *testing.T) {
	needRoot(t)
	for _, args := range [][]string{{"--spare", "--state-dir", "/tmp/x"}, {"--spare", "extra"}, {"--spare", " ", " "}} {
		out, err := exec.Command(shimBin, args...).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "--spare takes no --state-dir") {
			t.Errorf("hako-shim %q: %v, %q; want exit 2 saying what is wrong", args, err, out)
		}
	}
}

// standbyOf waits for the `RT standby` child of the spare pid and returns
// its pid.
func standbyOf(t *testing.T, spare int, rt string) int {
	t.Helper()
	var pid int
	eventually(t, "the spare's standby runtime", func() bool {
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			b, _ := os.ReadFile(p)
			if string(b) == rt+"\x00standby\x00" {
				n, _ := strconv.Atoi(strings.Split(p, "/")[2])
				if ppidOf(n) == spare {
					pid = n
					return true
				}
			}
		}
		return false
	})
	return pid
}

// tracedRun runs `echo NAME` in a container started with sp, with the
// shim's and the runtime's spans in a trace file, checks its output and
// clean-up, and returns the attributes of the shim.runtime.create span
// and of hako-runtime.create.
func tracedRun(t *testing.T, r rt, sp *shim.Spares, bin, name string) (shimAttrs, rtAttrs map[string]string) {
	t.Helper()
	file := t.TempDir() + "/trace.jsonl"
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	must(t, err)
	defer f.Close()
	tracer, err := trace.New("", f)
	must(t, err)
	_, root := trace.Start(trace.WithTracer(testCtx(t), tracer), "test.root")
	runWithSpares(t, r, sp, bin, name, func(cfg *shim.Config) {
		cfg.TraceFile, cfg.Traceparent = file, root.Traceparent()
	})
	root.End(nil)
	rf, err := os.Open(file)
	must(t, err)
	defer rf.Close()
	spans, err := trace.ReadSpans(rf)
	must(t, err)
	var found int
	for _, s := range spans {
		switch s.Name {
		case "shim.runtime.create":
			shimAttrs, found = s.Attrs, found+1
		case "hako-runtime.create":
			rtAttrs, found = s.Attrs, found+1
		}
	}
	if found != 2 {
		t.Fatalf("%s: no shim.runtime.create or hako-runtime.create span; have %v", name, names(spans))
	}
	return shimAttrs, rtAttrs
}

// TestSpareStandby: with Spares.Standby, the spare also starts the runtime
// ahead of need (`RUNTIME standby`, the spare's child), and the next
// container's create is handed to it: the container runs as any other
// (its output through the descriptors handed over, exit, clean-up), both
// create spans say standby=true, and the standby has gone. A runtime
// binary replaced since the standby started is not handed anything: the
// create starts a process of its own, and the standby exits.
func TestSpareStandby(t *testing.T) {
	r := runtimes(t)[0]
	dir := t.TempDir()
	bin := filepath.Join(dir, "hako-shim") // ours alone, for spares()
	b, err := os.ReadFile(shimBin)
	must(t, err)
	must(t, os.WriteFile(bin, b, 0o755))
	rtb, err := os.ReadFile(r.path)
	must(t, err)
	r.path = filepath.Join(dir, "hako-runtime") // ours alone, for standbyOf
	must(t, os.WriteFile(r.path, rtb, 0o755))
	if got := shim.StandbyRuntime(r.path); got != r.path {
		t.Fatalf("StandbyRuntime(%s) = %q: hako-runtime's features do not offer standby", r.path, got)
	}
	sp := &shim.Spares{Standby: r.path}
	defer sp.Close()

	runWithSpares(t, r, sp, bin, "first")
	standby := standbyOf(t, oneSpare(t, bin), r.path)
	shimAttrs, rtAttrs := tracedRun(t, r, sp, bin, "second")
	if shimAttrs["standby"] != "true" || rtAttrs["standby"] != "true" {
		t.Errorf("create spans: shim %v, runtime %v; want standby=true in both", shimAttrs, rtAttrs)
	}
	eventually(t, "the used standby gone", func() bool { return !alive(standby) })

	// Replace the runtime binary (a new inode, as an upgrade makes).
	standby = standbyOf(t, oneSpare(t, bin), r.path)
	must(t, os.WriteFile(r.path+".new", rtb, 0o755))
	must(t, os.Rename(r.path+".new", r.path))
	shimAttrs, rtAttrs = tracedRun(t, r, sp, bin, "third")
	if shimAttrs["standby"] != "" || rtAttrs["standby"] != "" {
		t.Errorf("create with a replaced runtime binary: shim %v, runtime %v; want no standby", shimAttrs, rtAttrs)
	}
	eventually(t, "the unfit standby gone", func() bool { return !alive(standby) })
}

// TestStandbyRuntime: runc and crun have no standby; a missing runtime
// has none either.
func TestStandbyRuntime(t *testing.T) {
	for _, r := range runtimes(t)[1:] {
		if got := shim.StandbyRuntime(r.path); got != "" {
			t.Errorf("StandbyRuntime(%s) = %q, want none", r.path, got)
		}
	}
	if got := shim.StandbyRuntime("/nonexistent/hako-runtime"); got != "" {
		t.Errorf("StandbyRuntime of a missing binary = %q", got)
	}
}
