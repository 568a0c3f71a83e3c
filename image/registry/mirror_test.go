package registry_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/image"
	"github.com/hako-project/hako/image/registry"
	"github.com/hako-project/hako/test/imagetest"
)

func TestValidateMirror(t *testing.T) {
	good := map[string]string{
		"http://127.0.0.1:5000":       "http://127.0.0.1:5000/",
		"http://127.0.0.1:5000/":      "http://127.0.0.1:5000/",
		"https://mirror.gcr.io":       "https://mirror.gcr.io/",
		"HTTPS://Mirror.Example:8443": "https://Mirror.Example:8443/",
		"http://[::1]:5000/":          "http://[::1]:5000/",
	}
	for in, want := range good {
		got, err := registry.ValidateMirror(in)
		if err != nil || got != want {
			t.Errorf("ValidateMirror(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := map[string]string{
		"foo":                         "no scheme",
		"127.0.0.1:5000":              "no scheme",
		"://x":                        "no scheme",
		"ftp://mirror.example":        `unsupported scheme "ftp"`,
		"unix:///run/mirror.sock":     `unsupported scheme "unix"`,
		"http://":                     "no host",
		"http://:5000":                "no host",
		"https://mirror.example/v2":   "path",
		"https://mirror.example/a/b/": "path",
		"https://mirror.example/?x=1": "query or fragment",
		"https://mirror.example/?":    "query or fragment",
		"https://mirror.example/#top": "query or fragment",
		"https://mirror.example/#":    "query or fragment",
		"http://mirror.exa mple/":     "not a valid URL",
	}
	for in, want := range bad {
		_, err := registry.ValidateMirror(in)
		if err == nil {
			t.Errorf("ValidateMirror(%q) accepted", in)
			continue
		}
		if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateMirror(%q): %v; want invalid, mentioning %q", in, err, want)
		}
		// The message names the value so a user finds it in a long config.
		if want != "not a valid URL" && !strings.Contains(err.Error(), fmt.Sprintf("%q", in)) {
			t.Errorf("ValidateMirror(%q): %q does not name the value", in, err)
		}
	}
	// Credentials are refused without repeating the password.
	_, err := registry.ValidateMirror("https://user:s3cret@mirror.example/")
	if err == nil || !strings.Contains(err.Error(), "credentials") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("credentials in URL: %v", err)
	}
	if _, err := registry.ValidateMirrors([]string{"http://127.0.0.1:1", "mirror.example"}); err == nil || !strings.Contains(err.Error(), `"mirror.example"`) {
		t.Errorf("ValidateMirrors with one bad value: %v", err)
	}
}

