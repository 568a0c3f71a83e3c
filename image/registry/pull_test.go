package registry_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/image"
	"github.com/hako-project/hako/image/registry"
	"github.com/hako-project/hako/test/imagetest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestMain lets the killed-pull test run a pull in a child process.
func TestMain(m *testing.M) {
	if root := os.Getenv("HAKO_TEST_PULL_ROOT"); root != "" {
		s, err := image.Open(context.Background(), image.Options{Root: root})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		c := registry.New(s, registry.Options{ConfigDir: root})
		_, err = c.Pull(context.Background(), os.Getenv("HAKO_TEST_PULL_REF"), nil)
		fmt.Fprintln(os.Stderr, "helper pull returned:", err)
		os.Exit(3)
	}
	os.Exit(m.Run())
}

// randomBytes is incompressible, deterministic data.
func randomBytes(n int, seed uint64) string {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return string(b)
}

// assertEmpty checks that a failed operation left the store as new.
func assertEmpty(t *testing.T, s *image.Store) {
	t.Helper()
	ctx := context.Background()
	imgs, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 0 {
		t.Errorf("images left: %d", len(imgs))
	}
	blobs, snaps, err := s.DiskUsage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	infos, _ := s.Snapshots().List(ctx)
	if blobs != 0 || snaps != 0 || len(infos) != 0 {
		t.Errorf("left behind: %d blob bytes, %d snapshot bytes, snapshots %+v", blobs, snaps, infos)
	}
	assertClean(t, s)
}

func TestPushThenPullAndPullByDigest(t *testing.T) {
	imagetest.RequireRoot(t)
	ctx := context.Background()
	reg := imagetest.StartRegistry(t, imagetest.RegistryOptions{})
	src := openStore(t, t.TempDir())
	img, err := src.ImportRootfs(ctx, bytes.NewReader(imagetest.Tar(t, []imagetest.Entry{
		{Name: "hello", Body: "world"}, {Name: "big", Body: randomBytes(1<<20, 1)},
	})), image.ImportOptions{Ref: "local/app:v1", Cmd: []string{"/hello"}})
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Host + "/pushed/app:v2"
	if err := src.Tag(ctx, "local/app:v1", ref); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, src)
	col := &collector{}
	d, err := c.Push(ctx, ref, col.add)
	if err != nil {
		t.Fatal(err)
	}
	if d != img.Manifest.Digest {
		t.Fatalf("pushed digest %s, stored manifest %s", d, img.Manifest.Digest)
	}
	if !strings.Contains(col.statuses(), "Pushed") {
		t.Errorf("no Pushed status: %v", col.statuses())
	}
	// Pushing again finds every layer there.
	col = &collector{}
	if _, err := c.Push(ctx, ref, col.add); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(col.statuses(), "Layer already exists") {
		t.Errorf("second push: %v", col.statuses())
	}
	// skopeo, an independent client, sees the same manifest digest.
	if out, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "docker://"+ref).CombinedOutput(); err != nil {
		t.Errorf("skopeo inspect: %v: %s", err, out)
	} else if !strings.Contains(string(out), d.String()) {
		t.Errorf("skopeo inspect does not show %s:\n%s", d, out)
	}

	dst := openStore(t, t.TempDir())
	c2 := newClient(t, dst)
	pulled, err := c2.Pull(ctx, ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pulled.ID != img.ID || pulled.Manifest.Digest != d {
		t.Fatalf("pulled %s/%s, pushed %s/%s", pulled.ID, pulled.Manifest.Digest, img.ID, d)
	}
	// By digest into a fresh store: no tag, a digest name.
	dst2 := openStore(t, t.TempDir())
	byDigest := reg.Host + "/pushed/app@" + d.String()
	p2, err := newClient(t, dst2).Pull(ctx, byDigest, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(p2.Tags()) != 0 {
		t.Errorf("pull by digest created tags %v", p2.Tags())
	}
	if _, err := dst2.Resolve(ctx, byDigest); err != nil {
		t.Errorf("resolve %s: %v", byDigest, err)
	}
	// A digest that is not there.
	bad := reg.Host + "/pushed/app@sha256:" + strings.Repeat("0", 64)
	if _, err := newClient(t, dst2).Pull(ctx, bad, nil); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("pull of unknown digest: %v, want not found", err)
	}
	assertClean(t, dst2)
}

