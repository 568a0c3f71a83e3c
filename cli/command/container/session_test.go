package container

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hako-project/hako/cli/apiclient"
	"github.com/hako-project/hako/cli/command"
	"github.com/hako-project/hako/cli/streams"
	"github.com/moby/moby/client"
)

// testCli is a Cli whose daemon is handler, on a unix socket. It has
// listed containers once, as run has created one before it attaches: the
// API version is settled.
func testCli(t *testing.T, handler http.Handler) (*command.Cli, *bytes.Buffer) {
	t.Helper()
	list := "/v" + apiclient.DefaultAPIVersion + "/containers/json"
	inner := handler
	handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == list {
			w.Write([]byte("[]"))
			return
		}
		inner.ServeHTTP(w, r)
	})
	sock := filepath.Join(t.TempDir(), "d.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	var out, errb bytes.Buffer
	cli := &command.Cli{
		In: streams.NewIn(io.NopCloser(strings.NewReader(""))), Out: streams.NewOut(&out), Err: streams.NewOut(&errb),
		Log:    slog.New(slog.DiscardHandler),
		Getenv: func(k string) string { return map[string]string{apiclient.EnvHakoHost: "unix://" + sock}[k] },
	}
	api, err := cli.Client()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.ContainerList(context.Background(), client.ContainerListOptions{}); err != nil {
		t.Fatal(err)
	}
	return cli, &out
}

// overlapDaemon answers attach and wait for container c1 only once it has
// both requests, so a client that sends one after the other's answer
// waits out the grace and is caught.
type overlapDaemon struct {
	attachIn, waitIn chan struct{}
	exit             chan struct{} // closed: the wait yields status 3
	grace            time.Duration

	mu         sync.Mutex
	sequential bool      // one request came without the other
	headerAt   time.Time // when the wait's 200 went out
}

func (d *overlapDaemon) other(mine, theirs chan struct{}) {
	close(mine)
	select {
	case <-theirs:
	case <-time.After(d.grace):
		d.mu.Lock()
		d.sequential = true
		d.mu.Unlock()
	}
}

func (d *overlapDaemon) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/v" + apiclient.DefaultAPIVersion + "/containers/c1/wait":
		d.other(d.waitIn, d.attachIn)
		// A slow header: attachAndWait must wait for it.
		time.Sleep(20 * time.Millisecond)
		d.mu.Lock()
		d.headerAt = time.Now()
		d.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		select {
		case <-d.exit:
			w.Write([]byte(`{"StatusCode":3}`))
		case <-r.Context().Done():
		}
	case "/v" + apiclient.DefaultAPIVersion + "/containers/c1/attach":
		d.other(d.attachIn, d.waitIn)
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		buf.WriteString("HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
		buf.Flush()
		<-d.exit
		buf.WriteString("bye\n")
		buf.Flush()
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

// attachAndWait has attach and wait in flight together and returns once
// both are established, the wait's header in.
func TestAttachAndWaitOverlap(t *testing.T) {
	d := &overlapDaemon{attachIn: make(chan struct{}), waitIn: make(chan struct{}), exit: make(chan struct{}), grace: 2 * time.Second}
	cli, out := testCli(t, d)
	ctx := context.Background()
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errCh, closeFn, status, err := attachAndWait(ctx, waitCtx, cli, "c1", &attachStreams{stdout: true, stderr: true, tty: true}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	returned := time.Now()
	d.mu.Lock()
	sequential, headerAt := d.sequential, d.headerAt
	d.mu.Unlock()
	if sequential {
		t.Fatal("attach and wait were sent one after the other")
	}
	if headerAt.IsZero() || returned.Before(headerAt) {
		t.Fatalf("returned at %v, before the wait's header (%v)", returned, headerAt)
	}
	close(d.exit)
	if s := <-status; s != 3 {
		t.Fatalf("status %d, want 3", s)
	}
	if err := <-errCh; err != nil {
		t.Fatal(err)
	}
	if out.String() != "bye\n" {
		t.Fatalf("output %q", out.String())
	}
}

// A failed attach leaves no wait behind once the caller cancels it.
func TestAttachAndWaitAttachFails(t *testing.T) {
	waitIn, waitGone := make(chan struct{}), make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/v"+apiclient.DefaultAPIVersion+"/containers/gone/wait", func(w http.ResponseWriter, r *http.Request) {
		close(waitIn)
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		close(waitGone)
	})
	mux.HandleFunc("/v"+apiclient.DefaultAPIVersion+"/containers/gone/attach", func(w http.ResponseWriter, r *http.Request) {
		// Both in flight, as against a real daemon.
		select {
		case <-waitIn:
		case <-time.After(5 * time.Second):
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"message":"No such container: gone"}`))
	})
	cli, _ := testCli(t, mux)
	ctx := context.Background()
	waitCtx, cancel := context.WithCancel(ctx)
	_, _, _, err := attachAndWait(ctx, waitCtx, cli, "gone", &attachStreams{stdout: true}, false)
	// moby's hijack says only the status.
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("err %v", err)
	}
	cancel()
	select {
	case <-waitGone:
	case <-time.After(5 * time.Second):
		t.Fatal("the wait request outlived the failed attach")
	}
}
