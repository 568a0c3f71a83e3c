package docker

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hako-project/hako/errdefs"
)

// Stream numbers of docker's multiplexed stream format.
const (
	streamStdin  = 0
	streamStdout = 1
	streamStderr = 2
)

// muxWriter writes docker's multiplexed format: each write becomes a frame
// with an 8-byte header [stream, 0, 0, 0, length (big endian)].
type muxWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	stream byte
	flush  func()
}

func (m *muxWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var hdr [8]byte
	hdr[0] = m.stream
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(p)))
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.w.Write(hdr[:]); err != nil {
		return 0, err
	}
	n, err := m.w.Write(p)
	if m.flush != nil {
		m.flush()
	}
	return n, err
}

// lockedWriter serializes raw writes (tty streams) from several goroutines.
type lockedWriter struct {
	mu    *sync.Mutex
	w     io.Writer
	flush func()
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.w.Write(p)
	if l.flush != nil {
		l.flush()
	}
	return n, err
}

// outputs returns the stdout and stderr writers for w: multiplexed frames
// unless the container has a terminal (then one raw stream).
func outputs(w io.Writer, tty bool, flush func()) (stdout, stderr io.Writer) {
	mu := &sync.Mutex{}
	if tty {
		lw := &lockedWriter{mu: mu, w: w, flush: flush}
		return lw, lw
	}
	return &muxWriter{mu: mu, w: w, stream: streamStdout, flush: flush},
		&muxWriter{mu: mu, w: w, stream: streamStderr, flush: flush}
}

// hijack takes over the connection for attach and exec: 101 UPGRADED when
// the client asked to upgrade (docker CLI), 200 otherwise. The reader
// includes anything the client already sent (it writes stdin right after
// the 101, before it starts the container).
func hijack(w http.ResponseWriter, r *http.Request) (*hijacked, error) {
	h, err := takeOver(w)
	if err != nil {
		return nil, err
	}
	if err := h.answer(w, r); err != nil {
		return nil, err
	}
	return h, nil
}

// takeOver hijacks the connection without answering yet: writes to the
// result wait for answer. containerAttach registers the attach first, so
// that the client, which sends its start once answered, misses no output
// (dockerd's order too).
func takeOver(w http.ResponseWriter) (*hijacked, error) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, errdefs.Invalidf("cannot hijack the connection: %s", err.Error())
	}
	return &hijacked{conn: conn, rd: brw.Reader, answered: make(chan struct{})}, nil
}

// answer writes the hijack's status line and headers, and lets the
// output through.
func (h *hijacked) answer(w http.ResponseWriter, r *http.Request) error {
	status := "HTTP/1.1 200 OK\r\n"
	extra := ""
	if r.Header.Get("Upgrade") != "" {
		status = "HTTP/1.1 101 UPGRADED\r\n"
		extra = "Connection: Upgrade\r\nUpgrade: tcp\r\n"
	}
	hdr := status + "Content-Type: application/vnd.docker.raw-stream\r\n" + extra
	for _, k := range []string{"Api-Version", "Docker-Experimental", "Ostype", "Server"} {
		if v := w.Header().Get(k); v != "" {
			hdr += k + ": " + v + "\r\n"
		}
	}
	_, err := h.conn.Write([]byte(hdr + "\r\n"))
	close(h.answered)
	if err != nil {
		h.conn.Close()
		return err
	}
	return nil
}

// lingerTimeout bounds how long a hijacked connection whose output is
// done waits for its client to close (hijacked.end).
const lingerTimeout = 5 * time.Second

// hijacked is a connection taken over for a process's streams. Its input
// is read by whatever forwards stdin, and at the end by end; reads are
// serialized, since the forwarding goroutine may still be in one then.
type hijacked struct {
	conn     net.Conn
	mu       sync.Mutex
	rd       *bufio.Reader
	answered chan struct{} // closed once the status line is written
}

// Write sends output, once the answer is out.
func (h *hijacked) Write(p []byte) (int, error) {
	<-h.answered
	return h.conn.Write(p)
}

func (h *hijacked) Read(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rd.Read(p)
}

// end finishes the connection once the output is done. The write side is
// closed first, so the client sees the end of the output; then whatever
// the client still sends (stdin the process never read) is read and
// dropped until the client closes its side, for lingerTimeout at most.
// Closing a unix socket with unread input makes the kernel report
// ECONNRESET to the peer instead of EOF, and the docker CLI then fails
// with "connection reset by peer" (status 1) instead of the process's
// status: `docker run -i IMG true <file` and `cat big | docker run -i IMG
// head -1` did so. dockerd's clients see EOF there.
func (h *hijacked) end() {
	select {
	case <-h.answered:
	default: // never answered: an error before it
		h.conn.Close()
		return
	}
	if cw, ok := h.conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = h.conn.SetReadDeadline(time.Now().Add(lingerTimeout))
	_, _ = io.Copy(io.Discard, h)
	h.conn.Close()
}
