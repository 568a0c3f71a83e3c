package docker

import (
	"context"
	"net/http"

	"github.com/moby/moby/api/types/container"

	"github.com/hako-project/hako/engine"
	"github.com/hako-project/hako/errdefs"
)

func (s *Server) routesExec() {
	s.handle("POST /containers/{name}/exec", s.execCreate)
	s.handle("POST /exec/{id}/start", s.execStart)
	s.handle("POST /exec/{id}/resize", s.execResize)
	s.handle("GET /exec/{id}/json", s.execInspect)
}

func (s *Server) execCreate(w http.ResponseWriter, r *http.Request) error {
	var req container.ExecCreateRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	keys, err := parseDetachKeys(req.DetachKeys)
	if err != nil {
		return errdefs.Invalidf("Invalid escape keys (%s) provided", req.DetachKeys)
	}
	id, err := s.e.ExecCreate(r.Context(), r.PathValue("name"), engine.ExecConfig{
		Cmd: req.Cmd, Env: req.Env, User: req.User, WorkingDir: req.WorkingDir, Tty: req.Tty,
		AttachStdin: req.AttachStdin, AttachStdout: req.AttachStdout, AttachStderr: req.AttachStderr,
		Privileged: req.Privileged, DetachKeys: keys,
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, container.ExecCreateResponse{ID: id})
}

// execStart runs the exec on a hijacked connection (or detached).
func (s *Server) execStart(w http.ResponseWriter, r *http.Request) error {
	var req container.ExecStartRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	id := r.PathValue("id")
	st, err := s.e.ExecInspect(id)
	if err != nil {
		return err
	}
	var h, wd uint16
	if cs := req.ConsoleSize; cs != nil {
		h, wd = uint16(cs[0]), uint16(cs[1])
	}
	if req.Detach {
		if err := s.e.ExecStart(context.WithoutCancel(r.Context()), id, engine.Streams{}, true, h, wd); err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, struct{}{})
	}
	hc, err := hijack(w, r)
	if err != nil {
		return err
	}
	defer hc.end()
	stdout, stderr := outputs(hc.conn, st.Config.Tty, nil)
	streams := engine.Streams{Stdin: hc}
	if st.Config.Tty {
		// The exec's detach keys end this session and leave the process
		// running, as docker's do; only with a terminal (containerAttach).
		streams.Stdin = &detachReader{r: hc, keys: st.Config.DetachKeys}
	}
	if st.Config.AttachStdout {
		streams.Stdout = stdout
	}
	if st.Config.AttachStderr {
		streams.Stderr = stderr
	}
	if err := s.e.ExecStart(context.WithoutCancel(r.Context()), id, streams, false, h, wd); err != nil {
		_, _ = stderr.Write([]byte(err.Error() + "\n"))
	}
	return errResponded
}

func (s *Server) execResize(w http.ResponseWriter, r *http.Request) error {
	h, wd, err := dims(r)
	if err != nil {
		return err
	}
	if err := s.e.ExecResize(r.Context(), r.PathValue("id"), h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) execInspect(w http.ResponseWriter, r *http.Request) error {
	st, err := s.e.ExecInspect(r.PathValue("id"))
	if err != nil {
		return err
	}
	resp := container.ExecInspectResponse{
		ID: st.ID, ContainerID: st.ContainerID, Running: st.Running, Pid: st.Pid, CanRemove: st.CanRemove,
		OpenStdin: st.Config.AttachStdin, OpenStdout: st.Config.AttachStdout, OpenStderr: st.Config.AttachStderr,
		ProcessConfig: &container.ExecProcessConfig{Tty: st.Config.Tty, Privileged: &st.Config.Privileged, User: st.Config.User},
	}
	if len(st.Config.Cmd) > 0 {
		resp.ProcessConfig.Entrypoint = st.Config.Cmd[0]
		resp.ProcessConfig.Arguments = st.Config.Cmd[1:]
	}
	if st.ExitCode != nil {
		resp.ExitCode = st.ExitCode
	}
	return writeJSON(w, http.StatusOK, resp)
}
