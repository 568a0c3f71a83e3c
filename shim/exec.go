package shim

import (
	"context"
	"fmt"
	"io"
	"sync"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hako-project/hako/shim/internal/proto"
)

// ExecConfig is a process to run in the container.
type ExecConfig struct {
	// ID names the exec for Resize, Kill and Wait; unique while it runs.
	ID string
	// Process is the runtime-spec process (args, env, cwd, user,
	// terminal, ...). Process.ConsoleSize sets the terminal's first size.
	Process specs.Process
	// The caller's ends of the process's streams; nil ones get /dev/null.
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Exec is a process started by Client.Exec.
type Exec struct {
	c      *Client
	id     string
	pid    int
	stream *Stream // nil without streams

	mu   sync.Mutex
	exit *ExitStatus
}

// Exec starts a process in the running container and returns once it
// runs, its streams attached (the shim binds them before the process
// starts, so no output is lost). ctx bounds the streams as for Attach. Its
// output is not logged. When cfg.Stdin reaches EOF the process's stdin is
// closed (with a terminal: hung up).
func (c *Client) Exec(ctx context.Context, cfg ExecConfig) (*Exec, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	p := cfg.Process
	req := proto.Request{Op: proto.OpExec, Exec: cfg.ID, Process: &p,
		Stdin: cfg.Stdin != nil, Stdout: cfg.Stdout != nil, Stderr: cfg.Stderr != nil}
	resp, err := c.exchange(ctx, conn, req)
	if err != nil {
		return nil, err
	}
	e := &Exec{c: c, id: cfg.ID, pid: resp.Pid}
	if req.Stdin || req.Stdout || req.Stderr {
		e.stream = newStream(ctx, c, conn, AttachOptions{Stdin: cfg.Stdin, Stdout: cfg.Stdout, Stderr: cfg.Stderr})
	} else {
		c.release(conn)
	}
	return e, nil
}

// ID is the exec's ID.
func (e *Exec) ID() string { return e.id }

// Pid is the process's pid (in the host's pid namespace).
func (e *Exec) Pid() int { return e.pid }

// Stream is the process's attached streams, or nil if none were given.
func (e *Exec) Stream() *Stream { return e.stream }

// Resize sets the process's terminal size.
func (e *Exec) Resize(ctx context.Context, height, width uint16) error {
	_, err := e.c.call(ctx, proto.Request{Op: proto.OpResize, Exec: e.id, Height: height, Width: width})
	return err
}

// Kill signals the process.
func (e *Exec) Kill(ctx context.Context, sig syscall.Signal) error {
	_, err := e.c.call(ctx, proto.Request{Op: proto.OpKill, Exec: e.id, Signal: int(sig)})
	return err
}

// Wait waits until the process has exited and its output has been copied
// to the writers, and returns how it ended. It may be called again.
func (e *Exec) Wait(ctx context.Context) (ExitStatus, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.exit != nil {
		return *e.exit, nil
	}
	if e.stream != nil {
		select {
		case <-e.stream.done:
		case <-ctx.Done():
			return ExitStatus{}, fmt.Errorf("wait for exec %s: %w", e.id, ctx.Err())
		}
	}
	st, err := e.c.wait(ctx, e.id)
	if err != nil {
		return ExitStatus{}, err
	}
	e.exit = &st
	return st, nil
}
