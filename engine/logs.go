package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/hako-project/hako/errdefs"
)

// LogsOptions are `docker logs`'s.
type LogsOptions struct {
	Stdout, Stderr bool
	Follow         bool
	Since, Until   time.Time
	Tail           int // lines from the end; < 0: all
}

// LogEntry is one line of a container's json-file log.
type LogEntry struct {
	Stream string    `json:"stream"`
	Line   []byte    `json:"-"`
	Time   time.Time `json:"time"`
	// Attrs are the entry's attributes: --log-opt labels, env, tag.
	Attrs map[string]string `json:"attrs,omitempty"`
}

type jsonLine struct {
	Log    string            `json:"log"`
	Stream string            `json:"stream"`
	Attrs  map[string]string `json:"attrs,omitempty"`
	Time   time.Time         `json:"time"`
}

// LogsReadable says whether c's log can be read: not with --log-driver
// none, which keeps none (dockerd answers 501 so).
func (e *Engine) LogsReadable(c *Container) error {
	if c.Snapshot().HostConfig.LogConfig.Type == "none" {
		return errdefs.NotImplementedf("configured logging driver does not support reading")
	}
	return nil
}

// Logs sends the container's log lines to emit, oldest first; with Follow
// it keeps sending new lines until the container stops or ctx ends.
func (e *Engine) Logs(ctx context.Context, ref string, o LogsOptions, emit func(LogEntry) error) error {
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	if err := e.LogsReadable(c); err != nil {
		return err
	}
	path := e.logPath(c.ID)
	want := func(l jsonLine) bool {
		if l.Stream == "stdout" && !o.Stdout || l.Stream == "stderr" && !o.Stderr {
			return false
		}
		if !o.Since.IsZero() && l.Time.Before(o.Since) {
			return false
		}
		if !o.Until.IsZero() && l.Time.After(o.Until) {
			return false
		}
		return true
	}
	// The existing log, rotated files first (oldest has the highest number).
	var lines []jsonLine
	for _, name := range rotatedLogs(path) {
		f, err := os.Open(name)
		if err != nil {
			continue
		}
		readLines(f, func(l jsonLine) {
			if want(l) {
				lines = append(lines, l)
			}
		})
		f.Close()
	}
	var tl *tailer
	if cur, err := os.Open(path); err == nil {
		defer cur.Close()
		tl = &tailer{f: cur}
		for {
			l, ok := tl.next()
			if !ok {
				break
			}
			if want(l) {
				lines = append(lines, l)
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if o.Tail >= 0 && len(lines) > o.Tail {
		lines = lines[len(lines)-o.Tail:]
	}
	for _, l := range lines {
		if err := emit(LogEntry{Stream: l.Stream, Line: []byte(l.Log), Time: l.Time, Attrs: l.Attrs}); err != nil {
			return err
		}
	}
	if !o.Follow {
		return nil
	}
	// Follow: poll for new lines until the container is not running and the
	// file has nothing more.
	for {
		if tl == nil {
			if cur, err := os.Open(path); err == nil {
				defer cur.Close()
				tl = &tailer{f: cur}
			}
		}
		progressed := false
		if tl != nil {
			for {
				l, ok := tl.next()
				if !ok {
					break
				}
				progressed = true
				if !want(l) {
					continue
				}
				if err := emit(LogEntry{Stream: l.Stream, Line: []byte(l.Log), Time: l.Time, Attrs: l.Attrs}); err != nil {
					return err
				}
			}
		}
		if progressed {
			continue
		}
		if tl != nil && rotated(tl.f, path) {
			// The shim rotated the log: the rest is in the new file.
			tl = nil
			continue
		}
		c.mu.Lock()
		st := c.State.Status
		ch := c.changed
		c.mu.Unlock()
		if st != container.StateRunning && st != container.StatePaused && st != container.StateRestarting && st != container.StateCreated {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ch:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// tailer reads complete JSON lines from a log file that is still being
// written; a partial last line waits for the next call.
type tailer struct {
	f       *os.File
	pending []byte
	buf     [32 * 1024]byte
}

func (t *tailer) next() (jsonLine, bool) {
	for {
		if i := bytes.IndexByte(t.pending, '\n'); i >= 0 {
			line := t.pending[:i]
			t.pending = t.pending[i+1:]
			var l jsonLine
			if json.Unmarshal(line, &l) == nil {
				return l, true
			}
			continue
		}
		n, _ := t.f.Read(t.buf[:])
		if n == 0 {
			return jsonLine{}, false
		}
		t.pending = append(t.pending, t.buf[:n]...)
	}
}

func readLines(r io.Reader, f func(jsonLine)) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		var l jsonLine
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			f(l)
		}
	}
}

// rotatedLogs lists path.N files, oldest first.
func rotatedLogs(path string) []string {
	var out []string
	for i := 1; ; i++ {
		p := path + "." + strconv.Itoa(i)
		if _, err := os.Stat(p); err != nil {
			break
		}
		out = append([]string{p}, out...)
	}
	return out
}

// rotated reports whether path now names another file than f.
func rotated(f *os.File, path string) bool {
	a, err1 := f.Stat()
	b, err2 := os.Stat(path)
	return err1 == nil && err2 == nil && !os.SameFile(a, b)
}
