// Package imagetest provides real peers for image tests: Debian's
// docker-registry on a free loopback port with its own storage directory,
// a dockerd on its own root and socket, and builders for layer tarballs
// and images (good and malicious). Everything a helper starts is stopped
// and removed by t.Cleanup.
package imagetest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"
)

// RegistryBinary is Debian's docker-registry (distribution 2.8).
const RegistryBinary = "/usr/bin/docker-registry"

// RequireRoot skips t unless it runs as root (CI does).
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (overlay mounts, chown, mknod); CI runs tests as root")
	}
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Registry is a running docker-registry.
type Registry struct {
	// Host is "127.0.0.1:PORT", usable in image references.
	Host string
	// Dir is the registry's storage root.
	Dir string
	cmd *exec.Cmd
	// release lets the thread that started the registry go (startOnThread).
	release chan struct{}
}

// RegistryOptions configure StartRegistry.
type RegistryOptions struct {
	// Auth is an extra "auth:" section for config.yml (htpasswd or token).
	Auth string
}

// StartRegistry runs docker-registry on a free loopback port with storage
// in a temp dir, and stops it when t ends.
func StartRegistry(t testing.TB, opts RegistryOptions) *Registry {
	t.Helper()
	if _, err := os.Stat(RegistryBinary); err != nil {
		t.Skipf("%s not installed (apt-get install docker-registry): %v", RegistryBinary, err)
	}
	r, err := StartRegistryProcess(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartRegistryProcess runs docker-registry with its config and storage in
// dir; the caller must Stop it. Benchmarks use it without a testing.TB.
func StartRegistryProcess(dir string, opts RegistryOptions) (*Registry, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		host := fmt.Sprintf("127.0.0.1:%d", port)
		cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
%s
`, filepath.Join(dir, "data"), host, opts.Auth)
		cfgPath := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			return nil, err
		}
		logf, err := os.Create(filepath.Join(dir, "registry.log"))
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(RegistryBinary, "serve", cfgPath)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		release, err := startOnThread(cmd)
		if err != nil {
			logf.Close()
			return nil, fmt.Errorf("start docker-registry: %w", err)
		}
		logf.Close()
		r := &Registry{Host: host, Dir: filepath.Join(dir, "data"), cmd: cmd, release: release}
		if r.waitReady(10 * time.Second) {
			return r, nil
		}
		r.Stop()
	}
	log, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
	return nil, fmt.Errorf("docker-registry did not start; log:\n%s", log)
}

func (r *Registry) waitReady(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + r.Host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 || resp.StatusCode == 401 {
				return true
			}
		}
		if r.cmd.ProcessState != nil {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// Stop kills the registry.
func (r *Registry) Stop() {
	if r.cmd.Process != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
	}
	if r.release != nil {
		close(r.release)
		r.release = nil
	}
}

// startOnThread starts cmd from a thread of its own, which stays locked to
// its goroutine until release is closed. Pdeathsig kills the child when
// the thread that started it ends, not the process: a thread taken from
// Go's pool could later be locked by code that lets it end (the image
// store's init layer, made in a mount namespace of its own on a thread
// that then ends, internal/mountns), which killed the registry in the
// middle of a test.
func startOnThread(cmd *exec.Cmd) (release chan struct{}, err error) {
	release = make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		err := cmd.Start()
		errc <- err
		if err == nil {
			<-release
		}
		runtime.UnlockOSThread()
	}()
	return release, <-errc
}

// BlobPath is where the registry stores blob dgst ("sha256:<hex>"), so a
// test can tamper with it.
func (r *Registry) BlobPath(dgst string) string {
	hex := strings.TrimPrefix(dgst, "sha256:")
	return filepath.Join(r.Dir, "docker", "registry", "v2", "blobs", "sha256", hex[:2], hex, "data")
}

// Entry is one tar entry for Tar.
type Entry struct {
	Name     string
	Type     byte // tar.TypeReg if 0
	Mode     int64
	Body     string
	Linkname string
	Uid, Gid int
	Major    int64
	Minor    int64
	Xattrs   map[string]string
	ModTime  time.Time
}

// Tar builds an uncompressed tar of entries, exactly as given (no cleaning:
// malicious names stay malicious).
func Tar(t testing.TB, entries []Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.Type
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.Mode
		if mode == 0 {
			mode = 0o644
			if typ == tar.TypeDir {
				mode = 0o755
			}
		}
		mt := e.ModTime
		if mt.IsZero() {
			mt = time.Unix(1700000000, 0)
		}
		hdr := &tar.Header{
			Name: e.Name, Typeflag: typ, Mode: mode, Linkname: e.Linkname, Uid: e.Uid, Gid: e.Gid,
			Devmajor: e.Major, Devminor: e.Minor, ModTime: mt, Format: tar.FormatPAX,
		}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.Body))
		}
		for k, v := range e.Xattrs {
			if hdr.PAXRecords == nil {
				hdr.PAXRecords = map[string]string{}
			}
			hdr.PAXRecords["SCHILY.xattr."+k] = v
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("tar header %q: %v", e.Name, err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.Body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Gzip compresses b.
func Gzip(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Image builds a go-containerregistry image of uncompressed layer tars
// (gzipped on the way), with cfg as its runtime config. Building with
// go-containerregistry rather than hako keeps the pull tests independent
// of hako's own push.
func Image(t testing.TB, layers [][]byte, cfg v1.Config, platform *v1.Platform) v1.Image {
	t.Helper()
	img := empty.Image
	for i, l := range layers {
		data := l
		ly, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
		if err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
		img, err = mutate.AppendLayers(img, ly)
		if err != nil {
			t.Fatal(err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config = cfg
	cf.OS, cf.Architecture = "linux", "amd64"
	if platform != nil {
		cf.OS, cf.Architecture, cf.Variant = platform.OS, platform.Architecture, platform.Variant
	}
	cf.Created = v1.Time{Time: time.Unix(1700000000, 0).UTC()}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// Push writes img to ref ("127.0.0.1:PORT/repo:tag") and returns its
// manifest digest.
func Push(t testing.TB, ref string, img v1.Image) string {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// PlatformImage is one entry of an index.
type PlatformImage struct {
	Platform v1.Platform
	Image    v1.Image
}

// PushIndex pushes imgs as one OCI index at ref and returns its digest.
func PushIndex(t testing.TB, ref string, imgs []PlatformImage) string {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, pi := range imgs {
		p := pi.Platform
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: pi.Image, Descriptor: v1.Descriptor{Platform: &p}})
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatalf("push index %s: %v", ref, err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// Dockerd is a dockerd (Debian docker.io) on its own root and socket.
type Dockerd struct {
	Host string
	Root string
	base string
	cmd  *exec.Cmd
}

// StartDockerd starts dockerd for t, or skips t with the reason when it
// cannot run here.
func StartDockerd(t testing.TB) *Dockerd {
	t.Helper()
	RequireRoot(t)
	if _, err := exec.LookPath("dockerd"); err != nil {
		t.Skip("dockerd not installed (apt-get install docker.io)")
	}
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("docker CLI not installed")
	}
	d, err := StartDockerdProcess()
	if err != nil {
		t.Skipf("dockerd cannot run here: %v", err)
	}
	t.Cleanup(d.Stop)
	return d
}

// StartDockerdProcess starts dockerd on its own data root, exec root,
// socket and pidfile under a new temp dir, without a bridge or iptables;
// the caller must Stop it.
func StartDockerdProcess() (*Dockerd, error) {
	base, err := os.MkdirTemp("", "hako-dockerd-")
	if err != nil {
		return nil, err
	}
	d := &Dockerd{Host: "unix://" + filepath.Join(base, "docker.sock"), Root: filepath.Join(base, "root"), base: base}
	logf, err := os.Create(filepath.Join(base, "dockerd.log"))
	if err != nil {
		return nil, err
	}
	d.cmd = exec.Command("dockerd", "--data-root", d.Root, "--exec-root", filepath.Join(base, "exec"), "-H", d.Host,
		"--pidfile", filepath.Join(base, "docker.pid"), "--bridge=none", "--iptables=false", "--ip6tables=false",
		"--storage-driver=overlay2")
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		logf.Close()
		os.RemoveAll(base)
		return nil, fmt.Errorf("start dockerd: %w", err)
	}
	logf.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := d.Docker(context.Background(), "version"); err == nil {
			return d, nil
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(base, "dockerd.log"))
			d.Stop()
			return nil, fmt.Errorf("dockerd did not come up in 30s; log tail:\n%s", tail(string(log), 2000))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Stop terminates dockerd (and the containerd it started), unmounts what
// it left and removes its directories.
func (d *Dockerd) Stop() {
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		d.cmd.Process.Kill()
		<-done
	}
	unmountUnder(d.base)
	os.RemoveAll(d.base)
}

// Docker runs the docker CLI against this daemon and returns its output.
func (d *Dockerd) Docker(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.Host, "DOCKER_CONFIG="+filepath.Join(filepath.Dir(d.Root), "cli"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// DockerStdin runs the docker CLI with stdin.
func (d *Dockerd) DockerStdin(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.Host, "DOCKER_CONFIG="+filepath.Join(filepath.Dir(d.Root), "cli"))
	cmd.Stdin = stdin
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// unmountUnder detaches every mount below dir (dockerd can leave its
// overlay and shm mounts behind when it is killed).
func unmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var targets []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir) {
			targets = append(targets, f[4])
		}
	}
	for i := len(targets) - 1; i >= 0; i-- {
		unix.Unmount(targets[i], unix.MNT_DETACH)
	}
}

// Mounted reports whether anything is mounted at or below dir; tests use it
// to prove they cleaned up.
func Mounted(dir string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir) {
			return true
		}
	}
	return false
}