func TestPullMultiPlatformIndex(t *testing.T) {
	imagetest.RequireRoot(t)
	ctx := context.Background()
	reg := imagetest.StartRegistry(t, imagetest.RegistryOptions{})
	amd := imagetest.Image(t, [][]byte{imagetest.Tar(t, []imagetest.Entry{{Name: "arch", Body: "amd64"}})}, v1.Config{}, &v1.Platform{OS: "linux", Architecture: "amd64"})
	arm := imagetest.Image(t, [][]byte{imagetest.Tar(t, []imagetest.Entry{{Name: "arch", Body: "arm64"}})}, v1.Config{}, &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"})
	ref := reg.Host + "/multi:latest"
	idxDigest := imagetest.PushIndex(t, ref, []imagetest.PlatformImage{
		{Platform: v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, Image: arm},
		{Platform: v1.Platform{OS: "linux", Architecture: "amd64"}, Image: amd},
	})
	for _, tc := range []struct {
		plat ocispec.Platform
		want v1.Image
	}{
		{ocispec.Platform{OS: "linux", Architecture: "amd64"}, amd},
		{ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, arm},
	} {
		s := openStore(t, t.TempDir())
		c := registry.New(s, registry.Options{ConfigDir: t.TempDir(), Platform: &tc.plat})
		got, err := c.Pull(ctx, ref, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.plat.Architecture, err)
		}
		wantID, _ := tc.want.ConfigName()
		if got.ID.String() != wantID.String() {
			t.Errorf("%s: got image %s, want %s", tc.plat.Architecture, got.ID, wantID)
		}
		if got.Platform.Architecture != tc.plat.Architecture {
			t.Errorf("platform %+v", got.Platform)
		}
		if len(got.RepoDigests) != 1 || !strings.HasSuffix(got.RepoDigests[0], idxDigest) {
			t.Errorf("repo digests %v, want the index digest %s", got.RepoDigests, idxDigest)
		}
	}
	s := openStore(t, t.TempDir())
	c := registry.New(s, registry.Options{ConfigDir: t.TempDir(), Platform: &ocispec.Platform{OS: "linux", Architecture: "s390x"}})
	_, err := c.Pull(ctx, ref, nil)
	if err == nil || !strings.Contains(err.Error(), "no matching manifest for linux/s390x") {
		t.Fatalf("pull for missing platform: %v", err)
	}
	assertEmpty(t, s)
}

func TestPullTamperedBlobStoresNothing(t *testing.T) {
	imagetest.RequireRoot(t)
	ctx := context.Background()
	reg := imagetest.StartRegistry(t, imagetest.RegistryOptions{})
	img := imagetest.Image(t, [][]byte{
		imagetest.Tar(t, []imagetest.Entry{{Name: "a", Body: randomBytes(300<<10, 2)}}),
		imagetest.Tar(t, []imagetest.Entry{{Name: "b", Body: "good layer"}}),
	}, v1.Config{}, nil)
	ref := reg.Host + "/tampered:latest"
	imagetest.Push(t, ref, img)
	layers, _ := img.Layers()
	d, _ := layers[0].Digest()
	p := reg.BlobPath(d.String())
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, t.TempDir())
	_, err = newClient(t, s).Pull(ctx, ref, nil)
	if err == nil {
		t.Fatal("pull of tampered blob succeeded")
	}
	if !errors.Is(err, errdefs.ErrDataLoss) {
		t.Errorf("error %v is not a digest mismatch", err)
	}
	if !strings.Contains(err.Error(), d.String()) {
		t.Errorf("error %q does not name the blob %s", err, d)
	}
	assertEmpty(t, s)
}

