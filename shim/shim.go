// Package shim is hakod's side of hako-shim, the per-container monitor:
// Start spawns a shim that creates the container through an OCI runtime,
// Connect re-adopts a shim that outlived a hakod restart, and the Client
// drives the container (start, attach, exec, signals, wait, pause, update,
// stats, logs, delete) over the shim's unix socket.
//
// The shim is a process of its own per container, detached from hakod, so
// containers keep running, their output keeps being logged and their exit
// is still recorded while hakod is stopped or restarted. What the shim
// does is package shim/monitor's; the wire format is shim/internal/proto.
//
// Every call opens its own connection, so a Client is safe for concurrent
// use and holds no connection while idle; every call honours its context.
package shim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/runtime/cgroups"
	"github.com/hako-project/hako/shim/internal/proto"
	"github.com/hako-project/hako/trace"
)

// Config describes a container for Start.
type Config struct {
	// ID is the container's ID, as the runtime knows it.
	ID string
	// Bundle is the OCI bundle directory (absolute).
	Bundle string
	// StateDir is the shim's own directory, e.g. /run/hako/shims/<id>;
	// Start creates it and Delete removes it.
	StateDir string
	// Runtime is the OCI runtime: a name looked up in $PATH or a path;
	// "" means hako-runtime. It needs runc's command line.
	Runtime string
	// RuntimeRoot is the runtime's --root ("" for its default).
	RuntimeRoot string
	// RuntimeArgs are extra global arguments for the runtime.
	RuntimeArgs []string
	// Terminal must match the bundle's process.terminal: the container
	// gets a pty whose master the shim holds.
	Terminal bool
	// Stdin gives the container a stdin that attached clients write to.
	Stdin bool
	// StdinOnce closes the container's stdin when the first attached
	// client's stdin ends (docker's StdinOnce). Like docker, it has no
	// effect with a terminal: the terminal stays up when clients leave.
	StdinOnce bool
	// Log is where the container's output is logged; an empty Path logs
	// nothing.
	Log LogConfig
	// Traceparent and TraceFile put the shim's and the runtime's spans
	// into the caller's trace (package trace). TraceFile is also where the
	// spans of later operations go.
	Traceparent string
	TraceFile   string
	// Env is the runtime's environment (a PATH is added if missing).
	Env []string
	// Binary is the hako-shim executable; "" looks next to the running
	// executable, then in $PATH.
	Binary string
	// Run creates and starts the container with one runtime command
	// (`run --detach`, which runc, crun and hako-runtime share) instead of
	// `create` then `start`: one runtime process start less, which is
	// most of what starting a container costs once the shim runs. The
	// program runs when Start returns; its output waits in the pipe (or
	// the pty) until Client.Start, or holdTimeout at most, so that clients
	// attached in between get it from the first byte, as with create then
	// start. Use it only when nothing must happen between the two (hakod
	// sets up a bridge network in that gap).
	Run bool
	// Spares, if set, gives Start a shim started ahead of need, and
	// starts the next one after it (see Spares).
	Spares *Spares
}

// LogConfig says how the container's output is logged.
type LogConfig struct {
	Path string
	// Format is "json-file" (docker's, the default) or "cri" (kubelet's).
	Format string
	// MaxSize and MaxFiles rotate json-file logs as docker's max-size and
	// max-file do; 0 never rotates.
	MaxSize  int64
	MaxFiles int
	// Attrs go into every json-file entry ("attrs"), as docker's --log-opt
	// labels, env and tag put them.
	Attrs map[string]string
}

// ExitStatus is how a process ended.
type ExitStatus struct {
	Pid int
	// Code is the exit code, or 128 plus the signal that killed it (as a
	// shell and docker report it).
	Code int
	// Signal is the signal that killed it, or 0.
	Signal   syscall.Signal
	ExitedAt time.Time
	// OOMKilled: the kernel's OOM killer killed a process of the
	// container (reported for the init only).
	OOMKilled bool
}

// Status is a container's status.
type Status string

// Statuses, as the OCI runtime names them.
const (
	Created Status = "created"
	Running Status = "running"
	Paused  Status = "paused"
	Stopped Status = "stopped"
)

// State is the container as the shim sees it.
type State struct {
	Pid    int
	Status Status
	// Exit is set once the init has exited.
	Exit *ExitStatus
}

// Errors a call's error can be tested for with errors.Is. hakod maps them
// to HTTP and gRPC codes.
// The first three are errdefs' classes, so hakod's edge maps them like
// any other package's.
var (
	// ErrNotFound: no such exec, or no shim state in the directory.
	ErrNotFound = errdefs.ErrNotFound
	// ErrConflict: the container is in the wrong state for the call, or
	// a state directory or exec ID is taken.
	ErrConflict = errdefs.ErrConflict
	// ErrInvalid: a bad argument or configuration.
	ErrInvalid = errdefs.ErrInvalid
	// ErrRuntime: the OCI runtime failed; the message is its own.
	ErrRuntime = errors.New("OCI runtime error")
	// ErrGone: the shim is not running (see GoneError).
	ErrGone = errors.New("shim is not running")
	// ErrDetach, returned by an attach's stdin, detaches the client without
	// ending the container's stdin (docker's detach keys).
	ErrDetach = errors.New("detached")
	// ErrClosed: the Client was closed.
	ErrClosed = errors.New("shim client is closed")
)

