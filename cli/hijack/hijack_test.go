package hijack

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// daemonSide is the server end of a hijacked connection over a real unix
// socket (so half-close works as with a daemon).
func connPair(t *testing.T) (client Conn, server *net.UnixConn) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		acc <- c
	}()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := (<-acc).(*net.UnixConn)
	t.Cleanup(func() { c.Close(); srv.Close() })
	return Conn{Conn: c, Reader: bufio.NewReader(c)}, srv
}

func frame(stream byte, payload string) []byte {
	h := make([]byte, 8)
	h[0] = stream
	binary.BigEndian.PutUint32(h[4:], uint32(len(payload)))
	return append(h, payload...)
}

// TestMultiplexedWithStdin: stdin goes up and is half-closed at EOF; the
// framed output is split into stdout and stderr; the session ends when
// the daemon closes.
func TestMultiplexedWithStdin(t *testing.T) {
	client, srv := connPair(t)
	go func() {
		in, _ := io.ReadAll(srv) // returns at the client's half-close
		srv.Write(frame(1, "got: "+string(in)))
		srv.Write(frame(2, "warning\n"))
		srv.Close()
	}()
	var out, errb bytes.Buffer
	s := Session{Stdin: strings.NewReader("hello\n"), Stdout: &out, Stderr: &errb}
	if err := s.Stream(context.Background(), client); err != nil {
		t.Fatal(err)
	}
	if out.String() != "got: hello\n" || errb.String() != "warning\n" {
		t.Fatalf("stdout %q stderr %q", out.String(), errb.String())
	}
}

// TestTtyRaw: with a tty the output is copied as is.
func TestTtyRaw(t *testing.T) {
	client, srv := connPair(t)
	go func() {
		srv.Write([]byte("raw \r\n bytes"))
		srv.Close()
	}()
	var out bytes.Buffer
	s := Session{Stdout: &out, Tty: true}
	if err := s.Stream(context.Background(), client); err != nil {
		t.Fatal(err)
	}
	if out.String() != "raw \r\n bytes" {
		t.Fatalf("out %q", out.String())
	}
}

// TestDetachKeys: the detach sequence ends the session with ErrDetached
// and is not sent to the container.
func TestDetachKeys(t *testing.T) {
	for _, c := range []struct{ keys, input, sent string }{
		{"", "ls\x10\x11", "ls"},
		{"ctrl-x", "ab\x18", "ab"},
		{"ctrl-a,b", "x\x01b", "x"},
	} {
		client, srv := connPair(t)
		got := make(chan string, 1)
		go func() {
			buf := make([]byte, 64)
			var all []byte
			srv.SetReadDeadline(time.Now().Add(2 * time.Second))
			for {
				n, err := srv.Read(buf)
				all = append(all, buf[:n]...)
				if err != nil {
					break
				}
			}
			got <- string(all)
		}()
		pr, pw := io.Pipe()
		go pw.Write([]byte(c.input)) // stdin stays open, as a terminal's
		s := Session{Stdin: pr, Stdout: io.Discard, Tty: true, DetachKeys: c.keys}
		err := s.Stream(context.Background(), client)
		if !errors.Is(err, ErrDetached) {
			t.Fatalf("keys %q: %v", c.keys, err)
		}
		client.Close()
		if sent := <-got; sent != c.sent {
			t.Errorf("keys %q: container got %q, want %q", c.keys, sent, c.sent)
		}
	}
}

func TestParseDetachKeys(t *testing.T) {
	b, err := ParseDetachKeys("")
	if err != nil || !bytes.Equal(b, []byte{16, 17}) {
		t.Fatalf("default: %v %v", b, err)
	}
	for _, bad := range []string{"ctrl-", "ctrl-aa", "abc"} {
		if _, err := ParseDetachKeys(bad); err == nil || !strings.Contains(err.Error(), "invalid detach keys") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	s := Session{Stdin: strings.NewReader(""), Tty: true, DetachKeys: "ctrl-"}
	client, _ := connPair(t)
	if err := s.Stream(context.Background(), client); err == nil {
		t.Fatal("bad keys must fail the session")
	}
}

// TestContextEnds: a session whose output never ends stops with its
// context.
func TestContextEnds(t *testing.T) {
	client, _ := connPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	s := Session{Stdout: io.Discard}
	if err := s.Stream(ctx, client); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
}
