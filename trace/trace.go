// Package trace records the steps hako takes as spans and hands them across
// process boundaries, so one tree can show a request from the CLI down to the
// container's execve.
//
// Each process records spans into a Tracer; a span is written as one JSON line
// to the tracer's sink when it ends. Processes that run on behalf of another
// (hakod for the CLI, the shim for hakod, hako-runtime for the shim, the
// container init for hako-runtime) receive the caller's trace and parent span
// as a W3C traceparent and the sink as a file, so their spans land in the
// caller's trace. The C init of the runtime writes the same JSON lines.
//
// The format is deliberately small so that the OCI runtime, which starts once
// per container operation, does not pay for a full OpenTelemetry SDK; the
// engine converts these spans to OpenTelemetry for OTLP export.
package trace

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"
)

// Environment variables that carry a trace into a child process.
const (
	// EnvParent holds a W3C traceparent: the trace and the span that the
	// child's spans are children of.
	EnvParent = "HAKO_TRACEPARENT"
	// EnvFile names a file the child appends its spans to, one JSON line each.
	EnvFile = "HAKO_TRACE_FILE"
)

// SpanData is one finished span, as written to a sink and read back.
type SpanData struct {
	TraceID  string            `json:"trace_id"`
	SpanID   string            `json:"span_id"`
	ParentID string            `json:"parent_id,omitempty"`
	Name     string            `json:"name"`
	Start    int64             `json:"start"` // Unix nanoseconds
	End      int64             `json:"end"`   // Unix nanoseconds
	Attrs    map[string]string `json:"attrs,omitempty"`
	Error    string            `json:"error,omitempty"`
	Proc     string            `json:"proc,omitempty"` // process that recorded it, e.g. "hako-runtime[812]"
}

// Duration is the span's length.
func (s SpanData) Duration() time.Duration { return time.Duration(s.End - s.Start) }

// Tracer records spans of one process for one trace.
type Tracer struct {
	traceID string
	rootPar string // parent span ID given by the caller, "" for a new trace
	proc    string

	mu    sync.Mutex
	sink  io.Writer // nil: keep in memory only
	spans []SpanData
}

// New starts recording for the trace named by traceparent (empty: a new
// trace). Spans are appended to sink as they end (nil: kept in memory only).
func New(traceparent string, sink io.Writer) (*Tracer, error) {
	t := &Tracer{sink: sink, proc: fmt.Sprintf("%s[%d]", progName(), os.Getpid())}
	if traceparent == "" {
		t.traceID = newID(16)
		return t, nil
	}
	tid, sid, err := ParseTraceparent(traceparent)
	if err != nil {
		return nil, err
	}
	t.traceID, t.rootPar = tid, sid
	return t, nil
}

// FromEnv returns a tracer for the trace named in the environment, or nil when
// the caller asked for none.
func FromEnv() (*Tracer, error) {
	file := os.Getenv(EnvFile)
	if file == "" {
		return nil, nil
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open trace file %s: %w", file, err)
	}
	return New(os.Getenv(EnvParent), f)
}

// TraceID is the trace's 32-hex-digit identifier.
func (t *Tracer) TraceID() string { return t.traceID }

// Spans returns the spans ended so far in this process.
func (t *Tracer) Spans() []SpanData {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]SpanData(nil), t.spans...)
}

func (t *Tracer) record(s SpanData) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.spans = append(t.spans, s)
	if t.sink != nil {
		b, err := json.Marshal(s)
		if err == nil {
			// One write per line: O_APPEND files keep concurrent writers' lines whole.
			_, _ = t.sink.Write(append(b, '\n'))
		}
	}
}

// Span is a step in progress. A nil *Span is valid and records nothing, so
// code can trace unconditionally.
type Span struct {
	t    *Tracer
	data SpanData
}

type ctxKey struct{}

// WithTracer returns a context whose spans go to t.
func WithTracer(ctx context.Context, t *Tracer) context.Context {
	if t == nil {
		return ctx
	}
	return context.WithValue(ctx, ctxKey{}, &Span{t: t, data: SpanData{SpanID: t.rootPar}})
}

