package engine

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hako-project/hako/trace"
)

// Traces keeps the spans of traced requests: every process that takes part
// (hakod, the shim, the runtime, the container's init) appends its spans to
// one file per trace under the exec root, so a client can read the whole
// tree afterwards. Old traces are removed after an hour.
type Traces struct {
	dir string
}

func newTraces(dir string) *Traces { return &Traces{dir: dir} }

const traceKeep = time.Hour

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

// Spans returns what has been recorded for traceID.
func (t *Traces) Spans(traceID string) ([]trace.SpanData, error) {
	if len(traceID) != 32 || strings.Trim(traceID, "0123456789abcdef") != "" {
		return nil, os.ErrNotExist
	}
	f, err := os.Open(t.File(traceID))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return trace.ReadSpans(f)
}

func (t *Traces) prune() {
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
