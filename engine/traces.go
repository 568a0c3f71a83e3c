package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hako-project/hako/trace"
)

// Traces keeps the spans of traced requests: every process that takes part
// (hakod, the shim, the runtime, the container's init) appends its spans to
// one file per trace under the exec root, so a client can read the whole
// tree afterwards. Old traces are removed after an hour.
//
// Work a traced request sets going in the background (a container's CNI
// DEL, the emptying of its directory from the trash) holds its trace
// (Hold): the file of each tracer writing to it stays open until that work
// is done (CloseWhenIdle), and Spans waits for it, so that a `hako run --rm
// --trace` shows the teardown too. Before, those spans went to a closed
// file and were lost.
type Traces struct {
	dir string

	mu        sync.Mutex
	lastPrune time.Time
	holds     map[string]*traceHold
}

// traceHold is the background work under way in one trace.
type traceHold struct {
	n       int
	idle    chan struct{} // closed when n drops to 0
	closers []*os.File    // closed then
}

// traceHoldWait bounds how long Spans waits for a trace's background work:
// a CNI plugin that hangs must not hang the client's trace.
const traceHoldWait = 5 * time.Second

func newTraces(dir string) *Traces { return &Traces{dir: dir, holds: map[string]*traceHold{}} }

// Hold marks work under way that writes spans to traceID's file, until
// release is called.
func (t *Traces) Hold(traceID string) (release func()) {
	t.mu.Lock()
	h := t.holds[traceID]
	if h == nil {
		h = &traceHold{idle: make(chan struct{})}
		t.holds[traceID] = h
	}
	h.n++
	t.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			t.mu.Lock()
			h.n--
			var closers []*os.File
			if h.n == 0 {
				close(h.idle)
				closers = h.closers
				delete(t.holds, traceID)
			}
			t.mu.Unlock()
			for _, f := range closers {
				f.Close()
			}
		})
	}
}

// CloseWhenIdle closes f, a file a tracer of traceID writes to, once no
// background work holds the trace: at once, mostly.
func (t *Traces) CloseWhenIdle(traceID string, f *os.File) {
	t.mu.Lock()
	if h := t.holds[traceID]; h != nil {
		h.closers = append(h.closers, f)
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	f.Close()
}

// waitIdle waits, traceHoldWait at most, until no background work holds
// traceID.
func (t *Traces) waitIdle(traceID string) {
	t.mu.Lock()
	h := t.holds[traceID]
	t.mu.Unlock()
	if h == nil {
		return
	}
	timer := time.NewTimer(traceHoldWait)
	defer timer.Stop()
	select {
	case <-h.idle:
	case <-timer.C:
	}
}

const traceKeep = time.Hour

// pruneEvery spaces out the directory walks: when hakod traces every request
// (OTLP export), the directory holds an hour of requests, too many to list
// on each one.
const pruneEvery = time.Minute

// Dir is the directory of trace files, which the OTLP exporter follows.
func (t *Traces) Dir() string { return t.dir }

// File is the file the spans of traceID go to.
func (t *Traces) File(traceID string) string {
	return filepath.Join(t.dir, traceID+".jsonl")
}

// Open returns a tracer for a request carrying traceparent, writing to the
// trace's file; nil when the request is not traced.
func (t *Traces) Open(traceparent string) (*trace.Tracer, *os.File, error) {
	if traceparent == "" {
		return nil, nil, nil
	}
	tid, _, err := trace.ParseTraceparent(traceparent)
	if err != nil {
		return nil, nil, err
	}
	t.prune()
	f, err := os.OpenFile(t.File(tid), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, err
	}
	tr, err := trace.New(traceparent, f)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return tr, f, nil
}

// OpenNew starts a new trace, with no caller, for a request that carries
// no traceparent: hakod traces every request this way when it exports spans
// over OTLP, so that what clients do not trace is exported too.
func (t *Traces) OpenNew() (*trace.Tracer, *os.File, error) {
	t.prune()
	// The trace's ID, which names the file, exists only once the tracer
	// does; no span ends before the file is set.
	sink := &lateFile{}
	tr, err := trace.New("", sink)
	if err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(t.File(tr.TraceID()), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("trace file: %w", err)
	}
	sink.f = f
	return tr, f, nil
}

// lateFile is a sink whose file is opened after the tracer is made.
type lateFile struct{ f *os.File }

func (l *lateFile) Write(p []byte) (int, error) { return l.f.Write(p) }

// Spans returns what has been recorded for traceID, once the background
// work that holds it is done.
func (t *Traces) Spans(traceID string) ([]trace.SpanData, error) {
	if len(traceID) != 32 || strings.Trim(traceID, "0123456789abcdef") != "" {
		return nil, os.ErrNotExist
	}
	t.waitIdle(traceID)
	f, err := os.Open(t.File(traceID))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return trace.ReadSpans(f)
}

func (t *Traces) prune() {
	t.mu.Lock()
	if time.Since(t.lastPrune) < pruneEvery {
		t.mu.Unlock()
		return
	}
	t.lastPrune = time.Now()
	t.mu.Unlock()
	ents, err := os.ReadDir(t.dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > traceKeep {
			os.Remove(filepath.Join(t.dir, e.Name()))
		}
	}
}

// holdTrace keeps ctx's trace, if it has one, open for work going on in
// the background until release is called (Traces.Hold).
func (e *Engine) holdTrace(ctx context.Context) (release func()) {
	sp := trace.FromContext(ctx)
	if sp == nil {
		return func() {}
	}
	return e.traces.Hold(sp.TraceID())
}