// Error is an error the shim answered with.
type Error struct {
	Op   string // the operation, e.g. "start"
	Code string // proto's error class
	Msg  string // the shim's message, which names the container
}

func (e *Error) Error() string { return e.Msg }

// Is makes errors.Is(err, ErrConflict) and the like work.
func (e *Error) Is(target error) bool {
	switch e.Code {
	case proto.CodeNotFound:
		return target == ErrNotFound
	case proto.CodeConflict:
		return target == ErrConflict
	case proto.CodeInvalid:
		return target == ErrInvalid
	case proto.CodeRuntime:
		return target == ErrRuntime
	}
	return false
}

// GoneError says that the shim of a state directory is not running (the
// machine rebooted, or it was killed), and what its container's exit
// status file says, if anything.
type GoneError struct {
	StateDir string
	// Exit is the recorded exit of the container's init, or nil if the
	// shim died before the container exited (the container may then still
	// run, unsupervised: Cleanup kills and removes it).
	Exit *ExitStatus
	Err  error
}

func (e *GoneError) Error() string {
	s := fmt.Sprintf("shim in %s is not running", e.StateDir)
	if e.Exit != nil {
		s += fmt.Sprintf(" (its container exited with code %d at %s)", e.Exit.Code, e.Exit.ExitedAt.Format(time.RFC3339))
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is makes errors.Is(err, ErrGone) work.
func (e *GoneError) Is(target error) bool { return target == ErrGone }

func (e *GoneError) Unwrap() error { return e.Err }

// Client drives one shim.
type Client struct {
	id       string
	stateDir string
	sock     string
	pid      int

	mu     sync.Mutex
	conns  map[*net.UnixConn]struct{}
	closed bool
	// ended is the init's exit when the answer to Start brought it (the
	// program had ended already); Wait returns it without asking.
	ended *ExitStatus
}

func newClient(id, stateDir string, pid int) *Client {
	return &Client{id: id, stateDir: stateDir, sock: filepath.Join(stateDir, proto.SocketFile), pid: pid,
		conns: map[*net.UnixConn]struct{}{}}
}

// ID is the container's ID.
func (c *Client) ID() string { return c.id }

// Pid is the container init's pid (in the host's pid namespace).
func (c *Client) Pid() int { return c.pid }

// StateDir is the shim's state directory.
func (c *Client) StateDir() string { return c.stateDir }

// Close closes the connections of calls in progress (their streams end,
// waits return ErrClosed) and makes later calls fail. The shim and the
// container are not affected.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	conns := c.conns
	c.conns = map[*net.UnixConn]struct{}{}
	c.mu.Unlock()
	for conn := range conns {
		conn.Close()
	}
	return nil
}

type traceFileKey struct{}

// WithTraceFile makes calls with ctx send their spans to file instead of
// the Config's TraceFile. The trace and parent span come from ctx.
func WithTraceFile(ctx context.Context, file string) context.Context {
	return context.WithValue(ctx, traceFileKey{}, file)
}

// dial connects to the shim.
func (c *Client) dial(ctx context.Context) (*net.UnixConn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	conn, err := proto.Dial(ctx, c.sock)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, goneError(c.stateDir, err)
		}
		return nil, fmt.Errorf("connect to shim of %s: %w", c.id, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		conn.Close()
		return nil, ErrClosed
	}
	c.conns[conn] = struct{}{}
	return conn, nil
}

// release closes a connection and forgets it.
func (c *Client) release(conn *net.UnixConn) {
	c.mu.Lock()
	delete(c.conns, conn)
	c.mu.Unlock()
	conn.Close()
}

// exchange sends req on conn and reads the response, giving up when ctx
// ends. On error conn is released.
func (c *Client) exchange(ctx context.Context, conn *net.UnixConn, req proto.Request) (*proto.Response, error) {
	if sp := trace.FromContext(ctx); sp != nil {
		req.Traceparent = sp.Traceparent()
		req.TraceFile, _ = ctx.Value(traceFileKey{}).(string)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	err := proto.WriteMsg(conn, &req)
	var resp proto.Response
	if err == nil {
		err = proto.ReadMsg(conn, &resp)
	}
	if !stop() {
		c.release(conn)
		return nil, fmt.Errorf("shim of %s: %s: %w", c.id, req.Op, ctx.Err())
	}
	if err != nil {
		c.release(conn)
		if c.isClosed() {
			return nil, ErrClosed
		}
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
			return nil, goneError(c.stateDir, fmt.Errorf("%s: %w", req.Op, err))
		}
		return nil, fmt.Errorf("shim of %s: %s: %w", c.id, req.Op, err)
	}
	if resp.Error != "" {
		c.release(conn)
		return nil, &Error{Op: req.Op, Code: resp.Code, Msg: resp.Error}
	}
	return &resp, nil
}

