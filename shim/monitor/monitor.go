// Package monitor is hako-shim's work: it watches over one container for
// hakod, as containerd-shim-runc-v2 and conmon do. It creates the container
// through the OCI runtime, holds the container's stdio (pipes or the pty
// master), writes its log, copies its output to attached clients and their
// input to it, reaps its processes as their subreaper, records the exit
// status in the state directory, and serves the operations of the shim
// protocol (shim/internal/proto) on a unix socket until Delete.
//
// It lives in a process of its own, detached from hakod, so the container
// keeps running and its exit is still recorded while hakod is down. One
// monitor runs per container, so it keeps its idle footprint small: no
// buffers are held while streams are quiet, few goroutines, no HTTP or RPC
// framework. Starting the monitor process is the client's job (package
// shim); the OCI command line is package shim/runtime's.
package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/hako-project/hako/runtime/cgroups"
	"github.com/hako-project/hako/shim/internal/proto"
	"github.com/hako-project/hako/shim/logs"
	"github.com/hako-project/hako/shim/reaper"
	"github.com/hako-project/hako/shim/runtime"
	"github.com/hako-project/hako/trace"
)

// Container statuses, as the OCI runtime names them.
const (
	StatusCreated = "created"
	StatusRunning = "running"
	StatusPaused  = "paused"
	StatusStopped = "stopped"
)

// Timeouts for waits that must not hang the shim.
const (
	// drainTimeout bounds how long an exit waits for the process's output
	// to reach EOF: a process that left a child holding its pipes (no pid
	// namespace) must not hold the exit back forever.
	drainTimeout = 2 * time.Second
	// killTimeout bounds waiting for the init to die after SIGKILL.
	killTimeout = 10 * time.Second
	// startExitWait bounds how long the answer to a start waits for the
	// output of an init that has already ended to drain, so that the
	// answer can carry its exit (see dispatch).
	startExitWait = 50 * time.Millisecond
	// requestTimeout bounds reading a request from a new connection.
	requestTimeout = 30 * time.Second
	// runtimeTimeout bounds one runtime command (hooks included); one that
	// hangs is killed.
	runtimeTimeout = 2 * time.Minute
	// maxFinishedExecs bounds the exit statuses kept for execs nobody has
	// waited for yet (health checks exec forever).
	maxFinishedExecs = 64
)

// Monitor watches one container.
type Monitor struct {
	dir    string
	cfg    proto.Config
	log    *slog.Logger
	reaper *reaper.Reaper
	rt     *runtime.Runtime
	ln     *net.UnixListener
	bufs   *sync.Pool // read buffers, lent only while data flows
	// ownPidNS: the container has a pid namespace of its own, so all its
	// processes die with its init; otherwise the exit of the init kills
	// the rest, as containerd does.
	ownPidNS bool
	ctlog    *logs.Log // the container's log; nil without one
	seq      int       // names of per-operation files

	// cgroupPath is the container's cgroup, found at create; its manager
	// is made at first use (see cgroup).
	cgroupPath string
	cgroupOnce sync.Once
	cgroupMgr  cgroups.Manager

	// opMu serializes the operations that change the container's status.
	opMu sync.Mutex
	// runStarted: start has let the output of a Config.Run container go
	// (under opMu).
	runStarted bool

	mu       sync.Mutex
	status   string
	init     *process
	execs    map[string]*process
	finished []string // IDs of finished execs, oldest first
	deleted  bool
	quit     chan struct{} // closed once Delete is done
}

// Run is a shim's whole life: it creates the container described by the
// Config in stateDir, tells the client on report how that went, and serves
// until the container is deleted. report is the client's end of a socket
// pair; the client acknowledges a successful report with one byte, and a
// client that goes away before that (hakod killed while starting the
// container) makes the shim remove the container again.
func Run(stateDir string, report *os.File) error {
	return run(stateDir, report, nil, nil)
}

// run is Run with the reaper made already and a standby runtime (a
// spare's), or nil.
func run(stateDir string, report *os.File, r *reaper.Reaper, sb *runtime.Standby) error {
	m := &Monitor{dir: stateDir, execs: map[string]*process{}, quit: make(chan struct{}), reaper: r,
		bufs: &sync.Pool{New: func() any { b := make([]byte, proto.MaxFrame); return &b }}}
	err := m.setup()
	if sb != nil {
		if m.rt != nil {
			m.rt.UseStandby(sb)
		} else {
			sb.Close()
		}
	}
	if err == nil {
		err = m.create()
	}
	if err != nil {
		m.teardown()
		rep := proto.Report{ShimPid: os.Getpid(), Error: err.Error(), Code: codeOf(err)}
		_ = proto.WriteMsg(report, rep)
		return err
	}
	if err := proto.WriteMsg(report, proto.Report{ShimPid: os.Getpid(), Pid: m.init.pid}); err != nil {
		m.abort("report to the client", err)
		return err
	}
	var ack [1]byte
	if _, err := report.Read(ack[:]); err != nil {
		m.abort("wait for the client's acknowledgement", err)
		return err
	}
	report.Close()
	m.log.Info("container created", "pid", m.init.pid)
	// No collection here (this used to call debug.FreeOSMemory): creating
	// allocates a few hundred KiB, well below the first GC goal, while a
	// process's first GC cycle maps and touches about 300 KiB of runtime
	// metadata for good, more than it frees. A shim that never collects is
	// never force-collected either (the 2-minute GC runs only after a first
	// one), so an idle shim keeps just what creating touched.
	m.serve()
	return nil
}

