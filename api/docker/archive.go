package docker

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"

	"github.com/hako-project/hako/engine"
	"github.com/hako-project/hako/errdefs"
)

// routesArchive: docker cp (the archive endpoints), export and diff.
func (s *Server) routesArchive() {
	s.handle("HEAD /containers/{name}/archive", s.archiveStat)
	s.handle("GET /containers/{name}/archive", s.archiveGet)
	s.handle("PUT /containers/{name}/archive", s.archivePut)
	s.handle("GET /containers/{name}/export", s.containerExport)
	s.handle("GET /containers/{name}/changes", s.containerChanges)
}

// pathStatHeader is where docker puts a path's stat: base64 of its JSON.
const pathStatHeader = "X-Docker-Container-Path-Stat"

func setPathStat(w http.ResponseWriter, st engine.PathStat) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	w.Header().Set(pathStatHeader, base64.StdEncoding.EncodeToString(b))
	return nil
}

func archivePath(r *http.Request) (string, error) {
	p := r.URL.Query().Get("path")
	if p == "" {
		return "", errdefs.Invalidf("path is required")
	}
	return p, nil
}

func (s *Server) archiveStat(w http.ResponseWriter, r *http.Request) error {
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	st, err := s.e.StatPath(r.Context(), r.PathValue("name"), p)
	if err != nil {
		return err
	}
	if err := setPathStat(w, st); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) archiveGet(w http.ResponseWriter, r *http.Request) error {
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	started := false
	err = s.e.ArchivePath(r.Context(), r.PathValue("name"), p, func(st engine.PathStat) io.Writer {
		started = true
		_ = setPathStat(w, st)
		w.Header().Set("Content-Type", "application/x-tar")
		w.WriteHeader(http.StatusOK)
		return w
	})
	if started {
		if err != nil {
			s.cfg.Log.Warn("archive of a container path broke off", "path", p, "err", err)
		}
		return errResponded
	}
	return err
}

func (s *Server) archivePut(w http.ResponseWriter, r *http.Request) error {
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	err = s.e.ExtractToDir(r.Context(), r.PathValue("name"), p, r.Body, engine.ExtractOptions{
		NoOverwriteDirNonDir: boolValue(r, "noOverwriteDirNonDir"), CopyUIDGID: boolValue(r, "copyUIDGID"),
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) containerExport(w http.ResponseWriter, r *http.Request) error {
	started := false
	err := s.e.Export(r.Context(), r.PathValue("name"), func() io.Writer {
		started = true
		w.Header().Set("Content-Type", "application/x-tar")
		w.WriteHeader(http.StatusOK)
		return w
	})
	if started {
		if err != nil {
			s.cfg.Log.Warn("export broke off", "container", r.PathValue("name"), "err", err)
		}
		return errResponded
	}
	return err
}

func (s *Server) containerChanges(w http.ResponseWriter, r *http.Request) error {
	changes, err := s.e.Changes(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, changes)
}
