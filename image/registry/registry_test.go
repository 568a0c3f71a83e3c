package registry_test

import (
	"archive/tar"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/image"
	"github.com/hako-project/hako/image/progress"
	"github.com/hako-project/hako/image/registry"
	"github.com/hako-project/hako/snapshot"
	"github.com/hako-project/hako/test/imagetest"
)

func openStore(t *testing.T, root string) *image.Store {
	t.Helper()
	s, err := image.Open(context.Background(), image.Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newClient(t *testing.T, s *image.Store) *registry.Client {
	return registry.New(s, registry.Options{ConfigDir: t.TempDir()})
}

// mountedFiles mounts snapshot mounts on a temp dir and lists the merged
// view as "path type" lines, unmounting before it returns.
func mountedFiles(t *testing.T, mounts []snapshot.Mount) map[string]string {
	t.Helper()
	target := t.TempDir()
	if err := snapshot.MountAll(mounts, target); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := snapshot.UnmountAll(target); err != nil {
			t.Error(err)
		}
	}()
	out := map[string]string{}
	filepath.Walk(target, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == target {
			return nil
		}
		rel, _ := filepath.Rel(target, p)
		switch {
		case fi.IsDir():
			out[rel] = "dir"
		case fi.Mode()&os.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			out[rel] = "link:" + l
		default:
			b, _ := os.ReadFile(p)
			out[rel] = "file:" + string(b)
		}
		return nil
	})
	return out
}

func assertClean(t *testing.T, s *image.Store) {
	t.Helper()
	rep, err := s.Check(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Clean() || rep.Leases != 0 || rep.Ingests != 0 {
		t.Fatalf("store not clean: %+v", rep)
	}
}

func TestPullUnpacksLayersAndTags(t *testing.T) {
	imagetest.RequireRoot(t)
	ctx := context.Background()
	reg := imagetest.StartRegistry(t, imagetest.RegistryOptions{})
	l1 := imagetest.Tar(t, []imagetest.Entry{
		{Name: "etc/", Type: tar.TypeDir},
		{Name: "etc/hostname", Body: "base"},
		{Name: "bin/", Type: tar.TypeDir},
		{Name: "bin/sh", Body: "#!shell", Mode: 0o755},
		{Name: "bin/ash", Type: tar.TypeSymlink, Linkname: "sh"},
	})
	l2 := imagetest.Tar(t, []imagetest.Entry{
		{Name: "etc/hostname", Body: "top"},
		{Name: "app/", Type: tar.TypeDir},
		{Name: "app/run", Body: "run", Mode: 0o755},
	})
	img := imagetest.Image(t, [][]byte{l1, l2}, v1.Config{Cmd: []string{"/bin/sh"}}, nil)
	ref := reg.Host + "/test/app:v1"
	mdigest := imagetest.Push(t, ref, img)

	s := openStore(t, t.TempDir())
	c := newClient(t, s)
	col := &collector{}
	got, err := c.Pull(ctx, ref, col.add)
	if err != nil {
		t.Fatal(err)
	}
	cfgName, _ := img.ConfigName()
	if got.ID.String() != cfgName.String() {
		t.Fatalf("image ID %s, want config digest %s", got.ID, cfgName)
	}
	if got.Manifest.Digest.String() != mdigest {
		t.Fatalf("manifest %s, want %s", got.Manifest.Digest, mdigest)
	}
	if len(got.Names) != 1 || got.Names[0] != ref {
		t.Fatalf("names %v", got.Names)
	}
	if len(got.RepoDigests) != 1 || got.RepoDigests[0] != reg.Host+"/test/app@"+mdigest {
		t.Fatalf("repo digests %v", got.RepoDigests)
	}
	var statuses []string
	for _, e := range col.all() {
		statuses = append(statuses, e.Status)
	}
	all := strings.Join(statuses, "|")
	for _, want := range []string{"Pulling from test/app", progress.StatusPullComplete, "Digest: " + mdigest, "Status: Downloaded newer image for " + ref} {
		if !strings.Contains(all, want) {
			t.Errorf("progress lacks %q: %s", want, all)
		}
	}
	_, mounts, err := s.PrepareContainer(ctx, "c1", ref)
	if err != nil {
		t.Fatal(err)
	}
	files := mountedFiles(t, mounts)
	want := map[string]string{
		"etc": "dir", "etc/hostname": "file:top", "bin": "dir", "bin/sh": "file:#!shell",
		"bin/ash": "link:sh", "app": "dir", "app/run": "file:run",
		// The init layer's (image/initlayer.go), where the image has none.
		"etc/hosts": "file:", "etc/resolv.conf": "file:", "etc/mtab": "link:/proc/mounts",
	}
	if !equalMaps(files, want) {
		t.Fatalf("merged view:\n got %v\nwant %v", files, want)
	}
	// Second pull: nothing to fetch.
	col = &collector{}
	if _, err := c.Pull(ctx, ref, col.add); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range col.all() {
		if e.Status == progress.StatusAlreadyExists {
			n++
		}
		if e.Status == progress.StatusDownloading {
			t.Errorf("second pull downloaded %s", e.ID)
		}
	}
	if n != 2 {
		t.Errorf("second pull: %d layers already existed, want 2", n)
	}
	// In use: removal refused without force.
	if _, err := s.Remove(ctx, ref, image.RemoveOptions{}); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("remove image in use: %v, want conflict", err)
	}
	if err := s.RemoveSnapshot(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	assertClean(t, s)
	res, err := s.Remove(ctx, ref, image.RemoveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Untagged != ref || res[1].Deleted != got.ID {
		t.Fatalf("remove results: %+v", res)
	}
	infos, _ := s.Snapshots().List(ctx)
	if len(infos) != 0 {
		t.Fatalf("snapshots left after rmi: %+v", infos)
	}
	blobs, _, _ := s.DiskUsage(ctx)
	if blobs != 0 {
		t.Fatalf("%d blob bytes left after rmi", blobs)
	}
}

// collector gathers progress events; a progress.Func may be called from
// several goroutines at once.
type collector struct {
	mu     sync.Mutex
	events []progress.Event
}

func (c *collector) add(e progress.Event) {
	c.mu.Lock()
	c.events = append(c.events, e)
	c.mu.Unlock()
}

func (c *collector) all() []progress.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]progress.Event{}, c.events...)
}

func (c *collector) statuses() string {
	var s []string
	for _, e := range c.all() {
		s = append(s, e.Status)
	}
	return strings.Join(s, "|")
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