// proxy forwards to a registry and rewrites blob responses with wrap.
func proxy(t *testing.T, regHost string, wrap func(io.ReadCloser) io.ReadCloser) string {
	u, _ := url.Parse("http://" + regHost)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(r *http.Response) error {
		if strings.Contains(r.Request.URL.Path, "/blobs/") && r.Request.Method == http.MethodGet && r.StatusCode == 200 {
			r.Body = wrap(r.Body)
			r.Header.Del("Content-Length")
			r.ContentLength = -1
		}
		return nil
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

type slowBody struct{ io.ReadCloser }

func (s slowBody) Read(p []byte) (int, error) {
	if len(p) > 32<<10 {
		p = p[:32<<10]
	}
	time.Sleep(20 * time.Millisecond)
	return s.ReadCloser.Read(p)
}

type truncBody struct {
	io.ReadCloser
	left int
}

func (tb *truncBody) Read(p []byte) (int, error) {
	if tb.left <= 0 {
		return 0, io.EOF
	}
	if len(p) > tb.left {
		p = p[:tb.left]
	}
	n, err := tb.ReadCloser.Read(p)
	tb.left -= n
	return n, err
}

func TestPullKilledHalfwayThenRepeated(t *testing.T) {
	imagetest.RequireRoot(t)
	ctx := context.Background()
	reg := imagetest.StartRegistry(t, imagetest.RegistryOptions{})
	img := imagetest.Image(t, [][]byte{
		imagetest.Tar(t, []imagetest.Entry{{Name: "small", Body: "s"}}),
		imagetest.Tar(t, []imagetest.Entry{{Name: "big", Body: randomBytes(4<<20, 3)}}),
	}, v1.Config{}, nil)
	imagetest.Push(t, reg.Host+"/killed:latest", img)
	slow := proxy(t, reg.Host, func(b io.ReadCloser) io.ReadCloser { return slowBody{b} })

	root := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "HAKO_TEST_PULL_ROOT="+root, "HAKO_TEST_PULL_REF="+slow+"/killed:latest")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it once a layer is partly downloaded.
	ingest := filepath.Join(root, "image", "content", "ingest")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if entries, _ := os.ReadDir(ingest); len(entries) > 0 {
			if fi, err := entries[0].Info(); err == nil && fi.Size() > 256<<10 {
				break
			}
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child never got half-way: %s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if strings.Contains(stderr.String(), "helper pull returned") {
		t.Fatalf("child finished before it was killed: %s", stderr.String())
	}
	s := openStore(t, root)
	got, err := newClient(t, s).Pull(ctx, reg.Host+"/killed:latest", nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.ConfigName()
	if got.ID.String() != want.String() {
		t.Fatalf("got %s want %s", got.ID, want)
	}
	assertClean(t, s)
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	infos, _ := s.Snapshots().List(ctx)
	if len(infos) != 2 {
		t.Errorf("want the 2 layer snapshots, got %+v", infos)
	}
}

func TestPullBadInput(t *testing.T) {
	imagetest.RequireRoot(t)
	ctx := context.Background()
	reg := imagetest.StartRegistry(t, imagetest.RegistryOptions{})
	img := imagetest.Image(t, [][]byte{imagetest.Tar(t, []imagetest.Entry{{Name: "x", Body: randomBytes(100<<10, 4)}})}, v1.Config{}, nil)
	imagetest.Push(t, reg.Host+"/good:latest", img)
	status := func(code int, challenge string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if challenge != "" {
				w.Header().Set("WWW-Authenticate", challenge)
			}
			w.WriteHeader(code)
			fmt.Fprintf(w, `{"errors":[{"code":"X","message":"status %d for %s"}]}`, code, r.URL.Path)
		}))
		t.Cleanup(srv.Close)
		return strings.TrimPrefix(srv.URL, "http://")
	}
	weird := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			return
		}
		body := `{"schemaVersion":2,"mediaType":"application/vnd.example.thing.v1+json"}`
		w.Header().Set("Content-Type", "application/vnd.example.thing.v1+json")
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		if r.Method == http.MethodGet {
			io.WriteString(w, body)
		}
	}))
	t.Cleanup(weird.Close)
	trunc := proxy(t, reg.Host, func(b io.ReadCloser) io.ReadCloser { return &truncBody{ReadCloser: b, left: 50 << 10} })

	cases := []struct {
		name, ref string
		class     error
		mention   string
	}{
		{"unknown image", reg.Host + "/nope:latest", errdefs.ErrNotFound, reg.Host + "/nope"},
		{"unknown tag", reg.Host + "/good:nope", errdefs.ErrNotFound, "good:nope"},
		{"malformed reference", "UPPER/Case::x", errdefs.ErrInvalid, "UPPER/Case::x"},
		{"401", status(401, `Basic realm="x"`) + "/a:b", errdefs.ErrUnauthorized, "401"},
		{"404", status(404, "") + "/a:b", errdefs.ErrNotFound, "404"},
		{"500", status(500, "") + "/a:b", errdefs.ErrUnavailable, "500"},
		{"unknown media type", strings.TrimPrefix(weird.URL, "http://") + "/a:b", errdefs.ErrInvalid, "application/vnd.example.thing.v1+json"},
		{"truncated blob", trunc + "/good:latest", errdefs.ErrDataLoss, "truncated"},
		{"connection refused", fmt.Sprintf("127.0.0.1:%d/a:b", imagetest.FreePort(t)), errdefs.ErrUnavailable, "127.0.0.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, t.TempDir())
			_, err := newClient(t, s).Pull(ctx, tc.ref, nil)
			if err == nil {
				t.Fatal("pull succeeded")
			}
			if !errors.Is(err, tc.class) {
				t.Errorf("error %v: want class %v", err, tc.class)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error %q does not mention %q", err, tc.mention)
			}
			assertEmpty(t, s)
		})
	}
}

func imageImportOpts() image.ImportOptions {
	return image.ImportOptions{Cmd: []string{"/f"}}
}

