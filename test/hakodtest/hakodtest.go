// Package hakodtest starts a real hakod for tests: hako's binaries built
// into a temporary directory, a daemon on its own socket, data root and exec
// root, and a cleanup that stops it and removes every container, mount and
// directory it made. Tests drive it with the real docker CLI (DOCKER_HOST)
// or the hako CLI.
package hakodtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hako-project/hako/network"
)

// Binaries are hako's programs, built once per test binary.
type Binaries struct {
	Dir                                    string
	Hakod, Shim, Runtime, Init, HakoClient string
}

var (
	buildOnce sync.Once
	built     Binaries
	buildErr  error
)

// repoRoot finds the module root from this source file.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Build compiles hakod, hako-shim, hako-runtime and hako-init (or uses
// $HAKO_BIN, a directory with them, as `make test` provides).
func Build(t testing.TB) Binaries {
	t.Helper()
	buildOnce.Do(func() {
		if dir := os.Getenv("HAKO_BIN"); dir != "" {
			built = Binaries{Dir: dir}
		} else {
			dir, err := os.MkdirTemp("", "hakodtest-bin")
			if err != nil {
				buildErr = err
				return
			}
			built = Binaries{Dir: dir}
			root := repoRoot()
			for _, b := range []struct {
				pkg   string
				cgo   bool
				flags []string
			}{
				{"./cmd/hakod", false, nil},
				{"./cmd/hako-shim", false, nil},
				{"./cmd/hako-init", false, nil},
				{"./cmd/hako-runtime", true, []string{"-tags", "netgo osusergo", "-ldflags", "-extldflags -static"}},
			} {
				args := append([]string{"build"}, b.flags...)
				args = append(args, "-o", filepath.Join(dir, filepath.Base(b.pkg)), b.pkg)
				cmd := exec.Command("go", args...)
				cmd.Dir = root
				cmd.Env = append(os.Environ(), "CGO_ENABLED="+map[bool]string{true: "1", false: "0"}[b.cgo])
				if out, err := cmd.CombinedOutput(); err != nil {
					buildErr = fmt.Errorf("build %s: %v\n%s", b.pkg, err, out)
					return
				}
			}
		}
		built.Hakod = filepath.Join(built.Dir, "hakod")
		built.Shim = filepath.Join(built.Dir, "hako-shim")
		built.Runtime = filepath.Join(built.Dir, "hako-runtime")
		built.Init = filepath.Join(built.Dir, "hako-init")
		built.HakoClient = filepath.Join(built.Dir, "hako")
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

// Daemon is a running hakod.
type Daemon struct {
	t        testing.TB
	Bin      Binaries
	Dir      string // everything of this daemon lives below
	DataRoot string
	ExecRoot string
	Socket   string
	Host     string // unix://Socket, for DOCKER_HOST
	Args     []string
	Env      []string // added to the test's environment for hakod (StartEnv)
	cmd      *exec.Cmd
	log      *bytes.Buffer
	logMu    sync.Mutex
}

// NeedRoot skips a test that needs root (containers) when it cannot run.
func NeedRoot(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
	if os.Getuid() != 0 {
		t.Skip("integration test: hakod needs root")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("integration test: needs /bin/busybox (apt-get install busybox-static)")
	}
}

// Start builds the binaries and starts a hakod with extra args; Cleanup
// stops it and removes everything.
func Start(t testing.TB, args ...string) *Daemon {
	t.Helper()
	return StartEnv(t, nil, args...)
}

// StartEnv is Start with env (KEY=VALUE) added to hakod's environment.
func StartEnv(t testing.TB, env []string, args ...string) *Daemon {
	t.Helper()
	NeedRoot(t)
	bin := Build(t)
	dir, err := os.MkdirTemp("", "hakod-")
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{t: t, Bin: bin, Dir: dir, DataRoot: filepath.Join(dir, "data"), ExecRoot: filepath.Join(dir, "run"),
		Socket: filepath.Join(dir, "hako.sock"), Args: args, Env: env}
	d.Host = "unix://" + d.Socket
	t.Cleanup(d.Cleanup)
	d.Restart()
	return d
}

// Restart starts the daemon process (again), after a Kill or Stop.
func (d *Daemon) Restart() {
	d.t.Helper()
	args := append([]string{"-H", d.Host, "--data-root", d.DataRoot, "--exec-root", d.ExecRoot,
		"--pidfile", filepath.Join(d.Dir, "hakod.pid"), "--log-level", "debug"}, d.Args...)
	cmd := exec.Command(d.Bin.Hakod, args...)
	if len(d.Env) > 0 {
		cmd.Env = append(os.Environ(), d.Env...)
	}
	d.logMu.Lock()
	if d.log == nil {
		d.log = &bytes.Buffer{}
	}
	d.logMu.Unlock()
	w := &lockedBuf{d: d}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.cmd = cmd
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.Dial("unix", d.Socket); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("hakod did not come up:\n%s", d.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type lockedBuf struct{ d *Daemon }

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.d.logMu.Lock()
	defer l.d.logMu.Unlock()
	return l.d.log.Write(p)
}

// Log is what hakod wrote so far.
func (d *Daemon) Log() string {
	d.logMu.Lock()
	defer d.logMu.Unlock()
	return d.log.String()
}

// Kill kills hakod with SIGKILL (its containers and shims keep running).
func (d *Daemon) Kill() {
	if d.cmd != nil && d.cmd.Process != nil {
		_ = d.cmd.Process.Kill()
		_ = d.cmd.Wait()
		d.cmd = nil
	}
}

// Stop asks hakod to stop (SIGTERM) and waits.
func (d *Daemon) Stop() {
	if d.cmd != nil && d.cmd.Process != nil {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = d.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = d.cmd.Process.Kill()
			<-done
		}
		d.cmd = nil
	}
}

// Docker runs the docker CLI against the daemon and returns stdout, stderr
// and the exit code.
func (d *Daemon) Docker(args ...string) (string, string, int) {
	return d.DockerIn(nil, args...)
}

// DockerIn is Docker with stdin.
func (d *Daemon) DockerIn(stdin []byte, args ...string) (string, string, int) {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.Host, "DOCKER_CONFIG="+filepath.Join(d.Dir, "docker-config"))
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		d.t.Fatalf("docker %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// MustDocker runs a docker command that has to succeed and returns its
// trimmed stdout.
func (d *Daemon) MustDocker(args ...string) string {
	d.t.Helper()
	out, errs, code := d.Docker(args...)
	if code != 0 {
		d.t.Fatalf("docker %s: exit %d\nstdout: %s\nstderr: %s\nhakod log tail:\n%s", strings.Join(args, " "), code, out, errs, tail(d.Log(), 20))
	}
	return strings.TrimSpace(out)
}

func tail(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// DefaultImage makes sure the offline default image is there and returns
// its name.
func (d *Daemon) DefaultImage() string {
	d.MustDocker("pull", "hako.local/busybox")
	return "hako.local/busybox"
}

// Cleanup removes every container, stops hakod, kills shims left behind and
// removes the daemon's directories and mounts.
func (d *Daemon) Cleanup() {
	if d.cmd != nil {
		if out, _, _ := d.Docker("ps", "-aq"); out != "" {
			d.Docker(append([]string{"rm", "-f"}, strings.Fields(out)...)...)
		}
	}
	d.Stop()
	// Shims whose state is in our exec root.
	if ents, err := os.ReadDir(filepath.Join(d.ExecRoot, "shims")); err == nil {
		for _, e := range ents {
			if b, err := os.ReadFile(filepath.Join(d.ExecRoot, "shims", e.Name(), "shim.pid")); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
	}
	// The daemon's networks: its containers' namespaces, veths and
	// leases, its bridges and their iptables rules.
	if err := network.Purge(context.Background(), network.Config{DataRoot: d.DataRoot, ExecRoot: d.ExecRoot}); err != nil {
		d.t.Logf("purge hakod's networks: %v", err)
	}
	UnmountUnder(d.Dir)
	_ = os.RemoveAll(d.Dir)
}

// UnmountUnder lazily unmounts everything below dir, deepest first.
func UnmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var mps []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			mps = append(mps, f[4])
		}
	}
	for i := len(mps) - 1; i >= 0; i-- {
		_ = syscall.Unmount(mps[i], syscall.MNT_DETACH)
	}
}

// Mounts lists the mount points below dir (to check for leaks), but the
// pin of the default bridge's spare endpoint, which is hakod's own
// (network/spare.go) and goes at its stop.
func Mounts(dir string) []string {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") && !sparePin(f[4]) {
			out = append(out, f[4])
		}
	}
	return out
}

// sparePin reports whether path is where a spare endpoint's namespace is
// pinned (EXEC-ROOT/netns/spare-ID).
func sparePin(path string) bool {
	return filepath.Base(filepath.Dir(path)) == "netns" && network.IsSpare(filepath.Base(path))
}
