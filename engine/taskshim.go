package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"

	units "github.com/docker/go-units"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/runtime/cgroups"
	"github.com/hako-project/hako/shim"
	"github.com/hako-project/hako/trace"
)

// shimTask is a Task carried out by the container's hako-shim.
type shimTask struct {
	c      *shim.Client
	traces *Traces
}

// traced sends the shim's and the runtime's spans for this call to the
// file of the trace in ctx. Without it they would go to the trace that
// created the container (or nowhere), and `hako exec --trace` on a
// container started earlier would show nothing below hakod.
func (t *shimTask) traced(ctx context.Context) context.Context {
	if sp := trace.FromContext(ctx); sp != nil && t.traces != nil {
		return shim.WithTraceFile(ctx, t.traces.File(sp.TraceID()))
	}
	return ctx
}

// newTask starts the container's shim, which creates the container with
// the container's OCI runtime; the program has not started yet, or, with
// run, it runs and its output waits for Task.Start (shim.Config.Run).
func (e *Engine) newTask(ctx context.Context, c *Container, bundle string, run bool) (Task, error) {
	snap := c.Snapshot()
	rt, ok := e.cfg.Runtimes[snap.Runtime]
	if !ok {
		return nil, errdefs.Invalidf("unknown or invalid runtime name: %s", snap.Runtime)
	}
	cfg := shim.Config{
		ID: c.ID, Bundle: bundle, StateDir: filepath.Join(e.cfg.shimsDir(), c.ID),
		Runtime: rt, RuntimeRoot: filepath.Join(e.cfg.runtimeRoot(), snap.Runtime),
		Terminal: snap.Config.Tty, Stdin: snap.Config.OpenStdin, StdinOnce: snap.Config.StdinOnce,
		Binary: e.cfg.ShimPath, Run: run, Spares: e.spares,
	}
	lc, err := logConfig(e.logPath(c.ID), snap.HostConfig.LogConfig.Config)
	if err != nil {
		return nil, errdefs.Invalidf("failed to initialize logging driver: %s", err.Error())
	}
	if lc.Attrs, err = logAttrs(snap); err != nil {
		return nil, errdefs.Invalidf("failed to initialize logging driver: %s", err.Error())
	}
	cfg.Log = lc
	if snap.HostConfig.LogConfig.Type == "none" {
		cfg.Log = shim.LogConfig{} // no log: attached clients still get the output
	}
	if c.Extra["cri.log-path"] != "" {
		cfg.Log = shim.LogConfig{Path: c.Extra["cri.log-path"], Format: "cri"}
	}
	if sp := trace.FromContext(ctx); sp != nil {
		// shim.Start parents the shim's spans under its own.
		cfg.TraceFile = e.traces.File(sp.TraceID())
	}
	sc, err := shim.Start(ctx, cfg)
	if err != nil {
		return nil, classifyShim(err)
	}
	return &shimTask{c: sc, traces: e.traces}, nil
}

// logConfig reads docker's --log-opt max-size and max-file.
func logConfig(path string, opts map[string]string) (shim.LogConfig, error) {
	lc := shim.LogConfig{Path: path, Format: "json-file"}
	if v := opts["max-size"]; v != "" {
		n, err := units.RAMInBytes(v)
		if err != nil {
			return lc, errdefs.Invalidf("%s", err.Error()) // "invalid size: 'abc'", as docker
		}
		lc.MaxSize = n
		lc.MaxFiles = 1
	}
	if v := opts["max-file"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return lc, errdefs.Invalidf("invalid max-file %q", v)
		}
		lc.MaxFiles = n
	}
	return lc, nil
}

