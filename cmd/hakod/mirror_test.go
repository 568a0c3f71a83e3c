package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/hako-project/hako/test/hakodtest"
	"github.com/hako-project/hako/test/imagetest"
)

// TestRegistryMirror: `docker pull NAME` of a Docker Hub image against a
// hakod started with --registry-mirror is served by the mirror (a real
// docker-registry on loopback) and named as on Docker Hub.
func TestRegistryMirror(t *testing.T) {
	hakodtest.NeedRoot(t)
	reg := imagetest.StartRegistry(t, imagetest.RegistryOptions{})
	bb, err := os.ReadFile("/bin/busybox")
	must(t, err)
	img := imagetest.Image(t, [][]byte{imagetest.Tar(t, []imagetest.Entry{
		{Name: "bin/", Type: '5', Mode: 0o755},
		{Name: "bin/busybox", Mode: 0o755, Body: string(bb)},
	})}, v1.Config{Cmd: []string{"/bin/busybox", "echo", "from the mirror"}}, nil)
	imagetest.Push(t, reg.Host+"/library/hakomirror:v1", img)
	mirror := "http://" + reg.Host

	d := hakodtest.Start(t, "--registry-mirror", mirror)
	out, errs, code := d.Docker("pull", "hakomirror:v1")
	if code != 0 || !strings.Contains(out, "Pulling from library/hakomirror") || !strings.Contains(out, "Downloaded newer image for hakomirror:v1") {
		t.Fatalf("docker pull: code %d\nstdout: %s\nstderr: %s\nhakod log:\n%s", code, out, errs, d.Log())
	}
	if got := d.MustDocker("image", "inspect", "--format", "{{.RepoTags}} {{.RepoDigests}}", "docker.io/library/hakomirror:v1"); !strings.HasPrefix(got, "[hakomirror:v1] [hakomirror@sha256:") {
		t.Errorf("image inspect: %s", got)
	}
	if got := d.MustDocker("run", "--rm", "hakomirror:v1"); got != "from the mirror" {
		t.Errorf("run: %q", got)
	}
	if log := d.Log(); !strings.Contains(log, "registry served") || !strings.Contains(log, mirror+"/") {
		t.Errorf("hakod's debug log does not name the mirror %s", mirror)
	}
}

// TestBadRegistryMirrorStopsHakod: a mirror without a scheme is refused at
// start, naming the value, as dockerd does.
func TestBadRegistryMirrorStopsHakod(t *testing.T) {
	hakodtest.NeedRoot(t)
	bin := hakodtest.Build(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin.Hakod, "-H", "unix://"+filepath.Join(dir, "hako.sock"),
		"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "run"),
		"--pidfile", filepath.Join(dir, "hakod.pid"), "--registry-mirror", "foo")
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("hakod --registry-mirror foo: %v (want exit 1)\n%s", err, out)
	}
	if !strings.Contains(string(out), `--registry-mirror`) || !strings.Contains(string(out), `"foo"`) || !strings.Contains(string(out), "http://") {
		t.Errorf("message does not name the flag, the value and the fix: %s", out)
	}
}
