package streams

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/creack/pty"
)

func TestNotATerminal(t *testing.T) {
	in := NewIn(io.NopCloser(strings.NewReader("")))
	out := NewOut(&bytes.Buffer{})
	if in.IsTerminal() || out.IsTerminal() {
		t.Fatal("buffers are no terminals")
	}
	if h, w := out.Size(); h != 0 || w != 0 {
		t.Fatal("no size without a terminal")
	}
	if err := in.CheckTty(true, true); err != ErrNotTTY {
		t.Fatalf("-it without a terminal: %v", err)
	}
	if in.CheckTty(false, true) != nil || in.CheckTty(true, false) != nil {
		t.Fatal("only -i with -t needs a terminal")
	}
	if in.SetRawTerminal() != nil || out.SetRawTerminal() != nil {
		t.Fatal("raw mode on a non-terminal is a no-op")
	}
}

func TestPtyRawAndSize(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pty here: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 40, Cols: 120}); err != nil {
		t.Fatal(err)
	}
	in, out := NewIn(tty), NewOut(tty)
	if !in.IsTerminal() || !out.IsTerminal() {
		t.Fatal("a pty is a terminal")
	}
	if h, w := out.Size(); h != 40 || w != 120 {
		t.Fatalf("size %dx%d", h, w)
	}
	if err := in.SetRawTerminal(); err != nil {
		t.Fatal(err)
	}
	in.RestoreTerminal()
	in.RestoreTerminal() // twice is harmless
}
