package archive_test

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/hako-project/hako/image/archive"
	"github.com/hako-project/hako/snapshot"
	"github.com/hako-project/hako/test/imagetest"
)

// whiteoutImage has file, directory and opaque whiteouts across layers.
func whiteoutImage(t *testing.T) v1.Image {
	return imagetest.Image(t, [][]byte{
		imagetest.Tar(t, []imagetest.Entry{
			{Name: "a/", Type: tar.TypeDir}, {Name: "a/f1", Body: "a1"}, {Name: "a/f2", Body: "a2"},
			{Name: "c/", Type: tar.TypeDir}, {Name: "c/old", Body: "old"}, {Name: "c/sub/", Type: tar.TypeDir}, {Name: "c/sub/o", Body: "o"},
			{Name: "d", Body: "file d"}, {Name: "keep", Body: "k"},
			{Name: "e/", Type: tar.TypeDir}, {Name: "e/deep/", Type: tar.TypeDir}, {Name: "e/deep/file", Body: "deep"},
		}),
		imagetest.Tar(t, []imagetest.Entry{
			{Name: "a/", Type: tar.TypeDir}, {Name: "a/.wh.f1"}, {Name: ".wh.d"},
			{Name: "c/", Type: tar.TypeDir}, {Name: "c/.wh..wh..opq"}, {Name: "c/new", Body: "new"},
			{Name: "e/", Type: tar.TypeDir}, {Name: "e/.wh.deep"},
		}),
		imagetest.Tar(t, []imagetest.Entry{
			{Name: "d/", Type: tar.TypeDir}, {Name: "d/inside", Body: "in"}, {Name: ".wh.keep"},
		}),
	}, v1.Config{Cmd: []string{"/nothing"}}, nil)
}

// dockerNoise are paths docker adds to every container's filesystem.
func dockerNoise(p string) bool {
	switch p {
	case ".dockerenv", "dev", "proc", "sys", "etc", "etc/hosts", "etc/hostname", "etc/resolv.conf", "etc/mtab":
		return true
	}
	return strings.HasPrefix(p, "dev/") || strings.HasPrefix(p, "proc/") || strings.HasPrefix(p, "sys/")
}

func TestDockerLoadsOurSaveAndShowsTheSameFiles(t *testing.T) {
	imagetest.RequireRoot(t)
	d := imagetest.StartDockerd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := openStore(t)

	// Bring the image in through a docker archive written by
	// go-containerregistry (a third-party writer).
	img := whiteoutImage(t)
	var src bytes.Buffer
	tag, _ := name.NewTag("hako.test/whiteouts:v1")
	if err := tarball.Write(tag, img, &src); err != nil {
		t.Fatal(err)
	}
	loaded, err := archive.Load(ctx, s, &src, archive.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantID, _ := img.ConfigName()
	if len(loaded) != 1 || loaded[0].ID.String() != wantID.String() {
		t.Fatalf("loaded %+v", loaded)
	}

	// Our view of the image.
	_, mounts, err := s.PrepareContainer(ctx, "view", "hako.test/whiteouts:v1")
	if err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	if err := snapshot.MountAll(mounts, target); err != nil {
		t.Fatal(err)
	}
	var ours []string
	filepath.Walk(target, func(p string, fi os.FileInfo, err error) error {
		// A container's view, as docker's export below: both have an
		// init layer's files, left out alike.
		if rel, _ := filepath.Rel(target, p); err == nil && p != target && !dockerNoise(rel) {
			ours = append(ours, rel)
		}
		return nil
	})
	if err := snapshot.UnmountAll(target); err != nil {
		t.Fatal(err)
	}
	sort.Strings(ours)

	// docker load of our save, then docker's view through docker export.
	var saved bytes.Buffer
	if err := archive.Save(ctx, s, []string{"hako.test/whiteouts:v1"}, &saved); err != nil {
		t.Fatal(err)
	}
	out, err := d.DockerStdin(ctx, &saved, "load")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "Loaded image: hako.test/whiteouts:v1") {
		t.Fatalf("docker load said: %s", out)
	}
	id, err := d.Docker(ctx, "image", "inspect", "--format", "{{.Id}}", "hako.test/whiteouts:v1")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(id) != loaded[0].ID.String() {
		t.Errorf("docker image ID %s, ours %s", strings.TrimSpace(id), loaded[0].ID)
	}
	if _, err := d.Docker(ctx, "create", "--name", "wh", "hako.test/whiteouts:v1"); err != nil {
		t.Fatal(err)
	}
	exp := filepath.Join(t.TempDir(), "export.tar")
	if _, err := d.Docker(ctx, "export", "-o", exp, "wh"); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(exp)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var theirs []string
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := strings.TrimSuffix(h.Name, "/")
		if !dockerNoise(p) {
			theirs = append(theirs, p)
		}
	}
	sort.Strings(theirs)
	if strings.Join(ours, "\n") != strings.Join(theirs, "\n") {
		t.Fatalf("merged view differs from docker's:\nours:   %v\ndocker: %v", ours, theirs)
	}

	// And the other way: docker save (docker's own format) into hako.
	dsave := filepath.Join(t.TempDir(), "docker-save.tar")
	if _, err := d.Docker(ctx, "tag", "hako.test/whiteouts:v1", "roundtrip/img:x"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Docker(ctx, "save", "-o", dsave, "roundtrip/img:x"); err != nil {
		t.Fatal(err)
	}
	df, _ := os.Open(dsave)
	defer df.Close()
	s2 := openStore(t)
	back, err := archive.Load(ctx, s2, df, archive.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != 1 || back[0].ID != loaded[0].ID || back[0].Names[0] != "docker.io/roundtrip/img:x" {
		t.Fatalf("docker save loaded as %+v", back)
	}
	if err := s.RemoveSnapshot(ctx, "view"); err != nil {
		t.Fatal(err)
	}
}