// logBuf collects a client's debug log.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// mirrorClient is a client with mirrors whose Docker Hub is hub
// ("127.0.0.1:PORT"), logging at debug level into the returned buffer.
func mirrorClient(t *testing.T, s *image.Store, hub string, mirrors ...string) (*registry.Client, *logBuf) {
	t.Helper()
	lb := &logBuf{}
	c := registry.New(s, registry.Options{
		ConfigDir: t.TempDir(),
		Mirrors:   mirrors,
		Logger:    slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	registry.SetDockerHubHostForTest(c, hub)
	return c, lb
}

// countingProxy forwards to a registry and counts the requests it sees, so
// a test knows whether a mirror was asked at all.
func countingProxy(t *testing.T, regHost string) (string, *atomic.Int64) {
	u, _ := url.Parse("http://" + regHost)
	rp := httputil.NewSingleHostReverseProxy(u)
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &n
}

// statusServer answers every request with code (a failing mirror).
func statusServer(t *testing.T, code int, challenge string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if challenge != "" {
			w.Header().Set("WWW-Authenticate", challenge)
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"errors":[{"code":"X","message":"status %d for %s"}]}`, code, r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func closedURL(t *testing.T) string {
	return fmt.Sprintf("http://127.0.0.1:%d", imagetest.FreePort(t))
}

func TestPullFromMirror(t *testing.T) {
	imagetest.RequireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reg := imagetest.StartRegistry(t, imagetest.RegistryOptions{})
	img := imagetest.Image(t, [][]byte{imagetest.Tar(t, []imagetest.Entry{{Name: "bin/hello", Body: "from the mirror"}})}, v1.Config{Cmd: []string{"/bin/hello"}}, nil)
	// A mirror of Docker Hub keeps official images under library/.
	dgst := imagetest.Push(t, reg.Host+"/library/mirrored:v1", img)
	mirrorURL, hits := countingProxy(t, reg.Host)
	hub := fmt.Sprintf("127.0.0.1:%d", imagetest.FreePort(t))

	s := openStore(t, t.TempDir())
	c, logs := mirrorClient(t, s, hub, mirrorURL)
	got, err := c.Pull(ctx, "mirrored:v1", nil)
	if err != nil {
		t.Fatalf("pull through the mirror: %v\nlog:\n%s", err, logs)
	}
	want, _ := img.ConfigName()
	if got.ID.String() != want.String() {
		t.Fatalf("pulled %s, want %s", got.ID, want)
	}
	if hits.Load() == 0 {
		t.Error("the mirror saw no request")
	}
	// Stored under its Docker Hub name, never the mirror's.
	if !slices.Equal(got.Names, []string{"docker.io/library/mirrored:v1"}) {
		t.Errorf("names %v, want [docker.io/library/mirrored:v1]", got.Names)
	}
	if !slices.Equal(got.RepoDigests, []string{"docker.io/library/mirrored@" + dgst}) {
		t.Errorf("repo digests %v", got.RepoDigests)
	}
	for _, ref := range []string{"mirrored:v1", "docker.io/library/mirrored:v1", "docker.io/library/mirrored@" + dgst} {
		if r, err := s.Resolve(ctx, ref); err != nil || r.ID != got.ID {
			t.Errorf("store resolve %s: %v", ref, err)
		}
	}
	if _, err := s.Resolve(ctx, strings.TrimPrefix(mirrorURL, "http://")+"/library/mirrored:v1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("the mirror's name is in the store: %v", err)
	}
	// The debug log says who served it.
	if l := logs.String(); !strings.Contains(l, "registry served") || !strings.Contains(l, mirrorURL+"/") {
		t.Errorf("debug log does not name the mirror %s:\n%s", mirrorURL, l)
	}
	// The fully qualified name goes the same way; Resolve reports the mirror.
	res, err := c.Resolve(ctx, "docker.io/library/mirrored:v1")
	if err != nil {
		t.Fatal(err)
	}
	if res.Registry != mirrorURL+"/" || res.Digest.String() != dgst {
		t.Errorf("resolve: registry %q digest %s; want %s/ and %s", res.Registry, res.Digest, mirrorURL, dgst)
	}
	col := &collector{}
	if _, err := c.Pull(ctx, "docker.io/library/mirrored:v1", col.add); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(col.statuses(), "Image is up to date for mirrored:v1") {
		t.Errorf("second pull: %s", col.statuses())
	}
	assertClean(t, s)
}

func TestPullMirrorFallsThrough(t *testing.T) {
	imagetest.RequireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	empty := imagetest.StartRegistry(t, imagetest.RegistryOptions{}) // 404 manifest unknown
	good := imagetest.StartRegistry(t, imagetest.RegistryOptions{})
	img := imagetest.Image(t, [][]byte{imagetest.Tar(t, []imagetest.Entry{{Name: "x", Body: randomBytes(64<<10, 9)}})}, v1.Config{}, nil)
	imagetest.Push(t, good.Host+"/library/fallthrough:latest", img)
	hub := fmt.Sprintf("127.0.0.1:%d", imagetest.FreePort(t))
	truncated := proxy(t, good.Host, func(b io.ReadCloser) io.ReadCloser { return &truncBody{ReadCloser: b, left: 16 << 10} })
	failing := []struct{ what, url string }{
		{"connection refused", closedURL(t)},
		{"404 manifest unknown", "http://" + empty.Host},
		{"500", statusServer(t, http.StatusInternalServerError, "")},
		{"401", statusServer(t, http.StatusUnauthorized, `Basic realm="mirror"`)},
		// Fails half-way through a layer: the pull is undone and the next
		// endpoint starts from a clean store.
		{"truncated blob", "http://" + truncated},
	}
	var mirrors []string
	for _, f := range failing {
		mirrors = append(mirrors, f.url)
	}
	goodURL, hits := countingProxy(t, good.Host)
	mirrors = append(mirrors, goodURL, closedURL(t))

	s := openStore(t, t.TempDir())
	c, logs := mirrorClient(t, s, hub, mirrors...)
	got, err := c.Pull(ctx, "fallthrough", nil)
	if err != nil {
		t.Fatalf("pull: %v\nlog:\n%s", err, logs)
	}
	want, _ := img.ConfigName()
	if got.ID.String() != want.String() || hits.Load() == 0 {
		t.Fatalf("pulled %s (want %s), good mirror hit %d times", got.ID, want, hits.Load())
	}
	if !slices.Equal(got.Names, []string{"docker.io/library/fallthrough:latest"}) {
		t.Errorf("names %v", got.Names)
	}
	l := logs.String()
	for _, f := range failing {
		if !strings.Contains(l, "mirror="+f.url+"/") {
			t.Errorf("no debug line for the %s mirror %s:\n%s", f.what, f.url, l)
		}
	}
	if !strings.Contains(l, "truncated") {
		t.Errorf("the truncated-blob mirror did not fail on its blob:\n%s", l)
	}
	if !strings.Contains(l, "registry served") || !strings.Contains(l, "registry="+goodURL+"/") {
		t.Errorf("debug log does not say %s served:\n%s", goodURL, l)
	}
	assertClean(t, s)
}

func TestPullAllMirrorsDown(t *testing.T) {
	imagetest.RequireRoot(t)
	m1, m2 := closedURL(t), closedURL(t)
	hub := fmt.Sprintf("127.0.0.1:%d", imagetest.FreePort(t))
	s := openStore(t, t.TempDir())
	c, _ := mirrorClient(t, s, hub, m1, m2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.Pull(ctx, "busybox:1.36", nil)
	if err == nil {
		t.Fatal("pull succeeded with every registry down")
	}
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("error %v: want unavailable", err)
	}
	// It names the image (docker.io), the upstream that failed last, and
	// each mirror that failed before it.
	for _, s := range []string{"docker.io/library/busybox:1.36", hub, m1 + "/", m2 + "/", "registry mirrors failed first"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	assertEmpty(t, s)

	// The real Docker Hub, which is unreachable here (and, where it is
	// reachable, has no such image): the error names it, and the context
	// bounds the test if the network hangs.
	c = registry.New(s, registry.Options{ConfigDir: t.TempDir(), Mirrors: []string{m1}})
	ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel2()
	_, err = c.Pull(ctx2, "hako-test-no-such-image-anywhere:v0", nil)
	if err == nil || !strings.Contains(err.Error(), "index.docker.io") || !strings.Contains(err.Error(), m1+"/") {
		t.Errorf("pull with Docker Hub unreachable: %v; want it to name index.docker.io and %s", err, m1)
	}
	assertEmpty(t, s)
}

func TestPullNonHubImageIgnoresMirrors(t *testing.T) {
	imagetest.RequireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	own := imagetest.StartRegistry(t, imagetest.RegistryOptions{})
	mir := imagetest.StartRegistry(t, imagetest.RegistryOptions{})
	ownImg := imagetest.Image(t, [][]byte{imagetest.Tar(t, []imagetest.Entry{{Name: "who", Body: "own"}})}, v1.Config{}, nil)
	mirImg := imagetest.Image(t, [][]byte{imagetest.Tar(t, []imagetest.Entry{{Name: "who", Body: "mirror"}})}, v1.Config{}, nil)
	imagetest.Push(t, own.Host+"/app:v1", ownImg)
	// The same path in the mirror holds a different image: if the mirror
	// were asked, the test would see it.
	imagetest.Push(t, mir.Host+"/app:v1", mirImg)
	mirrorURL, hits := countingProxy(t, mir.Host)

	s := openStore(t, t.TempDir())
	c, _ := mirrorClient(t, s, fmt.Sprintf("127.0.0.1:%d", imagetest.FreePort(t)), mirrorURL)
	got, err := c.Pull(ctx, own.Host+"/app:v1", nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := ownImg.ConfigName()
	if got.ID.String() != want.String() {
		t.Errorf("pulled %s, want the registry's own image %s", got.ID, want)
	}
	// A failing non-Hub registry does not fall back to a mirror either.
	if _, err := c.Pull(ctx, own.Host+"/missing:v1", nil); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("pull of a missing image: %v, want not found", err)
	}
	// Push goes to the name's registry only.
	if _, err := c.Push(ctx, own.Host+"/app:v1", nil); err != nil {
		t.Errorf("push: %v", err)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the mirror saw %d requests for images not on Docker Hub", n)
	}
}

func TestInvalidMirrorFailsHubPulls(t *testing.T) {
	imagetest.RequireRoot(t)
	s := openStore(t, t.TempDir())
	c := registry.New(s, registry.Options{ConfigDir: t.TempDir(), Mirrors: []string{"mirror.example:5000"}})
	_, err := c.Pull(context.Background(), "busybox", nil)
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), `"mirror.example:5000"`) {
		t.Errorf("pull with an invalid mirror configured: %v", err)
	}
	assertEmpty(t, s)
}
