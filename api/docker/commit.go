package docker

import (
	"net/http"

	"github.com/moby/moby/api/types/common"
	"github.com/moby/moby/api/types/container"

	"github.com/hako-project/hako/engine"
	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/image/reference"
)

// routesCommit: docker commit and docker update.
func (s *Server) routesCommit() {
	s.handle("POST /commit", s.commit)
	s.handle("POST /containers/{name}/update", s.containerUpdate)
}

// commit is POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=
// with the config overrides as its body.
func (s *Server) commit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var cfg *container.Config
	if err := decode(r, &cfg); err != nil {
		return err
	}
	ref := q.Get("repo")
	if ref != "" {
		if tag := q.Get("tag"); tag != "" {
			ref += ":" + tag
		}
		if _, err := reference.Parse(ref); err != nil {
			return errdefs.Invalidf("invalid reference format")
		}
	}
	pause := q.Get("pause") == "" || boolValue(r, "pause")
	id, err := s.e.Commit(r.Context(), q.Get("container"), engine.CommitRequest{
		Ref: ref, Author: q.Get("author"), Comment: q.Get("comment"), Changes: q["changes"], Config: cfg, Pause: pause,
	})
	if err != nil {
		return err
	}
	if ref != "" {
		s.e.Events().EmitImage("tag", ref, nil)
	}
	return writeJSON(w, http.StatusCreated, common.IDResponse{ID: id})
}

func (s *Server) containerUpdate(w http.ResponseWriter, r *http.Request) error {
	var u container.UpdateConfig
	if err := decode(r, &u); err != nil {
		return err
	}
	warnings, err := s.e.UpdateContainer(r.Context(), r.PathValue("name"), u)
	if err != nil {
		return err
	}
	if warnings == nil {
		warnings = []string{}
	}
	return writeJSON(w, http.StatusOK, container.UpdateResponse{Warnings: warnings})
}
