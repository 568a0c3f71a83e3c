package shim_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hako-project/hako/shim"
)

// logEntry is one json-file log line.
type logEntry struct {
	Log    string `json:"log"`
	Stream string `json:"stream"`
	Time   string `json:"time"`
}

func readJSONLog(t *testing.T, path string) []logEntry {
	t.Helper()
	f, err := os.Open(path)
	must(t, err)
	defer f.Close()
	var out []logEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e logEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if _, err := time.Parse(time.RFC3339Nano, e.Time); err != nil {
			t.Errorf("log time %q: %v", e.Time, err)
		}
		out = append(out, e)
	}
	return out
}

// TestRunHoldsOutput: with Config.Run the program runs when Start returns
// (one runtime command), yet a client that attaches afterwards gets all of
// its output, because the shim holds it until Client.Start; the log gets
// it too, and a Run container deleted before Client.Start does not wait
// for the hold to time out.
func TestRunHoldsOutput(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r rt) {
		ctx := testCtx(t)
		logPath := t.TempDir() + "/c-json.log"
		writable := func(s *specs.Spec) { s.Root.Readonly = false }
		c, cfg := startContainer(t, r, []string{"sh", "-c", "echo out; echo err >&2; touch /ran; exit 4"}, writable, func(cfg *shim.Config) {
			cfg.Log = shim.LogConfig{Path: logPath}
			cfg.Run = true
		})
		// The program runs (and soon exits) without Client.Start.
		eventually(t, "the program to run", func() bool {
			_, err := os.Stat(cfg.Bundle + "/rootfs/ran")
			return err == nil
		})
		time.Sleep(100 * time.Millisecond) // its output is written by now
		var stdout, stderr syncBuffer
		stream, err := c.Attach(ctx, shim.AttachOptions{Stdout: &stdout, Stderr: &stderr})
		must(t, err)
		if l := readJSONLog(t, logPath); len(l) != 0 {
			t.Errorf("output logged before Client.Start: %+v", l)
		}
		must(t, c.Start(ctx))
		exit, err := c.Wait(ctx)
		must(t, err)
		must(t, stream.Wait())
		if exit.Code != 4 || stdout.String() != "out\n" || stderr.String() != "err\n" {
			t.Errorf("exit %+v, attached client got stdout %q stderr %q", exit, stdout.String(), stderr.String())
		}
		if l := readJSONLog(t, logPath); len(l) != 2 {
			t.Errorf("log %+v, want both lines", l)
		}
		if err := c.Start(ctx); !errors.Is(err, shim.ErrConflict) {
			t.Errorf("second Start: %v, want ErrConflict", err)
		}
		deleteAndCheck(t, r, c, false)

		c, _ = startContainer(t, r, []string{"sleep", "100"}, nil, func(cfg *shim.Config) { cfg.Run = true })
		begin := time.Now()
		deleteAndCheck(t, r, c, true)
		if d := time.Since(begin); d > 5*time.Second {
			t.Errorf("deleting a held container took %v", d)
		}
	})
}

// TestStartAnswersWithEndedExit: the answer to Start of a Run container
// whose program has ended already carries its exit, and Wait returns it
// without asking the shim, which is stopped (SIGSTOP) to prove it; a
// program still running is waited for as before.
func TestStartAnswersWithEndedExit(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r rt) {
		ctx := testCtx(t)
		writable := func(s *specs.Spec) { s.Root.Readonly = false }
		c, cfg := startContainer(t, r, []string{"sh", "-c", "echo out; touch /ran; exit 3"}, writable, func(cfg *shim.Config) { cfg.Run = true })
		eventually(t, "the program to run", func() bool {
			_, err := os.Stat(cfg.Bundle + "/rootfs/ran")
			return err == nil
		})
		// Reaped: gone from /proc, not a zombie.
		eventually(t, "the init to be reaped", func() bool {
			_, err := os.Stat("/proc/" + strconv.Itoa(c.Pid()))
			return os.IsNotExist(err)
		})
		must(t, c.Start(ctx))
		pid := shimPid(t, cfg.StateDir)
		must(t, syscall.Kill(pid, syscall.SIGSTOP))
		wctx, cancel := contextWithTimeout(ctx, 2*time.Second)
		exit, err := c.Wait(wctx)
		cancel()
		must(t, syscall.Kill(pid, syscall.SIGCONT))
		if err != nil || exit.Code != 3 || exit.ExitedAt.IsZero() {
			t.Errorf("Wait with the shim stopped: %+v, %v; want code 3 from Start's answer", exit, err)
		}
		deleteAndCheck(t, r, c, false)

		c, _ = startContainer(t, r, []string{"sh", "-c", "sleep 0.3; exit 5"}, nil, func(cfg *shim.Config) { cfg.Run = true })
		must(t, c.Start(ctx))
		exit, err = c.Wait(ctx)
		if err != nil || exit.Code != 5 {
			t.Errorf("Wait for a running program: %+v, %v; want code 5", exit, err)
		}
		deleteAndCheck(t, r, c, false)
	})
}

