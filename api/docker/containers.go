package docker

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/storage"

	"github.com/hako-project/hako/engine"
	"github.com/hako-project/hako/errdefs"
)

func (s *Server) routesContainers() {
	s.handle("POST /containers/create", s.containerCreate)
	s.handle("GET /containers/json", s.containerList)
	s.handle("GET /containers/{name}/json", s.containerInspect)
	s.handle("POST /containers/{name}/start", s.containerStart)
	s.handle("POST /containers/{name}/stop", s.containerStop)
	s.handle("POST /containers/{name}/restart", s.containerRestart)
	s.handle("POST /containers/{name}/kill", s.containerKill)
	s.handle("POST /containers/{name}/wait", s.containerWait)
	s.handle("DELETE /containers/{name}", s.containerRemove)
	s.handle("POST /containers/{name}/attach", s.containerAttach)
	s.handle("GET /containers/{name}/logs", s.containerLogs)
	s.handle("POST /containers/{name}/resize", s.containerResize)
	s.handle("POST /containers/{name}/pause", s.containerPause)
	s.handle("POST /containers/{name}/unpause", s.containerUnpause)
	s.handle("POST /containers/{name}/rename", s.containerRename)
}

func (s *Server) containerCreate(w http.ResponseWriter, r *http.Request) error {
	var req container.CreateRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Config == nil {
		return errdefs.Invalidf("config cannot be empty in order to create a container")
	}
	c, warnings, err := s.e.Create(r.Context(), engine.CreateRequest{
		Name: r.URL.Query().Get("name"), Config: req.Config, HostConfig: req.HostConfig, Networking: req.NetworkingConfig,
	})
	if err != nil {
		return err
	}
	if warnings == nil {
		warnings = []string{}
	}
	return writeJSON(w, http.StatusCreated, container.CreateResponse{ID: c.ID, Warnings: warnings})
}

