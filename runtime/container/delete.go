package container

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/runtime/hooks"
	"github.com/hako-project/hako/runtime/rootfs"
	"github.com/hako-project/hako/trace"
)

// Delete removes every trace of a stopped container: its processes, cgroup
// and state. A created container is deleted too (its init never ran the
// user's program); a running one only with force.
func (c *Container) Delete(ctx context.Context, force bool) (err error) {
	ctx, span := trace.Start(ctx, "runtime.delete", "id", c.ID())
	defer func() { span.End(err) }()
	lock, err := c.dir.Lock()
	if err != nil {
		return err
	}
	defer lock.Close()
	st := c.Status()
	switch st {
	case Stopped:
	case Created:
		if err := c.killAll(); err != nil {
			return err
		}
	case Creating:
		if !force {
			return fmt.Errorf("container %q is still being created; use --force to remove what there is", c.ID())
		}
	default:
		if !force {
			return fmt.Errorf("cannot delete container %q: it is %s (stop it first, or use --force)", c.ID(), st)
		}
		if err := c.killAll(); err != nil {
			return err
		}
	}
	if cg, err := c.cgroup(); err == nil && cg != nil {
		_, cspan := trace.Start(ctx, "runtime.cgroups.destroy")
		err = destroyCgroup(cg)
		cspan.End(err)
		if err != nil {
			return fmt.Errorf("delete %q: %w", c.ID(), err)
		}
	}
	if c.State.HostMounts && c.State.Rootfs != "" {
		if err := rootfs.Unmount(c.State.Rootfs); err != nil {
			return fmt.Errorf("delete %q: %w", c.ID(), err)
		}
	}
	if hks, err := c.dir.LoadHooks(); err == nil && hks != nil && len(hks.Poststop) > 0 {
		if err := hooks.RunAll(ctx, "poststop", hks.Poststop, c.stoppedState()); err != nil {
			slog.Warn("poststop hook failed", "id", c.ID(), "err", err)
		}
	}
	return c.dir.Remove()
}

// killAll kills every process of the container and waits until the init is
// gone (a frozen cgroup is thawed so the kill can land). The wait blocks on
// the init's pidfd, which becomes readable when it exits, instead of polling
// its /proc entry.
func (c *Container) killAll() error {
	if cg, err := c.cgroup(); err == nil && cg != nil {
		_ = cg.Kill(unix.SIGKILL)
		_ = cg.Thaw()
	}
	if !c.State.Alive() {
		return nil
	}
	fd, err := unix.PidfdOpen(c.State.InitPid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil
		}
		return fmt.Errorf("container %q: init %d: %w", c.ID(), c.State.InitPid, err)
	}
	defer unix.Close(fd)
	// The pidfd was opened after the pid was checked by start time: it
	// refers to our init unless that died in between, which the check
	// below sees.
	if !c.State.Alive() {
		return nil
	}
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("signal init of %q: %w", c.ID(), err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("container %q: init %d did not die after SIGKILL", c.ID(), c.State.InitPid)
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(left/time.Millisecond)+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("wait for init of %q: %w", c.ID(), err)
		}
		if n > 0 {
			return nil
		}
	}
}
