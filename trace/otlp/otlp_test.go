package otlp

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/hako-project/hako/trace"
)

// collector is a fake OTLP/HTTP collector: it decodes the protobuf requests
// the real exporter sends and keeps every span with its resource.
type collector struct {
	srv *httptest.Server

	mu    sync.Mutex
	spans []got
	paths []string
}

// got is one received span with what its resource and scope said.
type got struct {
	span    *tracepb.Span
	service string
	pid     int64
	scope   string
}

func newCollector(t *testing.T) *collector {
	c := &collector{}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *collector) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "want a POST of application/x-protobuf", http.StatusBadRequest)
		return
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.paths = append(c.paths, r.URL.Path)
	for _, rs := range req.ResourceSpans {
		var service string
		var pid int64
		for _, kv := range rs.GetResource().GetAttributes() {
			switch kv.Key {
			case "service.name":
				service = kv.GetValue().GetStringValue()
			case "process.pid":
				pid = kv.GetValue().GetIntValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				c.spans = append(c.spans, got{span: s, service: service, pid: pid, scope: ss.GetScope().GetName()})
			}
		}
	}
	c.mu.Unlock()
	b, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(b)
}

func (c *collector) got() []got {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]got(nil), c.spans...)
}

// byID indexes received spans by hex span ID, failing on duplicates:
// each span is to be sent once while the collector answers.
func byID(t *testing.T, spans []got) map[string]got {
	t.Helper()
	m := map[string]got{}
	for _, g := range spans {
		id := hex.EncodeToString(g.span.SpanId)
		if _, dup := m[id]; dup {
			t.Errorf("span %s (%s) exported twice", id, g.span.Name)
		}
		m[id] = g
	}
	return m
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func start(t *testing.T, endpoint, dir string, log *slog.Logger) *Exporter {
	t.Helper()
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	e, err := Start(Options{Endpoint: endpoint, Dir: dir, Interval: 20 * time.Millisecond, Timeout: 2 * time.Second, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.Close(ctx)
	})
	return e
}

func line(t *testing.T, s trace.SpanData) []byte {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func appendFile(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

const tid = "4bf92f3577b34da6a3ce929d0e0e4736"

func span(id, parent, name, proc string) trace.SpanData {
	return trace.SpanData{TraceID: tid, SpanID: id, ParentID: parent, Name: name,
		Start: 1_700_000_000_123_456_789, End: 1_700_000_000_987_654_321, Proc: proc}
}

// TestExportKeepsIDsTimesAttributesAndProcess: what hakod, the runtime and
// the C init write arrives as the same spans: IDs, parent links, times,
// attributes, error status, and one resource per process.
func TestExportKeepsIDsTimesAttributesAndProcess(t *testing.T) {
	c := newCollector(t)
	dir := t.TempDir()
	start(t, c.srv.URL, dir, nil)

	root := span("00f067aa0ba902b7", "", "api.docker.request", "hakod[4242]")
	root.Attrs = map[string]string{"method": "POST", "path": "/containers/x/start", "status": "204"}
	child := span("1111111111111111", root.SpanID, "runtime.create", "hako-runtime[812]")
	child.Error = "rootfs: no such file or directory"
	grandchild := span("2222222222222222", child.SpanID, "init.pivot_root", "init[1]")
	grandchild.Start, grandchild.End = 5, 6
	// A torn line (writer killed mid-write) and a line with a bad ID are
	// skipped; the spans around them still go.
	var b []byte
	b = append(b, line(t, root)...)
	b = append(b, `{"trace_id":"4bf9`+"\n"...)
	b = append(b, line(t, trace.SpanData{TraceID: "xyz", SpanID: "3333333333333333", Name: "bad"})...)
	b = append(b, line(t, child)...)
	b = append(b, line(t, grandchild)...)
	appendFile(t, filepath.Join(dir, tid+".jsonl"), b)

	waitFor(t, "3 spans", func() bool { return len(c.got()) >= 3 })
	time.Sleep(100 * time.Millisecond) // nothing more may come
	spans := byID(t, c.got())
	if len(spans) != 3 {
		t.Fatalf("got %d spans, want 3", len(spans))
	}
	for _, want := range []trace.SpanData{root, child, grandchild} {
		g, ok := spans[want.SpanID]
		if !ok {
			t.Errorf("span %s (%s) not exported", want.SpanID, want.Name)
			continue
		}
		s := g.span
		if hex.EncodeToString(s.TraceId) != tid || s.Name != want.Name || hex.EncodeToString(s.ParentSpanId) != want.ParentID {
			t.Errorf("%s: trace %x parent %x name %q; want trace %s parent %q", want.Name, s.TraceId, s.ParentSpanId, s.Name, tid, want.ParentID)
		}
		if int64(s.StartTimeUnixNano) != want.Start || int64(s.EndTimeUnixNano) != want.End {
			t.Errorf("%s: times %d..%d, want %d..%d", want.Name, s.StartTimeUnixNano, s.EndTimeUnixNano, want.Start, want.End)
		}
		if attrs := stringAttrs(s.Attributes); !equalMaps(attrs, want.Attrs) {
			t.Errorf("%s: attributes %v, want %v", want.Name, attrs, want.Attrs)
		}
		if g.scope != "github.com/hako-project/hako/trace" {
			t.Errorf("%s: scope %q", want.Name, g.scope)
		}
	}
	for id, want := range map[string]struct {
		service string
		pid     int64
	}{root.SpanID: {"hakod", 4242}, child.SpanID: {"hako-runtime", 812}, grandchild.SpanID: {"init", 1}} {
		if g := spans[id]; g.service != want.service || g.pid != want.pid {
			t.Errorf("span %s: service.name %q process.pid %d, want %q %d", id, g.service, g.pid, want.service, want.pid)
		}
	}
	if st := spans[child.SpanID].span.Status; st.GetCode() != tracepb.Status_STATUS_CODE_ERROR || st.GetMessage() != child.Error {
		t.Errorf("failed span's status %v, want error %q", st, child.Error)
	}
	if st := spans[root.SpanID].span.Status; st.GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("span without error has status %v", st)
	}
}

// TestRealTracerOutput: what package trace itself writes converts, with
// the test binary as the process.
func TestRealTracerOutput(t *testing.T) {
	c := newCollector(t)
	dir := t.TempDir()
	start(t, c.srv.URL, dir, nil)
	f, err := os.OpenFile(filepath.Join(dir, "x.jsonl"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr, err := trace.New("", f)
	if err != nil {
		t.Fatal(err)
	}
	ctx, root := trace.Start(trace.WithTracer(context.Background(), tr), "test.root", "k", "v")
	_, child := trace.Start(ctx, "test.child")
	child.End(os.ErrNotExist)
	root.End(nil)

	waitFor(t, "2 spans", func() bool { return len(c.got()) >= 2 })
	spans := byID(t, c.got())
	r, ch := spans[root.ID()], spans[child.ID()]
	if r.span == nil || ch.span == nil {
		t.Fatalf("got %v", spans)
	}
	if hex.EncodeToString(ch.span.ParentSpanId) != root.ID() || len(r.span.ParentSpanId) != 0 {
		t.Errorf("parent links: child's %x (want %s), root's %x (want none)", ch.span.ParentSpanId, root.ID(), r.span.ParentSpanId)
	}
	if hex.EncodeToString(r.span.TraceId) != tr.TraceID() {
		t.Errorf("trace %x, want %s", r.span.TraceId, tr.TraceID())
	}
	if r.service != filepath.Base(os.Args[0]) || r.pid != int64(os.Getpid()) {
		t.Errorf("service.name %q process.pid %d, want %q %d", r.service, r.pid, filepath.Base(os.Args[0]), os.Getpid())
	}
	if ch.span.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("child status %v, want error", ch.span.Status)
	}
}

// TestIncremental: only complete lines go, each once; a line being written
// waits for its newline; a file present at Start is followed from its end;
// a file that vanishes and comes back is read from its start.
func TestIncremental(t *testing.T) {
	c := newCollector(t)
	dir := t.TempDir()
	old := filepath.Join(dir, "old.jsonl")
	appendFile(t, old, line(t, span("0000000000000001", "", "before.start", "hakod[1]")))
	start(t, c.srv.URL, dir, nil)

	file := filepath.Join(dir, tid+".jsonl")
	a := line(t, span("000000000000000a", "", "a", "hakod[1]"))
	b := line(t, span("000000000000000b", "000000000000000a", "b", "hako-shim[2]"))
	appendFile(t, file, a)
	appendFile(t, file, b[:len(b)/2])
	waitFor(t, "span a", func() bool { return len(c.got()) >= 1 })
	time.Sleep(150 * time.Millisecond) // several polls
	if n := len(c.got()); n != 1 {
		t.Fatalf("%d spans exported, want only the complete line's", n)
	}
	appendFile(t, file, b[len(b)/2:])
	waitFor(t, "span b", func() bool { return len(c.got()) >= 2 })

	appendFile(t, old, line(t, span("0000000000000002", "", "after.start", "hakod[1]")))
	waitFor(t, "span appended to the old file", func() bool { return len(c.got()) >= 3 })

	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let a poll forget it
	appendFile(t, file, line(t, span("000000000000000c", "", "c", "hakod[1]")))
	waitFor(t, "span c", func() bool { return len(c.got()) >= 4 })
	time.Sleep(100 * time.Millisecond)

	spans := byID(t, c.got())
	for _, id := range []string{"000000000000000a", "000000000000000b", "0000000000000002", "000000000000000c"} {
		if _, ok := spans[id]; !ok {
			t.Errorf("span %s not exported", id)
		}
	}
	if _, ok := spans["0000000000000001"]; ok || len(spans) != 4 {
		t.Errorf("exported %d spans (want 4), including what the file held before Start: %v", len(spans), ok)
	}
}

// TestDeadCollectorLosesNothing: while the collector is down the spans wait
// in their files; once it is up they all arrive, and the failures are
// logged once, not per poll or per span.
func TestDeadCollectorLosesNothing(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nobody listens: connection refused

	var logBuf syncBuffer
	dir := t.TempDir()
	start(t, addr, dir, slog.New(slog.NewTextHandler(&logBuf, nil)))
	file := filepath.Join(dir, tid+".jsonl")
	const n = 2500 // more than one batch
	var b []byte
	for i := range n {
		b = append(b, line(t, span(spanHex(i), "", "s", "hakod[1]"))...)
	}
	appendFile(t, file, b)
	time.Sleep(300 * time.Millisecond) // many failed polls

	if warns := strings.Count(logBuf.String(), "level=WARN"); warns != 1 {
		t.Errorf("%d warnings for a collector down 300ms, want 1:\n%s", warns, logBuf.String())
	}

	c := &collector{}
	l, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s taken again before the collector came back: %v", addr, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(c.serve)}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })

	appendFile(t, file, line(t, span(spanHex(n), "", "late", "hakod[1]")))
	waitFor(t, "every span", func() bool { return len(c.got()) >= n+1 })
	time.Sleep(100 * time.Millisecond)
	if spans := byID(t, c.got()); len(spans) != n+1 {
		t.Errorf("got %d distinct spans, want %d", len(spans), n+1)
	}
	if !strings.Contains(logBuf.String(), "exporting trace spans again") {
		t.Errorf("recovery not logged:\n%s", logBuf.String())
	}
}

// TestCloseFlushes: Close sends what was written since the last poll.
func TestCloseFlushes(t *testing.T) {
	c := newCollector(t)
	dir := t.TempDir()
	e, err := Start(Options{Endpoint: c.srv.URL, Dir: dir, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	appendFile(t, filepath.Join(dir, tid+".jsonl"), line(t, span("000000000000000a", "", "a", "hakod[1]")))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(c.got()); n != 1 {
		t.Errorf("%d spans after Close, want 1", n)
	}
}

// TestCloseGivesUp: a dead collector does not hold Close past its context.
func TestCloseGivesUp(t *testing.T) {
	// A collector that never answers.
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-hang }))
	defer srv.Close()
	defer close(hang)
	dir := t.TempDir()
	e, err := Start(Options{Endpoint: srv.URL, Dir: dir, Interval: time.Hour, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	appendFile(t, filepath.Join(dir, tid+".jsonl"), line(t, span("000000000000000a", "", "a", "hakod[1]")))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	if err := e.Close(ctx); err == nil {
		t.Error("Close reported success with a collector that never answered")
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("Close took %s with a 300ms context", d)
	}
}

// TestEndpointForms: the forms hakod accepts reach the collector at
// /v1/traces (or the path given), over TLS for https.
func TestEndpointForms(t *testing.T) {
	c := newCollector(t)
	host := strings.TrimPrefix(c.srv.URL, "http://")
	for _, tc := range []struct{ endpoint, path string }{
		{c.srv.URL, "/v1/traces"},
		{host, "/v1/traces"},
		{c.srv.URL + "/", "/v1/traces"},
		{c.srv.URL + "/otlp/v1/traces", "/otlp/v1/traces"},
	} {
		if p := exportOne(t, tc.endpoint, c); p != tc.path {
			t.Errorf("%s: request to %q, want %s", tc.endpoint, p, tc.path)
		}
	}
	t.Run("https", func(t *testing.T) {
		c := &collector{}
		srv := httptest.NewTLSServer(http.HandlerFunc(c.serve))
		defer srv.Close()
		certFile := filepath.Join(t.TempDir(), "ca.pem")
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
		if err := os.WriteFile(certFile, pemBytes, 0o600); err != nil {
			t.Fatal(err)
		}
		// The exporter honours the standard variables for what hakod has
		// no flag for, such as the collector's CA.
		t.Setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", certFile)
		// An http:// endpoint in the environment does not turn TLS off.
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
		if p := exportOne(t, srv.URL, c); p != "/v1/traces" {
			t.Errorf("%s: request to %q, want /v1/traces", srv.URL, p)
		}
	})
	for _, bad := range []string{"", "ftp://host:4318", "http://", "http://[::1"} {
		if _, err := Start(Options{Endpoint: bad, Dir: t.TempDir()}); err == nil {
			t.Errorf("endpoint %q accepted", bad)
		}
	}
}

// exportOne sends one span to endpoint through Close and returns the path
// of c's last request.
func exportOne(t *testing.T, endpoint string, c *collector) string {
	t.Helper()
	c.mu.Lock()
	before := len(c.paths)
	c.mu.Unlock()
	dir := t.TempDir()
	e, err := Start(Options{Endpoint: endpoint, Dir: dir, Interval: time.Hour})
	if err != nil {
		t.Fatalf("%s: %v", endpoint, err)
	}
	appendFile(t, filepath.Join(dir, tid+".jsonl"), line(t, span("000000000000000a", "", "s", "hakod[1]")))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Close(ctx); err != nil {
		t.Fatalf("%s: %v", endpoint, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.paths) != before+1 {
		return fmt.Sprintf("%d requests", len(c.paths)-before)
	}
	return c.paths[len(c.paths)-1]
}

func spanHex(i int) string {
	return hex.EncodeToString([]byte{0x80, 0, 0, 0, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)})
}

func stringAttrs(kvs []*commonpb.KeyValue) map[string]string {
	if len(kvs) == 0 {
		return nil
	}
	m := map[string]string{}
	for _, kv := range kvs {
		m[kv.Key] = kv.GetValue().GetStringValue()
	}
	return m
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