// logAttrs are the attributes docker's json-file driver puts in every
// entry: the container's labels named by --log-opt labels (a comma list)
// or matching labels-regex, its environment variables named by env or
// matching env-regex, and tag, a template over the container (docker's
// {{.ID}}, {{.FullID}}, {{.Name}}, {{.ImageID}}, {{.ImageFullID}},
// {{.ImageName}}, {{.DaemonName}}).
func logAttrs(snap Record) (map[string]string, error) {
	opts := snap.HostConfig.LogConfig.Config
	attrs := map[string]string{}
	var labels map[string]string
	var env []string
	if snap.Config != nil {
		labels, env = snap.Config.Labels, snap.Config.Env
	}
	envs := map[string]string{}
	for _, kv := range env {
		if k, x, ok := strings.Cut(kv, "="); ok {
			envs[k] = x
		}
	}
	if err := pickAttrs(attrs, labels, opts, "labels"); err != nil {
		return nil, err
	}
	if err := pickAttrs(attrs, envs, opts, "env"); err != nil {
		return nil, err
	}
	if v := opts["tag"]; v != "" {
		tmpl, err := template.New("tag").Parse(v)
		if err != nil {
			return nil, fmt.Errorf("tag %q: %w", v, err)
		}
		short := func(s string) string {
			s = strings.TrimPrefix(s, "sha256:")
			return s[:min(12, len(s))]
		}
		var b strings.Builder
		if err := tmpl.Execute(&b, map[string]string{
			"ID": short(snap.ID), "FullID": snap.ID, "Name": snap.Name, "ImageID": short(snap.ImageID),
			"ImageFullID": snap.ImageID, "ImageName": snap.Image, "DaemonName": "docker",
		}); err != nil {
			return nil, fmt.Errorf("tag %q: %w", v, err)
		}
		attrs["tag"] = b.String()
	}
	if len(attrs) == 0 {
		return nil, nil
	}
	return attrs, nil
}

// pickAttrs copies into attrs the entries of from that --log-opt OPT (a
// comma list of keys) or OPT-regex (a pattern over the keys) name.
func pickAttrs(attrs, from, opts map[string]string, opt string) error {
	if v := opts[opt]; v != "" {
		for _, k := range strings.Split(v, ",") {
			if x, ok := from[k]; ok {
				attrs[k] = x
			}
		}
	}
	if v := opts[opt+"-regex"]; v != "" {
		re, err := regexp.Compile(v)
		if err != nil {
			return fmt.Errorf("%s-regex %q: %w", opt, v, err)
		}
		for k, x := range from {
			if re.MatchString(k) {
				attrs[k] = x
			}
		}
	}
	return nil
}

// connectTask re-adopts a container's shim after hakod restarts. running
// tells whether the container still runs; if it ended while hakod was
// away, st is how.
func (e *Engine) connectTask(ctx context.Context, c *Container) (Task, bool, ExitStatus, error) {
	dir := filepath.Join(e.cfg.shimsDir(), c.ID)
	sc, err := shim.Connect(ctx, dir)
	if err != nil {
		var gone *shim.GoneError
		if errors.As(err, &gone) {
			ex, _ := shim.Cleanup(ctx, dir)
			if ex != nil {
				return nil, false, ExitStatus{Code: ex.Code, OOMKilled: ex.OOMKilled, ExitedAt: ex.ExitedAt}, fmt.Errorf("shim gone: %w", err)
			}
		}
		return nil, false, ExitStatus{}, err
	}
	t := &shimTask{c: sc, traces: e.traces}
	st, err := sc.State(ctx)
	if err != nil {
		sc.Close()
		return nil, false, ExitStatus{}, err
	}
	switch st.Status {
	case shim.Running, shim.Paused, shim.Created:
		return t, true, ExitStatus{}, nil
	}
	ex, err := sc.Wait(ctx)
	if err != nil {
		return t, false, ExitStatus{Code: 255, ExitedAt: time.Now().UTC()}, nil
	}
	return t, false, exitStatus(ex), nil
}

func exitStatus(e shim.ExitStatus) ExitStatus {
	return ExitStatus{Code: e.Code, OOMKilled: e.OOMKilled, ExitedAt: e.ExitedAt}
}

// runtimeErr matches the shim's report of a failed runtime command:
// "[OCI runtime error: ]RUNTIME VERB ID: MESSAGE".
var runtimeErr = regexp.MustCompile(`^(?:OCI runtime error: )?\S+ (create|run|start|exec|delete|kill|pause|resume|update) [0-9a-f]{64}: (.*)$`)

// classifyShim maps the shim's error classes onto the engine's, keeping
// its message (the runtime's own words for what it rejected).
func classifyShim(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	switch {
	case errors.Is(err, shim.ErrNotFound):
		return errdefs.NotFoundf("%s", msg)
	case errors.Is(err, shim.ErrConflict):
		return errdefs.Conflictf("%s", msg)
	case errors.Is(err, shim.ErrInvalid):
		return errdefs.Invalidf("%s", msg)
	case errors.Is(err, shim.ErrRuntime):
		// docker's wording: "OCI runtime create failed: <the runtime's words>".
		if m := runtimeErr.FindStringSubmatch(msg); m != nil {
			verb := m[1]
			if verb == "run" {
				// Create and start as one command (shim.Config.Run): what
				// fails there is what docker reports as create's failure.
				verb = "create"
			}
			return fmt.Errorf("OCI runtime %s failed: %s", verb, m[2])
		}
		if !strings.Contains(msg, "OCI runtime") {
			msg = "OCI runtime error: " + msg
		}
		return errors.New(msg)
	}
	return err
}

