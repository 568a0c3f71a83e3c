package docker

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	registrytypes "github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/engine"
	"github.com/hako-project/hako/errdefs"
)

func (s *Server) routesSystem() {
	ping := func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Cache-Control", "no-cache, no-store, must-revalidate")
		w.Header().Set("Pragma", "no-cache")
		if r.Method == http.MethodHead {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Content-Length", "0")
			return nil
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, err := w.Write([]byte("OK"))
		return err
	}
	s.handle("GET /_ping", ping)
	s.handle("HEAD /_ping", ping)
	s.handle("GET /version", s.version)
	s.handle("GET /info", s.info)
	s.handle("GET /events", s.eventsStream)
	s.handle("GET /hako/traces/{id}", s.traceSpans)
}

func kernelVersion() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) error {
	v := system.VersionResponse{
		Platform:      struct{ Name string }{Name: "hako"},
		Version:       s.cfg.Version,
		APIVersion:    APIVersion,
		MinAPIVersion: MinAPIVersion,
		GoVersion:     runtime.Version(),
		Os:            runtime.GOOS,
		Arch:          runtime.GOARCH,
		KernelVersion: kernelVersion(),
		Components: []system.ComponentVersion{
			{Name: "Engine", Version: s.cfg.Version, Details: map[string]string{
				"ApiVersion": APIVersion, "MinAPIVersion": MinAPIVersion, "GoVersion": runtime.Version(),
				"Os": runtime.GOOS, "Arch": runtime.GOARCH, "KernelVersion": kernelVersion(),
			}},
		},
	}
	rts, def := s.e.Runtimes()
	v.Components = append(v.Components, system.ComponentVersion{Name: filepath.Base(rts[def]), Version: s.cfg.Version,
		Details: map[string]string{"Runtime": def, "Path": rts[def]}})
	return writeJSON(w, http.StatusOK, legacyVersion{VersionResponse: v, GitCommit: s.cfg.Version}) // legacy.go
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) error {
	var running, paused, stopped int
	for _, c := range s.e.List() {
		switch c.Snapshot().State.Status {
		case container.StateRunning:
			running++
		case container.StatePaused:
			paused++
		default:
			stopped++
		}
	}
	imgs, _ := s.e.Images().List(r.Context())
	host, _ := os.Hostname()
	var si unix.Sysinfo_t
	_ = unix.Sysinfo(&si)
	rts, def := s.e.Runtimes()
	runtimes := map[string]system.RuntimeWithStatus{}
	for name, path := range rts {
		runtimes[name] = system.RuntimeWithStatus{Runtime: system.Runtime{Path: path}}
	}
	cgroupVersion := "1"
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		cgroupVersion = "2"
	}
	info := system.Info{
		ID:                host,
		Containers:        running + paused + stopped,
		ContainersRunning: running,
		ContainersPaused:  paused,
		ContainersStopped: stopped,
		Images:            len(imgs),
		Driver:            "overlayfs",
		MemoryLimit:       true,
		SwapLimit:         true,
		CPUCfsPeriod:      true,
		CPUCfsQuota:       true,
		CPUShares:         true,
		CPUSet:            true,
		PidsLimit:         true,
		IPv4Forwarding:    ipForwarding(),
		Debug:             false,
		NFd:               openFDs(),
		NGoroutines:       runtime.NumGoroutine(),
		SystemTime:        time.Now().Format(time.RFC3339Nano),
		LoggingDriver:     "json-file",
		CgroupDriver:      "cgroupfs",
		CgroupVersion:     cgroupVersion,
		KernelVersion:     kernelVersion(),
		OperatingSystem:   osName(),
		OSType:            "linux",
		Architecture:      unameMachine(),
		NCPU:              runtime.NumCPU(),
		MemTotal:          int64(si.Totalram) * int64(si.Unit),
		DockerRootDir:     s.e.DataRoot(),
		Name:              host,
		ServerVersion:     s.cfg.Version,
		Runtimes:          runtimes,
		DefaultRuntime:    def,
		InitBinary:        "hako-init",
		SecurityOptions:   []string{"name=seccomp,profile=builtin"},
		Labels:            []string{},
		Swarm:             swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive},
		RegistryConfig:    registryConfig(s.cfg.InsecureRegistries, s.cfg.RegistryMirrors),
		// Containers always outlive hakod under their shims.
		LiveRestoreEnabled: true,
	}
	info.Plugins.Volume = volumePlugins() // volumes.go
	info.Plugins.Log = append([]string(nil), engine.LogDrivers...)
	return writeJSON(w, http.StatusOK, newLegacyInfo(info)) // legacy.go
}

