package archive_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/image"
	"github.com/hako-project/hako/image/archive"
	"github.com/hako-project/hako/test/imagetest"
)

func openStore(t *testing.T) *image.Store {
	t.Helper()
	s, err := image.Open(context.Background(), image.Options{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func assertEmpty(t *testing.T, s *image.Store) {
	t.Helper()
	ctx := context.Background()
	imgs, _ := s.List(ctx)
	blobs, snaps, _ := s.DiskUsage(ctx)
	infos, _ := s.Snapshots().List(ctx)
	rep, err := s.Check(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 0 || blobs != 0 || snaps != 0 || len(infos) != 0 || !rep.Clean() || rep.Leases != 0 || rep.Ingests != 0 {
		t.Errorf("store not empty: %d images, %d blob bytes, %d snapshot bytes, %d snapshots, %+v", len(imgs), blobs, snaps, len(infos), rep)
	}
}

// sampleStore holds two images sharing a base layer.
func sampleStore(t *testing.T) (*image.Store, *image.Image, *image.Image) {
	t.Helper()
	imagetest.RequireRoot(t)
	ctx := context.Background()
	s := openStore(t)
	a, err := s.ImportRootfs(ctx, bytes.NewReader(imagetest.Tar(t, []imagetest.Entry{
		{Name: "bin/", Type: tar.TypeDir}, {Name: "bin/tool", Body: "tool", Mode: 0o755},
		{Name: "etc/", Type: tar.TypeDir}, {Name: "etc/motd", Body: "hello from a"},
	})), image.ImportOptions{Ref: "example/a:1", Cmd: []string{"/bin/tool"}, Env: []string{"A=1"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.ImportRootfs(ctx, bytes.NewReader(imagetest.Tar(t, []imagetest.Entry{{Name: "b", Body: "bbb"}})), image.ImportOptions{Ref: "localhost:5000/b:2", Cmd: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	return s, a, b
}

func TestSaveLoadRoundTrip(t *testing.T) {
	s, a, b := sampleStore(t)
	ctx := context.Background()
	var buf bytes.Buffer
	if err := archive.Save(ctx, s, []string{"example/a:1", "localhost:5000/b:2"}, &buf); err != nil {
		t.Fatal(err)
	}
	// Deterministic.
	var again bytes.Buffer
	archive.Save(ctx, s, []string{"example/a:1", "localhost:5000/b:2"}, &again)
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("Save is not deterministic")
	}
	files := tarFiles(t, buf.Bytes())
	var mj []map[string]any
	if err := json.Unmarshal(files["manifest.json"], &mj); err != nil {
		t.Fatal(err)
	}
	if len(mj) != 2 || mj[0]["RepoTags"].([]any)[0] != "example/a:1" || mj[1]["RepoTags"].([]any)[0] != "localhost:5000/b:2" {
		t.Errorf("manifest.json: %s", files["manifest.json"])
	}
	if string(files["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout: %s", files["oci-layout"])
	}
	if !strings.Contains(string(files["index.json"]), `"io.containerd.image.name":"docker.io/example/a:1"`) {
		t.Errorf("index.json: %s", files["index.json"])
	}

	dst := openStore(t)
	imgs, err := archive.Load(ctx, dst, bytes.NewReader(buf.Bytes()), archive.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 2 || imgs[0].ID != a.ID || imgs[1].ID != b.ID || imgs[0].Manifest.Digest != a.Manifest.Digest {
		t.Fatalf("loaded %+v", imgs)
	}
	for _, n := range []string{"example/a:1", "localhost:5000/b:2"} {
		if _, err := dst.Resolve(ctx, n); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	rep, _ := dst.Check(ctx, false)
	if !rep.Clean() || rep.Leases != 0 {
		t.Errorf("check %+v", rep)
	}
	// Loading the same archive again changes nothing and adds nothing.
	before, _, _ := dst.DiskUsage(ctx)
	if _, err := archive.Load(ctx, dst, bytes.NewReader(buf.Bytes()), archive.LoadOptions{}); err != nil {
		t.Fatal(err)
	}
	after, _, _ := dst.DiskUsage(ctx)
	if before != after {
		t.Errorf("second load changed blob bytes %d -> %d", before, after)
	}
	// Gzip-compressed archives load too (docker load accepts them).
	gz := openStore(t)
	if _, err := archive.Load(ctx, gz, bytes.NewReader(imagetest.Gzip(t, buf.Bytes())), archive.LoadOptions{}); err != nil {
		t.Fatal(err)
	}
	// Saving by ID carries no names.
	var byID bytes.Buffer
	if err := archive.Save(ctx, s, []string{a.ID.String()}, &byID); err != nil {
		t.Fatal(err)
	}
	dst2 := openStore(t)
	imgs, err = archive.Load(ctx, dst2, &byID, archive.LoadOptions{})
	if err != nil || len(imgs) != 1 || len(imgs[0].Names) != 0 {
		t.Fatalf("load by-ID archive: %+v %v", imgs, err)
	}
}

func tarFiles(t *testing.T, b []byte) map[string][]byte {
	out := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		out[h.Name] = data
	}
	return out
}

func TestLoadBadArchivesLeaveNothing(t *testing.T) {
	s, _, _ := sampleStore(t)
	ctx := context.Background()
	var good bytes.Buffer
	if err := archive.Save(ctx, s, []string{"example/a:1"}, &good); err != nil {
		t.Fatal(err)
	}
	rewrite := func(edit func(name string, data []byte) (string, []byte, bool)) []byte {
		var out bytes.Buffer
		tw := tar.NewWriter(&out)
		tr := tar.NewReader(bytes.NewReader(good.Bytes()))
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			data, _ := io.ReadAll(tr)
			name, data, keep := edit(h.Name, data)
			if !keep {
				continue
			}
			h.Name, h.Size = name, int64(len(data))
			tw.WriteHeader(h)
			tw.Write(data)
		}
		tw.Close()
		return out.Bytes()
	}
	var layerBlob string
	var mj []struct{ Layers []string }
	json.Unmarshal(tarFiles(t, good.Bytes())["manifest.json"], &mj)
	layerBlob = mj[0].Layers[0]
	cases := map[string]struct {
		data  []byte
		class error
		say   string
	}{
		"not a tar": {bytes.Repeat([]byte("garbage!"), 200), errdefs.ErrInvalid, "read archive"},
		"no index or manifest": {rewrite(func(n string, d []byte) (string, []byte, bool) {
			return n, d, n != "index.json" && n != "manifest.json"
		}), errdefs.ErrInvalid, "neither index.json nor manifest.json"},
		"tampered blob": {rewrite(func(n string, d []byte) (string, []byte, bool) {
			if n == layerBlob {
				d = append([]byte{}, d...)
				d[len(d)/2] ^= 0xff
			}
			return n, d, true
		}), errdefs.ErrDataLoss, strings.TrimPrefix(layerBlob, "blobs/sha256/")},
		"missing layer": {rewrite(func(n string, d []byte) (string, []byte, bool) {
			return n, d, n != layerBlob
		}), errdefs.ErrInvalid, strings.TrimPrefix(layerBlob, "blobs/sha256/")},
		"bad json": {rewrite(func(n string, d []byte) (string, []byte, bool) {
			if n == "index.json" {
				d = []byte("{not json")
			}
			return n, d, true
		}), errdefs.ErrInvalid, "index.json"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dst := openStore(t)
			_, err := archive.Load(ctx, dst, bytes.NewReader(tc.data), archive.LoadOptions{})
			if err == nil {
				t.Fatal("loaded")
			}
			if !errors.Is(err, tc.class) {
				t.Errorf("error %v: want class %v", err, tc.class)
			}
			if !strings.Contains(err.Error(), tc.say) {
				t.Errorf("error %q does not mention %q", err, tc.say)
			}
			assertEmpty(t, dst)
		})
	}
}

func TestSkopeoReadsOurArchiveAndWeReadSkopeos(t *testing.T) {
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Skip("skopeo not installed")
	}
	s, a, _ := sampleStore(t)
	ctx := context.Background()
	dir := t.TempDir()
	arch := filepath.Join(dir, "a.tar")
	f, _ := os.Create(arch)
	if err := archive.Save(ctx, s, []string{"example/a:1"}, f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// skopeo reads it both as a docker archive and as an OCI archive.
	for _, src := range []string{"docker-archive:" + arch, "oci-archive:" + arch + ":1"} {
		out, err := exec.Command("skopeo", "inspect", "--raw", src).CombinedOutput()
		if err != nil {
			t.Fatalf("skopeo inspect %s: %v: %s", src, err, out)
		}
	}
	out, err := exec.Command("skopeo", "inspect", "--config", "oci-archive:"+arch+":1").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"/bin/tool"`) {
		t.Fatalf("skopeo config: %v: %s", err, out)
	}
	// skopeo copies it to an OCI layout dir; we load that.
	layoutDir := filepath.Join(dir, "layout")
	if out, err := exec.Command("skopeo", "copy", "docker-archive:"+arch, "oci:"+layoutDir+":copied").CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v: %s", err, out)
	}
	dst := openStore(t)
	imgs, err := archive.LoadOCILayout(ctx, dst, layoutDir, archive.LoadOptions{Name: "fromskopeo"})
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 || imgs[0].ID != a.ID || len(imgs[0].Names) != 1 || imgs[0].Names[0] != "docker.io/library/fromskopeo:copied" {
		t.Fatalf("loaded %+v", imgs)
	}
}

func TestUmociInterop(t *testing.T) {
	if _, err := exec.LookPath("umoci"); err != nil {
		t.Skip("umoci not installed")
	}
	s, _, _ := sampleStore(t)
	ctx := context.Background()
	dir := t.TempDir()
	layout := filepath.Join(dir, "layout")
	if err := archive.WriteOCILayout(ctx, s, []string{"example/a:1"}, layout); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(dir, "bundle")
	if out, err := exec.Command("umoci", "unpack", "--image", layout+":1", bundle).CombinedOutput(); err != nil {
		t.Fatalf("umoci unpack of our layout: %v: %s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(bundle, "rootfs/etc/motd")); err != nil || string(b) != "hello from a" {
		t.Fatalf("umoci unpacked %q %v", b, err)
	}
	// umoci changes the image; we load its result.
	os.WriteFile(filepath.Join(bundle, "rootfs/etc/added"), []byte("by umoci"), 0o644)
	os.Remove(filepath.Join(bundle, "rootfs/bin/tool"))
	if out, err := exec.Command("umoci", "repack", "--image", layout+":2", bundle).CombinedOutput(); err != nil {
		t.Fatalf("umoci repack: %v: %s", err, out)
	}
	dst := openStore(t)
	imgs, err := archive.LoadOCILayout(ctx, dst, layout, archive.LoadOptions{Name: "umoci/img"})
	if err != nil {
		t.Fatal(err)
	}
	var two *image.Image
	for _, img := range imgs {
		for _, n := range img.Names {
			if n == "docker.io/umoci/img:2" {
				two = img
			}
		}
	}
	if two == nil || len(two.Layers) != 2 {
		t.Fatalf("umoci's image not loaded: %+v", imgs)
	}
	_, mounts, err := dst.PrepareContainer(ctx, "c", "umoci/img:2")
	if err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	if err := mountAndCheck(t, mounts, target, map[string]string{"etc/added": "by umoci", "etc/motd": "hello from a"}, []string{"bin/tool"}); err != nil {
		t.Fatal(err)
	}
}
