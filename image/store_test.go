package image_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/image"
	"github.com/hako-project/hako/image/layer"
	"github.com/hako-project/hako/snapshot"
	"github.com/hako-project/hako/test/imagetest"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
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

// fetchLocal brings a go-containerregistry image into s through Fetch, the
// path a pull takes, without a registry.
func fetchLocal(t *testing.T, s *image.Store, img v1.Image, name string) (*image.Image, error) {
	t.Helper()
	mb, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	mt, _ := img.MediaType()
	return s.Fetch(context.Background(), image.FetchRequest{
		ManifestDesc: ocispec.Descriptor{MediaType: string(mt), Digest: digest.FromBytes(mb), Size: int64(len(mb))},
		Manifest:     mb,
		Open: func(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
			h, err := v1.NewHash(d.Digest.String())
			if err != nil {
				return nil, err
			}
			if d.Digest.String() == mustConfigName(t, img) {
				b, _ := img.RawConfigFile()
				return io.NopCloser(bytes.NewReader(b)), nil
			}
			l, err := img.LayerByDigest(h)
			if err != nil {
				return nil, err
			}
			return l.Compressed()
		},
		Register: image.RegisterOptions{Names: []string{name}},
	})
}

func mustConfigName(t *testing.T, img v1.Image) string {
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// view mounts the container snapshot key and lists the merged tree.
func view(t *testing.T, mounts []snapshot.Mount) map[string]string {
	t.Helper()
	target := t.TempDir()
	if err := snapshot.MountAll(mounts, target); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := snapshot.UnmountAll(target); err != nil {
			t.Error(err)
		}
		if imagetest.Mounted(target) {
			t.Errorf("%s still mounted", target)
		}
	}()
	return listTree(t, target)
}

func listTree(t *testing.T, root string) map[string]string {
	out := map[string]string{}
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case fi.IsDir():
			out[rel] = "dir"
		case fi.Mode()&os.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			out[rel] = "->" + l
		default:
			b, _ := os.ReadFile(p)
			out[rel] = string(b)
		}
		return nil
	})
	return out
}

// withInitFiles is view v of an image as its containers see it: with the
// init layer's files (initlayer.go), where the image has none.
func withInitFiles(v map[string]string) map[string]string {
	out := map[string]string{"etc": "dir", "etc/hostname": "", "etc/hosts": "", "etc/resolv.conf": "", "etc/mtab": "->/proc/mounts"}
	for k, x := range v {
		out[k] = x
	}
	return out
}