// TestPullGzipZstdAndUncompressedLayers pulls an image whose layers use all
// three encodings.
func TestPullGzipZstdAndUncompressedLayers(t *testing.T) {
	imagetest.RequireRoot(t)
	ctx := context.Background()
	reg := imagetest.StartRegistry(t, imagetest.RegistryOptions{})
	gz := imagetest.Tar(t, []imagetest.Entry{{Name: "gz", Body: "gzip layer"}})
	zs := imagetest.Tar(t, []imagetest.Entry{{Name: "zs", Body: "zstd layer"}})
	raw := imagetest.Tar(t, []imagetest.Entry{{Name: "raw", Body: "plain layer"}})
	l1, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(gz)), nil })
	if err != nil {
		t.Fatal(err)
	}
	l2, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(zs)), nil },
		tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd))
	if err != nil {
		t.Fatal(err)
	}
	l3 := static.NewLayer(raw, types.OCIUncompressedLayer)
	img, err := mutate.AppendLayers(empty.Image, l1, l2, l3)
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config.Cmd = "linux", "amd64", []string{"x"}
	img, _ = mutate.ConfigFile(img, cf)
	ref := reg.Host + "/mixed:latest"
	imagetest.Push(t, ref, img)
	s := openStore(t, t.TempDir())
	got, err := newClient(t, s).Pull(ctx, ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mts []string
	for _, l := range got.Layers {
		mts = append(mts, l.MediaType)
	}
	if strings.Join(mts, ",") != "application/vnd.docker.image.rootfs.diff.tar.gzip,application/vnd.oci.image.layer.v1.tar+zstd,application/vnd.oci.image.layer.v1.tar" {
		t.Fatalf("layer media types %v", mts)
	}
	_, mounts, err := s.PrepareContainer(ctx, "c", ref)
	if err != nil {
		t.Fatal(err)
	}
	files := mountedFiles(t, mounts)
	want := map[string]string{"gz": "file:gzip layer", "zs": "file:zstd layer", "raw": "file:plain layer",
		// The init layer's (image/initlayer.go).
		"etc": "dir", "etc/hostname": "file:", "etc/hosts": "file:", "etc/resolv.conf": "file:", "etc/mtab": "link:/proc/mounts"}
	if !equalMaps(files, want) {
		t.Fatalf("view %v", files)
	}
	s.RemoveSnapshot(ctx, "c")
	assertClean(t, s)
}

// TestPullTamperedCompressibleLayer flips a byte inside deflate-coded data,
// so the unpacker fails before the download ends; the error must still be
// the digest mismatch, not a decompression or tar error.
func TestPullTamperedCompressibleLayer(t *testing.T) {
	imagetest.RequireRoot(t)
	ctx := context.Background()
	reg := imagetest.StartRegistry(t, imagetest.RegistryOptions{})
	text := strings.Repeat("all work and no play makes a dull layer\n", 40000)
	img := imagetest.Image(t, [][]byte{imagetest.Tar(t, []imagetest.Entry{{Name: "a", Body: text}, {Name: "b", Body: text}})}, v1.Config{}, nil)
	ref := reg.Host + "/tampered-text:latest"
	imagetest.Push(t, ref, img)
	layers, _ := img.Layers()
	d, _ := layers[0].Digest()
	p := reg.BlobPath(d.String())
	b, _ := os.ReadFile(p)
	b[len(b)/3] ^= 0x55
	os.WriteFile(p, b, 0o644)
	s := openStore(t, t.TempDir())
	_, err := newClient(t, s).Pull(ctx, ref, nil)
	if !errors.Is(err, errdefs.ErrDataLoss) || !strings.Contains(err.Error(), d.String()) {
		t.Fatalf("pull of tampered compressible layer: %v, want a digest error naming %s", err, d)
	}
	assertEmpty(t, s)
}

// TestPullMaliciousLayerFromRegistry pulls a layer whose bytes match their
// digest but which tries to escape; it is refused by entry name.
func TestPullMaliciousLayerFromRegistry(t *testing.T) {
	imagetest.RequireRoot(t)
	ctx := context.Background()
	reg := imagetest.StartRegistry(t, imagetest.RegistryOptions{})
	img := imagetest.Image(t, [][]byte{
		imagetest.Tar(t, []imagetest.Entry{{Name: "ok", Body: randomBytes(200<<10, 9)}}),
		imagetest.Tar(t, []imagetest.Entry{
			{Name: "etc", Type: '2', Linkname: "/etc"},
			{Name: "etc/hako-escape", Body: "pwned"},
		}),
	}, v1.Config{}, nil)
	ref := reg.Host + "/malicious:latest"
	imagetest.Push(t, ref, img)
	s := openStore(t, t.TempDir())
	_, err := newClient(t, s).Pull(ctx, ref, nil)
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), `layer entry "etc/hako-escape": parent etc is a symlink`) {
		t.Fatalf("malicious layer: %v", err)
	}
	if _, err := os.Lstat("/etc/hako-escape"); err == nil {
		os.Remove("/etc/hako-escape")
		t.Fatal("escaped to /etc/hako-escape")
	}
	assertEmpty(t, s)
}
