package cri

import (
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// eventHub fans container events out to GetContainerEvents streams
// (kubelet's evented PLEG). A stream that does not keep up loses events
// rather than stalling a container's lifecycle; kubelet relists then.
type eventHub struct {
	mu     sync.Mutex
	subs   map[chan *runtimeapi.ContainerEventResponse]struct{}
	closed bool
	// pending are events whose statuses are filled in by the sender.
	raw chan rawEvent
}

type rawEvent struct {
	containerID, podID string
	typ                runtimeapi.ContainerEventType
	at                 time.Time
}

func newEventHub() *eventHub {
	return &eventHub{subs: map[chan *runtimeapi.ContainerEventResponse]struct{}{}, raw: make(chan rawEvent, 1024)}
}

// emit queues an event; its pod and container statuses are read when it
// is sent, off the caller's path.
func (h *eventHub) emit(containerID, podID string, typ runtimeapi.ContainerEventType) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || len(h.subs) == 0 {
		return
	}
	select {
	case h.raw <- rawEvent{containerID, podID, typ, time.Now()}:
	default:
	}
}

func (h *eventHub) subscribe() (<-chan *runtimeapi.ContainerEventResponse, func()) {
	ch := make(chan *runtimeapi.ContainerEventResponse, 256)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		if _, ok := h.subs[ch]; ok {
			delete(h.subs, ch)
			close(ch)
		}
		h.mu.Unlock()
	}
}

func (h *eventHub) publish(ev *runtimeapi.ContainerEventResponse) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

func (h *eventHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	close(h.raw)
	for ch := range h.subs {
		delete(h.subs, ch)
		close(ch)
	}
}

// forwardEvents completes queued events with statuses and publishes them,
// and turns the engine's container exits into CONTAINER_STOPPED events.
func (s *Server) forwardEvents() {
	_, engineEvents, cancel := s.e.Events().Subscribe(time.Time{})
	defer cancel()
	for {
		select {
		case ev, ok := <-s.events.raw:
			if !ok {
				return
			}
			s.events.publish(s.eventResponse(ev))
		case m, ok := <-engineEvents:
			if !ok {
				return
			}
			if m.Action != "die" {
				continue
			}
			c, err := s.e.Get(m.Actor.ID)
			if err != nil {
				continue
			}
			rec := c.Snapshot()
			if rec.Extra[keyKind] == kindContainer {
				s.events.emit(rec.ID, rec.Sandbox, runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT)
			}
		}
	}
}

func (s *Server) eventResponse(ev rawEvent) *runtimeapi.ContainerEventResponse {
	resp := &runtimeapi.ContainerEventResponse{ContainerId: ev.containerID, ContainerEventType: ev.typ, CreatedAt: ev.at.UnixNano()}
	if sb, err := s.e.GetSandbox(ev.podID); err == nil {
		rec := sb.Snapshot()
		if cfg, err := s.podConfig(rec); err == nil {
			resp.PodSandboxStatus = &runtimeapi.PodSandboxStatus{Id: rec.ID, Metadata: cfg.GetMetadata(), State: sandboxState(rec),
				CreatedAt: rec.Created.UnixNano(), Labels: cfg.GetLabels(), Annotations: cfg.GetAnnotations(), RuntimeHandler: rec.Extra[keyRuntime]}
			if ips := podIPs(rec); len(ips) > 0 {
				resp.PodSandboxStatus.Network = &runtimeapi.PodSandboxNetworkStatus{Ip: ips[0]}
			}
		}
		for _, c := range s.podContainers(rec.ID) {
			if st, err := s.containerStatus(c); err == nil {
				resp.ContainersStatuses = append(resp.ContainersStatuses, st)
			}
		}
	}
	return resp
}

// GetContainerEvents streams container and sandbox lifecycle events until
// the client goes away.
func (s *Server) GetContainerEvents(req *runtimeapi.GetEventsRequest, stream runtimeapi.RuntimeService_GetContainerEventsServer) error {
	ch, cancel := s.events.subscribe()
	defer cancel()
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case ev, ok := <-ch:
			if !ok {
				return nil
			}
			if err := stream.Send(ev); err != nil {
				return err
			}
		}
	}
}
