package clitrace

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/hako-project/hako/trace"
)

type recordRT struct {
	req  *http.Request
	body string
	err  error
}

func (r *recordRT) RoundTrip(req *http.Request) (*http.Response, error) {
	r.req = req
	if r.err != nil {
		return nil, r.err
	}
	return &http.Response{StatusCode: 201, Body: io.NopCloser(strings.NewReader(r.body)), Request: req}, nil
}

func TestTransportSpanPerRequest(t *testing.T) {
	ctx, sess, err := Begin(context.Background(), "run")
	if err != nil {
		t.Fatal(err)
	}
	base := &recordRT{body: "streamed body"}
	tr := Transport{Base: base}
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://x/v1.41/containers/create", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if req.Header.Get(Header) != "" {
		t.Fatal("the caller's request must not be modified")
	}
	tp := base.req.Header.Get(Header)
	tid, sid, err := trace.ParseTraceparent(tp)
	if err != nil || tid != sess.TraceID() {
		t.Fatalf("traceparent %q: %v", tp, err)
	}
	if n := len(sess.tracer.Spans()); n != 0 {
		t.Fatalf("the span must last until the body is read; %d ended", n)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	spans := sess.tracer.Spans()
	if len(spans) != 1 || spans[0].SpanID != sid || spans[0].Name != "cli.api" ||
		spans[0].Attrs["method"] != "POST" || spans[0].Attrs["path"] != "/v1.41/containers/create" || spans[0].Attrs["status"] != "201" {
		t.Fatalf("spans %+v", spans)
	}

	// A failed request ends its span with the error.
	failing := Transport{Base: &recordRT{err: errors.New("refused")}}
	req, _ = http.NewRequestWithContext(ctx, "GET", "http://x/_ping", nil)
	if _, err := failing.RoundTrip(req); err == nil {
		t.Fatal("error lost")
	}
	if s := sess.tracer.Spans(); len(s) != 2 || s[1].Error != "refused" {
		t.Fatalf("spans %+v", s)
	}
}

func TestTransportWithoutTrace(t *testing.T) {
	base := &recordRT{}
	req, _ := http.NewRequest("GET", "http://x/_ping", nil)
	if _, err := (Transport{Base: base}).RoundTrip(req); err != nil {
		t.Fatal(err)
	}
	if base.req != req || req.Header.Get(Header) != "" {
		t.Fatal("untraced requests pass through untouched")
	}
}

func TestInjectHeader(t *testing.T) {
	ctx, _, _ := Begin(context.Background(), "attach")
	ctx, span := StartAPISpan(ctx, "POST", "/v1.41/containers/x/attach")
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://x/", nil)
	InjectHeader(req)
	if req.Header.Get(Header) != span.Traceparent() {
		t.Fatalf("header %q, want %q", req.Header.Get(Header), span.Traceparent())
	}
	req.Header.Set(Header, "keep")
	InjectHeader(req)
	if req.Header.Get(Header) != "keep" {
		t.Fatal("an existing traceparent must win")
	}
}

func TestMerge(t *testing.T) {
	a := []trace.SpanData{{TraceID: "t", SpanID: "1"}, {TraceID: "t", SpanID: "2"}}
	b := []trace.SpanData{{TraceID: "t", SpanID: "2", Name: "dup"}, {TraceID: "t", SpanID: "3"}, {TraceID: "other", SpanID: "4"}}
	got := Merge(a, b)
	if len(got) != 3 || got[1].Name == "dup" || got[2].SpanID != "3" {
		t.Fatalf("Merge = %+v", got)
	}
}

func TestFinish(t *testing.T) {
	ctx, sess, _ := Begin(context.Background(), "ps")
	_, s := trace.Start(ctx, "cli.api", "path", "/v1.41/containers/json")
	s.End(nil)
	var buf bytes.Buffer
	sess.Finish(ctx, nil, func(_ context.Context, id string) ([]trace.SpanData, error) {
		return []trace.SpanData{{TraceID: id, SpanID: "00000000000000ff", ParentID: s.ID(), Name: "api.containers.list"}}, nil
	}, &buf)
	out := buf.String()
	if !strings.Contains(out, "cli.run  command=ps") || !strings.Contains(out, "└─ api.containers.list") {
		t.Fatalf("merged tree:\n%s", out)
	}

	ctx, sess, _ = Begin(context.Background(), "ps")
	buf.Reset()
	sess.Finish(ctx, errors.New("failed"), func(context.Context, string) ([]trace.SpanData, error) {
		return nil, ErrNotServed
	}, &buf)
	if !strings.Contains(buf.String(), "does not serve traces; showing the CLI's spans only") || !strings.Contains(buf.String(), "ERROR: failed") {
		t.Fatalf("unserved:\n%s", buf.String())
	}
	buf.Reset()
	sess.Finish(ctx, nil, nil, &buf)
	if !strings.Contains(buf.String(), "did not reach the daemon") {
		t.Fatalf("no daemon:\n%s", buf.String())
	}
}