func (s *Server) containerList(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	if err := validateContainerFilters(f); err != nil {
		return err
	}
	all, size := boolValue(r, "all"), boolValue(r, "size")
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	out := []container.Summary{}
	list := s.e.List()
	for _, c := range list {
		snap := c.Snapshot()
		running := snap.State.Status == container.StateRunning || snap.State.Status == container.StatePaused || snap.State.Status == container.StateRestarting
		if !all && !running && len(f["status"]) == 0 && len(f["exited"]) == 0 && limit <= 0 {
			continue
		}
		if !containerMatches(f, snap, list) {
			continue
		}
		sm := summary(snap)
		s.summaryNetworks(&sm, snap) // networks.go
		if size {
			// ps -s
			sm.SizeRw, sm.SizeRootFs = s.e.ContainerSizes(r.Context(), snap)
		}
		out = append(out, sm)
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

func summary(c engine.Record) container.Summary {
	sm := container.Summary{
		ID: c.ID, Names: []string{"/" + c.Name}, Image: c.Image, ImageID: c.ImageID,
		Command: commandLine(c.Path, c.Args), Created: c.Created.Unix(), Labels: c.Config.Labels,
		State: c.State.Status, Status: statusText(c.State), Ports: []container.PortSummary{},
		Mounts: c.Mounts,
	}
	if sm.Labels == nil {
		sm.Labels = map[string]string{}
	}
	if sm.Mounts == nil {
		sm.Mounts = []container.MountPoint{}
	}
	sm.HostConfig.NetworkMode = string(c.HostConfig.NetworkMode)
	sm.NetworkSettings = &container.NetworkSettingsSummary{Networks: map[string]*network.EndpointSettings{}}
	return sm
}

// commandLine is the command as docker ps shows it.
func commandLine(path string, args []string) string {
	parts := append([]string{path}, args...)
	return strings.Join(parts, " ")
}

// statusText is docker ps's STATUS column: "Up 3 minutes", "Exited (0) 2
// seconds ago", "Created".
func statusText(s engine.State) string {
	switch s.Status {
	case container.StateRunning:
		return "Up " + humanDuration(time.Since(s.StartedAt)) + healthText(s.Health)
	case container.StatePaused:
		return "Up " + humanDuration(time.Since(s.StartedAt)) + " (Paused)"
	case container.StateRestarting:
		return fmt.Sprintf("Restarting (%d) %s ago", s.ExitCode, humanDuration(time.Since(s.FinishedAt)))
	case container.StateExited:
		return fmt.Sprintf("Exited (%d) %s ago", s.ExitCode, humanDuration(time.Since(s.FinishedAt)))
	case container.StateRemoving:
		return "Removal In Progress"
	case container.StateDead:
		return "Dead"
	}
	return "Created"
}

// humanDuration is docker's (go-units) wording of a duration.
func humanDuration(d time.Duration) string {
	switch sec := int(d.Seconds()); {
	case sec < 1:
		return "Less than a second"
	case sec == 1:
		return "1 second"
	case sec < 60:
		return fmt.Sprintf("%d seconds", sec)
	}
	switch min := int(d.Minutes()); {
	case min == 1:
		return "About a minute"
	case min < 60:
		return fmt.Sprintf("%d minutes", min)
	}
	switch h := int(d.Hours() + 0.5); {
	case h == 1:
		return "About an hour"
	case h < 48:
		return fmt.Sprintf("%d hours", h)
	case h < 24*7*2:
		return fmt.Sprintf("%d days", h/24)
	case h < 24*30*2:
		return fmt.Sprintf("%d weeks", h/24/7)
	case h < 24*365*2:
		return fmt.Sprintf("%d months", h/24/30)
	default:
		return fmt.Sprintf("%d years", int(d.Hours())/24/365)
	}
}

func (s *Server) containerInspect(w http.ResponseWriter, r *http.Request) error {
	c, err := s.e.Get(r.PathValue("name"))
	if err != nil {
		return err
	}
	resp := s.inspect(c.Snapshot())
	if boolValue(r, "size") { // inspect -s
		rw, rootfs := s.e.ContainerSizes(r.Context(), c.Snapshot())
		resp.SizeRw, resp.SizeRootFs = &rw, &rootfs
	}
	return writeJSON(w, http.StatusOK, newLegacyContainerInspect(resp, s.defaultBridge())) // legacy.go
}

// defaultBridge is the default network's bridge interface ("" without one).
func (s *Server) defaultBridge() string {
	if s.e.Networks() == nil {
		return ""
	}
	n, _ := s.e.Networks().Default()
	return n.Bridge
}

func timeString(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func (s *Server) inspect(c engine.Record) container.InspectResponse {
	dir, run := filepath.Join(s.e.DataRoot(), "containers", c.ID), s.e.RunDir(c.ID)
	st := c.State
	state := &container.State{
		Status: st.Status, Running: st.Status == container.StateRunning || st.Status == container.StatePaused,
		Paused: st.Status == container.StatePaused, Restarting: st.Status == container.StateRestarting,
		OOMKilled: st.OOMKilled, Dead: st.Status == container.StateDead, Pid: st.Pid, ExitCode: st.ExitCode,
		Error: st.Error, StartedAt: timeString(st.StartedAt), FinishedAt: timeString(st.FinishedAt), Health: st.Health,
	}
	mounts := c.Mounts
	if mounts == nil {
		mounts = []container.MountPoint{}
	}
	cfg := *c.Config
	if cfg.Hostname == "" {
		cfg.Hostname = c.ID[:12]
	}
	return container.InspectResponse{
		ID: c.ID, Created: timeString(c.Created), Path: c.Path, Args: nonNil(c.Args), State: state,
		Image: c.ImageID, ResolvConfPath: filepath.Join(run, "resolv.conf"), HostnamePath: filepath.Join(run, "hostname"),
		HostsPath: filepath.Join(run, "hosts"), LogPath: filepath.Join(dir, c.ID+"-json.log"), Name: "/" + c.Name,
		RestartCount: st.RestartCount, Driver: "overlayfs", Platform: "linux", ExecIDs: s.e.ExecIDs(c.ID), HostConfig: c.HostConfig,
		GraphDriver: &storage.DriverData{Name: "overlayfs", Data: map[string]string{}},
		Mounts:      mounts, Config: &cfg,
		NetworkSettings: s.e.NetworkSettings(c), // engine/network.go
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (s *Server) containerStart(w http.ResponseWriter, r *http.Request) error {
	c, err := s.e.Get(r.PathValue("name"))
	if err != nil {
		return err
	}
	if c.Snapshot().State.Status == container.StateRunning {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	if err := s.e.Start(r.Context(), c.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// timeoutParam reads ?t= (seconds; nil when absent).
func timeoutParam(r *http.Request) (*int, error) {
	v := r.URL.Query().Get("t")
	if v == "" {
		v = r.URL.Query().Get("timeout")
	}
	if v == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return nil, errdefs.Invalidf("invalid value for t: %q", v)
	}
	return &n, nil
}

func (s *Server) containerStop(w http.ResponseWriter, r *http.Request) error {
	t, err := timeoutParam(r)
	if err != nil {
		return err
	}
	c, err := s.e.Get(r.PathValue("name"))
	if err != nil {
		return err
	}
	st := c.SettledSnapshot().State.Status
	if st != container.StateRunning && st != container.StatePaused && st != container.StateRestarting {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	if err := s.e.Stop(r.Context(), c.ID, r.URL.Query().Get("signal"), t); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerRestart(w http.ResponseWriter, r *http.Request) error {
	t, err := timeoutParam(r)
	if err != nil {
		return err
	}
	if err := s.e.Restart(r.Context(), r.PathValue("name"), r.URL.Query().Get("signal"), t); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerKill(w http.ResponseWriter, r *http.Request) error {
	if err := s.e.Kill(r.Context(), r.PathValue("name"), r.URL.Query().Get("signal")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// containerWait sends the headers at once (the docker CLI opens its wait
// before it starts the container) and the exit code when it comes.
func (s *Server) containerWait(w http.ResponseWriter, r *http.Request) error {
	cond := container.WaitCondition(r.URL.Query().Get("condition"))
	switch cond {
	case "", container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionRemoved:
	default:
		return errdefs.Invalidf("invalid condition: %q", cond)
	}
	ch, err := s.e.Wait(r.Context(), r.PathValue("name"), cond)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flush(w)
	res := <-ch
	resp := container.WaitResponse{StatusCode: int64(res.ExitCode)}
	if res.Err != nil {
		if r.Context().Err() != nil {
			return errResponded // the client left
		}
		resp.Error = &container.WaitExitError{Message: res.Err.Error()}
	}
	return writeJSONBody(w, resp)
}

func (s *Server) containerRemove(w http.ResponseWriter, r *http.Request) error {
	remove := s.e.Remove
	if boolValue(r, "v") {
		remove = s.e.RemoveWithVolumes
	}
	if err := remove(r.Context(), r.PathValue("name"), boolValue(r, "force")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// containerAttach hijacks the connection and joins it to the container's
// stdio (multiplexed unless the container has a terminal).
func (s *Server) containerAttach(w http.ResponseWriter, r *http.Request) error {
	c, err := s.e.Get(r.PathValue("name"))
	if err != nil {
		return err
	}
	snap := c.Snapshot()
	tty := snap.Config.Tty
	// The attach is registered before the client is answered: the docker
	// CLI sends its start once answered, and an attach registered after
	// that start could miss the output (a run --rm printed nothing, once
	// in CI). Output written before the answer waits for it (hijacked).
	hc, err := takeOver(w)
	if err != nil {
		return err
	}
	defer hc.end()
	answered := false
	answer := func() bool {
		if answered {
			return true
		}
		answered = true
		return hc.answer(w, r) == nil
	}
	stdout, stderr := outputs(hc, tty, nil)
	var streams engine.Streams
	if boolValue(r, "stdin") && snap.Config.OpenStdin {
		keys, err := parseDetachKeys(r.URL.Query().Get("detachKeys"))
		if err != nil {
			if answer() {
				_, _ = stderr.Write([]byte(err.Error() + "\n"))
			}
			return errResponded
		}
		// As docker's: the keys detach only a terminal's session. Without
		// one stdin is data, passed on whatever its bytes (ctrl-p ctrl-q
		// turns up about once in 64 KiB of binary input).
		if tty {
			streams.Stdin = &detachReader{r: hc, keys: keys}
		} else {
			streams.Stdin = hc
		}
	}
	if boolValue(r, "stdout") {
		streams.Stdout = stdout
	}
	if boolValue(r, "stderr") {
		streams.Stderr = stderr
	}
	if logs, stream := boolValue(r, "logs"), boolValue(r, "stream"); logs || !stream {
		// The log first, answered at once (no start waits on these).
		if !answer() {
			return errResponded
		}
		if logs {
			_ = s.e.Logs(r.Context(), c.ID, engine.LogsOptions{Stdout: streams.Stdout != nil, Stderr: streams.Stderr != nil, Tail: -1},
				func(le engine.LogEntry) error { return writeEntry(streams, le) })
		}
		if !stream {
			return errResponded
		}
	}
	// The attach ends with the container's output, or when a write to a
	// client that hung up fails. (A read returning EOF only means the client
	// closed its sending side, which the docker CLI does when it has no
	// stdin to send.)
	ctx := context.WithoutCancel(r.Context())
	done, err := s.e.Attach(ctx, c.ID, streams)
	if !answer() {
		return errResponded // the client left: writes fail, the attach ends
	}
	if err != nil {
		_, _ = stderr.Write([]byte(err.Error() + "\n"))
		return errResponded
	}
	<-done
	return errResponded
}

func writeEntry(s engine.Streams, le engine.LogEntry) error {
	out := s.Stdout
	if le.Stream == "stderr" {
		out = s.Stderr
	}
	if out == nil {
		return nil
	}
	_, err := out.Write(le.Line)
	return err
}

func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request) error {
	c, err := s.e.Get(r.PathValue("name"))
	if err != nil {
		return err
	}
	o := engine.LogsOptions{Stdout: boolValue(r, "stdout"), Stderr: boolValue(r, "stderr"), Follow: boolValue(r, "follow"), Tail: -1}
	if !o.Stdout && !o.Stderr {
		return errdefs.Invalidf("Bad parameters: you must choose at least one stream")
	}
	// As dockerd: a tail that is not a number of lines, or is negative,
	// means all of them.
	if n, err := strconv.Atoi(r.URL.Query().Get("tail")); err == nil && n >= 0 {
		o.Tail = n
	}
	if o.Since, err = timeValue(r, "since"); err != nil {
		return err
	}
	if o.Until, err = timeValue(r, "until"); err != nil {
		return err
	}
	timestamps, details := boolValue(r, "timestamps"), boolValue(r, "details")
	if err := s.e.LogsReadable(c); err != nil {
		return err // before the 200: --log-driver none
	}
	w.WriteHeader(http.StatusOK)
	flush(w)
	stdout, stderr := outputs(w, c.Snapshot().Config.Tty, func() { flush(w) })
	streams := engine.Streams{Stdout: stdout, Stderr: stderr}
	_ = s.e.Logs(r.Context(), c.ID, o, func(le engine.LogEntry) error {
		if details {
			// The entry's attributes (--log-opt labels, env, tag), as
			// dockerd: "k=v,k2=v2 " sorted by key, query-escaped.
			le.Line = append(append(attrsPrefix(le.Attrs), ' '), le.Line...)
		}
		if timestamps {
			le.Line = append([]byte(le.Time.UTC().Format(time.RFC3339Nano)+" "), le.Line...)
		}
		return writeEntry(streams, le)
	})
	return errResponded
}

// attrsPrefix is a log entry's attributes as `logs --details` shows them.
func attrsPrefix(attrs map[string]string) []byte {
	var b []byte
	for i, k := range slices.Sorted(maps.Keys(attrs)) {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, url.QueryEscape(k)+"="+url.QueryEscape(attrs[k])...)
	}
	return b
}

func dims(r *http.Request) (uint16, uint16, error) {
	h, err1 := strconv.ParseUint(r.URL.Query().Get("h"), 10, 16)
	wd, err2 := strconv.ParseUint(r.URL.Query().Get("w"), 10, 16)
	if err1 != nil || err2 != nil {
		return 0, 0, errdefs.Invalidf("invalid terminal size h=%q w=%q", r.URL.Query().Get("h"), r.URL.Query().Get("w"))
	}
	return uint16(h), uint16(wd), nil
}

func (s *Server) containerResize(w http.ResponseWriter, r *http.Request) error {
	h, wd, err := dims(r)
	if err != nil {
		return err
	}
	if err := s.e.Resize(r.Context(), r.PathValue("name"), h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) containerPause(w http.ResponseWriter, r *http.Request) error {
	if err := s.e.Pause(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerUnpause(w http.ResponseWriter, r *http.Request) error {
	if err := s.e.Unpause(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerRename(w http.ResponseWriter, r *http.Request) error {
	if err := s.e.Rename(r.PathValue("name"), r.URL.Query().Get("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// writeJSONBody encodes v after the headers were sent.
func writeJSONBody(w http.ResponseWriter, v any) error {
	b, err := jsonMarshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	flush(w)
	return errRespondedIf(err)
}

func errRespondedIf(err error) error {
	if err != nil {
		return err
	}
	return errResponded
}
