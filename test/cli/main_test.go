// Package cli_test runs hako and the real docker CLI side by side against
// one Engine API daemon and requires the same exit statuses and, where
// the output is deterministic, the same output.
//
// The daemon is a dockerd the suite starts on its own data root, exec
// root, socket and pidfile (bridge and iptables off), or the one named by
// HAKO_TEST_DAEMON_SOCK (a socket path or unix:// URL), so the same
// scenarios judge hakod. The test image is built here from /bin/busybox
// and loaded with `docker load`; no registry on the internet is needed.
//
// Environment:
//
//	HAKO_TEST_DAEMON_SOCK  daemon to test against (default: a dockerd started here)
//	HAKO_TEST_BINARY       a prebuilt hako (default: built from ./cmd/hako)
//	HAKO_TEST_DOCKER       the reference docker CLI (default: /usr/local/bin/docker, then PATH)
package cli_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// testImage is the busybox image every scenario runs.
const testImage = "clitest/bb:latest"

// suite is what TestMain sets up once for all scenarios.
type suite struct {
	skip      string // why the scenarios cannot run here
	host      string // unix:// URL of the daemon under test
	hako      string // hako binary
	docker    string // reference docker CLI
	tmp       string // scratch dir, removed at the end
	configDir string // DOCKER_CONFIG for both CLIs
	rootfsTar string // the test image's rootfs as a plain tar (for import)
	ownDaemon bool   // the daemon was started here (so it is dockerd)
	daemon    *dockerd
}

var s suite

func TestMain(m *testing.M) {
	flag.Parse()
	code := func() int {
		defer s.teardown()
		if err := s.setup(); err != nil {
			fmt.Fprintln(os.Stderr, "test/cli setup:", err)
			return 1
		}
		if s.skip != "" {
			fmt.Fprintln(os.Stderr, "test/cli: scenarios skipped:", s.skip)
		}
		// A ^C must not leave a dockerd behind.
		sigc := make(chan os.Signal, 1)
		signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM)
		go func() {
			if _, ok := <-sigc; ok {
				s.teardown()
				os.Exit(130)
			}
		}()
		defer signal.Stop(sigc)
		return m.Run()
	}()
	os.Exit(code)
}

// need skips t when the suite cannot run here.
func need(t *testing.T) *suite {
	t.Helper()
	if s.skip != "" {
		t.Skip(s.skip)
	}
	return &s
}

func (s *suite) setup() error {
	switch {
	case testing.Short():
		s.skip = "integration scenarios (dockerd, containers) do not run with -short"
		return nil
	case os.Geteuid() != 0:
		s.skip = "needs root: starts dockerd and containers (CI runs as root)"
		return nil
	}
	s.docker = os.Getenv("HAKO_TEST_DOCKER")
	if s.docker == "" {
		s.docker = "/usr/local/bin/docker"
		if _, err := os.Stat(s.docker); err != nil {
			p, err := exec.LookPath("docker")
			if err != nil {
				s.skip = "the docker CLI is not installed"
				return nil
			}
			s.docker = p
		}
	}
	tmp, err := os.MkdirTemp("", "clitest-")
	if err != nil {
		return err
	}
	s.tmp = tmp
	s.configDir = filepath.Join(tmp, "config")
	if err := os.MkdirAll(s.configDir, 0o700); err != nil {
		return err
	}
	if err := s.buildHako(); err != nil {
		return err
	}
	if sock := os.Getenv("HAKO_TEST_DAEMON_SOCK"); sock != "" {
		if !strings.Contains(sock, "://") {
			sock = "unix://" + sock
		}
		s.host = sock
	} else {
		if _, err := exec.LookPath("dockerd"); err != nil {
			s.skip = "dockerd is not installed (apt-get install docker.io) and HAKO_TEST_DAEMON_SOCK is not set"
			return nil
		}
		d, err := startDockerd(filepath.Join(tmp, "dockerd"))
		if err != nil {
			return err
		}
		s.daemon, s.host, s.ownDaemon = d, d.host, true
	}
	return s.loadImage()
}

func (s *suite) teardown() {
	if s.daemon != nil {
		s.daemon.stop()
		s.daemon = nil
	}
	if s.tmp != "" {
		os.RemoveAll(s.tmp)
		s.tmp = ""
	}
}

