package image_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/hako-project/hako/image"
	"github.com/hako-project/hako/test/imagetest"
)

// TestInitLayer: a container's snapshot builds on its image's init layer,
// made once per image, which holds /etc/hostname, /etc/hosts,
// /etc/resolv.conf and /etc/mtab (-> /proc/mounts) where the image has
// nothing there (an image's file
// keeps its content, a symlink is left as it is, /etc keeps its mode), so
// the container's own layer starts empty; containers made at once share
// one; GC keeps it while the image is there and removes it with the image.
func TestInitLayer(t *testing.T) {
	imagetest.RequireRoot(t)
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	img, err := s.ImportRootfs(ctx, bytes.NewReader(imagetest.Tar(t, []imagetest.Entry{
		{Name: "etc/", Type: tar.TypeDir, Mode: 0o750}, {Name: "etc/hosts", Body: "image's hosts"},
		{Name: "etc/resolv.conf", Type: tar.TypeSymlink, Linkname: "../run/resolv.conf"},
	})), image.ImportOptions{Ref: "init:1", Cmd: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := s.PrepareContainer(ctx, fmt.Sprintf("c%d", i), "init:1")
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	infos, _ := s.Snapshots().List(ctx)
	inits := 0
	for _, in := range infos {
		if in.Name == img.ChainID.String()+"-init" {
			inits++
		}
	}
	if inits != 1 || len(infos) != 7 { // the layer, its init layer, five containers
		t.Fatalf("snapshots: %d init layers in %+v", inits, infos)
	}
	mounts, err := s.Snapshots().Mounts(ctx, "c0")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"etc": "dir", "etc/hosts": "image's hosts", "etc/resolv.conf": "->../run/resolv.conf", "etc/hostname": "",
		"etc/mtab": "->/proc/mounts"}
	if d := diffMaps(view(t, mounts), want); d != "" {
		t.Fatalf("a container's view:\n%s", d)
	}
	up, _ := s.Snapshots().UpperDir(ctx, "c0")
	if ents, _ := os.ReadDir(up); len(ents) != 0 {
		t.Errorf("the container's own layer is not empty: %v", ents)
	}
	lower := mounts[0].LowerDirs()[0]
	if fi, err := os.Stat(lower + "/etc"); err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("/etc in the init layer: %v %v, want the image's 0750", fi.Mode(), err)
	}
	for i := range 5 {
		if err := s.RemoveSnapshot(ctx, fmt.Sprintf("c%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if res, err := s.GC(ctx); err != nil || len(res.Snapshots) != 0 {
		t.Fatalf("GC with the image there removed %+v (%v)", res, err)
	}
	if _, err := s.Remove(ctx, "init:1", image.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	assertEmpty(t, s)
}
