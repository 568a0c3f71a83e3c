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
	hks, _ := c.dir.LoadHooks()
	post := hks != nil && len(hks.Poststart) > 0
	if err := c.openFifo(post); err != nil {
		return err
	}
	if post {
		c.poststart(ctx, hks.Poststart)
	}
	return nil
}

// openFifo reads the init's byte from the exec fifo, which releases the
// init to exec the user's program. The fifo is opened without blocking and
// polled together with the init's pidfd, so an init that dies first is an
// error rather than a hang, and one that runs its program (and exits) at
// once is not mistaken for one that died. With waitExec it then waits until
// the init has executed the user's program: its write end of the fifo is
// close-on-exec, so the fifo reads end-of-file then.
func (c *Container) openFifo(waitExec bool) error {
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
				err := os.Remove(path)
				if waitExec {
					waitEOF(fd)
				}
				return err
			}
			if fds[1].Revents != 0 || fds[0].Revents&unix.POLLHUP != 0 {
				return fmt.Errorf("container %q: init exited before it was started", c.ID())
			}
		}
	}
}

// waitEOF blocks until the non-blocking fd reads end-of-file (or fails).
func waitEOF(fd int) {
	var b [64]byte
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, -1); err != nil && !errors.Is(err, unix.EINTR) {
			return
		}
		n, err := unix.Read(fd, b[:])
		if n == 0 || err != nil && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
			return
		}
	}
}

// poststart runs the poststart hooks, once the user's program has started;
// the spec makes their failure a warning.
func (c *Container) poststart(ctx context.Context, post []specs.Hook) {
	if len(post) == 0 {
		return
	}
	// The state as of the start, even if the program has already exited.
	st := c.OCIState()
	st.Status, st.Pid = specs.StateRunning, c.State.InitPid
	if err := hooks.RunAll(ctx, "poststart", post, st); err != nil {
		slog.Warn("poststart hook failed", "id", c.ID(), "err", err)
	}
}