// TestRunHoldTimeout: a Run container whose Client.Start never comes (its
// client died in between) is not blocked for ever: after the hold timeout
// (10 s) its output goes to the log and it runs to its end.
func TestRunHoldTimeout(t *testing.T) {
	needRoot(t)
	r := runtimes(t)[0]
	r.root = t.TempDir()
	ctx := testCtx(t)
	logPath := t.TempDir() + "/c-json.log"
	begin := time.Now()
	c, _ := startContainer(t, r, []string{"sh", "-c", "echo held; exit 6"}, nil, func(cfg *shim.Config) {
		cfg.Log = shim.LogConfig{Path: logPath}
		cfg.Run = true
	})
	time.Sleep(time.Second)
	if l := readJSONLog(t, logPath); len(l) != 0 {
		t.Fatalf("output logged before the hold timed out: %+v", l)
	}
	exit, err := c.Wait(ctx)
	must(t, err)
	if d := time.Since(begin); d < 9*time.Second {
		t.Errorf("the held container ended after %v, before the hold timeout", d)
	}
	if l := readJSONLog(t, logPath); exit.Code != 6 || len(l) != 1 || l[0].Log != "held\n" {
		t.Errorf("exit %+v, log %+v", exit, l)
	}
	deleteAndCheck(t, r, c, false)
}

// TestContainerEnv: the container's program gets the environment of its
// spec (plus HOME), nothing of the runtime's own (the shim gives the
// runtime GOMAXPROCS=1 and a PATH).
func TestContainerEnv(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r rt) {
		ctx := testCtx(t)
		c, _ := startContainer(t, r, []string{"/bin/env"}, func(s *specs.Spec) { s.Process.Env = []string{"ONLY=this"} }, nil)
		var out syncBuffer
		stream, err := c.Attach(ctx, shim.AttachOptions{Stdout: &out, Stderr: &out})
		must(t, err)
		must(t, c.Start(ctx))
		_, err = c.Wait(ctx)
		must(t, err)
		must(t, stream.Wait())
		// HOME is the runtime's to add when the spec has none (runc's
		// behaviour, which hako-runtime follows).
		var got []string
		for _, kv := range strings.Fields(out.String()) {
			if !strings.HasPrefix(kv, "HOME=") {
				got = append(got, kv)
			}
		}
		if len(got) != 1 || got[0] != "ONLY=this" {
			t.Errorf("container environment %q, want ONLY=this (and HOME)", out.String())
		}
		deleteAndCheck(t, r, c, false)
	})
}

// TestLifecycle: create, attach before start, start, output to the
// attached client and the json-file log, exit code, delete.
func TestLifecycle(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r rt) {
		ctx := testCtx(t)
		logPath := t.TempDir() + "/c-json.log"
		c, _ := startContainer(t, r, []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, nil, func(cfg *shim.Config) {
			cfg.Log = shim.LogConfig{Path: logPath}
		})
		st, err := c.State(ctx)
		must(t, err)
		if st.Status != shim.Created || st.Pid != c.Pid() || st.Pid <= 0 {
			t.Fatalf("after Start: state %+v, want created with pid %d", st, c.Pid())
		}
		// What Delete must remove exists now, so assertGone means something.
		for _, p := range []string{r.root + "/" + c.ID(), "/sys/fs/cgroup/memory" + cgroupParent + "/" + c.ID(), c.StateDir() + "/shim.sock"} {
			if _, err := os.Stat(p); err != nil {
				t.Errorf("created container: %v", err)
			}
		}
		if !alive(shimPid(t, c.StateDir())) {
			t.Error("the shim does not run")
		}
		var stdout, stderr syncBuffer
		stream, err := c.Attach(ctx, shim.AttachOptions{Stdout: &stdout, Stderr: &stderr})
		must(t, err)
		must(t, c.Start(ctx))
		exit, err := c.Wait(ctx)
		must(t, err)
		if exit.Code != 3 || exit.Signal != 0 || exit.OOMKilled || exit.Pid != c.Pid() {
			t.Errorf("exit %+v, want code 3 of pid %d", exit, c.Pid())
		}
		if time.Since(exit.ExitedAt) > time.Minute {
			t.Errorf("exit time %v", exit.ExitedAt)
		}
		must(t, stream.Wait())
		if stdout.String() != "out\n" || stderr.String() != "err\n" {
			t.Errorf("attached client got stdout %q stderr %q", stdout.String(), stderr.String())
		}
		got := readJSONLog(t, logPath)
		var outs, errs []string
		for _, e := range got {
			if e.Stream == "stdout" {
				outs = append(outs, e.Log)
			} else {
				errs = append(errs, e.Log)
			}
		}
		if strings.Join(outs, "|") != "out\n" || strings.Join(errs, "|") != "err\n" {
			t.Errorf("log has %+v", got)
		}
		st, err = c.State(ctx)
		must(t, err)
		if st.Status != shim.Stopped || st.Exit == nil || st.Exit.Code != 3 {
			t.Errorf("after exit: state %+v", st)
		}
		// Wait again: the status stays.
		if again, err := c.Wait(ctx); err != nil || again.Code != 3 {
			t.Errorf("second Wait: %+v, %v", again, err)
		}
		if err := c.Start(ctx); !errors.Is(err, shim.ErrConflict) {
			t.Errorf("Start of a stopped container: %v, want ErrConflict", err)
		}
		if del := deleteAndCheck(t, r, c, false); del.Code != 3 {
			t.Errorf("Delete returned %+v", del)
		}
		if _, err := os.Stat(logPath); err != nil {
			t.Errorf("the container log belongs to hakod and must stay: %v", err)
		}
	})
}

