package container

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/runtime/hooks"
	"github.com/hako-project/hako/runtime/state"
	"github.com/hako-project/hako/trace"
)

// Start lets a created container's init exec the user's program, by opening
// the exec fifo the init is blocked on.
func (c *Container) Start(ctx context.Context) (err error) {
	ctx, span := trace.Start(ctx, "runtime.start", "id", c.ID())
	defer func() { span.End(err) }()
	lock, err := c.dir.Lock()
	if err != nil {
		return err
	}
	defer lock.Close()
	switch st := c.Status(); st {
	case Created:
	case Stopped:
		return fmt.Errorf("cannot start container %q: it has stopped", c.ID())
	default:
		return fmt.Errorf("cannot start container %q: it is %s, not created", c.ID(), st)
	}
	if err := c.openFifo(); err != nil {
		return err
	}
	c.poststart(ctx)
	return nil
}

// openFifo reads the init's byte from the exec fifo, giving up if the init
// dies first (an open for reading would otherwise wait forever).
func (c *Container) openFifo() error {
	path := c.dir.Path(state.FifoFile)
	pidfd, err := unix.PidfdOpen(c.State.InitPid, 0)
	if err != nil {
		return fmt.Errorf("container %q: init %d: %w", c.ID(), c.State.InitPid, err)
	}
	defer unix.Close(pidfd)
	done := make(chan error, 1)
	go func() {
		f, err := os.OpenFile(path, os.O_RDONLY, 0)
		if err != nil {
			done <- fmt.Errorf("open exec fifo: %w", err)
			return
		}
		defer f.Close()
		var b [1]byte
		n, err := f.Read(b[:])
		if n != 1 {
			done <- fmt.Errorf("container %q: init exited before it could start: %v", c.ID(), err)
			return
		}
		done <- nil
	}()
	exited := make(chan struct{})
	go func() {
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(fds, -1); err == nil || !errors.Is(err, unix.EINTR) {
				close(exited)
				return
			}
		}
	}()
	select {
	case err := <-done:
		if err != nil {
			return err
		}
	case <-exited:
		return fmt.Errorf("container %q: init exited before it was started", c.ID())
	}
	return os.Remove(path)
}

// poststart runs the poststart hooks; the spec makes their failure a warning.
func (c *Container) poststart(ctx context.Context) {
	cfg, err := c.Config()
	if err != nil || cfg.Hooks == nil || len(cfg.Hooks.Poststart) == 0 {
		return
	}
	if err := hooks.Run(ctx, "poststart", cfg.Hooks.Poststart, c.OCIState()); err != nil {
		slog.Warn("poststart hook failed", "id", c.ID(), "err", err)
	}
}
