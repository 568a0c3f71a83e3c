package docker

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/moby/moby/api/types/container"
)

// statsInterval is how often a stats stream samples, as dockerd's
// collector does; the CLI's CPU % is the change over one interval.
const statsInterval = time.Second

// routesStats: docker stats and docker top.
func (s *Server) routesStats() {
	s.handle("GET /containers/{name}/stats", s.containerStats)
	s.handle("GET /containers/{name}/top", s.containerTop)
}

// containerStats is GET /containers/{id}/stats: with stream (the default)
// a sample every second, each with the one before as "precpu"; without,
// one sample taken a second after a first (so the CPU % means something),
// or at once with one-shot.
func (s *Server) containerStats(w http.ResponseWriter, r *http.Request) error {
	c, err := s.e.Get(r.PathValue("name"))
	if err != nil {
		return err
	}
	stream := r.URL.Query().Get("stream") == "" || boolValue(r, "stream")
	oneShot := boolValue(r, "one-shot")
	ctx := r.Context()
	prev, err := s.e.ContainerStats(ctx, c.ID)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	send := func(v container.StatsResponse) bool {
		if enc.Encode(v) != nil {
			return false
		}
		flush(w)
		return true
	}
	running := !prev.Read.IsZero()
	if !stream && (oneShot || !running) {
		send(prev)
		return errResponded
	}
	if stream && !send(prev) {
		return errResponded
	}
	t := time.NewTicker(statsInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return errResponded
		case <-t.C:
		}
		cur, err := s.e.ContainerStats(ctx, c.ID)
		if err != nil {
			if _, gone := s.e.Get(c.ID); gone != nil {
				return errResponded // removed
			}
			s.cfg.Log.Debug("stats sample", "id", c.ID, "err", err)
			continue
		}
		if !cur.Read.IsZero() && !prev.Read.IsZero() {
			cur.PreRead, cur.PreCPUStats = prev.Read, prev.CPUStats
		}
		prev = cur
		if !send(cur) || !stream {
			return errResponded
		}
	}
}

func (s *Server) containerTop(w http.ResponseWriter, r *http.Request) error {
	top, err := s.e.Top(r.Context(), r.PathValue("name"), r.URL.Query().Get("ps_args"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, top)
}