func (s *suite) buildHako() error {
	if b := os.Getenv("HAKO_TEST_BINARY"); b != "" {
		s.hako = b
		return nil
	}
	s.hako = filepath.Join(s.tmp, "hako")
	cmd := exec.Command("go", "build", "-o", s.hako, "github.com/hako-project/hako/cmd/hako")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build hako: %w: %s", err, out)
	}
	return nil
}

// loadImage builds the busybox image as a `docker save` tarball and
// loads it with the docker CLI.
func (s *suite) loadImage() error {
	layer, err := busyboxRootfs()
	if err != nil {
		return err
	}
	s.rootfsTar = filepath.Join(s.tmp, "rootfs.tar")
	if err := os.WriteFile(s.rootfsTar, layer, 0o644); err != nil {
		return err
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layer)), nil })
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Created = v1.Time{Time: time.Unix(1700000000, 0).UTC()}
	cf.Config = v1.Config{Cmd: []string{"sh"}, Env: []string{"PATH=/bin"}}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	ref, err := name.ParseReference(testImage)
	if err != nil {
		return err
	}
	path := filepath.Join(s.tmp, "image.tar")
	if err := tarball.WriteToFile(path, ref, img); err != nil {
		return err
	}
	r := s.run(s.docker, "", "load", "-i", path)
	if r.code != 0 {
		return fmt.Errorf("docker load: %s%s", r.out, r.err)
	}
	return nil
}

// busyboxRootfs is a tar of /bin/busybox with a link per applet.
func busyboxRootfs() ([]byte, error) {
	const bb = "/bin/busybox"
	body, err := os.ReadFile(bb)
	if err != nil {
		return nil, fmt.Errorf("the test image needs %s (apt-get install busybox-static): %w", bb, err)
	}
	list, err := exec.Command(bb, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("busybox --list: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mt := time.Unix(1700000000, 0)
	add := func(h *tar.Header, data []byte) error {
		h.ModTime, h.Format = mt, tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, d := range []string{"bin/", "etc/", "tmp/", "root/", "dev/", "proc/", "sys/"} {
		mode := int64(0o755)
		if d == "tmp/" {
			mode = 0o1777
		}
		if err := add(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: mode}, nil); err != nil {
			return nil, err
		}
	}
	if err := add(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(body))}, body); err != nil {
		return nil, err
	}
	for _, a := range strings.Fields(string(list)) {
		if a == "busybox" {
			continue
		}
		if err := add(&tar.Header{Name: "bin/" + a, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777}, nil); err != nil {
			return nil, err
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\n",
	}
	for _, n := range []string{"etc/group", "etc/passwd"} {
		if err := add(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(files[n]))}, []byte(files[n])); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// result is one CLI run.
type result struct {
	out, err string
	code     int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.out, r.err)
}

// cmdEnv is the environment both CLIs run with: the daemon under test
// and a private config dir, nothing inherited that could redirect them.
func (s *suite) cmdEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "DOCKER_HOST", "HAKO_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "DOCKER_API_VERSION", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "DOCKER_HOST="+s.host, "DOCKER_CONFIG="+s.configDir, "DOCKER_CLI_HINTS=false")
}

// run runs a CLI to completion (at most two minutes).
func (s *suite) run(bin, stdin string, args ...string) result {
	return s.runEnv(bin, stdin, nil, args...)
}

// runEnv is run with extra environment variables (later ones win).
func (s *suite) runEnv(bin, stdin string, extra []string, args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(s.cmdEnv(), extra...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{out: out.String(), err: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		r.code = -1
		r.err += "\n(run failed: " + err.Error() + ")"
	}
	return r
}

// names: scenarios that create objects give docker's and hako's their
// own names, NAME-d and NAME-h; outputs are compared with both turned
// back into NAME.
type names struct {
	base string
	// short is another form of base that outputs show (a repository
	// path without its registry), replaced the same way.
	short string
}

func (n names) d() string { return n.base + "-d" }
func (n names) h() string { return n.base + "-h" }

var (
	reHako  = regexp.MustCompile(`(^|[\s'(])hako([: ])`) // the CLI's own name ("hako: ...", "Run 'hako run --help'"), not the daemon's words
	reID64  = regexp.MustCompile(`\b[0-9a-f]{64}\b`)
	reID12  = regexp.MustCompile(`\b[0-9a-f]{12}\b`)
	reAgo   = regexp.MustCompile(`(About an?|Less than a|\d+) (seconds?|minutes?|hours?) ago`)
	reUp    = regexp.MustCompile(`Up (About an?|Less than a|\d+) (seconds?|minutes?|hours?)`)
	reSpace = regexp.MustCompile(` {2,}`)
)

// unHako names the CLI docker wherever it names itself, leaving the
// runtime called hako in info's Runtimes line alone.
func unHako(x string) string {
	lines := strings.Split(x, "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, " Runtimes:") {
			lines[i] = reHako.ReplaceAllString(l, "${1}docker$2")
		}
	}
	return strings.Join(lines, "\n")
}