func (t *shimTask) Pid() int { return t.c.Pid() }

func (t *shimTask) Start(ctx context.Context) error { return classifyShim(t.c.Start(t.traced(ctx))) }

func (t *shimTask) Attach(ctx context.Context, s Streams) (<-chan error, error) {
	stdin := s.Stdin
	if stdin != nil {
		stdin = detachShim{stdin}
	}
	st, err := t.c.Attach(ctx, shim.AttachOptions{Stdin: stdin, Stdout: s.Stdout, Stderr: s.Stderr})
	if err != nil {
		return nil, classifyShim(err)
	}
	done := make(chan error, 1)
	go func() { done <- st.Wait() }()
	return done, nil
}

func (t *shimTask) Resize(ctx context.Context, h, w uint16) error {
	return classifyShim(t.c.Resize(ctx, h, w))
}

func (t *shimTask) Kill(ctx context.Context, sig syscall.Signal, all bool) error {
	return classifyShim(t.c.Kill(t.traced(ctx), sig, all))
}

func (t *shimTask) Wait(ctx context.Context) (ExitStatus, error) {
	st, err := t.c.Wait(ctx)
	if err != nil {
		return ExitStatus{}, classifyShim(err)
	}
	return exitStatus(st), nil
}

func (t *shimTask) Pause(ctx context.Context) error  { return classifyShim(t.c.Pause(t.traced(ctx))) }
func (t *shimTask) Resume(ctx context.Context) error { return classifyShim(t.c.Resume(t.traced(ctx))) }

func (t *shimTask) Update(ctx context.Context, r *specs.LinuxResources) error {
	return classifyShim(t.c.Update(t.traced(ctx), r))
}

func (t *shimTask) Stats(ctx context.Context) (*cgroups.Stats, error) {
	s, err := t.c.Stats(ctx)
	return s, classifyShim(err)
}

func (t *shimTask) Exec(ctx context.Context, cfg ExecTaskConfig) (ExecTask, error) {
	stdin := cfg.Streams.Stdin
	if stdin != nil {
		stdin = detachShim{stdin}
	}
	x, err := t.c.Exec(t.traced(ctx), shim.ExecConfig{ID: cfg.ID, Process: cfg.Process,
		Stdin: stdin, Stdout: cfg.Streams.Stdout, Stderr: cfg.Streams.Stderr})
	if err != nil {
		return nil, classifyShim(err)
	}
	return &shimExec{x: x}, nil
}

func (t *shimTask) ReopenLog(ctx context.Context) error { return classifyShim(t.c.ReopenLog(ctx)) }

// Delete returns once the shim has answered, not once its process has
// exited as well (shim.Client.DeleteAnswered): nothing hakod does next
// needs the shim gone, and a hung one is killed in the background.
func (t *shimTask) Delete(ctx context.Context, force bool) (ExitStatus, error) {
	st, _, err := t.c.DeleteAnswered(t.traced(ctx), force)
	return exitStatus(st), classifyShim(err)
}

func (t *shimTask) Close() error { return t.c.Close() }

type shimExec struct{ x *shim.Exec }

func (e *shimExec) Pid() int { return e.x.Pid() }
func (e *shimExec) Resize(ctx context.Context, h, w uint16) error {
	return classifyShim(e.x.Resize(ctx, h, w))
}
func (e *shimExec) Kill(ctx context.Context, sig syscall.Signal) error {
	return classifyShim(e.x.Kill(ctx, sig))
}
func (e *shimExec) Wait(ctx context.Context) (ExitStatus, error) {
	st, err := e.x.Wait(ctx)
	return exitStatus(st), classifyShim(err)
}

// detachShim tells the shim about a detach (ErrDetach) in its own terms.
type detachShim struct{ r io.Reader }

func (d detachShim) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if errors.Is(err, ErrDetach) {
		err = shim.ErrDetach
	}
	return n, err
}
