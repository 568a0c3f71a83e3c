package engine

import (
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
)

// Events fans the engine's events out to subscribers (docker's /events) and
// keeps the most recent ones for --since.
type Events struct {
	mu     sync.Mutex
	subs   map[chan events.Message]struct{}
	recent []events.Message
}

const recentEvents = 1024

func newEvents() *Events { return &Events{subs: map[chan events.Message]struct{}{}} }

// Subscribe returns past events since the given time and a channel of new
// ones; call the cancel function when done.
func (ev *Events) Subscribe(since time.Time) ([]events.Message, <-chan events.Message, func()) {
	ch := make(chan events.Message, 256)
	ev.mu.Lock()
	var past []events.Message
	if !since.IsZero() {
		for _, m := range ev.recent {
			if m.TimeNano >= since.UnixNano() {
				past = append(past, m)
			}
		}
	}
	ev.subs[ch] = struct{}{}
	ev.mu.Unlock()
	return past, ch, func() {
		ev.mu.Lock()
		if _, ok := ev.subs[ch]; ok {
			delete(ev.subs, ch)
			close(ch)
		}
		ev.mu.Unlock()
	}
}

// Emit publishes an event; a subscriber that does not keep up loses it
// rather than stalling the engine.
func (ev *Events) Emit(m events.Message) {
	now := time.Now()
	if m.Time == 0 {
		m.Time, m.TimeNano = now.Unix(), now.UnixNano()
	}
	ev.mu.Lock()
	ev.recent = append(ev.recent, m)
	if len(ev.recent) > recentEvents {
		ev.recent = ev.recent[len(ev.recent)-recentEvents:]
	}
	for ch := range ev.subs {
		select {
		case ch <- m:
		default:
		}
	}
	ev.mu.Unlock()
}

func (ev *Events) emitContainer(c *Container, action string, extra map[string]string) {
	c.mu.Lock()
	attrs := map[string]string{"name": c.Name, "image": c.Image}
	if c.Config != nil {
		for k, v := range c.Config.Labels {
			attrs[k] = v
		}
	}
	id := c.ID
	c.mu.Unlock()
	for k, v := range extra {
		attrs[k] = v
	}
	ev.Emit(events.Message{
		Type: events.ContainerEventType, Action: events.Action(action), Scope: "local",
		Actor: events.Actor{ID: id, Attributes: attrs},
	})
}

// EmitImage publishes an image event (pull, tag, untag, delete, import, load, save).
func (ev *Events) EmitImage(action, ref string, extra map[string]string) {
	attrs := map[string]string{"name": ref}
	for k, v := range extra {
		attrs[k] = v
	}
	ev.Emit(events.Message{Type: events.ImageEventType, Action: events.Action(action), Scope: "local",
		Actor: events.Actor{ID: strings.TrimSpace(ref), Attributes: attrs}})
}
