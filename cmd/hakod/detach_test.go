package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/hako-project/hako/test/hakodtest"
)

// TestExecDetachServer: hakod itself ends a terminal exec session at the
// exec's detach keys, as dockerd does (the docker CLI watches for them
// too, an API client need not), and the process keeps running; keys that
// do not parse are refused at create. With the docker CLI the session ends
// either way, so this speaks the API directly.
func TestExecDetachServer(t *testing.T) {
	d := hakodtest.Start(t, "--bridge=none", "--cri-socket=")
	img := d.DefaultImage()
	d.MustDocker("run", "-d", "--name", "xd", img, "sleep", "1000")
	api, err := client.New(client.WithHost(d.Host), client.WithAPIVersionNegotiation())
	must(t, err)
	defer api.Close()
	ctx := context.Background()

	if _, err := api.ExecCreate(ctx, "xd", client.ExecCreateOptions{Cmd: []string{"sh"}, DetachKeys: "ctrl-"}); err == nil ||
		!strings.Contains(err.Error(), "Invalid escape keys (ctrl-) provided") {
		t.Errorf("exec create with detach keys ctrl-: %v", err)
	}

	cr, err := api.ExecCreate(ctx, "xd", client.ExecCreateOptions{Cmd: []string{"sh"}, TTY: true,
		AttachStdin: true, AttachStdout: true, AttachStderr: true, DetachKeys: "ctrl-x"})
	must(t, err)
	at, err := api.ExecAttach(ctx, cr.ID, client.ExecAttachOptions{TTY: true})
	must(t, err)
	defer at.Close()
	_, err = at.Conn.Write([]byte("echo x$((2+3))y\n"))
	must(t, err)
	var out bytes.Buffer
	readUntil := func(what string) {
		t.Helper()
		must(t, at.Conn.SetReadDeadline(time.Now().Add(10*time.Second)))
		buf := make([]byte, 4096)
		for !strings.Contains(out.String(), what) {
			n, err := at.Reader.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				t.Fatalf("read the session for %q: %v; so far %q", what, err, out.String())
			}
		}
	}
	readUntil("x5y")
	_, err = at.Conn.Write([]byte{0x18}) // ctrl-x
	must(t, err)
	// hakod ends the session: the output ends (EOF) though sh still runs.
	must(t, at.Conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	if _, err := io.Copy(io.Discard, at.Reader); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("the session went on after the detach keys")
		}
		t.Fatalf("read after the detach keys: %v", err)
	}
	ins, err := api.ExecInspect(ctx, cr.ID, client.ExecInspectOptions{})
	must(t, err)
	if !ins.Running {
		t.Errorf("the exec's process ended with the detach: %+v", ins)
	}
	top := d.MustDocker("top", "xd")
	sh := false
	for _, line := range strings.Split(top, "\n") {
		f := strings.Fields(line)
		sh = sh || len(f) > 0 && f[len(f)-1] == "sh"
	}
	if !sh {
		t.Errorf("no sh in the container after the detach:\n%s", top)
	}
}
