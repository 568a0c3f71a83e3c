package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/runtime/nsexec"
	"github.com/hako-project/hako/trace"
)

// Run creates and starts a container. With detach it returns once the
// program runs; otherwise it forwards signals (and the terminal) to it,
// waits for it, deletes the container and returns the program's exit code.
func (r *Runtime) Run(ctx context.Context, o CreateOptions, detach bool) (code int, err error) {
	ctx, span := trace.Start(ctx, "runtime.run", "id", o.ID)
	defer func() { span.End(err) }()
	o.noFifo = true
	var ours *os.File
	if o.ConsoleSocket == "" && !detach {
		// A foreground terminal container: the runtime holds the pty itself.
		var theirs *os.File
		ours, theirs, err = consolePair()
		if err != nil {
			return -1, err
		}
		defer ours.Close()
		defer theirs.Close()
		o.console = theirs
	}
	// Forward signals from the moment the init exists.
	var sigs *signalCatcher
	if !detach {
		sigs = catchSignals()
		defer sigs.release()
	}
	c, proc, err := r.create(ctx, o)
	if err != nil {
		return -1, err
	}
	defer proc.Close()
	var px *ptyProxy
	if ours != nil && c.terminal() {
		master, err := nsexec.RecvFD(ours)
		if err != nil {
			_ = c.Delete(ctx, true)
			return -1, fmt.Errorf("receive the container's terminal: %w", err)
		}
		px = startProxy(master)
	}
	st := c.OCIState()
	st.Status = specs.StateRunning
	b, _ := json.Marshal(st)
	_, sspan := trace.Start(ctx, "runtime.start", "id", o.ID)
	if proc.ExecAtOnce() {
		sspan.SetAttr("exec_at_once", "true") // under way since the init was ready
	}
	err = proc.Release(b)
	sspan.End(err)
	if err != nil {
		_ = c.Delete(ctx, true)
		return -1, fmt.Errorf("start container %q: %w", o.ID, err)
	}
	if hks, _ := c.dir.LoadHooks(); hks != nil && len(hks.Poststart) > 0 {
		proc.WaitExec()
		c.poststart(ctx, hks.Poststart)
	}
	if detach {
		return 0, nil
	}
	code, err = waitForward(proc.Pid, sigs, px)
	if px != nil {
		px.finish()
	}
	if derr := c.Delete(ctx, true); derr != nil && err == nil {
		err = derr
	}
	return code, err
}

func (c *Container) terminal() bool {
	cfg, err := c.Config()
	return err == nil && cfg.Process != nil && cfg.Process.Terminal
}

// waitForward waits for pid, our child, passing on the signals we receive,
// and returns its exit code the way a shell reports it (128+n for signal n).
func waitForward(pid int, sigs *signalCatcher, px *ptyProxy) (int, error) {
	if pid <= 0 {
		return -1, fmt.Errorf("no container process to wait for (pid %d)", pid)
	}
	sigs.all()
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-done:
				return
			case s := <-sigs.C:
				sig, ok := s.(unix.Signal)
				if !ok {
					continue
				}
				switch sig {
				case unix.SIGCHLD, unix.SIGURG, unix.SIGPIPE:
				case unix.SIGWINCH:
					if px != nil {
						px.resize()
					}
				default:
					_ = unix.Kill(pid, sig)
				}
			}
		}
	}()
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return -1, fmt.Errorf("wait for container process %d: %w", pid, err)
		}
		break
	}
	if ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return ws.ExitStatus(), nil
}