// Start begins a span named after the code that does the step (see STYLE.md:
// "the trace's span names are the code's names") as a child of the span in ctx.
func Start(ctx context.Context, name string, attrs ...string) (context.Context, *Span) {
	parent, _ := ctx.Value(ctxKey{}).(*Span)
	if parent == nil || parent.t == nil {
		return ctx, nil
	}
	s := &Span{t: parent.t, data: SpanData{
		TraceID:  parent.t.traceID,
		SpanID:   newID(8),
		ParentID: parent.data.SpanID,
		Name:     name,
		Start:    time.Now().UnixNano(),
		Proc:     parent.t.proc,
	}}
	s.SetAttr(attrs...)
	return context.WithValue(ctx, ctxKey{}, s), s
}

// FromContext returns the span in progress in ctx, or nil.
func FromContext(ctx context.Context) *Span {
	s, _ := ctx.Value(ctxKey{}).(*Span)
	if s == nil || s.t == nil {
		return nil
	}
	return s
}

// SetAttr adds key/value pairs.
func (s *Span) SetAttr(kv ...string) {
	if s == nil {
		return
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if s.data.Attrs == nil {
			s.data.Attrs = make(map[string]string)
		}
		s.data.Attrs[kv[i]] = kv[i+1]
	}
}

// End finishes the span; a non-nil err is recorded on it.
func (s *Span) End(err error) {
	if s == nil {
		return
	}
	s.data.End = time.Now().UnixNano()
	if err != nil {
		s.data.Error = err.Error()
	}
	s.t.record(s.data)
}

// Traceparent returns the W3C traceparent that makes a child process's spans
// children of s ("" for a nil span).
func (s *Span) Traceparent() string {
	if s == nil {
		return ""
	}
	return "00-" + s.data.TraceID + "-" + s.data.SpanID + "-01"
}

// ID is the span's 16-hex-digit identifier.
func (s *Span) ID() string {
	if s == nil {
		return ""
	}
	return s.data.SpanID
}

// TraceID is the span's trace identifier.
func (s *Span) TraceID() string {
	if s == nil {
		return ""
	}
	return s.data.TraceID
}

// ParseTraceparent splits a W3C traceparent ("00-<32 hex>-<16 hex>-<2 hex>")
// into its trace and span IDs.
func ParseTraceparent(tp string) (traceID, spanID string, err error) {
	parts := strings.Split(strings.TrimSpace(tp), "-")
	if len(parts) < 4 || len(parts[0]) != 2 || len(parts[1]) != 32 || len(parts[2]) != 16 || len(parts[3]) != 2 {
		return "", "", fmt.Errorf("traceparent %q: want 00-<32 hex digits>-<16 hex digits>-<2 hex digits>", tp)
	}
	for _, p := range parts[:4] {
		if _, err := hex.DecodeString(p); err != nil {
			return "", "", fmt.Errorf("traceparent %q: %w", tp, err)
		}
	}
	if parts[0] == "ff" || strings.Trim(parts[1], "0") == "" || strings.Trim(parts[2], "0") == "" {
		return "", "", fmt.Errorf("traceparent %q: invalid version or all-zero id", tp)
	}
	return parts[1], parts[2], nil
}

// ReadSpans parses JSON lines of spans, skipping lines that do not parse (a
// process killed mid-write leaves at most one torn line).
func ReadSpans(r io.Reader) ([]SpanData, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var out []SpanData
	for _, line := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var s SpanData
		if json.Unmarshal([]byte(line), &s) == nil && s.SpanID != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

// newID returns n random bytes in hex. Span IDs need uniqueness, not secrecy,
// and math/rand/v2 is seeded from the kernel without crypto's start-up cost.
func newID(n int) string {
	b := make([]byte, 0, n)
	for len(b) < n {
		v := rand.Uint64()
		for i := 0; i < 8 && len(b) < n; i++ {
			b = append(b, byte(v>>(8*i)))
		}
	}
	b[0] |= 1
	return hex.EncodeToString(b)
}

func progName() string {
	p := os.Args[0]
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		p = p[i+1:]
	}
	return p
}