func diffMaps(got, want map[string]string) string {
	var b strings.Builder
	for k, v := range want {
		if g, ok := got[k]; !ok {
			fmt.Fprintf(&b, "missing %s\n", k)
		} else if g != v {
			fmt.Fprintf(&b, "%s = %q, want %q\n", k, g, v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			fmt.Fprintf(&b, "unexpected %s\n", k)
		}
	}
	return b.String()
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

func assertEmpty(t *testing.T, s *image.Store) {
	t.Helper()
	ctx := context.Background()
	imgs, _ := s.List(ctx)
	blobs, snaps, err := s.DiskUsage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	infos, _ := s.Snapshots().List(ctx)
	if len(imgs) != 0 || blobs != 0 || snaps != 0 || len(infos) != 0 {
		t.Errorf("left behind: %d images, %d blob bytes, %d snapshot bytes, snapshots %+v", len(imgs), blobs, snaps, infos)
	}
	assertClean(t, s)
}

// WhiteoutLayers is a three-layer image exercising file, directory and
// opaque whiteouts; WhiteoutView is what docker shows for it.
func whiteoutLayers(t *testing.T) [][]byte {
	return [][]byte{
		imagetest.Tar(t, []imagetest.Entry{
			{Name: "a/", Type: tar.TypeDir}, {Name: "a/f1", Body: "a1"}, {Name: "a/f2", Body: "a2"},
			{Name: "b/", Type: tar.TypeDir}, {Name: "b/x", Body: "bx"},
			{Name: "c/", Type: tar.TypeDir}, {Name: "c/old", Body: "old"}, {Name: "c/sub/", Type: tar.TypeDir}, {Name: "c/sub/o", Body: "o"},
			{Name: "d", Body: "file d"},
			{Name: "e/", Type: tar.TypeDir}, {Name: "e/deep/", Type: tar.TypeDir}, {Name: "e/deep/file", Body: "deep"},
			{Name: "keep", Body: "k"}, {Name: "lnk", Type: tar.TypeSymlink, Linkname: "keep"},
		}),
		imagetest.Tar(t, []imagetest.Entry{
			{Name: "a/", Type: tar.TypeDir}, {Name: "a/.wh.f1"},
			{Name: ".wh.d"},
			{Name: "b/", Type: tar.TypeDir}, {Name: "b/x", Body: "bx2"},
			{Name: "c/", Type: tar.TypeDir}, {Name: "c/.wh..wh..opq"}, {Name: "c/new", Body: "new"},
			{Name: "e/", Type: tar.TypeDir}, {Name: "e/.wh.deep"},
			{Name: "newdir/", Type: tar.TypeDir},
		}),
		imagetest.Tar(t, []imagetest.Entry{
			{Name: "d/", Type: tar.TypeDir}, {Name: "d/inside", Body: "in"},
			{Name: "a/", Type: tar.TypeDir}, {Name: "a/f1", Body: "a1 again"},
			{Name: ".wh.keep"},
		}),
	}
}

var whiteoutView = map[string]string{
	"a": "dir", "a/f1": "a1 again", "a/f2": "a2", "b": "dir", "b/x": "bx2", "c": "dir", "c/new": "new",
	"d": "dir", "d/inside": "in", "e": "dir", "newdir": "dir", "lnk": "->keep",
}

func TestWhiteoutsAndOpaqueDirsAcrossLayers(t *testing.T) {
	imagetest.RequireRoot(t)
	s := openStore(t, t.TempDir())
	img := imagetest.Image(t, whiteoutLayers(t), v1.Config{Cmd: []string{"sh"}}, nil)
	got, err := fetchLocal(t, s, img, "test/whiteouts")
	if err != nil {
		t.Fatal(err)
	}
	_, mounts, err := s.PrepareContainer(context.Background(), "ctr", got.ID.String())
	if err != nil {
		t.Fatal(err)
	}
	// Three layers and the init layer.
	if m := mounts[0]; m.Type != "overlay" || len(m.LowerDirs()) != 4 || m.UpperDir() == "" || m.WorkDir() == "" {
		t.Fatalf("mount %+v", m)
	}
	if d := diffMaps(view(t, mounts), withInitFiles(whiteoutView)); d != "" {
		t.Fatalf("merged view differs from docker's:\n%s", d)
	}
	if err := s.RemoveSnapshot(context.Background(), "ctr"); err != nil {
		t.Fatal(err)
	}
	assertClean(t, s)
}

// TestUnpackedSizes: docker's size of each layer is the bytes of the
// regular files its tar holds (whiteouts, directories and links count
// nothing), recorded as the layer is unpacked; the image's is their sum.
// The compressed sizes stay in Image.Size, CRI's figure.
func TestUnpackedSizes(t *testing.T) {
	imagetest.RequireRoot(t)
	s := openStore(t, t.TempDir())
	img := imagetest.Image(t, whiteoutLayers(t), v1.Config{Cmd: []string{"sh"}}, nil)
	got, err := fetchLocal(t, s, img, "test/sizes")
	if err != nil {
		t.Fatal(err)
	}
	sizes, total := s.UnpackedSizes(context.Background(), got)
	// "a1" "a2" "bx" "old" "o" "file d" "deep" "k"; "bx2" "new"; "in" "a1 again"
	if want := []int64{21, 6, 10}; fmt.Sprint(sizes) != fmt.Sprint(want) || total != 37 {
		t.Errorf("unpacked sizes %v (total %d), want %v (37)", sizes, total, want)
	}
	var compressed int64
	for _, l := range got.Layers {
		compressed += l.Size
	}
	if got.Size != compressed {
		t.Errorf("Image.Size %d, want the compressed sizes' sum %d", got.Size, compressed)
	}
}

func TestCommitContainer(t *testing.T) {
	imagetest.RequireRoot(t)
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	base, err := s.ImportRootfs(ctx, bytes.NewReader(imagetest.Tar(t, []imagetest.Entry{
		{Name: "etc/", Type: tar.TypeDir}, {Name: "etc/conf", Body: "v1"}, {Name: "etc/drop", Body: "x"},
		{Name: "var/", Type: tar.TypeDir}, {Name: "var/cache/", Type: tar.TypeDir}, {Name: "var/cache/a", Body: "a"},
	})), image.ImportOptions{Ref: "base:1", Cmd: []string{"/bin/sh"}})
	if err != nil {
		t.Fatal(err)
	}
	_, mounts, err := s.PrepareContainer(ctx, "build", "base:1")
	if err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	if err := snapshot.MountAll(mounts, target); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(target, "etc/conf"), []byte("v2"), 0o644)
	os.Remove(filepath.Join(target, "etc/drop"))
	os.RemoveAll(filepath.Join(target, "var/cache"))
	os.MkdirAll(filepath.Join(target, "var/cache"), 0o755)
	os.WriteFile(filepath.Join(target, "var/cache/b"), []byte("b"), 0o644)
	os.WriteFile(filepath.Join(target, "new"), []byte("n"), 0o600)
	if err := snapshot.UnmountAll(target); err != nil {
		t.Fatal(err)
	}
	committed, err := s.CommitContainer(ctx, "build", image.CommitOptions{
		Ref: "derived:2", CreatedBy: "/bin/sh -c edit", Config: &ocispec.ImageConfig{Cmd: []string{"/new"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(committed.Layers) != 2 || committed.Layers[0].Digest != base.Layers[0].Digest {
		t.Fatalf("layers %+v", committed.Layers)
	}
	cfg, _, err := s.ReadConfig(ctx, committed)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.History) != 2 || cfg.History[1].CreatedBy != "/bin/sh -c edit" || cfg.Config.Cmd[0] != "/new" {
		t.Errorf("config %+v", cfg)
	}
	// The new layer is a docker-style diff.
	f, _ := s.Content().Open(committed.Layers[1].Digest)
	tr, _, _ := layer.Decompress(f)
	var names []string
	r := tar.NewReader(tr)
	for {
		h, err := r.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
	}
	f.Close()
	joined := strings.Join(names, " ")
	for _, want := range []string{"etc/.wh.drop", "var/cache/.wh..wh..opq", "var/cache/b", "new", "etc/conf"} {
		if !strings.Contains(joined, want) {
			t.Errorf("committed layer lacks %s: %v", want, names)
		}
	}
	_, mounts2, err := s.PrepareContainer(ctx, "run", "derived:2")
	if err != nil {
		t.Fatal(err)
	}
	want := withInitFiles(map[string]string{"etc": "dir", "etc/conf": "v2", "var": "dir", "var/cache": "dir", "var/cache/b": "b", "new": "n"})
	if d := diffMaps(view(t, mounts2), want); d != "" {
		t.Fatalf("committed image view:\n%s", d)
	}
	for _, k := range []string{"build", "run"} {
		if err := s.RemoveSnapshot(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	assertClean(t, s)
}

func TestImportRootfsRefusesMaliciousTarAndLeavesNothing(t *testing.T) {
	imagetest.RequireRoot(t)
	ctx := context.Background()
	for name, entries := range map[string][]imagetest.Entry{
		"tar-slip":         {{Name: "ok", Body: "x"}, {Name: "../../escape", Body: "x"}},
		"symlink escape":   {{Name: "l", Type: tar.TypeSymlink, Linkname: "/"}, {Name: "l/tmp/escape", Body: "x"}},
		"hardlink escape":  {{Name: "h", Type: tar.TypeLink, Linkname: "../../etc/shadow"}},
		"not a tar at all": nil,
	} {
		t.Run(name, func(t *testing.T) {
			s := openStore(t, t.TempDir())
			data := []byte("this is not a tar archive, just some text that is long enough to fill a header block...")
			data = append(data, bytes.Repeat([]byte{'z'}, 600)...)
			if entries != nil {
				data = imagetest.Gzip(t, imagetest.Tar(t, entries))
			}
			_, err := s.ImportRootfs(ctx, bytes.NewReader(data), image.ImportOptions{Ref: "evil:latest", Cmd: []string{"sh"}})
			if err == nil {
				t.Fatal("import succeeded")
			}
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Errorf("error %v is not ErrInvalid", err)
			}
			if entries != nil && !strings.Contains(err.Error(), "layer entry") {
				t.Errorf("error %q does not name the entry", err)
			}
			if _, err := os.Lstat("/tmp/escape"); err == nil {
				t.Fatal("/tmp/escape created")
			}
			assertEmpty(t, s)
		})
	}
}

func TestTagResolveRemove(t *testing.T) {
	imagetest.RequireRoot(t)
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	img, err := s.ImportRootfs(ctx, bytes.NewReader(imagetest.Tar(t, []imagetest.Entry{{Name: "f", Body: "1"}})), image.ImportOptions{Ref: "one", Cmd: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(ctx, "one", "other/repo:t"); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(ctx, "one:latest", "one:second"); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"one", "docker.io/library/one:latest", "other/repo:t", img.ID.String(), img.ID.Encoded()[:12], img.ID.Encoded()[:4]} {
		got, err := s.Resolve(ctx, q)
		if err != nil || got.ID != img.ID {
			t.Errorf("Resolve(%q) = %v, %v", q, got, err)
		}
	}
	for _, q := range []string{"missing", "sha256:" + strings.Repeat("f", 64), "ffffff"} {
		if _, err := s.Resolve(ctx, q); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Resolve(%q): %v, want not found", q, err)
		}
	}
	if _, err := s.Resolve(ctx, "Bad::Ref"); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("malformed reference: %v", err)
	}
	if err := s.Tag(ctx, "nothere", "x"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("tag of missing image: %v", err)
	}
	// By ID with names in two repositories: refused unless forced.
	if _, err := s.Remove(ctx, img.ID.String(), image.RemoveOptions{}); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("remove by ID across repos: %v", err)
	}
	// By name: untag only while other tags remain.
	res, err := s.Remove(ctx, "one:second", image.RemoveOptions{})
	if err != nil || len(res) != 1 || res[0].Untagged == "" {
		t.Fatalf("rmi one:second: %+v %v", res, err)
	}
	if err := s.Untag(ctx, "other/repo:t"); err != nil {
		t.Fatal(err)
	}
	if err := s.Untag(ctx, "other/repo:t"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("second untag: %v", err)
	}
	res, err = s.Remove(ctx, "one", image.RemoveOptions{})
	if err != nil || len(res) != 2 || res[1].Deleted != img.ID {
		t.Fatalf("rmi one: %+v %v", res, err)
	}
	assertEmpty(t, s)
}

func TestGCAndCheck(t *testing.T) {
	imagetest.RequireRoot(t)
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	a, err := s.ImportRootfs(ctx, bytes.NewReader(imagetest.Tar(t, []imagetest.Entry{{Name: "a", Body: "aaaa"}})), image.ImportOptions{Ref: "a", Cmd: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.ImportRootfs(ctx, bytes.NewReader(imagetest.Tar(t, []imagetest.Entry{{Name: "b", Body: "bbbb"}})), image.ImportOptions{Ref: "b", Cmd: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Remove(ctx, "b", image.RemoveOptions{NoPrune: true}); err != nil {
		t.Fatal(err)
	}
	res, err := s.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Blobs) != 3 || len(res.Snapshots) != 1 || res.Snapshots[0] != b.ChainID.String() {
		t.Fatalf("gc removed %+v", res)
	}
	if res, _ := s.GC(ctx); len(res.Blobs)+len(res.Snapshots) != 0 {
		t.Fatalf("second gc removed %+v", res)
	}
	if _, err := s.Resolve(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	assertClean(t, s)
	// Corrupt a's layer blob on disk: check finds it, repair removes it and
	// the image then reports it missing.
	p, _ := s.Content().BlobPath(a.Layers[0].Digest)
	data, _ := os.ReadFile(p)
	data[10] ^= 0xff
	os.WriteFile(p, data, 0o600)
	rep, err := s.Check(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Clean() || len(rep.Corrupt) != 1 || rep.Corrupt[0] != a.Layers[0].Digest {
		t.Fatalf("check: %+v", rep)
	}
	rep, _ = s.Check(ctx, true)
	rep, _ = s.Check(ctx, false)
	if len(rep.Corrupt) != 0 || len(rep.Missing) != 1 || !strings.Contains(rep.Missing[0], a.Layers[0].Digest.String()) {
		t.Fatalf("after repair: %+v", rep)
	}
}

func TestConcurrentFetchesOfOneImage(t *testing.T) {
	imagetest.RequireRoot(t)
	s := openStore(t, t.TempDir())
	img := imagetest.Image(t, whiteoutLayers(t), v1.Config{Cmd: []string{"sh"}}, nil)
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = fetchLocal(t, s, img, fmt.Sprintf("c/img:%d", i))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	infos, _ := s.Snapshots().List(context.Background())
	if len(infos) != 3 {
		t.Fatalf("want 3 layer snapshots, got %d", len(infos))
	}
	got, _ := s.Resolve(context.Background(), "c/img:0")
	if len(got.Names) != 6 {
		t.Errorf("names %v", got.Names)
	}
	assertClean(t, s)
}

func TestOpenRecoversFromKilledOperation(t *testing.T) {
	imagetest.RequireRoot(t)
	ctx := context.Background()
	root := t.TempDir()
	s := openStore(t, root)
	// Simulate what a killed pull leaves: a temp blob, a lease and an
	// unpack snapshot.
	w, err := s.Content().Writer("", -1)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("partial"))
	if _, err := s.NewLease(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Snapshots().Prepare(ctx, "extract-x", "", map[string]string{image.LabelExtract: "sha256:x"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2 := openStore(t, root)
	assertEmpty(t, s2)
}
