// Package clitrace is the CLI's side of `hako --trace`: it starts a trace
// for one command, records a span per Engine API request, hands the trace
// to the daemon in a W3C traceparent header, and at the end merges the
// daemon's spans of that trace with the CLI's own into one tree.
//
// Fetching the daemon's spans is left to the caller (a func), so this
// package knows HTTP only as a RoundTripper.
package clitrace

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/hako-project/hako/trace"
)

// Header is the W3C Trace Context header.
const Header = "traceparent"

// Transport records one span named "cli.api" per request, with the
// request's method and path as attributes, and sends the span as the
// request's traceparent so the daemon's spans become its children. The
// span ends when the response body is read to its end or closed, so a
// streamed reply (wait, logs -f, pull) spans the whole stream. Requests
// whose context carries no trace pass through untouched.
type Transport struct {
	Base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, span := trace.Start(req.Context(), "cli.api", "method", req.Method, "path", req.URL.Path)
	if span == nil {
		return t.Base.RoundTrip(req)
	}
	// A RoundTripper must not modify the caller's request.
	req = req.Clone(ctx)
	req.Header.Set(Header, span.Traceparent())
	resp, err := t.Base.RoundTrip(req)
	if err != nil {
		span.End(err)
		return nil, err
	}
	span.SetAttr("status", strconv.Itoa(resp.StatusCode))
	if resp.Body == nil || resp.Body == http.NoBody {
		span.End(nil)
		return resp, nil
	}
	resp.Body = &endingBody{ReadCloser: resp.Body, span: span}
	return resp, nil
}

type endingBody struct {
	io.ReadCloser
	span *trace.Span
	once sync.Once
}

func (b *endingBody) end(err error) {
	b.once.Do(func() { b.span.End(err) })
}

func (b *endingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.end(nil)
	} else if err != nil {
		b.end(err)
	}
	return n, err
}

func (b *endingBody) Close() error {
	b.end(nil)
	return b.ReadCloser.Close()
}

// InjectHeader sets the traceparent of the span in req's context on req
// when it has none. Hijacked requests (attach, exec start) bypass the
// client's RoundTripper, so the API client runs this as a request hook;
// their callers open the "cli.api" span themselves (see StartAPISpan).
func InjectHeader(req *http.Request) error {
	if req.Header.Get(Header) != "" {
		return nil
	}
	if s := trace.FromContext(req.Context()); s != nil {
		req.Header.Set(Header, s.Traceparent())
	}
	return nil
}

// StartAPISpan opens the "cli.api" span for a request that does not go
// through Transport (a hijacked connection).
func StartAPISpan(ctx context.Context, method, path string) (context.Context, *trace.Span) {
	return trace.Start(ctx, "cli.api", "method", method, "path", path, "hijacked", "true")
}

// ErrNotServed is returned by a span fetcher when the daemon has no trace
// endpoint (dockerd, or a hakod built without it).
var ErrNotServed = errors.New("the daemon does not serve traces")

// Fetcher returns the daemon's spans of a trace.
type Fetcher func(ctx context.Context, traceID string) ([]trace.SpanData, error)

// Session is the trace of one CLI command.
type Session struct {
	tracer *trace.Tracer
	root   *trace.Span
}

// Begin starts a new trace whose root span "cli.run" names the command,
// and returns the context that carries it.
func Begin(ctx context.Context, command string) (context.Context, *Session, error) {
	t, err := trace.New("", nil)
	if err != nil {
		return ctx, nil, fmt.Errorf("start trace: %w", err)
	}
	ctx = trace.WithTracer(ctx, t)
	ctx, root := trace.Start(ctx, "cli.run", "command", command)
	return ctx, &Session{tracer: t, root: root}, nil
}

// TraceID is the trace's identifier.
func (s *Session) TraceID() string { return s.tracer.TraceID() }

// Finish ends the root span with the command's error, asks fetch for the
// daemon's spans (fetch may be nil when the command never reached the
// daemon) and renders the merged tree to w.
func (s *Session) Finish(ctx context.Context, cmdErr error, fetch Fetcher, w io.Writer) {
	s.root.End(cmdErr)
	spans := s.tracer.Spans()
	if fetch == nil {
		fmt.Fprintln(w, "trace: the command did not reach the daemon; showing the CLI's spans only")
		trace.Render(w, spans)
		return
	}
	daemon, err := fetch(ctx, s.TraceID())
	switch {
	case errors.Is(err, ErrNotServed):
		fmt.Fprintf(w, "trace: %v; showing the CLI's spans only\n", err)
	case err != nil:
		fmt.Fprintf(w, "trace: fetching the daemon's spans: %v; showing the CLI's spans only\n", err)
	}
	trace.Render(w, Merge(spans, daemon))
}

// Merge returns the spans of a and b, each span ID once (a wins), keeping
// only spans of a's trace when a is not empty.
func Merge(a, b []trace.SpanData) []trace.SpanData {
	seen := make(map[string]bool, len(a)+len(b))
	out := make([]trace.SpanData, 0, len(a)+len(b))
	traceID := ""
	if len(a) > 0 {
		traceID = a[0].TraceID
	}
	for _, l := range [][]trace.SpanData{a, b} {
		for _, s := range l {
			if seen[s.SpanID] || (traceID != "" && s.TraceID != traceID) {
				continue
			}
			seen[s.SpanID] = true
			out = append(out, s)
		}
	}
	return out
}
