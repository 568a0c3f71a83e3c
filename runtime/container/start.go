package container

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
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

// openFifo reads the init's byte from the exec fifo, which releases the
// init to exec the user's program. The fifo is opened without blocking and
// polled together with the init's pidfd, so an init that dies first is an
// error rather than a hang, and one that runs its program (and exits) at
// once is not mistaken for one that died.
func (c *Container) openFifo() error {
	path := c.dir.Path(state.FifoFile)
	pidfd, err := unix.PidfdOpen(c.State.InitPid, 0)
	if err != nil {
		return fmt.Errorf("container %q: init %d: %w", c.ID(), c.State.InitPid, err)
	}
	defer unix.Close(pidfd)
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	defer unix.Close(fd)
	var b [1]byte
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(pidfd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, -1); err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return fmt.Errorf("wait for container %q to start: %w", c.ID(), err)
		}
		if fds[0].Revents&(unix.POLLIN|unix.POLLHUP) != 0 || fds[1].Revents != 0 {
			n, _ := unix.Read(fd, b[:])
			if n == 1 {
				return os.Remove(path)
			}
			if fds[1].Revents != 0 || fds[0].Revents&unix.POLLHUP != 0 {
				return fmt.Errorf("container %q: init exited before it was started", c.ID())
			}
		}
	}
}

// poststart runs the poststart hooks; the spec makes their failure a warning.
func (c *Container) poststart(ctx context.Context) {
	hks, err := c.dir.LoadHooks()
	if err != nil || hks == nil || len(hks.Poststart) == 0 {
		return
	}
	// The state as of the start, even if the program has already exited.
	st := c.OCIState()
	st.Status, st.Pid = specs.StateRunning, c.State.InitPid
	if err := hooks.RunAll(ctx, "poststart", hks.Poststart, st); err != nil {
		slog.Warn("poststart hook failed", "id", c.ID(), "err", err)
	}
}
