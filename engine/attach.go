package engine

import (
	"context"
	"sync"

	"github.com/moby/moby/api/types/container"
)

// pendingAttach is an attach to a container that does not run yet; it is
// connected at the start, before the program runs, so no output is lost
// (docker run attaches first, then starts).
type pendingAttach struct {
	streams Streams
	ctx     context.Context
	done    chan error
	once    sync.Once
}

func (pa *pendingAttach) connect(ctx context.Context, t Task) {
	done, err := t.Attach(pa.ctx, pa.streams)
	if err != nil {
		pa.fail(err)
		return
	}
	go func() { pa.fail(<-done) }()
}

func (pa *pendingAttach) fail(err error) {
	pa.once.Do(func() { pa.done <- err })
}

// Attach connects streams to the container's stdio. For a container that
// is not running yet the attach waits for the next start. The returned
// channel delivers the end of the attach.
func (e *Engine) Attach(ctx context.Context, ref string, s Streams) (<-chan error, error) {
	c, err := e.Get(ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	task := c.task
	running := task != nil && (c.State.Status == container.StateRunning || c.State.Status == container.StatePaused)
	if !running {
		pa := &pendingAttach{streams: s, ctx: ctx, done: make(chan error, 1)}
		c.attach = append(c.attach, pa)
		c.mu.Unlock()
		go func() {
			// An attach whose client goes away before the start is dropped.
			<-ctx.Done()
			c.mu.Lock()
			for i, x := range c.attach {
				if x == pa {
					c.attach = append(c.attach[:i], c.attach[i+1:]...)
					break
				}
			}
			c.mu.Unlock()
			pa.fail(ctx.Err())
		}()
		return pa.done, nil
	}
	c.mu.Unlock()
	return task.Attach(ctx, s)
}

// Resize changes the size of the container's terminal.
func (e *Engine) Resize(ctx context.Context, ref string, height, width uint16) error {
	_, task, err := e.runningTask(ref)
	if err != nil {
		return err
	}
	return task.Resize(ctx, height, width)
}
