// Package progress carries per-layer progress of pulls, pushes and loads as
// events, and renders them either as the Docker Engine API's JSON progress
// stream (for hakod) or as terminal progress bars (for the hako CLI and
// tools). Producers only call a Func; they never format output.
package progress

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Event is one progress message. ID names the layer (12 hex digits, as
// docker shows) or is empty for a line about the whole operation.
type Event struct {
	ID      string
	Status  string
	Current int64
	Total   int64
	// Error ends the stream with a failure message.
	Error string
}

// Func receives events. It may be called from several goroutines at once
// and must not block for long; both renderers here are safe for that.
type Func func(Event)

// Nop discards events.
func Nop(Event) {}

// Statuses used by hako, with docker's wording so clients and scripts that
// parse docker's output keep working.
const (
	StatusWaiting       = "Waiting"
	StatusPullingFSL    = "Pulling fs layer"
	StatusDownloading   = "Downloading"
	StatusVerifying     = "Verifying Checksum"
	StatusDownloaded    = "Download complete"
	StatusExtracting    = "Extracting"
	StatusPullComplete  = "Pull complete"
	StatusAlreadyExists = "Already exists"
	StatusPreparing     = "Preparing"
	StatusPushing       = "Pushing"
	StatusPushed        = "Pushed"
	StatusLayerExists   = "Layer already exists"
	StatusLoading       = "Loading layer"
)

// ShortID is the 12-hex-digit layer ID docker prints for a digest.
func ShortID(d string) string {
	if i := strings.IndexByte(d, ':'); i >= 0 {
		d = d[i+1:]
	}
	if len(d) > 12 {
		d = d[:12]
	}
	return d
}

// Throttle wraps fn so that byte-count updates for one ID are passed on at
// most every interval, while status changes always pass. Downloads call it
// for every read; clients would otherwise drown.
func Throttle(fn Func, interval time.Duration) Func {
	var mu sync.Mutex
	last := map[string]time.Time{}
	lastStatus := map[string]string{}
	return func(e Event) {
		mu.Lock()
		now := time.Now()
		pass := e.Error != "" || lastStatus[e.ID] != e.Status || e.Current >= e.Total || now.Sub(last[e.ID]) >= interval
		if pass {
			last[e.ID], lastStatus[e.ID] = now, e.Status
		}
		mu.Unlock()
		if pass {
			fn(e)
		}
	}
}

// humanSize formats n as docker does (decimal units, 4 significant digits).
func humanSize(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB", "PB"}
	f := float64(n)
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	return fmt.Sprintf("%.4g%s", f, units[i])
}

// Bar renders docker's progress bar text: "[=====>    ]  1.2MB/3.4MB".
func Bar(current, total int64, width int) string {
	if total <= 0 {
		return humanSize(current)
	}
	if current > total {
		current = total
	}
	n := int(float64(width) * float64(current) / float64(total))
	var b strings.Builder
	b.WriteByte('[')
	b.WriteString(strings.Repeat("=", n))
	if n < width {
		b.WriteByte('>')
		b.WriteString(strings.Repeat(" ", width-n-1))
	}
	b.WriteString("] ")
	fmt.Fprintf(&b, "%8s/%s", humanSize(current), humanSize(total))
	return b.String()
}

// jsonMessage is docker's jsonmessage.JSONMessage wire form.
type jsonMessage struct {
	Status         string          `json:"status,omitempty"`
	ProgressDetail *progressDetail `json:"progressDetail,omitempty"`
	Progress       string          `json:"progress,omitempty"`
	ID             string          `json:"id,omitempty"`
	ErrorDetail    *errorDetail    `json:"errorDetail,omitempty"`
	Error          string          `json:"error,omitempty"`
}

type progressDetail struct {
	Current int64 `json:"current,omitempty"`
	Total   int64 `json:"total,omitempty"`
}

type errorDetail struct {
	Message string `json:"message"`
}

// JSON writes events as the Docker Engine API's progress stream: one JSON
// object per line, as POST /images/create and /images/{name}/push return.
type JSON struct {
	mu  sync.Mutex
	enc *json.Encoder
	err error
}

// NewJSON renders to w.
func NewJSON(w io.Writer) *JSON { return &JSON{enc: json.NewEncoder(w)} }

// Emit writes e. It is a Func.
func (j *JSON) Emit(e Event) {
	m := jsonMessage{Status: e.Status, ID: e.ID}
	if e.Error != "" {
		m = jsonMessage{Error: e.Error, ErrorDetail: &errorDetail{Message: e.Error}}
	} else if e.Total > 0 || e.Current > 0 {
		m.ProgressDetail = &progressDetail{Current: e.Current, Total: e.Total}
		m.Progress = Bar(e.Current, e.Total, 50)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err == nil {
		j.err = j.enc.Encode(m)
	}
}

// Err is the first write error, if any (the client went away).
func (j *JSON) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

// Terminal draws one line per layer like the docker CLI. On a terminal it
// redraws lines in place with ANSI cursor movement; otherwise it prints a
// line only when a layer's status changes, so logs stay readable.
type Terminal struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	lines map[string]int // ID -> line index
	n     int
	last  map[string]string
}

// NewTerminal renders to w; tty says whether w is a terminal.
func NewTerminal(w io.Writer, tty bool) *Terminal {
	return &Terminal{w: w, tty: tty, lines: map[string]int{}, last: map[string]string{}}
}

func (t *Terminal) format(e Event) string {
	if e.Error != "" {
		return "Error: " + e.Error
	}
	s := e.Status
	if e.ID != "" {
		s = e.ID + ": " + s
	}
	if t.tty && (e.Total > 0 || e.Current > 0) && e.Status != "" && (e.Status == StatusDownloading || e.Status == StatusExtracting || e.Status == StatusPushing || e.Status == StatusLoading) {
		s += " " + Bar(e.Current, e.Total, 50)
	}
	return s
}

// Emit draws e. It is a Func.
func (t *Terminal) Emit(e Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	line := t.format(e)
	if !t.tty {
		if e.ID != "" && t.last[e.ID] == e.Status && e.Error == "" {
			return
		}
		t.last[e.ID] = e.Status
		fmt.Fprintln(t.w, line)
		return
	}
	if e.ID == "" {
		fmt.Fprintln(t.w, line)
		// Lines above the cursor can no longer be redrawn by index once a
		// general line follows them; start a new block.
		t.lines, t.n = map[string]int{}, 0
		return
	}
	idx, ok := t.lines[e.ID]
	if !ok {
		t.lines[e.ID] = t.n
		t.n++
		fmt.Fprintf(t.w, "%s\n", line)
		return
	}
	up := t.n - idx
	// Move up, clear the line, write, move back down.
	fmt.Fprintf(t.w, "\x1b[%dA\r\x1b[2K%s\r\x1b[%dB", up, line, up)
}
