package engine

import (
	"context"
	"errors"
	"strconv"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/hako-project/hako/engine/specgen"
	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/shim"
	"github.com/hako-project/hako/trace"
)

// Stop sends the container's stop signal, waits up to timeout (nil: the
// container's StopTimeout, else 10 s; negative: forever) and then kills it.
func (e *Engine) Stop(ctx context.Context, ref string, signal string, timeout *int) (err error) {
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	ctx, span := trace.Start(ctx, "engine.stop", "id", c.ID)
	defer func() { span.End(err) }()
	c.mu.Lock()
	c.State.ManuallyStopped = true
	if c.State.Status == container.StateRestarting {
		c.State.Status = container.StateExited
		c.notifyLocked()
	}
	if signal == "" {
		signal = c.StopSignal
	}
	wait := 10 * time.Second
	if c.Config.StopTimeout != nil {
		wait = time.Duration(*c.Config.StopTimeout) * time.Second
	}
	c.mu.Unlock()
	_ = e.save(c)
	if timeout != nil {
		wait = time.Duration(*timeout) * time.Second
	}
	// After a start under way, which then stops what it started
	// (ManuallyStopped is set: no restart policy brings it back).
	task := c.startedTask()
	if task == nil {
		return nil // docker: stopping a stopped container is not an error
	}
	sig := syscall.SIGTERM
	if signal != "" {
		s, err := specgen.ParseSignal(signal)
		if err != nil {
			return errdefs.Invalidf("%s", err.Error())
		}
		sig = syscall.Signal(s)
	}
	if err := task.Kill(ctx, sig, false); err != nil && !isGone(err) {
		return err
	}
	wctx, cancel := ctx, context.CancelFunc(func() {})
	if wait >= 0 { // a negative timeout waits as long as it takes
		wctx, cancel = context.WithTimeout(ctx, wait)
	}
	err = e.waitStopped(wctx, c)
	cancel()
	if err == nil {
		return nil
	}
	_, kspan := trace.Start(ctx, "engine.stop.kill")
	err = task.Kill(ctx, syscall.SIGKILL, true)
	kspan.End(err)
	if err != nil && !isGone(err) {
		return err
	}
	return e.waitStopped(ctx, c)
}

// waitStopped waits until the container is no longer running.
func (e *Engine) waitStopped(ctx context.Context, c *Container) error {
	for {
		c.mu.Lock()
		running := c.task != nil || c.State.Status == container.StateRunning || c.State.Status == container.StatePaused
		ch := c.changed
		c.mu.Unlock()
		if !running {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Kill sends a signal to the container's process (default SIGKILL).
func (e *Engine) Kill(ctx context.Context, ref, signal string) error {
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	sig := syscall.SIGKILL
	if signal != "" {
		s, err := specgen.ParseSignal(signal)
		if err != nil {
			return errdefs.Invalidf("%s", err.Error())
		}
		sig = syscall.Signal(s)
	}
	// A task exists from the moment its shim created the container, so a
	// signal sent while the start is still returning reaches it too; one
	// sent before that waits for the start under way.
	task := c.startedTask()
	c.mu.Lock()
	if task == nil || c.State.Status == container.StateExited {
		c.mu.Unlock()
		return errdefs.Conflictf("Cannot kill container: %s: Container %s is not running", ref, c.ID)
	}
	if sig == syscall.SIGKILL || sig == syscall.SIGTERM || sig == syscall.SIGINT {
		c.State.ManuallyStopped = true
	}
	c.mu.Unlock()
	if err := task.Kill(ctx, sig, false); err != nil {
		return err
	}
	e.events.emitContainer(c, "kill", map[string]string{"signal": sigNumber(sig)})
	if sig == syscall.SIGKILL {
		// As docker's: a kill -9 returns once the container has stopped
		// (a stop or an inspect right after sees it exited).
		return e.waitStopped(ctx, c)
	}
	return nil
}

// Restart stops the container (if it runs) and starts it again.
func (e *Engine) Restart(ctx context.Context, ref string, signal string, timeout *int) error {
	if err := e.Stop(ctx, ref, signal, timeout); err != nil {
		return err
	}
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	if err := e.Start(ctx, c.ID); err != nil {
		return err
	}
	e.events.emitContainer(c, "restart", nil)
	return nil
}

// Pause freezes every process of the container.
func (e *Engine) Pause(ctx context.Context, ref string) error {
	c, task, err := e.runningTask(ref)
	if err != nil {
		return err
	}
	if c.Snapshot().State.Status == container.StatePaused {
		return errdefs.Conflictf("Container %s is already paused", c.ID)
	}
	if err := task.Pause(ctx); err != nil {
		return err
	}
	c.setState(func(s *State) { s.Status = container.StatePaused })
	_ = e.save(c)
	e.events.emitContainer(c, "pause", nil)
	return nil
}

// Unpause thaws a paused container.
func (e *Engine) Unpause(ctx context.Context, ref string) error {
	// "not paused" for a container that does not run either, as dockerd.
	if c, err := e.Get(ref); err == nil && c.SettledSnapshot().State.Status != container.StatePaused {
		return errdefs.Conflictf("Container %s is not paused", c.ID)
	}
	c, task, err := e.runningTask(ref)
	if err != nil {
		return err
	}
	if c.Snapshot().State.Status != container.StatePaused {
		return errdefs.Conflictf("Container %s is not paused", c.ID)
	}
	if err := task.Resume(ctx); err != nil {
		return err
	}
	c.setState(func(s *State) { s.Status = container.StateRunning })
	_ = e.save(c)
	e.events.emitContainer(c, "unpause", nil)
	return nil
}

// runningTask returns the task of a running (or paused) container.
func (e *Engine) runningTask(ref string) (*Container, Task, error) {
	c, err := e.Get(ref)
	if err != nil {
		return nil, nil, err
	}
	c.waitStart() // start.go
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.task == nil || (c.State.Status != container.StateRunning && c.State.Status != container.StatePaused) {
		return nil, nil, errdefs.Conflictf("Container %s is not running", c.ID)
	}
	return c, c.task, nil
}

// isGone reports an error that only says the process already exited. That
// includes the shim's client closed under a kill in flight: the container
// exited (often of that very signal) and the exit path, which closes the
// client after the runtime's delete, got there before the kill's answer
// (seen under load as `rm -f` failing with "shim client is closed" and
// leaving the container and its name behind). The caller waits for the
// stopped state either way.
func isGone(err error) bool {
	return errors.Is(err, syscall.ESRCH) || errdefs.IsNotFound(err) ||
		errors.Is(err, shim.ErrClosed) || errors.Is(err, shim.ErrGone)
}

func sigNumber(s syscall.Signal) string {
	return strconv.Itoa(int(s))
}
