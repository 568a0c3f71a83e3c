// Package logs writes a container's output to its log file, in docker's
// json-file format (with docker's size-based rotation) or in the CRI format
// kubelet reads, and reopens the file when asked (kubelet rotates CRI logs
// itself and then calls ReopenContainerLog).
//
// Output arrives in arbitrary chunks; each stream is cut into lines here.
// A line longer than MaxLine is written in pieces marked partial, and a
// trailing piece without a newline waits for the rest of its line until
// the stream ends, as docker's and containerd's loggers do. It does not
// read logs back, follow them or ship them anywhere: that is hakod's.
package logs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Format is a log file format.
type Format string

// Formats.
const (
	// JSONFile is docker's json-file driver format:
	// {"log":"line\n","stream":"stdout","time":"RFC3339Nano"} per line.
	JSONFile Format = "json-file"
	// CRI is the format kubelet reads:
	// "<RFC3339Nano> <stream> <F|P> <text>" per line.
	CRI Format = "cri"
)

// MaxLine is the longest piece of a line written as one entry; docker and
// containerd both cut lines at 16 KiB.
const MaxLine = 16 << 10

// Config says where and how to log.
type Config struct {
	Path   string
	Format Format // "" means JSONFile
	// MaxSize rotates a json-file log once it has reached this many bytes
	// (docker's max-size); 0 never rotates. CRI logs are rotated by kubelet.
	MaxSize int64
	// MaxFiles is how many files rotation keeps, the live one included
	// (docker's max-file); less than 2 truncates the file instead.
	MaxFiles int
	// Attrs go into every json-file entry as "attrs" (docker's --log-opt
	// labels, env and tag); CRI logs have none.
	Attrs map[string]string
}

// Log is one container's log file. Its methods are safe for concurrent
// use; each Stream is for one goroutine.
type Log struct {
	cfg Config
	now func() time.Time

	attrs []byte // `,"attrs":{...}` of every json-file entry, or nothing

	mu   sync.Mutex
	f    *os.File
	size int64
	buf  []byte // entries being encoded, reused between writes
}

// Open opens (creating) the log file for appending.
func Open(cfg Config) (*Log, error) {
	if cfg.Format == "" {
		cfg.Format = JSONFile
	}
	if cfg.Format != JSONFile && cfg.Format != CRI {
		return nil, fmt.Errorf("log format %q: want %q or %q", cfg.Format, JSONFile, CRI)
	}
	if cfg.Path == "" {
		return nil, errors.New("log path is empty")
	}
	if cfg.MaxSize < 0 || cfg.MaxFiles < 0 {
		return nil, fmt.Errorf("log max-size %d, max-file %d: must not be negative", cfg.MaxSize, cfg.MaxFiles)
	}
	l := &Log{cfg: cfg, now: time.Now}
	if len(cfg.Attrs) > 0 && cfg.Format == JSONFile {
		b, err := json.Marshal(cfg.Attrs) // keys sorted
		if err != nil {
			return nil, fmt.Errorf("log attrs: %w", err)
		}
		l.attrs = append([]byte(`,"attrs":`), b...)
	}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Log) open() error {
	if err := os.MkdirAll(filepath.Dir(l.cfg.Path), 0o755); err != nil {
		return fmt.Errorf("log directory: %w", err)
	}
	f, err := os.OpenFile(l.cfg.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open log: %w", err)
	}
	l.f, l.size = f, st.Size()
	return nil
}

// Reopen closes the file and opens the path again, so output goes to a new
// file after someone renamed the old one away.
func (l *Log) Reopen() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
	return l.open()
}

// Close closes the file. Streams should be flushed first.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// Stream returns the writer for one output stream ("stdout" or "stderr").
func (l *Log) Stream(name string) *Stream {
	return &Stream{l: l, name: name}
}

// Stream cuts one output stream into lines and logs them.
type Stream struct {
	l    *Log
	name string
	// pending is the start of a line whose newline has not come yet.
	pending []byte
}

// piece is one entry to write: text without its newline, and whether it
// ends its line.
type piece struct {
	text []byte
	full bool
}

// Write logs every complete line in p and keeps the rest for later. It
// always consumes all of p; an error means some entries were not written.
func (s *Stream) Write(p []byte) (int, error) {
	var pieces []piece
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.pending = append(s.pending, p...)
			for len(s.pending) >= MaxLine {
				pieces = append(pieces, piece{text: s.pending[:MaxLine]})
				s.pending = s.pending[MaxLine:]
			}
			break
		}
		line := p[:i]
		p = p[i+1:]
		if len(s.pending) > 0 {
			line = append(s.pending, line...)
			s.pending = nil
		}
		for len(line) > MaxLine {
			pieces = append(pieces, piece{text: line[:MaxLine]})
			line = line[MaxLine:]
		}
		pieces = append(pieces, piece{text: line, full: true})
	}
	err := s.l.write(s.name, pieces)
	// Keep what waits for its newline in a buffer of its own size, so a
	// burst does not leave a large buffer behind in an idle shim.
	if len(s.pending) == 0 {
		s.pending = nil
	} else if cap(s.pending) > 2*len(s.pending)+64 {
		s.pending = append([]byte(nil), s.pending...)
	}
	return n, err
}

