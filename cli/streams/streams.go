// Package streams wraps the CLI's standard input and output with what the
// container commands need to know about them: whether they are terminals,
// their size, and switching them to raw mode for the duration of a session
// with a container's pty. It knows nothing about the Engine API.
package streams

import (
	"errors"
	"io"
	"os"

	"github.com/moby/term"
)

// In is the CLI's standard input.
type In struct {
	io.ReadCloser
	fd    uintptr
	tty   bool
	state *term.State
}

// NewIn wraps r; the terminal checks apply when r is an *os.File.
func NewIn(r io.ReadCloser) *In {
	fd, tty := term.GetFdInfo(r)
	return &In{ReadCloser: r, fd: fd, tty: tty}
}

// IsTerminal reports whether standard input is a terminal.
func (i *In) IsTerminal() bool { return i.tty }

// SetRawTerminal puts the terminal in raw mode so that keys such as ctrl-c
// reach the container's pty instead of signalling the CLI. No-op when
// standard input is not a terminal.
func (i *In) SetRawTerminal() error {
	if !i.tty || os.Getenv("NORAW") != "" {
		return nil
	}
	st, err := term.SetRawTerminal(i.fd)
	if err != nil {
		return err
	}
	i.state = st
	return nil
}

// RestoreTerminal undoes SetRawTerminal.
func (i *In) RestoreTerminal() {
	if i.state != nil {
		_ = term.RestoreTerminal(i.fd, i.state)
		i.state = nil
	}
}

// ErrNotTTY is docker's error for -t when standard input is not a terminal.
var ErrNotTTY = errors.New("the input device is not a TTY")

// CheckTty refuses -i -t when standard input is not a terminal, as docker
// does: a pty session fed from a pipe would echo and translate the input.
func (i *In) CheckTty(attachStdin, ttyMode bool) error {
	if ttyMode && attachStdin && !i.tty {
		return ErrNotTTY
	}
	return nil
}

// Out is the CLI's standard output (or error).
type Out struct {
	io.Writer
	fd    uintptr
	tty   bool
	state *term.State
}

// NewOut wraps w; the terminal checks apply when w is an *os.File.
func NewOut(w io.Writer) *Out {
	fd, tty := term.GetFdInfo(w)
	return &Out{Writer: w, fd: fd, tty: tty}
}

// IsTerminal reports whether the stream is a terminal.
func (o *Out) IsTerminal() bool { return o.tty }

// SetRawTerminal disables output processing (e.g. "\n" to "\r\n"), since
// the container's pty already did it.
func (o *Out) SetRawTerminal() error {
	if !o.tty || os.Getenv("NORAW") != "" {
		return nil
	}
	st, err := term.SetRawTerminalOutput(o.fd)
	if err != nil {
		return err
	}
	o.state = st
	return nil
}

// RestoreTerminal undoes SetRawTerminal.
func (o *Out) RestoreTerminal() {
	if o.state != nil {
		_ = term.RestoreTerminal(o.fd, o.state)
		o.state = nil
	}
}

// Size returns the terminal's height and width, or 0, 0 when it is not a
// terminal.
func (o *Out) Size() (height, width uint) {
	if !o.tty {
		return 0, 0
	}
	ws, err := term.GetWinsize(o.fd)
	if err != nil || ws == nil {
		return 0, 0
	}
	return uint(ws.Height), uint(ws.Width)
}
