package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hako-project/hako/cli/clitrace"
	"github.com/hako-project/hako/trace"
	"github.com/moby/moby/client"
)

func TestResolveHost(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, c := range []struct {
		flag string
		env  map[string]string
		want string
	}{
		{"", nil, DefaultHost},
		{"", map[string]string{"DOCKER_HOST": "unix:///d.sock"}, "unix:///d.sock"},
		{"", map[string]string{"DOCKER_HOST": "unix:///d.sock", "HAKO_HOST": "unix:///h.sock"}, "unix:///h.sock"},
		{"unix:///f.sock", map[string]string{"HAKO_HOST": "unix:///h.sock"}, "unix:///f.sock"},
		{"tcp://127.0.0.1", nil, "tcp://127.0.0.1:2375"},
		{"tcp://127.0.0.1:1234", nil, "tcp://127.0.0.1:1234"},
		{"unix://", nil, DefaultHost},
	} {
		got, err := ResolveHost(c.flag, env(c.env))
		if err != nil || got != c.want {
			t.Errorf("ResolveHost(%q, %v) = %q, %v; want %q", c.flag, c.env, got, err, c.want)
		}
	}
}

func TestNormalizeHostBadInput(t *testing.T) {
	for _, h := range []string{"/var/run/docker.sock", "ssh://host", "unix://relative.sock", "tcp://", "npipe:////./pipe/x"} {
		if _, err := NormalizeHost(h); err == nil {
			t.Errorf("NormalizeHost(%q) accepted", h)
		}
	}
}

// fakeDaemon serves a unix socket with handler and returns its host.
func fakeDaemon(t *testing.T, handler http.Handler) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "d.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "unix://" + sock
}

func TestDaemonSpansAndTraceparent(t *testing.T) {
	var gotParent string
	mux := http.NewServeMux()
	mux.HandleFunc("/_ping", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		w.Write([]byte("OK"))
	})
	mux.HandleFunc("/v1.41/version", func(w http.ResponseWriter, r *http.Request) {
		gotParent = r.Header.Get("traceparent")
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"Version":"x","ApiVersion":"1.41"}`))
	})
	mux.HandleFunc("/v1.41/hako/traces/", func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimPrefix(r.URL.Path, "/v1.41/hako/traces/")
		json.NewEncoder(w).Encode([]trace.SpanData{{TraceID: id, SpanID: "00000000000000aa", Name: "engine.create"}})
	})
	host := fakeDaemon(t, mux)
	c, err := New(host, "test")
	if err != nil {
		t.Fatal(err)
	}
	if c.Used() {
		t.Fatal("no request yet")
	}
	ctx, sess, err := clitrace.Begin(context.Background(), "version")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ServerVersion(ctx, client.ServerVersionOptions{}); err != nil {
		t.Fatal(err)
	}
	if !c.Used() || c.ClientVersion() != "1.41" {
		t.Fatalf("used %v version %q", c.Used(), c.ClientVersion())
	}
	tid, _, err := trace.ParseTraceparent(gotParent)
	if err != nil || tid != sess.TraceID() {
		t.Fatalf("traceparent %q (%v), want trace %s", gotParent, err, sess.TraceID())
	}
	spans, err := c.DaemonSpans(context.Background(), sess.TraceID())
	if err != nil || len(spans) != 1 || spans[0].TraceID != sess.TraceID() {
		t.Fatalf("DaemonSpans = %v, %v", spans, err)
	}
}

func TestDaemonSpansNotServed(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/_ping", func(w http.ResponseWriter, r *http.Request) { w.Header().Set("Api-Version", "1.41") })
	mux.HandleFunc("/v1.41/hako/traces/bad", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("not json"))
	})
	mux.HandleFunc("/v1.41/hako/traces/boom", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(500)
		w.Write([]byte(`{"message":"store broken"}`))
	})
	c, err := New(fakeDaemon(t, mux), "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Ping(context.Background(), client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DaemonSpans(context.Background(), "0123"); !errors.Is(err, clitrace.ErrNotServed) {
		t.Fatalf("404 must be ErrNotServed: %v", err)
	}
	if _, err := c.DaemonSpans(context.Background(), "bad"); err == nil || !strings.Contains(err.Error(), "decode spans") {
		t.Fatalf("bad body: %v", err)
	}
	if _, err := c.DaemonSpans(context.Background(), "boom"); err == nil || errors.Is(err, clitrace.ErrNotServed) || !strings.Contains(err.Error(), "store broken") {
		t.Fatalf("500: %v", err)
	}
}

func TestNewBadHost(t *testing.T) {
	if _, err := New("nonsense", "test"); err == nil {
		t.Fatal("a host without a scheme must fail")
	}
}
