package cri

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/hako-project/hako/engine"
	"github.com/hako-project/hako/errdefs"
)

// streamServer is kubelet's CRI streaming server (k8s.io/cri-streaming):
// Exec, Attach and PortForward return a URL on it, and the client
// (kubelet, crictl) upgrades a connection there (SPDY or websocket).
type streamServer struct {
	srv  streaming.Server
	http *http.Server
	l    net.Listener
	addr string
}

func newStreamServer(s *Server, addr string) (*streamServer, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("CRI streaming server on %s: %w", addr, err)
	}
	cfg := streaming.DefaultConfig
	cfg.Addr = l.Addr().String()
	srv, err := streaming.NewServer(cfg, streamRuntime{s})
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("CRI streaming server: %w", err)
	}
	st := &streamServer{srv: srv, l: l, addr: cfg.Addr, http: &http.Server{Handler: srv, ReadHeaderTimeout: 30 * time.Second}}
	go func() {
		if err := st.http.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("CRI streaming server", "addr", cfg.Addr, "err", err)
		}
	}()
	return st, nil
}

func (st *streamServer) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := st.http.Shutdown(ctx); err != nil {
		return st.http.Close()
	}
	return nil
}

// Exec returns the URL where the client runs the command interactively.
func (s *Server) Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	rec, err := s.getContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if containerState(rec.State) != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return nil, errdefs.Conflictf("container %s is not running", rec.ID)
	}
	if len(req.GetCmd()) == 0 {
		return nil, errdefs.Invalidf("exec: no command")
	}
	if !req.GetStdin() && !req.GetStdout() && !req.GetStderr() {
		return nil, errdefs.Invalidf("exec: one of stdin, stdout and stderr must be requested")
	}
	req.ContainerId = rec.ID
	return s.stream.srv.GetExec(req)
}

// Attach returns the URL where the client attaches to the container.
func (s *Server) Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	rec, err := s.getContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if containerState(rec.State) != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return nil, errdefs.Conflictf("container %s is not running", rec.ID)
	}
	req.ContainerId = rec.ID
	return s.stream.srv.GetAttach(req)
}

// PortForward returns the URL where the client forwards ports into the pod.
func (s *Server) PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	sb, err := s.e.GetSandbox(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	if sb.Snapshot().State != engine.SandboxReady {
		return nil, errdefs.Conflictf("pod sandbox %s is not ready", sb.ID())
	}
	req.PodSandboxId = sb.ID()
	return s.stream.srv.GetPortForward(req)
}

// ExecSync runs a command in the container and returns its output and
// exit code. When the timeout passes, the process is killed and the call
// fails with DeadlineExceeded.
func (s *Server) ExecSync(ctx context.Context, req *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	rec, err := s.getContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if containerState(rec.State) != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return nil, errdefs.Conflictf("container %s is not running", rec.ID)
	}
	var stdout, stderr limitedBuffer
	stdout.max, stderr.max = 16<<20, 16<<20
	if req.GetTimeout() > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.GetTimeout())*time.Second)
		defer cancel()
	}
	code, err := s.exec(ctx, rec.ID, req.GetCmd(), nil, &stdout, &stderr, false, nil)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("command %q timed out after %ds: %w", req.GetCmd(), req.GetTimeout(), context.DeadlineExceeded)
		}
		return nil, err
	}
	return &runtimeapi.ExecSyncResponse{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: int32(code)}, nil
}

