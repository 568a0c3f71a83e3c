package engine

import (
	"testing"
	"time"

	"github.com/hako-project/hako/trace"
)

// TestTracesHold: a tracer's file stays open while background work holds
// its trace, and Spans waits for that work's spans.
func TestTracesHold(t *testing.T) {
	ts := newTraces(t.TempDir())
	tr, f, err := ts.Open("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	if err != nil {
		t.Fatal(err)
	}
	ctx := trace.WithTracer(t.Context(), tr)
	ctx, req := trace.Start(ctx, "api.docker.request")
	release := ts.Hold(tr.TraceID())
	bg := make(chan struct{})
	go func() {
		defer close(bg)
		defer release()
		time.Sleep(100 * time.Millisecond)
		_, sp := trace.Start(ctx, "network.cni.del")
		sp.End(nil)
	}()
	req.End(nil)
	ts.CloseWhenIdle(tr.TraceID(), f) // the request is over; its background work is not
	spans, err := ts.Spans(tr.TraceID())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range spans {
		names = append(names, s.Name)
	}
	if len(names) != 2 || names[1] != "network.cni.del" {
		t.Errorf("spans %v, want the request's and then the background work's", names)
	}
	<-bg
	if _, err := f.Write([]byte("x")); err == nil {
		t.Error("the file is still open once the work is done")
	}
}
