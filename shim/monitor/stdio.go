package monitor

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/shim/internal/proto"
	"github.com/hako-project/hako/shim/logs"
	"github.com/hako-project/hako/shim/runtime"
)

// stdio is one process's standard I/O as the shim holds it: the read ends
// of its stdout and stderr pipes and the write end of its stdin pipe, or
// the master of its pty. It copies output to the log and to every attached
// client, and input from attached clients to the process.
type stdio struct {
	bufs     *sync.Pool
	log      *slog.Logger
	terminal bool
	console  *os.File // the pty master (terminal)
	stdin    *os.File // our end of the stdin pipe (no terminal), or nil
	hasStdin bool
	// once closes the process's stdin when the first attached client's
	// stdin ends (docker's StdinOnce; always so for execs).
	once bool
	outs []output

	mu        sync.Mutex
	clients   map[*attachment]struct{}
	ended     bool // no more output: new attachments end at once
	remaining int  // output copiers still running
	done      chan struct{}

	inMu     sync.Mutex // serializes writes to the process's stdin
	inClosed bool

	// held, while open, keeps the copiers from reading (see hold).
	held      chan struct{}
	holdTimer *time.Timer
	released  sync.Once
}

// output is one output stream being copied.
type output struct {
	f      *os.File
	stream byte
	log    *logs.Stream // nil: not logged
}

// attachment is one client's connection to a process's streams.
type attachment struct {
	conn           *net.UnixConn
	stdout, stderr bool

	mu     sync.Mutex
	closed bool
}

var errClosed = errors.New("closed")

func newStdio(bufs *sync.Pool, log *slog.Logger, hasStdin, once bool) *stdio {
	return &stdio{bufs: bufs, log: log, hasStdin: hasStdin, once: once,
		clients: map[*attachment]struct{}{}, done: make(chan struct{})}
}

// newPipeStdio makes pipes for the streams asked for and returns the
// process's ends, which the caller passes to the runtime and then closes
// with closeChild. Streams not asked for are /dev/null.
func newPipeStdio(bufs *sync.Pool, log *slog.Logger, stdin, stdout, stderr, once bool) (s *stdio, child runtime.IO, err error) {
	s = newStdio(bufs, log, stdin, once)
	defer func() {
		if err != nil {
			s.close()
			closeChild(child)
		}
	}()
	// os.Pipe's ends are non-blocking for the poller; os/exec makes the
	// child's copies blocking when it takes their descriptors, which is
	// what the container's program expects.
	if stdin {
		r, w, err := os.Pipe()
		if err != nil {
			return s, child, fmt.Errorf("stdin pipe: %w", err)
		}
		s.stdin, child.Stdin = w, r
	}
	for _, o := range []struct {
		want   bool
		stream byte
		dst    **os.File
	}{{stdout, proto.Stdout, &child.Stdout}, {stderr, proto.Stderr, &child.Stderr}} {
		if !o.want {
			continue
		}
		r, w, err := os.Pipe()
		if err != nil {
			return s, child, fmt.Errorf("output pipe: %w", err)
		}
		s.outs = append(s.outs, output{f: r, stream: o.stream})
		*o.dst = w
	}
	return s, child, nil
}

// newConsoleStdio wraps a pty master.
func newConsoleStdio(bufs *sync.Pool, log *slog.Logger, console *os.File, hasStdin, once bool) *stdio {
	s := newStdio(bufs, log, hasStdin, once)
	s.terminal, s.console = true, console
	s.outs = []output{{f: console, stream: proto.Stdout}}
	return s
}

// closeChild closes the process's ends after the runtime has passed them on.
func closeChild(c runtime.IO) {
	for _, f := range []*os.File{c.Stdin, c.Stdout, c.Stderr} {
		if f != nil {
			f.Close()
		}
	}
}