// exec runs cmd in the container through the engine and returns its exit
// code; when ctx ends first the process is killed.
func (s *Server) exec(ctx context.Context, id string, cmd []string, in io.Reader, out, errw io.Writer, tty bool, resize <-chan remotecommand.TerminalSize) (int, error) {
	execID, err := s.e.ExecCreate(ctx, id, engine.ExecConfig{Cmd: cmd, Tty: tty, AttachStdin: in != nil, AttachStdout: out != nil, AttachStderr: errw != nil})
	if err != nil {
		return 0, err
	}
	streams := engine.Streams{Stdin: in}
	if out != nil {
		streams.Stdout = out
	}
	if errw != nil && !tty {
		streams.Stderr = errw
	}
	done := make(chan error, 1)
	go func() {
		done <- s.e.ExecStart(context.WithoutCancel(ctx), execID, streams, false, 0, 0)
	}()
	if resize != nil {
		go func() {
			for sz := range resize {
				_ = s.e.ExecResize(context.Background(), execID, sz.Height, sz.Width)
			}
		}()
	}
	select {
	case err := <-done:
		if err != nil {
			return 0, err
		}
	case <-ctx.Done():
		s.killExec(execID)
		<-done
		return 0, ctx.Err()
	}
	st, err := s.e.ExecInspect(execID)
	if err != nil || st.ExitCode == nil {
		return 0, fmt.Errorf("exec %s: no exit code", execID)
	}
	return *st.ExitCode, nil
}

// killExec kills a running exec process (its timeout passed or its client
// went away).
func (s *Server) killExec(execID string) {
	for i := 0; i < 50; i++ {
		st, err := s.e.ExecInspect(execID)
		if err != nil || st.ExitCode != nil {
			return
		}
		if st.Pid > 0 {
			_ = unix.Kill(st.Pid, syscall.SIGKILL)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// limitedBuffer keeps at most max bytes (ExecSync's output is bounded).
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		if len(p) > room {
			b.buf.Write(p[:room])
		} else {
			b.buf.Write(p)
		}
	}
	return len(p), nil
}

func (b *limitedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf.Bytes()...)
}

// streamRuntime is what the streaming server calls once a client is
// connected.
type streamRuntime struct{ s *Server }

func (r streamRuntime) Exec(ctx context.Context, id string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	var o, e io.Writer
	if out != nil {
		o = out
	}
	if errw != nil {
		e = errw
	}
	code, err := r.s.exec(ctx, id, cmd, in, o, e, tty, resize)
	if err != nil {
		return err
	}
	if code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", code), Code: code}
	}
	return nil
}

func (r streamRuntime) Attach(ctx context.Context, id string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	streams := engine.Streams{Stdin: in}
	if out != nil {
		streams.Stdout = out
	}
	if errw != nil && !tty {
		streams.Stderr = errw
	}
	done, err := r.s.e.Attach(ctx, id, streams)
	if err != nil {
		return err
	}
	if resize != nil {
		go func() {
			for sz := range resize {
				_ = r.s.e.Resize(context.Background(), id, sz.Height, sz.Width)
			}
		}()
	}
	select {
	case err := <-done:
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	case <-ctx.Done():
		return nil
	}
}

// PortForward connects stream to port on the pod's loopback: a socket made
// in the pod's network namespace (or the host's for a host-network pod).
func (r streamRuntime) PortForward(ctx context.Context, podID string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	sb, err := r.s.e.GetSandbox(podID)
	if err != nil {
		return err
	}
	rec := sb.Snapshot()
	conn, err := dialInNetns(ctx, rec.NetNS, fmt.Sprintf("localhost:%d", port))
	if err != nil {
		return fmt.Errorf("port forward to %d in pod %s: %w", port, podID, err)
	}
	defer conn.Close()
	errc := make(chan error, 2)
	go func() {
		_, err := io.Copy(conn, stream)
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		errc <- err
	}()
	go func() {
		_, err := io.Copy(stream, conn)
		errc <- err
	}()
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	return err
}

// dialInNetns dials addr from inside the network namespace pinned at
// netns ("" = hakod's own). A socket belongs to the namespace of the
// thread that made it, so the dial runs on a locked thread that joined
// the namespace, and that thread ends with it.
func dialInNetns(ctx context.Context, netns, addr string) (net.Conn, error) {
	var d net.Dialer
	if netns == "" {
		return d.DialContext(ctx, "tcp", addr)
	}
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		fd, err := unix.Open(netns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- result{nil, err}
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			ch <- result{nil, fmt.Errorf("join %s: %w", netns, err)}
			return
		}
		c, err := d.DialContext(ctx, "tcp4", addr)
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}
