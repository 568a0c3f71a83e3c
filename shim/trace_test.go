package shim_test

import (
	"context"
	"os"
	"testing"

	"github.com/hako-project/hako/shim"
	"github.com/hako-project/hako/trace"
)

// TestTrace: the shim's spans and the runtime's land in the caller's
// trace, each under its caller's span: shim.Start > shim.monitor.create >
// shim.runtime.create > hako-runtime.create, and for later operations
// the caller's span > shim.monitor.start > shim.runtime.start.
func TestTrace(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r rt) {
		file := t.TempDir() + "/trace.jsonl"
		f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		must(t, err)
		defer f.Close()
		tracer, err := trace.New("", f)
		must(t, err)
		ctx, root := trace.Start(trace.WithTracer(testCtx(t), tracer), "test.root")
		id := newID("tr")
		cfg := r.config(t, id, newBundle(t, id, []string{"true"}, nil))
		cfg.TraceFile = file
		c, err := shim.Start(ctx, cfg)
		must(t, err)
		sctx, startSpan := trace.Start(ctx, "test.start")
		must(t, c.Start(sctx))
		startSpan.End(nil)
		_, err = c.Wait(ctx)
		must(t, err)
		_, err = c.Delete(context.WithoutCancel(ctx), false)
		must(t, err)
		root.End(nil)

		rf, err := os.Open(file)
		must(t, err)
		defer rf.Close()
		spans, err := trace.ReadSpans(rf)
		must(t, err)
		byName := map[string]trace.SpanData{}
		for _, s := range spans {
			if s.TraceID != root.TraceID() {
				t.Errorf("span %s in trace %s, want %s", s.Name, s.TraceID, root.TraceID())
			}
			if _, dup := byName[s.Name]; !dup {
				byName[s.Name] = s
			}
		}
		parent := func(child, want string) {
			t.Helper()
			c, ok := byName[child]
			if !ok {
				t.Errorf("no span %s; have %v", child, names(spans))
				return
			}
			if p := byName[want]; c.ParentID != p.SpanID {
				t.Errorf("span %s has parent %s, want %s (%s)", child, c.ParentID, want, p.SpanID)
			}
		}
		parent("shim.Start", "test.root")
		parent("shim.monitor.create", "shim.Start")
		parent("shim.runtime.create", "shim.monitor.create")
		parent("shim.monitor.start", "test.start")
		parent("shim.runtime.start", "shim.monitor.start")
		parent("shim.monitor.delete", "test.root")
		parent("shim.runtime.delete", "shim.monitor.delete")
		if r.name == "hako-runtime" {
			parent("hako-runtime.create", "shim.runtime.create")
			parent("hako-runtime.start", "shim.runtime.start")
		}
	})
}

func names(spans []trace.SpanData) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}