// hold keeps the output in the pipe (or pty) until release, or d at
// most: the process runs already, and clients about to attach must get
// its output from the first byte. Call it before start.
func (s *stdio) hold(d time.Duration) {
	s.held = make(chan struct{})
	s.holdTimer = time.AfterFunc(d, func() { s.release() })
}

// release lets held output go.
func (s *stdio) release() {
	if s.held == nil {
		return
	}
	s.released.Do(func() {
		s.holdTimer.Stop()
		close(s.held)
	})
}

// waitHeld waits until held output may go.
func (s *stdio) waitHeld() {
	if s.held != nil {
		<-s.held
	}
}

// start begins copying output; log, if set, receives the init's output.
func (s *stdio) start(log *logs.Log) {
	s.mu.Lock()
	s.remaining = len(s.outs)
	s.mu.Unlock()
	for i := range s.outs {
		o := &s.outs[i]
		if log != nil {
			name := "stdout"
			if o.stream == proto.Stderr {
				name = "stderr"
			}
			o.log = log.Stream(name)
		}
		go s.copy(o)
	}
}

// copy copies one output stream until it ends.
func (s *stdio) copy(o *output) {
	s.waitHeld()
	var logFailed bool
	var scratch []*attachment
	err := readLoop(o.f, s.bufs, func(b []byte) {
		if o.log != nil {
			if _, err := o.log.Write(b); err != nil && !logFailed {
				s.log.Error("write container log", "err", err)
				logFailed = true
			}
		}
		scratch = s.broadcast(o.stream, b, scratch[:0])
	})
	if err != nil && !errors.Is(err, os.ErrClosed) {
		s.log.Warn("read container output", "err", err)
	}
	if o.log != nil {
		if err := o.log.Flush(); err != nil {
			s.log.Error("write container log", "err", err)
		}
	}
	if !s.terminal {
		o.f.Close()
	}
	s.mu.Lock()
	s.remaining--
	last := s.remaining == 0
	s.mu.Unlock()
	if last {
		close(s.done)
		s.endClients()
	}
}

// broadcast writes b to every client attached to stream. A client that
// cannot take it is detached; a slow one slows the process, as in docker.
func (s *stdio) broadcast(stream byte, b []byte, scratch []*attachment) []*attachment {
	s.mu.Lock()
	for a := range s.clients {
		if (stream == proto.Stdout && a.stdout) || (stream == proto.Stderr && a.stderr) {
			scratch = append(scratch, a)
		}
	}
	s.mu.Unlock()
	for _, a := range scratch {
		if err := a.write(stream, b); err != nil {
			s.remove(a)
			a.close()
		}
	}
	clear(scratch)
	return scratch
}

// add attaches a client; false if the output has already ended.
func (s *stdio) add(a *attachment) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return false
	}
	s.clients[a] = struct{}{}
	return true
}

func (s *stdio) remove(a *attachment) {
	s.mu.Lock()
	delete(s.clients, a)
	s.mu.Unlock()
}

// endClients closes every attachment: the output has ended (or the
// process has exited), so clients see EOF.
func (s *stdio) endClients() {
	s.mu.Lock()
	s.ended = true
	clients := s.clients
	s.clients = map[*attachment]struct{}{}
	s.mu.Unlock()
	for a := range clients {
		a.close()
	}
}

// serveInput reads a client's frames: stdin data for the process, an empty
// frame when its stdin ends, EOF when it detaches. It returns when the
// client is gone.
func (s *stdio) serveInput(a *attachment, stdin bool) {
	ended := !stdin
	for {
		h, err := proto.ReadHeader(a.conn)
		if err != nil || h.Stream() != proto.Stdin {
			break
		}
		if h.Len() == 0 {
			if !ended {
				ended = true
				s.endStdin()
			}
			continue
		}
		buf := s.bufs.Get().(*[]byte)
		_, err = io.ReadFull(a.conn, (*buf)[:h.Len()])
		if err == nil && !ended {
			if werr := s.writeStdin((*buf)[:h.Len()]); werr != nil && !errors.Is(werr, errClosed) {
				s.log.Debug("write to container stdin", "err", werr)
			}
		}
		s.bufs.Put(buf)
		if err != nil {
			break
		}
	}
	s.remove(a)
	a.close()
	if !ended {
		// A client that detaches has ended its stdin too.
		s.endStdin()
	}
}