// norm is a normalization applied to both outputs before comparing.
type norm func(string) string

// ids replaces container and image IDs (which differ between the two
// runs) with placeholders.
func ids(s string) string {
	return reID12.ReplaceAllString(reID64.ReplaceAllString(s, "<id>"), "<id12>")
}

// times replaces relative times and collapses table padding, which
// follows the times' widths.
func times(s string) string {
	s = reAgo.ReplaceAllString(s, "<ago>")
	s = reUp.ReplaceAllString(s, "Up <dur>")
	return reSpace.ReplaceAllString(s, " | ")
}

// compare runs the same command with docker and with hako ("{}" in args
// stands for the per-CLI name) and requires equal exit statuses and
// equal normalized stdout and stderr.
func (s *suite) compare(t *testing.T, n names, stdin string, args []string, norms ...norm) (d, h result) {
	t.Helper()
	d = s.run(s.docker, stdin, subst(args, n.d())...)
	h = s.run(s.hako, stdin, subst(args, n.h())...)
	s.requireSame(t, n, args, d, h, norms...)
	return d, h
}

// compareConcurrent is compare with both CLIs running at once, for
// commands whose outcome depends on when they run (attach to a container
// that exits on a timer).
func (s *suite) compareConcurrent(t *testing.T, n names, stdin string, args []string, norms ...norm) (d, h result) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		d = s.run(s.docker, stdin, subst(args, n.d())...)
	}()
	h = s.run(s.hako, stdin, subst(args, n.h())...)
	<-done
	s.requireSame(t, n, args, d, h, norms...)
	return d, h
}

func (s *suite) requireSame(t *testing.T, n names, args []string, d, h result, norms ...norm) {
	t.Helper()
	clean := func(r result, own string, isHako bool) result {
		f := func(x string) string {
			if own != "" && n.base != "" {
				x = strings.ReplaceAll(x, own, "NAME")
				if n.short != "" {
					x = strings.ReplaceAll(x, n.short+strings.TrimPrefix(own, n.base), "NAME")
				}
			}
			if isHako {
				x = unHako(x)
			}
			for _, fn := range norms {
				x = fn(x)
			}
			return x
		}
		return result{out: f(r.out), err: f(r.err), code: r.code}
	}
	own := func(x string) string {
		if n.base == "" {
			return ""
		}
		return x
	}
	dc, hc := clean(d, own(n.d()), false), clean(h, own(n.h()), true)
	if dc.code != hc.code || dc.out != hc.out || dc.err != hc.err {
		t.Errorf("%v: docker and hako differ (exit %d vs %d)\n--- stdout (docker vs hako):\n%s--- stderr (docker vs hako):\n%s",
			args, dc.code, hc.code, lineDiff(dc.out, hc.out), lineDiff(dc.err, hc.err))
	}
}

// lineDiff lists the lines that differ, with their numbers (at most 20).
func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out strings.Builder
	shown := 0
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x == y {
			continue
		}
		if shown++; shown > 20 {
			out.WriteString("  ...\n")
			break
		}
		fmt.Fprintf(&out, "  %d- %q\n  %d+ %q\n", i+1, x, i+1, y)
	}
	if out.Len() == 0 && a != b {
		fmt.Fprintf(&out, "  %q\n  %q\n", a, b)
	}
	return out.String()
}

func subst(args []string, name string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strings.ReplaceAll(a, "{}", name)
	}
	return out
}

// must runs a CLI and fails t unless it exits 0.
func (s *suite) must(t *testing.T, bin string, args ...string) result {
	t.Helper()
	r := s.run(bin, "", args...)
	if r.code != 0 {
		t.Fatalf("%s %v: %s", filepath.Base(bin), args, r)
	}
	return r
}

// cleanup removes containers by name when t ends.
func (s *suite) cleanup(t *testing.T, containers ...string) {
	t.Cleanup(func() {
		s.run(s.docker, "", append([]string{"rm", "-f"}, containers...)...)
	})
}
