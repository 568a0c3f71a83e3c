package shim

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/shim/internal/proto"
)

// Delete removes the container (the runtime's delete) and then the shim:
// once it returns, the shim has exited and its state directory, socket
// and the runtime's state and cgroup are gone. A running or paused
// container is deleted only with force, which kills it first. It returns
// the init's exit status (zero if it never ran and none was recorded).
func (c *Client) Delete(ctx context.Context, force bool) (ExitStatus, error) {
	st, exited, err := c.DeleteAnswered(ctx, force)
	if err != nil {
		return st, err
	}
	select {
	case <-exited:
		return st, nil
	case <-ctx.Done():
		return ExitStatus{}, fmt.Errorf("wait for the shim of %s to exit: %w", c.id, ctx.Err())
	}
}

// DeleteAnswered is Delete that returns once the shim has answered: the
// container, the shim's state directory and socket are gone, and the shim
// process is on its way out, which the returned channel reports by
// closing. What a caller does next seldom needs that last step; hakod's
// exit of a `run --rm` container saves the 1.5-2.5 ms it takes here (a Go
// process's exit, and its parent hearing of it). The channel is closed at
// once when the shim's pid could not be learnt.
func (c *Client) DeleteAnswered(ctx context.Context, force bool) (ExitStatus, <-chan struct{}, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return ExitStatus{}, nil, err
	}
	// The shim on the other end: watched through a pidfd, opened while
	// the connection proves it is alive, so its pid cannot have been
	// reused.
	var pidfd *os.File
	if cred, err := peerCred(conn); err == nil {
		if fd, err := unix.PidfdOpen(int(cred.Pid), unix.PIDFD_NONBLOCK); err == nil {
			pidfd = os.NewFile(uintptr(fd), "shim-pidfd")
		}
	}
	resp, err := c.exchange(ctx, conn, proto.Request{Op: proto.OpDelete, Force: force})
	if err != nil {
		if pidfd != nil {
			pidfd.Close()
		}
		return ExitStatus{}, nil, err
	}
	c.release(conn)
	exited := make(chan struct{})
	if pidfd == nil {
		close(exited)
	} else {
		go func() {
			defer close(exited)
			defer pidfd.Close()
			// The shim exits right after answering; should it hang, the
			// wait ends with a kill, so no caller waits forever.
			wctx, cancel := context.WithTimeout(context.Background(), shimExitTimeout)
			defer cancel()
			if waitExit(wctx, pidfd) != nil {
				_ = unix.PidfdSendSignal(int(pidfd.Fd()), unix.SIGKILL, nil, 0)
				_ = waitExit(context.Background(), pidfd)
			}
		}()
	}
	var st ExitStatus
	if e := exitStatus(resp.Exit); e != nil {
		st = *e
	}
	return st, exited, nil
}

// shimExitTimeout is how long a shim that answered a delete may take to
// exit before it is killed.
const shimExitTimeout = 10 * time.Second

// peerCred returns the credentials of the process at the other end.
func peerCred(conn *net.UnixConn) (*unix.Ucred, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	return cred, cerr
}

// waitExit waits until the process behind a non-blocking pidfd has
// exited, which makes the pidfd readable. The wait parks the goroutine in
// the runtime's poller and holds no thread.
func waitExit(ctx context.Context, pidfd *os.File) error {
	rc, err := pidfd.SyscallConn()
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = pidfd.SetReadDeadline(time.Now()) })
	defer stop()
	var perr error
	err = rc.Read(func(fd uintptr) bool {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
		if err != nil && err != unix.EINTR {
			perr = err
			return true
		}
		return n > 0
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	return perr
}