// registryConfig is info's registry section as dockerd fills it: loopback
// is always insecure, insecure registries given as CIDRs join it and those
// given by name get an index entry, and Docker Hub lists the mirrors.
func registryConfig(insecure, mirrors []string) *registrytypes.ServiceConfig {
	rc := &registrytypes.ServiceConfig{
		InsecureRegistryCIDRs: []netip.Prefix{netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("127.0.0.0/8")},
		IndexConfigs:          map[string]*registrytypes.IndexInfo{},
		Mirrors:               []string{},
	}
	for _, m := range mirrors {
		if !strings.HasSuffix(m, "/") {
			m += "/"
		}
		rc.Mirrors = append(rc.Mirrors, m)
	}
	for _, r := range insecure {
		if p, err := netip.ParsePrefix(r); err == nil {
			rc.InsecureRegistryCIDRs = append(rc.InsecureRegistryCIDRs, p)
			continue
		}
		rc.IndexConfigs[r] = &registrytypes.IndexInfo{Name: r, Mirrors: []string{}, Secure: false}
	}
	rc.IndexConfigs["docker.io"] = &registrytypes.IndexInfo{Name: "docker.io", Mirrors: rc.Mirrors, Secure: true, Official: true}
	return rc
}

func ipForwarding() bool {
	b, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	return strings.TrimSpace(string(b)) == "1"
}

func openFDs() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}

func unameMachine() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return runtime.GOARCH
	}
	return unix.ByteSliceToString(u.Machine[:])
}

func osName() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "Linux"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "Linux"
}

// eventsStream is GET /events: past events since ?since, then new ones
// until ?until or the client leaves, filtered as docker filters them.
func (s *Server) eventsStream(w http.ResponseWriter, r *http.Request) error {
	since, err := timeValue(r, "since")
	if err != nil {
		return err
	}
	until, err := timeValue(r, "until")
	if err != nil {
		return err
	}
	if !since.IsZero() && !until.IsZero() && since.After(until) {
		q := r.URL.Query()
		return errdefs.Invalidf("`since` time (%s) cannot be after `until` time (%s)", q.Get("since"), q.Get("until"))
	}
	f, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	if since.IsZero() && !until.IsZero() {
		// As dockerd: a stream that ends (until) starts with the events
		// kept, not at the moment of the request.
		since = time.Unix(0, 1)
	}
	past, ch, cancel := s.e.Events().Subscribe(since)
	defer cancel()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flush(w)
	enc := json.NewEncoder(w)
	send := func(m events.Message) bool {
		if !until.IsZero() && m.TimeNano > until.UnixNano() {
			return false
		}
		if eventMatches(f, m) {
			if enc.Encode(withLegacyFields(m)) != nil {
				return false
			}
			flush(w)
		}
		return true
	}
	for _, m := range past {
		if !send(m) {
			return nil
		}
	}
	var deadline <-chan time.Time
	if !until.IsZero() {
		deadline = time.After(time.Until(until))
	}
	for {
		select {
		case m, ok := <-ch:
			if !ok || !send(m) {
				return nil
			}
		case <-deadline:
			return nil
		case <-r.Context().Done():
			return nil
		}
	}
}

// legacyEvent is an event with the fields API versions before 1.52 still
// carry, which dockerd 20.10 sends and the docker CLI shows in
// `events --format '{{json .}}'` and `{{.Status}}`: status (the action),
// id (the actor's) and, for containers, from (the image).
type legacyEvent struct {
	Status string `json:"status,omitempty"`
	ID     string `json:"id,omitempty"`
	From   string `json:"from,omitempty"`
	events.Message
}

func withLegacyFields(m events.Message) legacyEvent {
	e := legacyEvent{Message: m}
	switch m.Type {
	case events.ContainerEventType:
		e.Status, e.ID, e.From = string(m.Action), m.Actor.ID, m.Actor.Attributes["image"]
	case events.ImageEventType:
		e.Status, e.ID = string(m.Action), m.Actor.ID
	}
	return e
}

// traceSpans is GET /hako/traces/{id}: the spans hakod, the shims, the
// runtime and the containers' inits recorded for one trace.
func (s *Server) traceSpans(w http.ResponseWriter, r *http.Request) error {
	spans, err := s.e.Traces().Spans(r.PathValue("id"))
	if err != nil {
		return errdefs.NotFoundf("no trace %s", r.PathValue("id"))
	}
	return writeJSON(w, http.StatusOK, spans)
}