func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// call runs one operation that answers once.
func (c *Client) call(ctx context.Context, req proto.Request) (*proto.Response, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := c.exchange(ctx, conn, req)
	if err == nil {
		c.release(conn)
	}
	return resp, err
}

// State reports the container's status and init pid.
func (c *Client) State(ctx context.Context) (State, error) {
	resp, err := c.call(ctx, proto.Request{Op: proto.OpState})
	if err != nil {
		return State{}, err
	}
	return State{Pid: resp.Pid, Status: Status(resp.Status), Exit: exitStatus(resp.Exit)}, nil
}

// Start starts the container's program (the runtime's start). When the
// program has ended by then (with Config.Run it runs before Start, its
// output held), the shim's answer carries its exit and Wait returns it at
// once.
func (c *Client) Start(ctx context.Context) error {
	resp, err := c.call(ctx, proto.Request{Op: proto.OpStart})
	if err == nil && resp.Exit != nil {
		c.mu.Lock()
		c.ended = exitStatus(resp.Exit)
		c.mu.Unlock()
	}
	return err
}

// Resize sets the container's terminal size.
func (c *Client) Resize(ctx context.Context, height, width uint16) error {
	_, err := c.call(ctx, proto.Request{Op: proto.OpResize, Height: height, Width: width})
	return err
}

// Kill sends sig to the container's init, or with all to all its
// processes.
func (c *Client) Kill(ctx context.Context, sig syscall.Signal, all bool) error {
	_, err := c.call(ctx, proto.Request{Op: proto.OpKill, Signal: int(sig), All: all})
	return err
}

// Wait blocks until the container's init has exited (and its output has
// been copied) and returns how it ended. It returns at once for a
// container that has exited already.
func (c *Client) Wait(ctx context.Context) (ExitStatus, error) {
	c.mu.Lock()
	ended, closed := c.ended, c.closed
	c.mu.Unlock()
	if ended != nil && !closed {
		return *ended, nil
	}
	return c.wait(ctx, "")
}

func (c *Client) wait(ctx context.Context, exec string) (ExitStatus, error) {
	resp, err := c.call(ctx, proto.Request{Op: proto.OpWait, Exec: exec})
	if err != nil {
		return ExitStatus{}, err
	}
	if resp.Exit == nil {
		return ExitStatus{}, fmt.Errorf("shim of %s: wait: answer without an exit status", c.id)
	}
	return *exitStatus(resp.Exit), nil
}

// Pause freezes the container.
func (c *Client) Pause(ctx context.Context) error {
	_, err := c.call(ctx, proto.Request{Op: proto.OpPause})
	return err
}

// Resume thaws a paused container.
func (c *Client) Resume(ctx context.Context) error {
	_, err := c.call(ctx, proto.Request{Op: proto.OpResume})
	return err
}

// Update changes the container's resources (the runtime's
// `update --resources`).
func (c *Client) Update(ctx context.Context, r *specs.LinuxResources) error {
	if r == nil {
		return fmt.Errorf("%w: update of %s: no resources", ErrInvalid, c.id)
	}
	_, err := c.call(ctx, proto.Request{Op: proto.OpUpdate, Resources: r})
	return err
}

// Stats reads the container's cgroup statistics, in the shape of the
// "data" of runc's `events --stats`.
func (c *Client) Stats(ctx context.Context) (*cgroups.Stats, error) {
	resp, err := c.call(ctx, proto.Request{Op: proto.OpStats})
	if err != nil {
		return nil, err
	}
	if resp.Stats == nil {
		return nil, fmt.Errorf("shim of %s: stats: empty answer", c.id)
	}
	return resp.Stats, nil
}

// ReopenLog reopens the container's log file after the caller renamed it
// (kubelet's ReopenContainerLog).
func (c *Client) ReopenLog(ctx context.Context) error {
	_, err := c.call(ctx, proto.Request{Op: proto.OpReopenLog})
	return err
}

func exitStatus(e *proto.Exit) *ExitStatus {
	if e == nil {
		return nil
	}
	return &ExitStatus{Pid: e.Pid, Code: e.Code, Signal: syscall.Signal(e.Signal), ExitedAt: e.At, OOMKilled: e.OOMKilled}
}

// readExit reads a state directory's exit status file, if there is one.
func readExit(stateDir string) *ExitStatus {
	b, err := os.ReadFile(filepath.Join(stateDir, proto.ExitFile))
	if err != nil {
		return nil
	}
	var e proto.Exit
	if json.Unmarshal(b, &e) != nil {
		return nil
	}
	return exitStatus(&e)
}

func goneError(stateDir string, err error) error {
	return &GoneError{StateDir: stateDir, Exit: readExit(stateDir), Err: err}
}
