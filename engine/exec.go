package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hako-project/hako/engine/specgen"
	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/runtime/caps"
	"github.com/hako-project/hako/trace"
)

// ExecConfig is what `docker exec` asks for.
type ExecConfig struct {
	Cmd          []string
	Env          []string
	User         string
	WorkingDir   string
	Tty          bool
	AttachStdin  bool
	AttachStdout bool
	AttachStderr bool
	Privileged   bool
	// DetachKeys end a terminal session attached at the start without
	// ending the process (the API layer detects them: ErrDetach).
	DetachKeys []byte
}

// Exec is a process added to a running container.
type Exec struct {
	ID        string
	container *Container
	Config    ExecConfig

	mu       sync.Mutex
	running  bool
	started  bool
	exitCode *int
	pid      int
	task     ExecTask
	ended    time.Time
}

// ExecState is what `docker exec inspect` shows.
type ExecState struct {
	ID          string
	ContainerID string
	Config      ExecConfig
	Running     bool
	ExitCode    *int
	Pid         int
	CanRemove   bool
}

// ExecCreate registers a process to run in a running container.
func (e *Engine) ExecCreate(ctx context.Context, ref string, cfg ExecConfig) (string, error) {
	c, err := e.Get(ref)
	if err != nil {
		return "", err
	}
	st := c.SettledSnapshot().State.Status // after a start under way
	switch st {
	case container.StateRunning:
	case container.StatePaused:
		// dockerd names the container as the client did here.
		return "", errdefs.Conflictf("Container %s is paused, unpause the container before exec", ref)
	default:
		return "", errdefs.Conflictf("Container %s is not running", c.ID)
	}
	if len(cfg.Cmd) == 0 {
		return "", errdefs.Invalidf("No exec command specified")
	}
	e.pruneExecs()
	x := &Exec{ID: newID(), container: c, Config: cfg}
	e.mu.Lock()
	e.execs[x.ID] = x
	e.mu.Unlock()
	e.events.emitContainer(c, "exec_create: "+strings.Join(cfg.Cmd, " "), map[string]string{"execID": x.ID})
	return x.ID, nil
}

func (e *Engine) getExec(id string) (*Exec, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.execs[id]
	if !ok {
		return nil, errdefs.NotFoundf("No such exec instance: %s", id)
	}
	return x, nil
}

// ExecStart runs a created exec process with the given streams. Without
// detach it returns when the process has exited and its output is copied.
func (e *Engine) ExecStart(ctx context.Context, id string, s Streams, detach bool, height, width uint16) (err error) {
	x, err := e.getExec(id)
	if err != nil {
		return err
	}
	ctx, span := trace.Start(ctx, "engine.exec.start", "exec", id)
	defer func() { span.End(err) }()
	x.mu.Lock()
	if x.started {
		x.mu.Unlock()
		return errdefs.Conflictf("Error: Exec command %s has already run", id)
	}
	x.started = true
	x.mu.Unlock()
	c := x.container
	_, task, err := e.runningTask(c.ID)
	if err != nil {
		return err
	}
	proc, err := e.execProcess(c, x.Config)
	if err != nil {
		return err
	}
	if x.Config.Privileged {
		c.mu.Lock()
		c.netnsTainted = true // it has CAP_NET_ADMIN
		c.mu.Unlock()
	}
	if x.Config.Tty && height > 0 && width > 0 {
		proc.ConsoleSize = &specs.Box{Height: uint(height), Width: uint(width)}
	}
	if !x.Config.AttachStdin {
		s.Stdin = nil
	}
	// A client that detaches (its stdin ends with ErrDetach) leaves the
	// process running, as with docker: the start returns then, and the
	// exit is recorded when it comes.
	var detached chan struct{}
	if s.Stdin != nil {
		detached = make(chan struct{})
		s.Stdin = &detachSignal{r: s.Stdin, ch: detached}
	}
	et, err := task.Exec(ctx, ExecTaskConfig{ID: id, Process: *proc, Streams: s})
	if err != nil {
		code := startExitCode(err)
		x.mu.Lock()
		x.exitCode = &code
		x.mu.Unlock()
		return err
	}
	x.mu.Lock()
	x.task, x.running, x.pid = et, true, et.Pid()
	x.mu.Unlock()
	e.events.emitContainer(c, "exec_start: "+strings.Join(x.Config.Cmd, " "), map[string]string{"execID": id})
	finish := func() {
		st, werr := et.Wait(context.WithoutCancel(ctx))
		code := st.Code
		if werr != nil {
			code = 126
		}
		x.mu.Lock()
		x.running = false
		x.exitCode = &code
		x.ended = time.Now()
		x.mu.Unlock()
		e.events.emitContainer(c, "exec_die", map[string]string{"execID": id, "exitCode": fmt.Sprint(code)})
	}
	if detach {
		go finish()
		return nil
	}
	ended := make(chan struct{})
	go func() {
		finish()
		close(ended)
	}()
	select {
	case <-ended:
	case <-detached: // nil, never ready, without stdin
	}
	return nil
}

