package reaper

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The tests share one Reaper: it is per process, like the subreaper bit.
var shared *Reaper

func reaper(t *testing.T) *Reaper {
	t.Helper()
	if shared == nil {
		r, err := New()
		if err != nil {
			t.Fatal(err)
		}
		shared = r
	}
	return shared
}

func waitExit(t *testing.T, ch <-chan Exit) Exit {
	t.Helper()
	select {
	case e := <-ch:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no exit within 10s")
		return Exit{}
	}
}

func TestStartReportsCodeAndSignal(t *testing.T) {
	r := reaper(t)
	for _, c := range []struct {
		script string
		code   int
		sig    unix.Signal
	}{
		{"exit 0", 0, 0},
		{"exit 3", 3, 0},
		{"kill -9 $$", 137, unix.SIGKILL},
		{"kill -TERM $$", 143, unix.SIGTERM},
	} {
		_, ch, err := r.Start(exec.Command("/bin/sh", "-c", c.script))
		if err != nil {
			t.Fatal(err)
		}
		e := waitExit(t, ch)
		if e.Code() != c.code || e.Signal() != c.sig {
			t.Errorf("%q: code %d signal %v, want %d %v", c.script, e.Code(), e.Signal(), c.code, c.sig)
		}
	}
}

// TestOrphanIsReparentedAndWatched: a grandchild left behind by a child
// that exits is reaped here, and Expect keeps its exit for a Watch that
// learns the pid only after it has died.
func TestOrphanIsReparentedAndWatched(t *testing.T) {
	r := reaper(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	done := r.Expect()
	defer done()
	// The grandchild outlives its parent (so the shell cannot reap it)
	// and exits 5 before we Watch it.
	_, ch, err := r.Start(exec.Command("/bin/sh", "-c", `(sleep 0.2; exit 5) & echo $! > `+pidFile))
	if err != nil {
		t.Fatal(err)
	}
	if e := waitExit(t, ch); e.Code() != 0 {
		t.Fatalf("parent exit %d", e.Code())
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	time.Sleep(600 * time.Millisecond)
	got := make(chan Exit, 1)
	r.Watch(pid, func(e Exit) { got <- e })
	if e := waitExit(t, got); e.Pid != pid || e.Code() != 5 {
		t.Errorf("orphan %d: got pid %d code %d, want code 5", pid, e.Pid, e.Code())
	}
	// It really was reaped: no zombie is left.
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
		if st, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); strings.Contains(string(st), ") Z ") {
			t.Errorf("orphan %d left as a zombie", pid)
		}
	}
}

// TestWatchLater: a long-running orphan watched before it exits.
func TestWatchLater(t *testing.T) {
	r := reaper(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	_, ch, err := r.Start(exec.Command("/bin/sh", "-c", `(sleep 0.3; exit 7) & echo $! > `+pidFile))
	if err != nil {
		t.Fatal(err)
	}
	waitExit(t, ch)
	b, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	got := make(chan Exit, 1)
	r.Watch(pid, func(e Exit) { got <- e })
	if e := waitExit(t, got); e.Code() != 7 {
		t.Errorf("code %d, want 7", e.Code())
	}
}

func TestUnclaimedDroppedWhenNobodyExpects(t *testing.T) {
	r := reaper(t)
	done := r.Expect()
	// An orphan nobody watches exits while we expect: it is kept...
	_, ch, err := r.Start(exec.Command("/bin/sh", "-c", `(sleep 0.1; exit 1) &`))
	if err != nil {
		t.Fatal(err)
	}
	waitExit(t, ch)
	unclaimed := func() int {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.unclaimed)
	}
	deadline := time.Now().Add(5 * time.Second)
	for unclaimed() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if unclaimed() != 1 {
		t.Fatalf("%d unclaimed exits while expecting, want 1", unclaimed())
	}
	// ...and dropped once nobody expects anything.
	done()
	if n := unclaimed(); n != 0 {
		t.Errorf("%d unclaimed exits kept after the last Expect ended", n)
	}
}

func TestStartReturnsPid(t *testing.T) {
	r := reaper(t)
	cmd := exec.Command("/bin/sh", "-c", "exit 0")
	pid, ch, err := r.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if e := waitExit(t, ch); pid <= 0 || e.Pid != pid {
		t.Errorf("Start returned pid %d, the exit is of %d", pid, e.Pid)
	}
}

func TestStartError(t *testing.T) {
	r := reaper(t)
	if _, _, err := r.Start(exec.Command("/nonexistent/binary")); err == nil {
		t.Error("Start of a missing binary succeeded")
	}
}

// TestStartFiles: Start gives the child what os/exec would for the fields
// it honours: Dir, Env, stdio (nil: /dev/null; a nil *os.File: closed) and
// ExtraFiles from fd 3; stdio of another type is refused.
func TestStartFiles(t *testing.T) {
	r := reaper(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	if err := os.WriteFile(in, []byte("from stdin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stdin, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	out, err := os.Create(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	extra, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	cmd := exec.Command("/bin/sh", "-c", `pwd; echo "$FOO"; cat; cat <&3; readlink /proc/self/fd/2`)
	cmd.Dir, cmd.Env = dir, []string{"FOO=bar", "PATH=/usr/bin:/bin"}
	cmd.Stdin, cmd.Stdout = stdin, out
	cmd.ExtraFiles = []*os.File{extra}
	_, ch, err := r.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if e := waitExit(t, ch); e.Code() != 0 {
		t.Fatalf("exit %d", e.Code())
	}
	got, _ := os.ReadFile(out.Name())
	if want := dir + "\nbar\nfrom stdin\nfrom stdin\n/dev/null\n"; string(got) != want {
		t.Errorf("output %q, want %q", got, want)
	}

	var none *os.File
	cmd = exec.Command("/bin/sh", "-c", `[ -e /proc/self/fd/0 ] && echo open || echo closed`)
	cmd.Stdin, cmd.Stdout = none, out
	if _, ch, err = r.Start(cmd); err != nil {
		t.Fatal(err)
	}
	waitExit(t, ch)
	if got, _ := os.ReadFile(out.Name()); !strings.HasSuffix(string(got), "closed\n") {
		t.Errorf("a nil *os.File stdin: %q, want it closed", got)
	}

	cmd = exec.Command("/bin/true")
	cmd.Stdout = &strings.Builder{}
	if _, _, err := r.Start(cmd); err == nil || !strings.Contains(err.Error(), "not an *os.File") {
		t.Errorf("stdout of another type: %v", err)
	}
}
