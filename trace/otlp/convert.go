package otlp

import (
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.39.0"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/hako-project/hako/trace"
)

// scope names the code that recorded the spans: package trace, in every
// process, so a collector can tell hako's spans from others it receives.
var scope = instrumentation.Scope{Name: "github.com/hako-project/hako/trace"}

// converter turns hako's spans into OpenTelemetry's. It keeps one Resource
// per process, so the OTLP request groups each process's spans together
// instead of repeating its attributes per span.
type converter struct {
	resources map[string]*resource.Resource
}

func newConverter() *converter {
	return &converter{resources: map[string]*resource.Resource{}}
}

// convert keeps hako's IDs and times as they are, so the exported trace is
// the one `hako run --trace` shows and GET /hako/traces/{id} returns.
func (c *converter) convert(s trace.SpanData) (sdktrace.ReadOnlySpan, error) {
	tid, err := traceID(s.TraceID)
	if err != nil {
		return nil, err
	}
	sid, err := spanID(s.SpanID)
	if err != nil {
		return nil, err
	}
	stub := tracetest.SpanStub{
		Name: s.Name,
		SpanContext: oteltrace.NewSpanContext(oteltrace.SpanContextConfig{
			TraceID: tid, SpanID: sid, TraceFlags: oteltrace.FlagsSampled,
		}),
		SpanKind:             oteltrace.SpanKindInternal,
		StartTime:            time.Unix(0, s.Start),
		EndTime:              time.Unix(0, s.End),
		Attributes:           attributes(s.Attrs),
		Resource:             c.resource(s.Proc),
		InstrumentationScope: scope,
	}
	if s.ParentID != "" {
		pid, err := spanID(s.ParentID)
		if err != nil {
			return nil, fmt.Errorf("parent: %w", err)
		}
		stub.Parent = oteltrace.NewSpanContext(oteltrace.SpanContextConfig{
			TraceID: tid, SpanID: pid, TraceFlags: oteltrace.FlagsSampled,
		})
	}
	// trace.Span.End(err) keeps the error's text in SpanData.Error.
	if s.Error != "" {
		stub.Status = sdktrace.Status{Code: codes.Error, Description: s.Error}
	}
	return stub.Snapshot(), nil
}

// resource describes the process that recorded a span. proc is what
// package trace writes: "hako-runtime[812]"; the C init writes "init[1]",
// its pid as seen in the container's pid namespace.
func (c *converter) resource(proc string) *resource.Resource {
	if r, ok := c.resources[proc]; ok {
		return r
	}
	name, pid := parseProc(proc)
	attrs := []attribute.KeyValue{semconv.ServiceName(name), semconv.ServiceNamespace("hako")}
	if pid > 0 {
		attrs = append(attrs, semconv.ProcessPID(pid))
	}
	r := resource.NewWithAttributes(semconv.SchemaURL, attrs...)
	c.resources[proc] = r
	return r
}

// parseProc splits "name[pid]"; a span without a process is attributed to
// "hako" rather than dropped.
func parseProc(proc string) (name string, pid int) {
	name = proc
	if i := strings.LastIndexByte(proc, '['); i >= 0 && strings.HasSuffix(proc, "]") {
		name = proc[:i]
		pid, _ = strconv.Atoi(proc[i+1 : len(proc)-1])
	}
	if name == "" {
		name = "hako"
	}
	return name, pid
}

// attributes sorts the keys so that equal spans convert to equal requests.
func attributes(m map[string]string) []attribute.KeyValue {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]attribute.KeyValue, 0, len(keys))
	for _, k := range keys {
		out = append(out, attribute.String(k, m[k]))
	}
	return out
}

func traceID(s string) (oteltrace.TraceID, error) {
	var id oteltrace.TraceID
	if err := decodeID(id[:], s); err != nil {
		return id, fmt.Errorf("trace id %q: %w", s, err)
	}
	return id, nil
}

func spanID(s string) (oteltrace.SpanID, error) {
	var id oteltrace.SpanID
	if err := decodeID(id[:], s); err != nil {
		return id, fmt.Errorf("span id %q: %w", s, err)
	}
	return id, nil
}

// decodeID fills dst from hex; an all-zero ID is invalid in OpenTelemetry
// and a collector would drop the span, so it is refused here.
func decodeID(dst []byte, s string) error {
	if len(s) != 2*len(dst) {
		return fmt.Errorf("want %d hex digits", 2*len(dst))
	}
	if _, err := hex.Decode(dst, []byte(s)); err != nil {
		return err
	}
	for _, b := range dst {
		if b != 0 {
			return nil
		}
	}
	return fmt.Errorf("all zero")
}
