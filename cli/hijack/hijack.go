// Package hijack moves bytes between the CLI's terminal and a hijacked
// Engine API connection (container attach, exec start): stdin goes up the
// connection and is half-closed at EOF, output comes back either raw (tty)
// or multiplexed in 8-byte framed stdout/stderr records. It also puts the
// terminal in raw mode for tty sessions and recognises the detach keys.
package hijack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"

	"github.com/hako-project/hako/cli/streams"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/term"
)

// DefaultDetachKeys is ctrl-p ctrl-q, docker's default.
const DefaultDetachKeys = "ctrl-p,ctrl-q"

// ErrDetached is returned by Stream when the user typed the detach keys.
var ErrDetached = errors.New("read escape sequence")

// ParseDetachKeys turns "ctrl-p,ctrl-q" into the bytes that end a session;
// "" means docker's default.
func ParseDetachKeys(keys string) ([]byte, error) {
	if keys == "" {
		keys = DefaultDetachKeys
	}
	b, err := term.ToBytes(keys)
	if err != nil {
		return nil, fmt.Errorf("invalid detach keys (%s): %w", keys, err)
	}
	return b, nil
}

// Conn is the hijacked connection: writes go to the process's stdin,
// Reader yields its output. The moby client's HijackedResponse fits.
type Conn struct {
	net.Conn
	Reader *bufio.Reader
}

// CloseWrite half-closes the connection: the daemon sees stdin EOF and
// keeps sending output.
func (c Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Session describes one attached session.
type Session struct {
	// Stdin is nil when stdin is not attached.
	Stdin io.Reader
	// Stdout and Stderr are nil when not attached. With Tty, stderr is
	// part of the pty stream and Stderr is unused.
	Stdout, Stderr io.Writer
	Tty            bool
	// DetachKeys as given by the user ("" = default); only used with a tty
	// and stdin, as docker does.
	DetachKeys string
	// Terminal streams, switched to raw mode during a tty session with stdin.
	In  *streams.In
	Out *streams.Out
	Log *slog.Logger
}

// Stream runs the session until the output ends (the process exited or
// the daemon closed the connection), the user detached (ErrDetached), or
// ctx ends. Stdin is sent as soon as it is readable, even before the
// container starts: the daemon buffers it.
func (s *Session) Stream(ctx context.Context, c Conn) error {
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	restore := func() {}
	in := s.Stdin
	if in != nil && s.Tty {
		keys, err := ParseDetachKeys(s.DetachKeys)
		if err != nil {
			return err
		}
		if s.In != nil {
			if err := s.In.SetRawTerminal(); err != nil {
				return fmt.Errorf("unable to set IO streams as raw terminal: %w", err)
			}
		}
		if s.Out != nil {
			if err := s.Out.SetRawTerminal(); err != nil {
				s.In.RestoreTerminal()
				return fmt.Errorf("unable to set IO streams as raw terminal: %w", err)
			}
		}
		restore = sync.OnceFunc(func() {
			if s.In != nil {
				s.In.RestoreTerminal()
			}
			if s.Out != nil {
				s.Out.RestoreTerminal()
			}
		})
		in = term.NewEscapeProxy(in, keys)
	}
	defer restore()

	var outputDone chan error
	if s.Stdout != nil || s.Stderr != nil {
		outputDone = make(chan error, 1)
		go func() {
			var err error
			if s.Tty {
				_, err = io.Copy(orDiscard(s.Stdout), c.Reader)
				restore()
			} else {
				_, err = stdcopy.StdCopy(orDiscard(s.Stdout), orDiscard(s.Stderr), c.Reader)
			}
			log.Debug("hijack: end of output", "err", err)
			outputDone <- err
		}()
	}

	inputDone := make(chan struct{})
	detached := make(chan error, 1)
	go func() {
		if in != nil {
			_, err := io.Copy(c, in)
			restore()
			var esc term.EscapeError
			if errors.As(err, &esc) {
				detached <- ErrDetached
				return
			}
			log.Debug("hijack: end of input", "err", err)
		}
		if err := c.CloseWrite(); err != nil {
			log.Debug("hijack: half-close", "err", err)
		}
		close(inputDone)
	}()

	select {
	case err := <-outputDone:
		return err
	case <-inputDone:
		if outputDone != nil {
			select {
			case err := <-outputDone:
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	case err := <-detached:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
