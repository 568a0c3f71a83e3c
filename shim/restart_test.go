package shim_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/shim"
	"github.com/hako-project/hako/shim/internal/proto"
)

// TestSurvivesHakodKill: a process standing in for hakod starts a
// container and is killed with SIGKILL; the shim, its child in a session
// of its own, lives on (reparented), and a new process re-adopts the
// container with Connect, attaches and waits for it.
func TestSurvivesHakodKill(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r rt) {
		ctx := testCtx(t)
		id := newID("k")
		logPath := t.TempDir() + "/c-json.log"
		cfg := r.config(t, id, newBundle(t, id, []string{"sh", "-c", `read x; echo "got $x"; exit 7`}, nil))
		cfg.Stdin = true
		cfg.Log = shim.LogConfig{Path: logPath}
		b, err := json.Marshal(cfg)
		must(t, err)
		hakod := exec.Command(os.Args[0], "-test.run=^$")
		hakod.Env = append(os.Environ(), hakodEnv+"="+string(b))
		out, err := hakod.StdoutPipe()
		must(t, err)
		must(t, hakod.Start())
		line, _ := bufio.NewReader(out).ReadString('\n')
		if strings.TrimSpace(line) != "ready" {
			_ = hakod.Process.Kill()
			t.Fatalf("fake hakod: %q", line)
		}
		pid := shimPid(t, cfg.StateDir)
		if sid, _ := unix.Getsid(pid); sid != pid {
			t.Errorf("the shim's session is %d, want its own (%d)", sid, pid)
		}
		must(t, hakod.Process.Signal(syscall.SIGKILL))
		_ = hakod.Wait()
		if ppid := parentOf(t, pid); ppid == hakod.Process.Pid {
			t.Errorf("the shim still has the killed hakod (%d) as its parent", ppid)
		}

		c, err := shim.Connect(ctx, cfg.StateDir)
		must(t, err)
		st, err := c.State(ctx)
		must(t, err)
		if st.Status != shim.Running || c.Pid() != st.Pid || st.Pid <= 0 {
			t.Fatalf("after hakod's death: %+v", st)
		}
		var stdout syncBuffer
		s, err := c.Attach(ctx, shim.AttachOptions{Stdin: strings.NewReader("hello\n"), Stdout: &stdout})
		must(t, err)
		exit, err := c.Wait(ctx)
		must(t, err)
		must(t, s.Wait())
		if exit.Code != 7 || stdout.String() != "got hello\n" {
			t.Errorf("exit %+v, output %q", exit, stdout.String())
		}
		if l := readJSONLog(t, logPath); len(l) != 1 || l[0].Log != "got hello\n" {
			t.Errorf("log %+v", l)
		}
		deleteAndCheck(t, r, c, false)
	})
}

func parentOf(t *testing.T, pid int) int {
	t.Helper()
	ppid := ppidOf(pid) // spare_test.go
	if ppid == 0 {
		t.Fatalf("process %d is gone", pid)
	}
	return ppid
}

// TestExitWhileDisconnected: the container exits while no client is
// connected; its exit is recorded, Connect reports it, and after the shim
// itself is killed Connect still reports it and Cleanup removes the rest.
func TestExitWhileDisconnected(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r rt) {
		ctx := testCtx(t)
		c, cfg := startContainer(t, r, []string{"sh", "-c", "sleep 0.3; exit 42"}, nil, nil)
		must(t, c.Start(ctx))
		initPid := c.Pid()
		must(t, c.Close())
		if _, err := c.State(ctx); !errors.Is(err, shim.ErrClosed) {
			t.Errorf("State on a closed client: %v, want ErrClosed", err)
		}
		exitFile := filepath.Join(cfg.StateDir, proto.ExitFile)
		eventually(t, "the exit status file", func() bool { _, err := os.Stat(exitFile); return err == nil })

		c2, err := shim.Connect(ctx, cfg.StateDir)
		must(t, err)
		st, err := c2.State(ctx)
		must(t, err)
		if st.Status != shim.Stopped || st.Exit == nil || st.Exit.Code != 42 || c2.Pid() != initPid {
			t.Errorf("after Connect: %+v (pid %d, want %d)", st, c2.Pid(), initPid)
		}
		if exit, err := c2.Wait(ctx); err != nil || exit.Code != 42 {
			t.Errorf("Wait: %+v %v", exit, err)
		}

		// The shim dies (a reboot, a kill): the record stays.
		pid := shimPid(t, cfg.StateDir)
		must(t, syscall.Kill(pid, syscall.SIGKILL))
		eventually(t, "the shim to die", func() bool { return !alive(pid) })
		_, err = shim.Connect(ctx, cfg.StateDir)
		var gone *shim.GoneError
		if !errors.As(err, &gone) || !errors.Is(err, shim.ErrGone) || gone.Exit == nil || gone.Exit.Code != 42 {
			t.Fatalf("Connect to a dead shim: %v, want a GoneError with code 42", err)
		}
		if _, err := c2.Wait(ctx); !errors.Is(err, shim.ErrGone) {
			t.Errorf("Wait through a client of a dead shim: %v, want ErrGone", err)
		}
		exit, err := shim.Cleanup(ctx, cfg.StateDir)
		must(t, err)
		if exit == nil || exit.Code != 42 {
			t.Errorf("Cleanup returned %+v", exit)
		}
		assertGone(t, r, cfg.ID, cfg.StateDir, initPid)
	})
}

// TestShimKilledWhileRunning: without its shim a running container is
// unsupervised; Connect says so (no exit recorded) and Cleanup kills and
// removes it.
func TestShimKilledWhileRunning(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r rt) {
		ctx := testCtx(t)
		c, cfg := startContainer(t, r, []string{"sleep", "1000"}, nil, nil)
		must(t, c.Start(ctx))
		pid := shimPid(t, cfg.StateDir)
		must(t, syscall.Kill(pid, syscall.SIGKILL))
		eventually(t, "the shim to die", func() bool { return !alive(pid) })
		_, err := shim.Connect(ctx, cfg.StateDir)
		var gone *shim.GoneError
		if !errors.As(err, &gone) || gone.Exit != nil {
			t.Fatalf("Connect: %v, want a GoneError without exit", err)
		}
		if _, err := shim.Cleanup(ctx, cfg.StateDir); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the container to die", func() bool { return !alive(c.Pid()) })
		assertGone(t, r, cfg.ID, cfg.StateDir, c.Pid())
	})
}

// TestCleanupRefusesLiveShim: Cleanup is for shims that are gone.
func TestCleanupRefusesLiveShim(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r rt) {
		c, cfg := startContainer(t, r, []string{"sleep", "1000"}, nil, nil)
		if _, err := shim.Cleanup(testCtx(t), cfg.StateDir); !errors.Is(err, shim.ErrConflict) {
			t.Errorf("Cleanup of a live shim: %v, want ErrConflict", err)
		}
		deleteAndCheck(t, r, c, false)
	})
}

// TestConnectMissing: no shim state at all.
func TestConnectMissing(t *testing.T) {
	needRoot(t)
	ctx := testCtx(t)
	for _, dir := range []string{"/nonexistent/hako-shim", t.TempDir()} {
		if _, err := shim.Connect(ctx, dir); !errors.Is(err, shim.ErrNotFound) {
			t.Errorf("Connect(%s): %v, want ErrNotFound", dir, err)
		}
		if _, err := shim.Cleanup(ctx, dir); !errors.Is(err, shim.ErrNotFound) {
			t.Errorf("Cleanup(%s): %v, want ErrNotFound", dir, err)
		}
	}
}
