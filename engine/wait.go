package engine

import (
	"context"

	"github.com/moby/moby/api/types/container"
)

// WaitCondition is docker's wait condition.
type WaitCondition = container.WaitCondition

// WaitResult is what a wait returns: the exit code, or why it cannot.
type WaitResult struct {
	ExitCode int
	Err      error
}

// waiter is one wait request, checked on every state change.
type waiter struct {
	cond   WaitCondition
	sawRun bool // next-exit: the container has run since the wait began
	ch     chan WaitResult
	done   bool
}

func (w *waiter) check(c *Container) {
	if w.done {
		return
	}
	st := c.State.Status
	active := st == container.StateRunning || st == container.StatePaused
	if active {
		w.sawRun = true
	}
	switch w.cond {
	case container.WaitConditionRemoved:
		if st != "removed" {
			return
		}
	case container.WaitConditionNextExit:
		if !w.sawRun || active {
			return
		}
	default: // not-running
		if active || st == container.StateRestarting {
			return
		}
	}
	w.done = true
	w.ch <- WaitResult{ExitCode: c.State.ExitCode}
}

// Wait returns a channel that delivers the container's exit code once the
// condition holds: not-running (default), next-exit or removed.
func (e *Engine) Wait(ctx context.Context, ref string, cond WaitCondition) (<-chan WaitResult, error) {
	c, err := e.Get(ref)
	if err != nil {
		return nil, err
	}
	w := &waiter{cond: cond, ch: make(chan WaitResult, 1)}
	c.mu.Lock()
	w.check(c)
	if !w.done {
		c.waiters = append(c.waiters, w)
	}
	c.mu.Unlock()
	out := make(chan WaitResult, 1)
	go func() {
		defer func() {
			c.mu.Lock()
			for i, x := range c.waiters {
				if x == w {
					c.waiters = append(c.waiters[:i], c.waiters[i+1:]...)
					break
				}
			}
			c.mu.Unlock()
		}()
		select {
		case r := <-w.ch:
			out <- r
		case <-ctx.Done():
			out <- WaitResult{ExitCode: -1, Err: ctx.Err()}
		}
	}()
	return out, nil
}
