package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/hako-project/hako/test/hakodtest"
)

// otlpSpan is a span as a collector received it, with its process.
type otlpSpan struct {
	traceID, spanID, parentID, name, service string
}

// otlpCollector is a fake OTLP/HTTP collector that keeps every span.
type otlpCollector struct {
	mu    sync.Mutex
	spans []otlpSpan
}

func (c *otlpCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var req coltracepb.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(body, &req)
	}
	if err != nil || r.URL.Path != "/v1/traces" {
		http.Error(w, fmt.Sprintf("%s: %v", r.URL.Path, err), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	for _, rs := range req.ResourceSpans {
		var service string
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.Key == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				c.spans = append(c.spans, otlpSpan{traceID: hex.EncodeToString(s.TraceId), spanID: hex.EncodeToString(s.SpanId),
					parentID: hex.EncodeToString(s.ParentSpanId), name: s.Name, service: service})
			}
		}
	}
	c.mu.Unlock()
	b, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(b)
}

// runtimeTrace finds the trace that holds hako-runtime's spans and checks
// that it is whole: one trace with spans of hakod, hako-shim and
// hako-runtime, the runtime's descending from hakod's request span, which
// starts the trace (the docker CLI sends no traceparent). It returns what
// is still missing, "" once the trace is complete.
func (c *otlpCollector) runtimeTrace() (missing string, spans []otlpSpan) {
	c.mu.Lock()
	all := append([]otlpSpan(nil), c.spans...)
	c.mu.Unlock()
	var tid string
	for _, s := range all {
		if s.service == "hako-runtime" {
			tid = s.traceID
			break
		}
	}
	if tid == "" {
		return "a span of hako-runtime", nil
	}
	byID := map[string]otlpSpan{}
	services := map[string]bool{}
	for _, s := range all {
		if s.traceID == tid {
			spans = append(spans, s)
			byID[s.spanID] = s
			services[s.service] = true
		}
	}
	for _, svc := range []string{"hakod", "hako-shim", "hako-runtime"} {
		if !services[svc] {
			return "a span of " + svc + " in trace " + tid, spans
		}
	}
	for _, s := range spans {
		if s.service != "hako-runtime" {
			continue
		}
		// Walk up to the trace's root.
		cur, ok := s, true
		for depth := 0; cur.parentID != "" && depth < 100; depth++ {
			if cur, ok = byID[cur.parentID]; !ok {
				return fmt.Sprintf("the ancestors of %s (%s)", s.name, s.spanID), spans
			}
		}
		if cur.name != "api.docker.request" || cur.service != "hakod" || cur.parentID != "" {
			return fmt.Sprintf("%s (%s) to descend from hakod's api.docker.request as the root, not %s/%s", s.name, s.spanID, cur.service, cur.name), spans
		}
	}
	return "", spans
}

// TestOtlpExportsUntracedRequests: with --otlp-endpoint, a plain
// `docker run` (no traceparent) is traced from hakod's request span down to
// the runtime, and the collector receives that trace whole.
func TestOtlpExportsUntracedRequests(t *testing.T) {
	c := &otlpCollector{}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close) // after hakod's cleanup, so its last flush lands
	d := hakodtest.Start(t, "--otlp-endpoint", srv.URL)
	img := d.DefaultImage()
	d.MustDocker("run", "--rm", img, "true")

	deadline := time.Now().Add(30 * time.Second)
	for {
		missing, spans := c.runtimeTrace()
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, s := range spans {
				fmt.Fprintf(&b, "  %s %s parent=%s %s\n", s.service, s.spanID, s.parentID, s.name)
			}
			t.Fatalf("collector still misses %s; that trace's spans:\n%shakod log tail:\n%s", missing, b.String(), lastLines(d.Log(), 20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