// TestExitCodes: 0, a code of its own, and killed by a signal (128+n).
func TestExitCodes(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r rt) {
		ctx := testCtx(t)
		for _, code := range []int{0, 42} {
			c, _ := startContainer(t, r, []string{"sh", "-c", "exit " + itoa(code)}, nil, nil)
			must(t, c.Start(ctx))
			exit, err := c.Wait(ctx)
			must(t, err)
			if exit.Code != code || exit.Signal != 0 {
				t.Errorf("exit %+v, want code %d", exit, code)
			}
			deleteAndCheck(t, r, c, false)
		}
		c, _ := startContainer(t, r, []string{"sleep", "1000"}, nil, nil)
		must(t, c.Start(ctx))
		if err := c.Kill(ctx, syscall.SIGKILL, false); err != nil {
			t.Fatal(err)
		}
		exit, err := c.Wait(ctx)
		must(t, err)
		if exit.Code != 137 || exit.Signal != syscall.SIGKILL {
			t.Errorf("killed: exit %+v, want 137 by SIGKILL", exit)
		}
		if err := c.Kill(ctx, syscall.SIGKILL, false); !errors.Is(err, shim.ErrConflict) {
			t.Errorf("Kill of a stopped container: %v, want ErrConflict", err)
		}
		deleteAndCheck(t, r, c, false)
	})
}

// TestKillAll: --all reaches every process, the init's children too.
func TestKillAll(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r rt) {
		ctx := testCtx(t)
		// The init traps TERM and stays; its child does not.
		c, _ := startContainer(t, r, []string{"sh", "-c", "trap '' TERM; sleep 1000 & wait; sleep 1000"}, nil, nil)
		must(t, c.Start(ctx))
		time.Sleep(200 * time.Millisecond)
		must(t, c.Kill(ctx, syscall.SIGKILL, true))
		exit, err := c.Wait(ctx)
		must(t, err)
		if exit.Signal != syscall.SIGKILL {
			t.Errorf("exit %+v, want SIGKILL", exit)
		}
		deleteAndCheck(t, r, c, false)
	})
}

// TestDeleteRunning: a running container is deleted only with force.
func TestDeleteRunning(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r rt) {
		ctx := testCtx(t)
		c, _ := startContainer(t, r, []string{"sleep", "1000"}, nil, nil)
		must(t, c.Start(ctx))
		if _, err := c.Delete(ctx, false); !errors.Is(err, shim.ErrConflict) {
			t.Fatalf("Delete of a running container without force: %v, want ErrConflict", err)
		}
		if st, err := c.State(ctx); err != nil || st.Status != shim.Running {
			t.Fatalf("after refused Delete: %+v, %v", st, err)
		}
		if exit := deleteAndCheck(t, r, c, true); exit.Code != 137 {
			t.Errorf("forced Delete returned %+v, want 137", exit)
		}
		// The client of a deleted shim says so.
		if _, err := c.State(ctx); !errors.Is(err, shim.ErrGone) {
			t.Errorf("State after Delete: %v, want ErrGone", err)
		}
	})
}

// TestDeleteAnswered: the delete hakod uses returns with the shim's
// answer, when the container and the shim's state are gone, and reports
// the shim process's exit on its channel.
func TestDeleteAnswered(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r rt) {
		ctx := testCtx(t)
		c, _ := startContainer(t, r, []string{"true"}, nil, nil)
		must(t, c.Start(ctx))
		if exit, err := c.Wait(ctx); err != nil || exit.Code != 0 {
			t.Fatalf("Wait: %+v, %v", exit, err)
		}
		pid := shimPid(t, c.StateDir())
		st, exited, err := c.DeleteAnswered(ctx, false)
		if err != nil {
			t.Fatalf("DeleteAnswered: %v", err)
		}
		if st.Code != 0 {
			t.Errorf("exit status %+v, want 0", st)
		}
		if _, err := os.Stat(c.StateDir()); !os.IsNotExist(err) {
			t.Errorf("state directory still there when DeleteAnswered returned: %v", err)
		}
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Fatal("the shim's exit was not reported within 10 s")
		}
		if alive(pid) {
			t.Errorf("shim %d alive after its exit was reported", pid)
		}
		assertGone(t, r, c.ID(), c.StateDir(), pid, c.Pid())
	})
}

// TestDeleteCreated: a container that never started is deleted without
// force, and its waiting init dies.
func TestDeleteCreated(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r rt) {
		c, _ := startContainer(t, r, []string{"sleep", "1000"}, nil, nil)
		deleteAndCheck(t, r, c, false)
	})
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