// Flush logs a last line that never got its newline; call it when the
// stream has ended. docker writes it without a newline; CRI marks it full,
// as containerd does, so kubelet does not wait for a continuation.
func (s *Stream) Flush() error {
	if len(s.pending) == 0 {
		return nil
	}
	text := s.pending
	s.pending = nil
	return s.l.write(s.name, []piece{{text: text, full: s.l.cfg.Format == CRI}})
}

// write encodes pieces and appends them, rotating as docker does: before
// an entry, when the file has reached MaxSize.
func (l *Log) write(stream string, pieces []piece) error {
	if len(pieces) == 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return errors.New("log is closed")
	}
	ts := l.now().UTC()
	var errs []error
	buf := l.buf[:0]
	for _, p := range pieces {
		if l.cfg.Format == JSONFile && l.cfg.MaxSize > 0 && l.size+int64(len(buf)) >= l.cfg.MaxSize && (l.size > 0 || len(buf) > 0) {
			if err := l.flush(buf); err != nil {
				errs = append(errs, err)
			}
			buf = buf[:0]
			if err := l.rotate(); err != nil {
				errs = append(errs, err)
				break
			}
		}
		if l.cfg.Format == CRI {
			buf = appendCRI(buf, ts, stream, p)
		} else {
			buf = appendJSONFile(buf, ts, stream, p, l.attrs)
		}
	}
	if err := l.flush(buf); err != nil {
		errs = append(errs, err)
	}
	if cap(buf) <= 64<<10 {
		l.buf = buf[:0]
	} else {
		l.buf = nil
	}
	return errors.Join(errs...)
}

func (l *Log) flush(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	n, err := l.f.Write(b)
	l.size += int64(n)
	if err != nil {
		return fmt.Errorf("write log %s: %w", l.cfg.Path, err)
	}
	return nil
}

// rotate shifts path.1 .. path.(MaxFiles-2) up by one, renames the live
// file to path.1 and starts a new one; with MaxFiles < 2 it truncates.
func (l *Log) rotate() error {
	if l.cfg.MaxFiles < 2 {
		if err := l.f.Truncate(0); err != nil {
			return fmt.Errorf("truncate log %s: %w", l.cfg.Path, err)
		}
		l.size = 0
		return nil
	}
	name := func(i int) string { return l.cfg.Path + "." + strconv.Itoa(i) }
	if err := os.Remove(name(l.cfg.MaxFiles - 1)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("rotate log: %w", err)
	}
	for i := l.cfg.MaxFiles - 2; i >= 1; i-- {
		if err := os.Rename(name(i), name(i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rotate log: %w", err)
		}
	}
	if err := os.Rename(l.cfg.Path, name(1)); err != nil {
		return fmt.Errorf("rotate log: %w", err)
	}
	l.f.Close()
	l.f = nil
	return l.open()
}

// appendCRI appends "<time> <stream> <F|P> <text>\n".
func appendCRI(b []byte, ts time.Time, stream string, p piece) []byte {
	b = ts.AppendFormat(b, time.RFC3339Nano)
	b = append(b, ' ')
	b = append(b, stream...)
	if p.full {
		b = append(b, " F "...)
	} else {
		b = append(b, " P "...)
	}
	b = append(b, p.text...)
	return append(b, '\n')
}

// appendJSONFile appends one docker json-file entry. A full line keeps its
// newline in "log", a partial piece has none, as in docker.
func appendJSONFile(b []byte, ts time.Time, stream string, p piece, attrs []byte) []byte {
	b = append(b, `{"log":"`...)
	b = appendJSONText(b, p.text)
	if p.full {
		b = append(b, `\n`...)
	}
	b = append(b, `","stream":"`...)
	b = appendJSONText(b, []byte(stream))
	b = append(b, '"')
	b = append(b, attrs...) // docker's order: log, stream, attrs, time
	b = append(b, `,"time":"`...)
	b = ts.AppendFormat(b, time.RFC3339Nano)
	return append(b, "\"}\n"...)
}

const hexDigits = "0123456789abcdef"

// appendJSONText appends s escaped as the inside of a JSON string, exactly
// as encoding/json does (and so docker): <, > and & as \u00XX, U+2028 and
// U+2029 escaped, invalid UTF-8 replaced by U+FFFD. A hand-written encoder
// keeps the per-line cost to one pass without reflection.
func appendJSONText(b []byte, s []byte) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}
