// Package docker serves the Docker Engine API over HTTP on top of the engine,
// so that the docker CLI, docker compose and Docker SDKs drive hakod as they
// drive dockerd. JSON bodies use docker's own types (github.com/moby/moby/api)
// so they match docker's byte for byte where it matters. One file per route
// group: containers.go, exec.go, images.go, system.go, archive.go (cp,
// export, diff), stats.go (stats, top), commit.go (commit, update),
// prune.go (prune, df), networks.go.
package docker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/hako-project/hako/engine"
	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/image/registry"
	"github.com/hako-project/hako/trace"
)

// APIVersion is the newest API version hakod implements: docker 20.10's.
// The docker CLI negotiates down to it.
const APIVersion = "1.41"

// MinAPIVersion is the oldest API version accepted.
const MinAPIVersion = "1.24"

// Config carries what the API reports about the daemon.
type Config struct {
	Version  string // hakod's version
	Registry *registry.Client
	Log      *slog.Logger
	// BuildDefaultImage builds the offline default image (hako.local/...)
	// when a pull asks for it.
	BuildDefaultImage func(ctx context.Context) error
	// InsecureRegistries and RegistryMirrors are hakod's registry
	// settings, as info reports them.
	InsecureRegistries []string
	RegistryMirrors    []string
	// TraceAll traces requests that carry no traceparent too, each in a
	// new trace, so that an OTLP exporter sees every request down to the
	// runtime and not only those of clients that trace.
	TraceAll bool
}

// Server is the Docker Engine API.
type Server struct {
	e   *engine.Engine
	cfg Config
	mux *http.ServeMux
}

// New returns the API handler for e.
func New(e *engine.Engine, cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	s := &Server{e: e, cfg: cfg, mux: http.NewServeMux()}
	s.routesSystem()
	s.routesContainers()
	s.routesExec()
	s.routesImages()
	s.routesVolumes()
	s.routesArchive()
	s.routesStats()
	s.routesCommit()
	s.routesPrune()
	s.routesNetworks()
	return s
}

// ServeHTTP strips the /vX.Y prefix, checks the version, sets docker's
// headers, and starts the request's span when the client traces (or when
// the daemon traces every request: Config.TraceAll).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	version := APIVersion
	if p := r.URL.Path; strings.HasPrefix(p, "/v") {
		if i := strings.IndexByte(p[1:], '/'); i > 0 {
			v := p[2 : i+1]
			if isVersion(v) {
				version = v
				r.URL.Path = p[i+1:]
				r.URL.RawPath = ""
			}
		}
	}
	h := w.Header()
	h.Set("Api-Version", APIVersion)
	h.Set("Docker-Experimental", "false")
	h.Set("Ostype", "linux")
	h.Set("Server", "hako/"+s.cfg.Version+" ("+runtime.GOOS+")")
	if compareVersions(version, APIVersion) > 0 {
		writeError(w, errdefs.Invalidf("client version %s is too new. Maximum supported API version is %s", version, APIVersion))
		return
	}
	if compareVersions(version, MinAPIVersion) < 0 {
		writeError(w, errdefs.Invalidf("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", version, MinAPIVersion))
		return
	}
	ctx := r.Context()
	if tp := r.Header.Get("traceparent"); tp != "" || s.cfg.TraceAll {
		tr, f, err := s.e.Traces().Open(tp)
		if tr == nil && s.cfg.TraceAll {
			// No traceparent, or one we could not use: a trace of our own.
			tr, f, err = s.e.Traces().OpenNew()
		}
		if err == nil && tr != nil {
			// Open while what the request set going in the background
			// writes its spans (engine.Traces.Hold).
			defer s.e.Traces().CloseWhenIdle(tr.TraceID(), f)
			var span *trace.Span
			ctx, span = trace.Start(trace.WithTracer(ctx, tr), "api.docker.request", "method", r.Method, "path", r.URL.Path)
			sw := &statusWriter{ResponseWriter: w, status: 200}
			w = sw
			defer func() {
				span.SetAttr("status", strconv.Itoa(sw.status))
				span.End(nil)
			}()
		}
	}
	s.mux.ServeHTTP(w, r.WithContext(ctx))
}

// statusWriter remembers the status for the request's span.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) { w.status = code; w.ResponseWriter.WriteHeader(code) }
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func isVersion(v string) bool {
	maj, min, ok := strings.Cut(v, ".")
	_, e1 := strconv.Atoi(maj)
	_, e2 := strconv.Atoi(min)
	return ok && e1 == nil && e2 == nil
}

func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < 2; i++ {
		x, _ := strconv.Atoi(pa[i])
		y, _ := strconv.Atoi(pb[i])
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// handle registers a route; the handler's error becomes docker's error body.
func (s *Server) handle(pattern string, h func(w http.ResponseWriter, r *http.Request) error) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			if !errors.Is(err, errResponded) {
				s.cfg.Log.Debug("api error", "method", r.Method, "path", r.URL.Path, "err", err)
				writeError(w, err)
			}
		}
	})
}

// errResponded: the handler already wrote (part of) its answer.
var errResponded = errors.New("response already written")

// statusOf maps an error class to docker's status code.
func statusOf(err error) int {
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, errdefs.ErrConflict), errors.Is(err, errdefs.ErrAlreadyExists):
		return http.StatusConflict
	case errors.Is(err, errdefs.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, errdefs.ErrNotImplemented):
		return http.StatusNotImplemented
	case errors.Is(err, errdefs.ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, errdefs.ErrUnavailable):
		return http.StatusServiceUnavailable
	case errors.Is(err, errdefs.ErrForbidden):
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

func writeError(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(statusOf(err))
	_ = json.NewEncoder(w).Encode(map[string]string{"message": err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// decode reads a JSON body; an empty body leaves v as it is.
func decode(r *http.Request, v any) error {
	if r.Body == nil {
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return errdefs.Invalidf("invalid JSON: %s", err.Error())
	}
	return nil
}

// boolValue reads a query flag as docker does: 1, true, True, yes...
func boolValue(r *http.Request, k string) bool {
	v := strings.ToLower(strings.TrimSpace(r.URL.Query().Get(k)))
	return v != "" && v != "0" && v != "false" && v != "no" && v != "none"
}

// timeValue reads a time query parameter: Unix seconds (with fraction) or
// RFC 3339.
func timeValue(r *http.Request, k string) (time.Time, error) {
	v := r.URL.Query().Get(k)
	if v == "" {
		return time.Time{}, nil
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-d), nil
	}
	return time.Time{}, errdefs.Invalidf("invalid value for %s: %q", k, v)
}

func flush(w http.ResponseWriter) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}
