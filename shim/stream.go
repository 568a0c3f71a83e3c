package shim

import (
	"context"
	"errors"
	"io"
	"net"

	"github.com/hako-project/hako/shim/internal/proto"
)

// AttachOptions are the caller's ends of a process's streams; nil ones are
// not attached. With a terminal all output is Stdout.
type AttachOptions struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Stream is an attachment to a process's streams. Output is copied until
// the process's output ends, the context given when attaching ends, or
// Close.
type Stream struct {
	c    *Client
	conn *net.UnixConn
	stop func() bool
	done chan struct{}
	err  error
}

// Attach attaches to the container's streams: output from now on, and
// opts.Stdin to the container's stdin (which needs Config.Stdin). It
// returns once attached, so attaching before Start misses nothing. Several
// clients may be attached at once; one detaching (Close, or ctx ending)
// leaves the container running. When opts.Stdin reaches EOF the shim is
// told, which closes the container's stdin under StdinOnce; the caller
// should make opts.Stdin's Read return once the Stream is done, or the
// goroutine reading it lingers until it does.
func (c *Client) Attach(ctx context.Context, opts AttachOptions) (*Stream, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	req := proto.Request{Op: proto.OpAttach, Stdin: opts.Stdin != nil, Stdout: opts.Stdout != nil, Stderr: opts.Stderr != nil}
	if _, err := c.exchange(ctx, conn, req); err != nil {
		return nil, err
	}
	return newStream(ctx, c, conn, opts), nil
}

func newStream(ctx context.Context, c *Client, conn *net.UnixConn, opts AttachOptions) *Stream {
	s := &Stream{c: c, conn: conn, done: make(chan struct{})}
	s.stop = context.AfterFunc(ctx, func() { conn.Close() })
	if opts.Stdin != nil {
		go s.sendStdin(opts.Stdin)
	}
	go s.receive(ctx, opts.Stdout, opts.Stderr)
	return s
}

// receive copies the shim's frames to the caller's writers until EOF.
func (s *Stream) receive(ctx context.Context, stdout, stderr io.Writer) {
	defer close(s.done)
	defer s.c.release(s.conn)
	defer s.stop()
	// Grown to the frames that come (at most proto.MaxFrame): a stream
	// that carries nothing, as most of a `run --rm`'s, allocates nothing.
	var buf []byte
	for {
		h, err := proto.ReadHeader(s.conn)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.err = err
				if ctx.Err() != nil {
					s.err = ctx.Err()
				}
			}
			if errors.Is(err, net.ErrClosed) && ctx.Err() == nil {
				s.err = nil // Close
			}
			return
		}
		if n := h.Len(); n > cap(buf) {
			buf = make([]byte, max(n, min(2*cap(buf), proto.MaxFrame)))
		}
		if _, err := io.ReadFull(s.conn, buf[:h.Len()]); err != nil {
			s.err = err
			return
		}
		w := stdout
		if h.Stream() == proto.Stderr {
			w = stderr
		}
		if w == nil {
			continue
		}
		if _, err := w.Write(buf[:h.Len()]); err != nil {
			s.err = err
			return
		}
	}
}

// sendStdin sends r's data as stdin frames, then an empty frame at EOF.
func (s *Stream) sendStdin(r io.Reader) {
	buf := make([]byte, 8+proto.MaxFrame)
	for {
		n, err := r.Read(buf[8:])
		if n > 0 {
			h := proto.MakeHeader(proto.Stdin, n)
			copy(buf, h[:])
			if _, werr := s.conn.Write(buf[:8+n]); werr != nil {
				return
			}
		}
		if errors.Is(err, ErrDetach) {
			// Detach keys: leave without ending the container's stdin.
			_ = s.Close()
			return
		}
		if err != nil {
			// EOF or not, the caller's stdin has ended.
			h := proto.MakeHeader(proto.Stdin, 0)
			_, _ = s.conn.Write(h[:])
			return
		}
	}
}

// Wait blocks until the stream has ended and returns why, if not because
// the output ended or Close was called.
func (s *Stream) Wait() error {
	<-s.done
	return s.err
}

// Done is closed when the stream has ended.
func (s *Stream) Done() <-chan struct{} { return s.done }

// Close detaches.
func (s *Stream) Close() error {
	s.conn.Close()
	<-s.done
	return nil
}