func (s *stdio) writeStdin(b []byte) error {
	s.inMu.Lock()
	defer s.inMu.Unlock()
	if s.inClosed {
		return errClosed
	}
	w := s.stdin
	if s.terminal {
		w = s.console
	}
	_, err := w.Write(b)
	return err
}

// endStdin closes the process's stdin if it is StdinOnce and has no
// terminal. A terminal is never hung up this way, as docker and the CRI
// plugins do: closing the master would SIGHUP an interactive shell the
// moment its client detaches (ctrl-p ctrl-q, or a dropped connection).
func (s *stdio) endStdin() {
	if !s.once || !s.hasStdin || s.terminal {
		return
	}
	s.inMu.Lock()
	defer s.inMu.Unlock()
	if s.inClosed {
		return
	}
	s.inClosed = true
	s.stdin.Close()
}

// resize sets the terminal's window size.
func (s *stdio) resize(h, w uint16) error {
	if !s.terminal {
		return conflictf("the process has no terminal")
	}
	rc, err := s.console.SyscallConn()
	if err != nil {
		return conflictf("the terminal is closed")
	}
	var ierr error
	err = rc.Control(func(fd uintptr) {
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: h, Col: w})
	})
	if err != nil {
		return conflictf("the terminal is closed")
	}
	if ierr != nil {
		return fmt.Errorf("resize terminal: %w", ierr)
	}
	return nil
}

// close releases everything (Delete, or a failed create).
func (s *stdio) close() {
	s.inMu.Lock()
	s.inClosed = true
	if s.stdin != nil {
		s.stdin.Close()
	}
	s.inMu.Unlock()
	if s.console != nil {
		s.console.Close()
	}
	for _, o := range s.outs {
		o.f.Close()
	}
	s.endClients()
}

// drain waits up to d for the output to end, once it is no longer held.
func (s *stdio) drain(d time.Duration) {
	if len(s.outs) == 0 {
		return
	}
	s.waitHeld()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
	}
}

func (a *attachment) write(stream byte, b []byte) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return errClosed
	}
	for len(b) > 0 {
		n := min(len(b), proto.MaxFrame)
		h := proto.MakeHeader(stream, n)
		bufs := net.Buffers{h[:], b[:n]}
		if _, err := bufs.WriteTo(a.conn); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

func (a *attachment) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.closed {
		a.closed = true
		a.conn.Close()
	}
}

// readLoop hands f's data to fn until EOF. It takes a buffer from bufs
// only once f is readable and returns it after fn, so a quiet stream holds
// no buffer: an idle shim with two output streams would otherwise keep
// 64 KiB of buffers for nothing. A pty whose other side is closed reads
// EIO, which is its EOF.
func readLoop(f *os.File, bufs *sync.Pool, fn func([]byte)) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	for {
		var buf *[]byte
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			buf = bufs.Get().(*[]byte)
			for {
				n, rerr = unix.Read(int(fd), *buf)
				if rerr != unix.EINTR {
					break
				}
			}
			if rerr == unix.EAGAIN {
				bufs.Put(buf)
				buf = nil
				return false
			}
			return true
		})
		if err != nil {
			if buf != nil {
				bufs.Put(buf)
			}
			return err
		}
		if rerr == nil && n > 0 {
			fn((*buf)[:n])
		}
		bufs.Put(buf)
		switch {
		case rerr == unix.EIO:
			return nil
		case rerr != nil:
			return rerr
		case n == 0:
			return nil
		}
	}
}
