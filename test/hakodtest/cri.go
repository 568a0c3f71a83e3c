package hakodtest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CRI is a gRPC client of a test hakod's CRI socket.
type CRI struct {
	Socket  string
	Runtime runtimeapi.RuntimeServiceClient
	Image   runtimeapi.ImageServiceClient
	conn    *grpc.ClientConn
}

// StartCRI starts a hakod serving the CRI on a socket in its directory
// (plus args) and connects a client; Cleanup removes every pod first.
func StartCRI(t testing.TB, args ...string) (*Daemon, *CRI) {
	t.Helper()
	NeedRoot(t)
	dir, err := os.MkdirTemp("", "hakod-cri-")
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(dir) // Start makes its own; this only reserves a short path
	sock := filepath.Join(os.TempDir(), filepath.Base(dir)+".sock")
	d := Start(t, append([]string{"--cri-socket", sock}, args...)...)
	// Pods with a user namespace reach their root filesystem as a host uid
	// that is not root (as under /var/lib/hako, which is 0711).
	if err := os.Chmod(d.Dir, 0o711); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	c := &CRI{Socket: sock, Runtime: runtimeapi.NewRuntimeServiceClient(conn), Image: runtimeapi.NewImageServiceClient(conn), conn: conn}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := c.Runtime.Version(context.Background(), &runtimeapi.VersionRequest{}); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CRI socket %s did not answer:\n%s", sock, d.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Registered after Start's cleanup, so it runs first: pods go while
	// hakod still runs.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if pods, err := c.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{}); err == nil {
			for _, p := range pods.GetItems() {
				_, _ = c.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.GetId()})
				_, _ = c.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.GetId()})
			}
		}
		conn.Close()
		os.Remove(sock)
	})
	return d, c
}

// Leftovers lists what a daemon's pods can leave behind: mounts under its
// directory, pinned namespaces, sandbox directories, shim directories.
func (d *Daemon) Leftovers() []string {
	var out []string
	for _, m := range Mounts(d.Dir) {
		out = append(out, "mount "+m)
	}
	for _, dir := range []string{filepath.Join(d.ExecRoot, "sandboxes"), filepath.Join(d.ExecRoot, "netns"),
		filepath.Join(d.DataRoot, "sandboxes"), filepath.Join(d.ExecRoot, "shims")} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if p := filepath.Join(dir, e.Name()); !sparePin(p) { // hakod's own (Mounts)
				out = append(out, p)
			}
		}
	}
	return out
}

// LeftoversString is Leftovers for a test message.
func (d *Daemon) LeftoversString() string { return strings.Join(d.Leftovers(), "\n") }
