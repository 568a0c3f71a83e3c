// Package otlp exports hako's trace spans to an OpenTelemetry collector over
// OTLP/HTTP.
//
// Its one job is to follow a traces directory (engine.Traces: one JSON-lines
// file per trace, appended to by hakod, the shims, the runtime and the
// containers' inits) and send each span once it is complete on disk. It
// reads the files rather than hooking into package trace because most spans
// are recorded by short-lived processes (hako-runtime, the C init) that must
// not pay for an OpenTelemetry SDK or wait on a network; hakod is the one
// long-lived process that can. Recording spans is package trace's job;
// deleting old trace files is the engine's.
//
// The files double as the export buffer: an offset per file advances only
// when the collector has accepted the spans before it, so a collector that
// is down loses nothing the files still hold, and memory stays bounded.
// Delivery is at least once: a request that timed out but reached the
// collector is sent again.
package otlp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/hako-project/hako/trace"
)

// Options configure an Exporter.
type Options struct {
	// Endpoint is the collector: "http://host:4318", "https://host:4318" or
	// "host:4318" (plain http). Without a path, spans go to /v1/traces, the
	// OTLP/HTTP default.
	Endpoint string
	// Dir is the traces directory to follow (engine.Traces.Dir).
	Dir string
	// Interval between looks at Dir; 0 means 500ms, short enough that a
	// trace shows up in the collector while one still looks for it.
	Interval time.Duration
	// Timeout of one export request; 0 means 10s.
	Timeout time.Duration
	// Log receives export failures, at most once a minute while they last.
	Log *slog.Logger
}

const (
	defaultInterval = 500 * time.Millisecond
	defaultTimeout  = 10 * time.Second
	// maxBatch bounds one export request, and with it what is held in
	// memory when a collector comes back to an hour of spans.
	maxBatch = 1024
	// maxChunk bounds one read of a file. Lines are far shorter (the C init
	// writes at most 8 KiB); a chunk without a newline is not a span.
	maxChunk = 1 << 20
	// failLogEvery rate-limits the log while a collector stays unreachable.
	failLogEvery = time.Minute
)

// Exporter follows a traces directory and exports its spans. It runs in a
// goroutine of its own, so a slow or dead collector never delays the
// requests that record spans.
type Exporter struct {
	opts Options
	exp  *otlptrace.Exporter
	conv *converter

	// files is what has been exported of each trace file; only the poll
	// loop (and Close, after it ended) touches it.
	files map[string]*fileState

	// failure bookkeeping for the rate-limited log.
	failing   int // exports failed since the last success
	lastWarn  time.Time
	skipCount int // spans that did not convert, since the last log

	stop   context.CancelFunc
	done   chan struct{}
	closed sync.Once
}

// fileState is where the next unexported line of one trace file starts.
type fileState struct {
	ino  uint64 // a new file under the same name starts again at 0
	off  int64  // bytes before off were exported (or were not spans)
	size int64  // size when last listed
}