// detachSignal closes ch when r returns ErrDetach.
type detachSignal struct {
	r    io.Reader
	ch   chan struct{}
	once sync.Once
}

func (d *detachSignal) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if errors.Is(err, ErrDetach) {
		d.once.Do(func() { close(d.ch) })
	}
	return n, err
}

// execProcess is the container's process with the exec's changes, as
// docker builds it: the container's environment plus the exec's, the
// exec's user (resolved in the container) or the container's, its cwd.
func (e *Engine) execProcess(c *Container, cfg ExecConfig) (*specs.Process, error) {
	bundle := e.bundleDir(c.ID) // container.go
	base, err := e.bundleProcess(c, bundle)
	if err != nil {
		return nil, err
	}
	// A shallow copy: fields are replaced below, never changed in place,
	// because base is shared by every exec of this run.
	p := *base
	p.Args = cfg.Cmd
	p.Terminal = cfg.Tty
	p.ConsoleSize = nil
	env := append([]string{}, p.Env...)
	for _, kv := range cfg.Env {
		k, _, _ := strings.Cut(kv, "=")
		env = replaceEnv(env, k, kv)
	}
	p.Env = env
	if cfg.WorkingDir != "" {
		p.Cwd = cfg.WorkingDir
	}
	if cfg.User != "" {
		u, err := specgen.ResolveUser(filepath.Join(bundle, "rootfs"), cfg.User)
		if err != nil {
			return nil, errdefs.Invalidf("%s", err.Error())
		}
		// The primary group among the supplementary ones, as for the
		// container's process (generateSpec).
		p.User = specs.User{UID: u.UID, GID: u.GID, AdditionalGids: append([]uint32{u.GID}, u.AdditionalGids...)}
	}
	if cfg.Privileged {
		p.Capabilities = caps.SpecFor(caps.All())
	}
	return &p, nil
}

// bundleProcess is the process of the spec the container last started
// with, the base of every exec and health check. The start keeps it
// (setBundleProcess); after a hakod restart it is read back from the
// bundle once. Decoding the whole config.json on every exec cost about
// 1.2 ms of hakod's CPU (perf record of 40 execs). The result is shared:
// callers must not change what it points to.
func (e *Engine) bundleProcess(c *Container, bundle string) (*specs.Process, error) {
	c.mu.Lock()
	p := c.process
	c.mu.Unlock()
	if p != nil {
		return p, nil
	}
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("read the container's spec: %w", err)
	}
	var s struct {
		Process *specs.Process `json:"process"`
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("the container's spec: %w", err)
	}
	if s.Process == nil {
		return nil, errors.New("the container's spec has no process")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.process == nil { // a start may have set a newer one meanwhile
		c.process = s.Process
	}
	return c.process, nil
}

// setBundleProcess records the process of the spec a start has just
// written, for bundleProcess; p must not change afterwards.
func (c *Container) setBundleProcess(p *specs.Process) {
	c.mu.Lock()
	c.process = p
	c.mu.Unlock()
}

func replaceEnv(env []string, key, kv string) []string {
	for i, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			env[i] = kv
			return env
		}
	}
	return append(env, kv)
}

// ExecInspect reports an exec's state.
func (e *Engine) ExecInspect(id string) (ExecState, error) {
	x, err := e.getExec(id)
	if err != nil {
		return ExecState{}, err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	return ExecState{ID: x.ID, ContainerID: x.container.ID, Config: x.Config, Running: x.running,
		ExitCode: x.exitCode, Pid: x.pid, CanRemove: !x.running}, nil
}

// ExecIDs are the IDs of the container's execs that have not ended
// (created, or running), in order: docker's inspect lists them (ExecIDs,
// null when none) and drops each at its exit.
func (e *Engine) ExecIDs(containerID string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var ids []string
	for id, x := range e.execs {
		if x.container.ID != containerID {
			continue
		}
		x.mu.Lock()
		live := x.exitCode == nil
		x.mu.Unlock()
		if live {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// ExecResize changes an exec's terminal size.
func (e *Engine) ExecResize(ctx context.Context, id string, height, width uint16) error {
	x, err := e.getExec(id)
	if err != nil {
		return err
	}
	x.mu.Lock()
	t, running := x.task, x.running
	x.mu.Unlock()
	if t == nil || !running {
		return fmt.Errorf("exec %s is not running", id)
	}
	return t.Resize(ctx, height, width)
}

// pruneExecs forgets execs that ended more than five minutes ago (docker
// keeps them for inspect for a while), so a container exec'd into in a loop
// does not grow hakod without bound.
func (e *Engine) pruneExecs() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, x := range e.execs {
		x.mu.Lock()
		old := !x.ended.IsZero() && time.Since(x.ended) > 5*time.Minute
		x.mu.Unlock()
		if old {
			delete(e.execs, id)
		}
	}
}