// setup reads the configuration and prepares what the monitor needs
// before it creates the container: its log, reaper and socket.
func (m *Monitor) setup() error {
	b, err := os.ReadFile(filepath.Join(m.dir, proto.ConfigFile))
	if err != nil {
		return fmt.Errorf("read shim config: %w", err)
	}
	if err := json.Unmarshal(b, &m.cfg); err != nil {
		return fmt.Errorf("parse shim config %s: %w", filepath.Join(m.dir, proto.ConfigFile), err)
	}
	lf, err := os.OpenFile(filepath.Join(m.dir, proto.LogFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open shim log: %w", err)
	}
	m.log = slog.New(slog.NewTextHandler(lf, nil)).With("id", m.cfg.ID)
	if m.reaper == nil {
		if m.reaper, err = reaper.New(); err != nil {
			return err
		}
	}
	m.rt = &runtime.Runtime{Path: m.cfg.Runtime, Root: m.cfg.RuntimeRoot, Args: m.cfg.RuntimeArgs,
		Env: runtime.Env(m.cfg.Env), ID: m.cfg.ID, Dir: m.dir, Spawn: m.reaper.Start, Timeout: runtimeTimeout}
	if err := os.WriteFile(filepath.Join(m.dir, proto.PidFile), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return fmt.Errorf("write shim pid: %w", err)
	}
	sock := filepath.Join(m.dir, proto.SocketFile)
	if m.ln, err = proto.Listen(sock); err != nil {
		return err
	}
	return nil
}

// serve answers connections until Delete closes the listener.
func (m *Monitor) serve() {
	for {
		conn, err := m.ln.AcceptUnix()
		if err != nil {
			m.mu.Lock()
			deleted := m.deleted
			m.mu.Unlock()
			if deleted {
				// Delete closed the listener; it ends serve once it has
				// answered.
				<-m.quit
				return
			}
			m.log.Error("accept", "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		go m.handle(conn)
	}
}

// handle reads one request and runs it. Operations that stream or block
// keep the connection; the others answer and close it.
func (m *Monitor) handle(conn *net.UnixConn) {
	defer conn.Close()
	var req proto.Request
	_ = conn.SetReadDeadline(time.Now().Add(requestTimeout))
	if err := proto.ReadMsg(conn, &req); err != nil {
		m.log.Debug("read request", "err", err)
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	ctx, finish := m.traceRequest(req)
	resp, err := m.dispatch(ctx, conn, &req)
	finish(err)
	if resp == nil && err == nil {
		return // the operation answered and used the connection itself
	}
	if err != nil {
		resp = &proto.Response{Error: err.Error(), Code: codeOf(err)}
	}
	_ = conn.SetWriteDeadline(time.Now().Add(requestTimeout))
	if werr := proto.WriteMsg(conn, resp); werr != nil {
		m.log.Debug("write response", "op", req.Op, "err", werr)
	}
	if req.Op == proto.OpDelete && err == nil {
		m.exit()
	}
}

// dispatch runs an operation. A nil response with a nil error means the
// operation has answered on conn itself.
func (m *Monitor) dispatch(ctx context.Context, conn *net.UnixConn, req *proto.Request) (*proto.Response, error) {
	switch req.Op {
	case proto.OpState:
		return m.state(), nil
	case proto.OpStart:
		if err := m.start(ctx); err != nil {
			return &proto.Response{}, err
		}
		// A program that has ended already (`run --rm IMG true`: with
		// Config.Run it ran before the start, its output held) is
		// answered with its exit, which the client then has without
		// a wait request of its own: one round trip less before hakod
		// removes the container.
		return &proto.Response{Exit: m.init.endedExit(startExitWait)}, nil
	case proto.OpAttach:
		return nil, m.attach(conn, req)
	case proto.OpResize:
		return &proto.Response{}, m.resize(req)
	case proto.OpKill:
		return &proto.Response{}, m.kill(ctx, req)
	case proto.OpWait:
		return nil, m.wait(conn, req)
	case proto.OpPause:
		return &proto.Response{}, m.pause(ctx)
	case proto.OpResume:
		return &proto.Response{}, m.resume(ctx)
	case proto.OpUpdate:
		return &proto.Response{}, m.update(ctx, req)
	case proto.OpStats:
		return m.stats()
	case proto.OpExec:
		return nil, m.exec(ctx, conn, req)
	case proto.OpReopenLog:
		return &proto.Response{}, m.reopenLog()
	case proto.OpDelete:
		return m.delete(ctx, req)
	}
	return nil, invalidf("unknown operation %q", req.Op)
}

// traceRequest puts the operation in the caller's trace, if it sent one.
func (m *Monitor) traceRequest(req proto.Request) (context.Context, func(error)) {
	ctx := context.Background()
	file := req.TraceFile
	if file == "" {
		file = m.cfg.TraceFile
	}
	if req.Traceparent == "" || file == "" {
		return ctx, func(error) {}
	}
	return m.startTrace(ctx, req.Traceparent, file, "shim.monitor."+req.Op)
}

// startTrace starts a span in the trace named by traceparent, written to
// file, and returns the context and a function that ends it.
func (m *Monitor) startTrace(ctx context.Context, traceparent, file, name string) (context.Context, func(error)) {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		m.log.Warn("open trace file", "file", file, "err", err)
		return ctx, func(error) {}
	}
	t, err := trace.New(traceparent, f)
	if err != nil {
		f.Close()
		m.log.Warn("trace", "err", err)
		return ctx, func(error) {}
	}
	ctx, span := trace.Start(trace.WithTracer(ctx, t), name, "id", m.cfg.ID)
	return runtime.WithTraceFile(ctx, file), func(err error) {
		span.End(err)
		f.Close()
	}
}

// setStatus changes the container's status.
func (m *Monitor) setStatus(s string) {
	m.mu.Lock()
	m.status = s
	m.mu.Unlock()
}

func (m *Monitor) getStatus() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.status
}

// nextFile returns a fresh path in the state directory. Names are short:
// sockets among them must fit a sockaddr_un.
func (m *Monitor) nextFile(prefix, suffix string) string {
	m.mu.Lock()
	m.seq++
	n := m.seq
	m.mu.Unlock()
	return filepath.Join(m.dir, prefix+strconv.Itoa(n)+suffix)
}

// abort removes a container whose client went away before adopting it.
func (m *Monitor) abort(what string, err error) {
	m.log.Error("client gone before adopting the container: removing it", "step", what, "err", err)
	ctx := context.Background()
	_ = m.rt.Delete(ctx, true)
	m.waitInit(killTimeout)
	m.teardown()
}

// teardown releases everything and removes the state directory.
func (m *Monitor) teardown() {
	if m.ln != nil {
		m.ln.Close()
	}
	m.mu.Lock()
	procs := make([]*process, 0, len(m.execs)+1)
	if m.init != nil {
		procs = append(procs, m.init)
	}
	for _, p := range m.execs {
		if p != nil { // nil: an exec still starting
			procs = append(procs, p)
		}
	}
	m.mu.Unlock()
	for _, p := range procs {
		if p.io != nil {
			p.io.close()
		}
	}
	if m.ctlog != nil {
		if err := m.ctlog.Close(); err != nil && m.log != nil {
			m.log.Warn("close container log", "err", err)
		}
	}
	if err := os.RemoveAll(m.dir); err != nil && m.log != nil {
		m.log.Error("remove state directory", "err", err)
	}
}

// exit ends serve after Delete has answered.
func (m *Monitor) exit() {
	close(m.quit)
	m.ln.Close()
	os.Remove(filepath.Join(m.dir, proto.SocketFile))
}

// waitInit waits up to d for the init's exit to be recorded.
func (m *Monitor) waitInit(d time.Duration) *proto.Exit {
	if m.init == nil {
		return nil
	}
	select {
	case <-m.init.done:
		return m.init.exitStatus()
	case <-time.After(d):
		return nil
	}
}

// writeExitFile records the init's exit, atomically, where Connect finds
// it even after the shim is gone.
func (m *Monitor) writeExitFile(e proto.Exit) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	tmp := filepath.Join(m.dir, proto.ExitFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write exit status: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(m.dir, proto.ExitFile)); err != nil {
		return fmt.Errorf("write exit status: %w", err)
	}
	return nil
}

// opError is an error with a protocol error class.
type opError struct {
	code string
	msg  string
}

func (e *opError) Error() string { return e.msg }

func conflictf(format string, a ...any) error {
	return &opError{code: proto.CodeConflict, msg: fmt.Sprintf(format, a...)}
}

func invalidf(format string, a ...any) error {
	return &opError{code: proto.CodeInvalid, msg: fmt.Sprintf(format, a...)}
}

func notFoundf(format string, a ...any) error {
	return &opError{code: proto.CodeNotFound, msg: fmt.Sprintf(format, a...)}
}

// codeOf classifies an error for the response.
func codeOf(err error) string {
	var oe *opError
	if errors.As(err, &oe) {
		return oe.code
	}
	var re *runtime.Error
	if errors.As(err, &re) {
		return proto.CodeRuntime
	}
	return ""
}