// Start begins following opts.Dir. What the files hold when Start is called
// is not exported: hakod starts the exporter before it serves requests, so
// older spans were either exported by the hakod before it or recorded
// before export was turned on.
func Start(opts Options) (*Exporter, error) {
	if opts.Dir == "" {
		return nil, errors.New("otlp: no traces directory")
	}
	if opts.Interval <= 0 {
		opts.Interval = defaultInterval
	}
	if opts.Timeout <= 0 {
		opts.Timeout = defaultTimeout
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	clientOpts, err := endpointOptions(opts.Endpoint)
	if err != nil {
		return nil, err
	}
	clientOpts = append(clientOpts,
		otlptracehttp.WithTimeout(opts.Timeout),
		// The next poll retries, from the files; the client's own retry
		// would hold the spans in memory and delay newer ones by a minute.
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	exp, err := otlptracehttp.New(context.Background(), clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("otlp exporter for %s: %w", opts.Endpoint, err)
	}
	e := &Exporter{opts: opts, exp: exp, conv: newConverter(), files: map[string]*fileState{}, done: make(chan struct{})}
	if err := e.scan(true); err != nil {
		_ = exp.Shutdown(context.Background())
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.stop = cancel
	go e.loop(ctx)
	return e, nil
}

// endpointOptions turns the endpoint forms hakod accepts into client
// options. The scheme decides TLS; a bare host:port is plain http, as a
// collector next to hakod usually is.
func endpointOptions(endpoint string) ([]otlptracehttp.Option, error) {
	if endpoint == "" {
		return nil, errors.New("otlp: empty endpoint")
	}
	raw := endpoint
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("otlp endpoint %q: %w", endpoint, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("otlp endpoint %q: scheme %q: want http or https", endpoint, u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("otlp endpoint %q: no host", endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	// A whole URL, not WithEndpoint and WithInsecure: it also sets TLS on
	// for https, where an OTEL_EXPORTER_OTLP_ENDPOINT of http:// in hakod's
	// environment would otherwise leave it off.
	return []otlptracehttp.Option{otlptracehttp.WithEndpointURL(u.String())}, nil
}

// Close stops following the directory and exports what the files hold
// beyond what was sent, until ctx ends.
func (e *Exporter) Close(ctx context.Context) error {
	var err error
	e.closed.Do(func() {
		// Cancelling aborts an export in flight; its spans were not marked
		// sent, so the flush below sends them.
		e.stop()
		<-e.done
		err = e.poll(ctx)
		if serr := e.exp.Shutdown(ctx); serr != nil && err == nil {
			err = fmt.Errorf("otlp exporter shutdown: %w", serr)
		}
	})
	return err
}

func (e *Exporter) loop(ctx context.Context) {
	defer close(e.done)
	t := time.NewTicker(e.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := e.poll(ctx); err != nil && ctx.Err() == nil {
			e.failed(err)
		}
	}
}

// poll exports every complete line added since the last export, in
// batches, stopping at the first failure: what was not accepted stays
// unsent and the next poll tries again.
func (e *Exporter) poll(ctx context.Context) error {
	if err := e.scan(false); err != nil {
		return err
	}
	for {
		spans, next := e.collect()
		if len(next) == 0 {
			return nil
		}
		if len(spans) > 0 {
			if err := e.exp.ExportSpans(ctx, spans); err != nil {
				return fmt.Errorf("export %d spans to %s: %w", len(spans), e.opts.Endpoint, err)
			}
			e.succeeded()
		}
		for name, off := range next {
			e.files[name].off = off
		}
		if len(spans) < maxBatch {
			return nil
		}
	}
}

// scan lists the directory: new files are followed from their start (or,
// on the first scan, from their end), files that vanished are forgotten.
func (e *Exporter) scan(first bool) error {
	ents, err := os.ReadDir(e.opts.Dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			// The engine creates it; until then there is nothing to send.
			clear(e.files)
			return nil
		}
		return fmt.Errorf("list traces in %s: %w", e.opts.Dir, err)
	}
	seen := make(map[string]bool, len(ents))
	for _, de := range ents {
		name := de.Name()
		if !de.Type().IsRegular() || !strings.HasSuffix(name, ".jsonl") {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			continue // removed since ReadDir
		}
		var ino uint64
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			ino = st.Ino
		}
		seen[name] = true
		fs := e.files[name]
		switch {
		case fs == nil && first:
			fs = &fileState{ino: ino, off: fi.Size()}
			e.files[name] = fs
		case fs == nil:
			fs = &fileState{ino: ino}
			e.files[name] = fs
		case fs.ino != ino || fi.Size() < fs.off:
			// Replaced or truncated: not the lines we counted.
			*fs = fileState{ino: ino}
		}
		fs.size = fi.Size()
	}
	for name := range e.files {
		if !seen[name] {
			delete(e.files, name)
		}
	}
	return nil
}

// collect reads up to maxBatch spans from the complete lines past each
// file's offset. next holds the offset each file reaches once the spans are
// accepted, for every file read, even when its lines held no span.
func (e *Exporter) collect() (spans []sdktrace.ReadOnlySpan, next map[string]int64) {
	next = map[string]int64{}
	for name, fs := range e.files {
		if len(spans) >= maxBatch {
			break
		}
		if fs.size <= fs.off {
			continue
		}
		off, err := e.readFile(filepath.Join(e.opts.Dir, name), fs.off, fs.size, &spans)
		if err != nil {
			e.opts.Log.Debug("otlp: read trace file", "file", name, "err", err)
			continue
		}
		if off != fs.off {
			next[name] = off
		}
	}
	if e.skipCount > 0 {
		e.opts.Log.Debug("otlp: spans that are not valid OpenTelemetry spans were skipped", "count", e.skipCount)
		e.skipCount = 0
	}
	return spans, next
}

// readFile appends the spans of the complete lines between off and size
// to spans, until maxBatch, and returns the offset after the last line it
// used. A last line without its newline is being written; it is left for
// a later poll.
func (e *Exporter) readFile(path string, off, size int64, spans *[]sdktrace.ReadOnlySpan) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return off, err
	}
	defer f.Close()
	buf := make([]byte, min(maxChunk, size-off))
	for off < size && len(*spans) < maxBatch {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		if n == 0 {
			if err != nil && !errors.Is(err, io.EOF) {
				return off, fmt.Errorf("read %s at %d: %w", path, off, err)
			}
			return off, nil // truncated since listed; the next scan sees it
		}
		chunk := buf[:n]
		last := bytes.LastIndexByte(chunk, '\n')
		if last < 0 {
			if n == maxChunk {
				// No span is this long: skip the garbage rather than stall.
				off += int64(n)
				continue
			}
			return off, nil
		}
		for line := range bytes.SplitSeq(chunk[:last], []byte{'\n'}) {
			if len(*spans) >= maxBatch {
				return off, nil
			}
			off += int64(len(line)) + 1
			if s, ok := e.parse(line); ok {
				*spans = append(*spans, s)
			}
		}
	}
	return off, nil
}

// parse converts one line. Lines that are not spans are skipped as
// trace.ReadSpans skips them: a writer killed mid-line leaves one torn line.
func (e *Exporter) parse(line []byte) (sdktrace.ReadOnlySpan, bool) {
	if len(bytes.TrimSpace(line)) == 0 {
		return nil, false
	}
	var sd trace.SpanData
	if err := json.Unmarshal(line, &sd); err != nil || sd.SpanID == "" {
		e.skipCount++
		return nil, false
	}
	s, err := e.conv.convert(sd)
	if err != nil {
		e.skipCount++
		return nil, false
	}
	return s, true
}

// failed logs the first failure at once and then once per failLogEvery,
// so a collector that is down for a day does not flood hakod's log.
func (e *Exporter) failed(err error) {
	e.failing++
	if e.failing == 1 || time.Since(e.lastWarn) >= failLogEvery {
		e.opts.Log.Warn("otlp: exporting trace spans failed; will retry", "failures", e.failing, "err", err)
		e.lastWarn = time.Now()
	}
}

func (e *Exporter) succeeded() {
	if e.failing > 0 {
		e.opts.Log.Info("otlp: exporting trace spans again", "endpoint", e.opts.Endpoint, "failures", e.failing)
		e.failing = 0
	}
}
