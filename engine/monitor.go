package engine

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/hako-project/hako/trace"
)

// watch follows a running container until it exits, then records the exit
// and applies the restart policy. One goroutine per running container.
func (e *Engine) watch(c *Container, task Task) {
	done := make(chan struct{})
	c.mu.Lock()
	c.monitor = done
	c.mu.Unlock()
	e.monitorHealth(c, task, done)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer close(done)
		st, err := task.Wait(context.Background())
		if err != nil {
			// The connection dropped: hakod is closing (the shim keeps the
			// container) or the shim died.
			e.mu.Lock()
			closing := e.closing
			e.mu.Unlock()
			if closing {
				return
			}
			e.log.Warn("lost the shim of a running container", "id", c.ID, "err", err)
			st = ExitStatus{Code: 255, ExitedAt: time.Now().UTC()}
		}
		ctx, done := e.exitContext(c)
		defer done()
		e.exited(ctx, c, task, st)
	}()
}

// handOff lets the goroutine just started run until it blocks, before
// the caller goes on into blocking system calls (fsync, unmount, unlink).
// Go queues a new goroutine on its creator's P, and a P held by a system
// call is handed over only by sysmon, whose naps hakod's 2 ms timer slack
// (internal/timerslack) stretches from 20 µs to ~2 ms, or when the call
// returns. Without this a run --rm's exit waited 1-3 ms for the start's
// record to be written, and the runtime's delete as long for the unmount
// and the removal of the container's files, which were meant to run
// beside them.
func handOff() { runtime.Gosched() }

// exitContext is the context in which a container's exit is handled: the
// trace of its start when that was traced, so that `hako run --rm
// --trace` shows what happens after the program ends (the runtime's
// delete, unmounts, the removal) below the start.
func (e *Engine) exitContext(c *Container) (context.Context, func()) {
	c.mu.Lock()
	tp := c.startTrace
	c.startTrace = ""
	c.mu.Unlock()
	ctx := context.Background()
	if tp == "" {
		return ctx, func() {}
	}
	tr, f, err := e.traces.Open(tp)
	if err != nil || tr == nil {
		return ctx, func() {}
	}
	return trace.WithTracer(ctx, tr), func() { e.traces.CloseWhenIdle(tr.TraceID(), f) }
}

// exited records a container's end: the runtime's container is deleted,
// the filesystem unmounted, and the restart policy or --rm applied.
func (e *Engine) exited(ctx context.Context, c *Container, task Task, st ExitStatus) {
	root := ctx
	ctx, span := trace.Start(ctx, "engine.exited", "id", c.ID, "code", strconv.Itoa(st.Code))
	// The runtime's delete and the unmounts run side by side: the program
	// has exited, and hakod's specs carry no poststop hooks, so nothing
	// the delete runs needs the container's filesystem.
	dctx, dspan := trace.Start(ctx, "engine.task.delete")
	deleted := make(chan error, 1)
	go func() {
		_, err := task.Delete(dctx, true)
		dspan.End(err)
		deleted <- err
	}()
	handOff() // the delete's request goes out before the unmounts below
	_, uspan := trace.Start(ctx, "engine.snapshot.unmount")
	e.unmountRootfs(c.ID) // container.go
	e.unmountVolumes(c)   // volumes.go
	uspan.End(nil)
	c.mu.Lock()
	// A --rm container (which has no restart policy: create refuses one)
	// is removed next, unless `rm -f` has claimed it: its filesystem and
	// directory go now, while the runtime's delete runs, rather than after
	// it. Nothing the delete runs reads them, and remove's clean-up, which
	// decides and reports, finds them gone (or tries again).
	early := c.HostConfig.AutoRemove && !c.removing
	c.mu.Unlock()
	if early {
		_ = e.removeFiles(ctx, c) // remove.go
	}
	if err := <-deleted; err != nil {
		e.log.Warn("delete the exited container's task", "id", c.ID, "err", err)
	}
	task.Close()
	e.detachNetwork(ctx, c, true) // network.go
	if st.ExitedAt.IsZero() {
		st.ExitedAt = time.Now().UTC()
	}
	var restart bool
	var delay time.Duration
	c.mu.Lock()
	c.task = nil
	running := st.ExitedAt.Sub(c.State.StartedAt)
	c.State.Status = container.StateExited
	c.State.Pid = 0
	c.State.ExitCode = st.Code
	c.State.OOMKilled = st.OOMKilled
	c.State.FinishedAt = st.ExitedAt
	restart, delay = restartDecision(c.HostConfig.RestartPolicy, c.State, st.Code, running)
	if restart {
		c.State.Status = container.StateRestarting
	}
	autoRemove := c.HostConfig.AutoRemove && !restart
	c.notifyLocked()
	c.mu.Unlock()
	if !autoRemove {
		// A --rm container's record is deleted just below; should hakod
		// die first, the next one finds the shim gone and removes the
		// container then (load).
		_ = e.save(c)
	}
	span.End(nil)
	if st.OOMKilled {
		e.events.emitContainer(c, "oom", nil)
	}
	e.events.emitContainer(c, "die", map[string]string{"exitCode": strconv.Itoa(st.Code)})

	switch {
	case restart:
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			time.Sleep(delay)
			c.mu.Lock()
			still := c.State.Status == container.StateRestarting && !c.State.ManuallyStopped
			if still {
				c.State.RestartCount++
			}
			c.mu.Unlock()
			if !still {
				return
			}
			if err := e.start(context.Background(), c); err != nil {
				e.log.Warn("restart container", "id", c.ID, "err", err)
				c.setState(func(s *State) { s.Status = container.StateExited; s.Error = err.Error() })
				_ = e.save(c)
			}
		}()
	case autoRemove:
		if err := e.remove(withVolumeRemoval(root), c, false); err != nil && !errors.Is(err, errAlreadyRemoving) {
			e.log.Warn("remove --rm container", "id", c.ID, "err", err)
		}
	}
}

