package defaultimage_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hako-project/hako/engine/specgen"
	"github.com/hako-project/hako/image"
	"github.com/hako-project/hako/image/defaultimage"
	"github.com/hako-project/hako/snapshot"
	"github.com/hako-project/hako/test/imagetest"
)

func requireBusybox(t *testing.T) {
	if _, err := os.Stat(defaultimage.DefaultBusybox); err != nil {
		t.Skip("busybox-static not installed (apt-get install busybox-static)")
	}
}

func TestRootfsIsDeterministic(t *testing.T) {
	requireBusybox(t)
	a, err := defaultimage.Rootfs(context.Background(), defaultimage.DefaultBusybox)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := defaultimage.Rootfs(context.Background(), defaultimage.DefaultBusybox)
	if !bytes.Equal(a, b) {
		t.Fatal("rootfs tar differs between runs")
	}
	if _, err := defaultimage.Rootfs(context.Background(), "/bin/true"); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Errorf("dynamic binary accepted: %v", err)
	}
}

func TestBuildStableAndRunsWithRunc(t *testing.T) {
	imagetest.RequireRoot(t)
	requireBusybox(t)
	ctx := context.Background()
	var ids []string
	var stores []*image.Store
	for i := 0; i < 2; i++ {
		s, err := image.Open(ctx, image.Options{Root: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		img, err := defaultimage.Build(ctx, s, defaultimage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, img.ID.String()+" "+img.Manifest.Digest.String()+" "+img.Layers[0].Digest.String())
		stores = append(stores, s)
	}
	if ids[0] != ids[1] {
		t.Fatalf("two builds differ:\n%s\n%s", ids[0], ids[1])
	}
	s := stores[0]
	img, err := s.Resolve(ctx, defaultimage.Name)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := s.ReadConfig(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Config.Cmd, []string{"sh"}) || !cfg.Created.Equal(defaultimage.Created) {
		t.Errorf("config %+v", cfg.Config)
	}
	// Building again in the same store changes nothing.
	again, err := defaultimage.Build(ctx, s, defaultimage.Options{})
	if err != nil || again.ID != img.ID {
		t.Fatalf("rebuild: %v %v", again, err)
	}

	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("runc not installed; skipping the run check")
	}
	bundle := t.TempDir()
	rootfs := filepath.Join(bundle, "rootfs")
	os.Mkdir(rootfs, 0o755)
	_, mounts, err := s.PrepareContainer(ctx, "bb", defaultimage.Name)
	if err != nil {
		t.Fatal(err)
	}
	if err := snapshot.MountAll(mounts, rootfs); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := snapshot.UnmountAll(rootfs); err != nil {
			t.Error(err)
		}
		s.RemoveSnapshot(ctx, "bb")
	}()
	res, err := specgen.Generate(cfg.Config, rootfs, specgen.RunOptions{
		ID: "hakotestbusybox1", User: "nobody",
		Cmd: []string{"sh", "-c", "id; echo $HOME; ls /bin/ls; cat /proc/self/status | grep CapBnd"},
	})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(res.Spec)
	os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644)
	runcRoot := t.TempDir()
	ctx2, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx2, "runc", "--root", runcRoot, "run", "--bundle", bundle, "hako-defaultimage-test")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		exec.Command("runc", "--root", runcRoot, "delete", "-f", "hako-defaultimage-test").Run()
		t.Fatalf("runc run: %v:\n%s", err, out.String())
	}
	o := out.String()
	for _, want := range []string{"uid=65534(nobody) gid=65534(nobody)", "/home", "/bin/ls", "CapBnd:\t00000000a80425fb"} {
		if !strings.Contains(o, want) {
			t.Errorf("container output lacks %q:\n%s", want, o)
		}
	}
}