// restartDecision applies docker's restart policies: whether to restart
// and after how long (100 ms doubling per quick restart, up to a minute;
// a run of more than 10 s resets it).
func restartDecision(p container.RestartPolicy, s State, code int, ran time.Duration) (bool, time.Duration) {
	if s.ManuallyStopped {
		return false, 0
	}
	switch p.Name {
	case container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
	case container.RestartPolicyOnFailure:
		if code == 0 || (p.MaximumRetryCount > 0 && s.RestartCount >= p.MaximumRetryCount) {
			return false, 0
		}
	default:
		return false, 0
	}
	if ran > 10*time.Second {
		return true, 100 * time.Millisecond
	}
	d := 100 * time.Millisecond
	for i := 0; i < s.RestartCount && d < time.Minute; i++ {
		d *= 2
	}
	return true, min(d, time.Minute)
}

// restore re-adopts a container after hakod starts: a running one through
// its shim, or records how it ended while hakod was away; a container whose
// restart policy says so starts again.
func (e *Engine) restore(ctx context.Context, c *Container) {
	if !live(c.State.Status) {
		return
	}
	task, running, st, err := e.connectTask(ctx, c)
	if err == nil && running {
		c.task = task
		c.netnsTainted = true // what ran in it while hakod was away is unknown
		e.watch(c, task)
		e.log.Info("re-adopted running container", "id", c.ID, "name", c.Name)
		return
	}
	if err == nil && task != nil {
		// It ended while we were away: its shim kept the exit status.
		c.task = task
		e.exited(ctx, c, task, st)
		return
	}
	e.log.Warn("container's shim is gone; marking it exited", "id", c.ID, "err", err)
	c.State.Status = container.StateExited
	c.State.Pid = 0
	if c.State.ExitCode == 0 {
		c.State.ExitCode = 255
	}
	c.State.FinishedAt = time.Now().UTC()
	e.detachNetwork(ctx, c, false) // network.go: what is left in it is unknown
	e.unmountRootfs(c.ID)          // container.go
	e.unmountVolumes(c)            // volumes.go
	_ = e.save(c)
	if r, _ := restartDecision(c.HostConfig.RestartPolicy, c.State, c.State.ExitCode, 0); r {
		go func() {
			if err := e.start(context.Background(), c); err != nil {
				e.log.Warn("restart after daemon restart", "id", c.ID, "err", err)
			}
		}()
	}
}

// detach drops the engine's connection to a container's shim (hakod is
// stopping; the container keeps running).
func (c *Container) detach() {
	c.mu.Lock()
	t := c.task
	c.mu.Unlock()
	if t != nil {
		t.Close()
	}
}
