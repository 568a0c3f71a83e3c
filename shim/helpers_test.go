package shim_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hako-project/hako/shim"
	"github.com/hako-project/hako/shim/internal/proto"
)

// Binaries the integration tests drive: hako-shim built here (or
// $HAKO_SHIM), hako-runtime from $HAKO_RUNTIME (make sets it) or built
// here.
var (
	shimBin    string
	runtimeBin string
)

// cgroupParent is where the test containers' cgroups go.
const cgroupParent = "/hako-shim-test"

func TestMain(m *testing.M) {
	flag.Parse()
	if cfg := os.Getenv(hakodEnv); cfg != "" {
		os.Exit(fakeHakod(cfg))
	}
	code := func() int {
		if os.Getuid() != 0 || testing.Short() {
			return m.Run()
		}
		dir, err := os.MkdirTemp("", "hako-shim-test")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		root, _ := filepath.Abs("..")
		shimBin = os.Getenv("HAKO_SHIM")
		if bin := os.Getenv("HAKO_BIN"); shimBin == "" && bin != "" {
			if _, err := os.Stat(filepath.Join(bin, "hako-shim")); err == nil {
				shimBin = filepath.Join(bin, "hako-shim")
			}
		}
		if shimBin == "" {
			shimBin = filepath.Join(dir, "hako-shim")
			if err := build(root, shimBin, "./cmd/hako-shim", false); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		runtimeBin = os.Getenv("HAKO_RUNTIME")
		if runtimeBin == "" {
			runtimeBin = filepath.Join(dir, "hako-runtime")
			if err := build(root, runtimeBin, "./cmd/hako-runtime", true); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

// build builds a static binary as the Makefile does.
func build(root, out, pkg string, cgo bool) error {
	cmd := exec.Command("go", "build", "-tags", "netgo osusergo", "-ldflags", "-extldflags -static", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if cgo {
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// needRoot skips integration tests where they cannot run.
func needRoot(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
	if os.Getuid() != 0 {
		t.Skip("integration test: creating containers needs root")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("integration test: needs /bin/busybox (apt-get install busybox-static)")
	}
}

// rt is one OCI runtime under test, with a root of its own per test.
type rt struct {
	name string
	path string
	root string
}

// runtimes returns the runtimes every scenario runs with: hako-runtime and
// runc (if installed). crun needs a hybrid-cgroup workaround on this
// kind of host (test/oci-validation/README.md) and runs only with
// HAKO_TEST_CRUN=1.
func runtimes(t *testing.T) []rt {
	needRoot(t)
	out := []rt{{name: "hako-runtime", path: runtimeBin}}
	if p, err := exec.LookPath("runc"); err == nil {
		out = append(out, rt{name: "runc", path: p})
	}
	if p, err := exec.LookPath("crun"); err == nil && os.Getenv("HAKO_TEST_CRUN") == "1" {
		out = append(out, rt{name: "crun", path: p})
	}
	return out
}

// forEachRuntime runs f as a subtest per runtime.
func forEachRuntime(t *testing.T, f func(t *testing.T, r rt)) {
	for _, r := range runtimes(t) {
		t.Run(r.name, func(t *testing.T) {
			r.root = t.TempDir()
			f(t, r)
		})
	}
}

func newID(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

var (
	busyboxOnce sync.Once
	busybox     []byte
	applets     []string
)

// newBundle makes a bundle with a busybox rootfs whose process runs args,
// from the runtime's default spec without a terminal, in a cgroup under
// cgroupParent. mutate adjusts the spec.
func newBundle(t *testing.T, id string, args []string, mutate func(*specs.Spec)) string {
	t.Helper()
	busyboxOnce.Do(func() {
		busybox, _ = os.ReadFile("/bin/busybox")
		out, _ := exec.Command("/bin/busybox", "--list").Output()
		applets = strings.Fields(string(out))
	})
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "etc", "tmp", "root", "proc", "sys", "dev"} {
		must(t, os.MkdirAll(filepath.Join(rootfs, d), 0o755))
	}
	must(t, os.WriteFile(filepath.Join(rootfs, "bin/busybox"), busybox, 0o755))
	for _, a := range applets {
		if a != "busybox" {
			must(t, os.Symlink("busybox", filepath.Join(rootfs, "bin", a)))
		}
	}
	must(t, os.WriteFile(filepath.Join(rootfs, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644))
	if out, err := exec.Command(runtimeBin, "spec", "--bundle", dir).CombinedOutput(); err != nil {
		t.Fatalf("hako-runtime spec: %v: %s", err, out)
	}
	var spec specs.Spec
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	must(t, err)
	must(t, json.Unmarshal(b, &spec))
	spec.Process.Args = args
	spec.Process.Terminal = false
	spec.Linux.CgroupsPath = cgroupParent + "/" + id
	if mutate != nil {
		mutate(&spec)
	}
	b, err = json.MarshalIndent(&spec, "", "\t")
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644))
	return dir
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// stateDir returns a short state directory path that does not exist yet
// (socket paths are limited to 107 bytes, test temp dirs are long).
func stateDir(t *testing.T, id string) string {
	t.Helper()
	base, err := os.MkdirTemp("", "hs")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(base) })
	return filepath.Join(base, id)
}

// config is a shim configuration for a bundle, with cleanup that removes
// whatever a failed test left.
func (r rt) config(t *testing.T, id, bundle string) shim.Config {
	t.Helper()
	cfg := shim.Config{ID: id, Bundle: bundle, StateDir: stateDir(t, id), Runtime: r.path,
		RuntimeRoot: r.root, Binary: shimBin}
	t.Cleanup(func() { forceRemove(cfg) })
	return cfg
}

// forceRemove deletes a test's container however it was left.
func forceRemove(cfg shim.Config) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := os.Stat(cfg.StateDir); err != nil {
		return
	}
	if c, err := shim.Connect(ctx, cfg.StateDir); err == nil {
		_, _ = c.Delete(ctx, true)
		return
	}
	_, _ = shim.Cleanup(ctx, cfg.StateDir)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// syncBuffer is a bytes.Buffer safe for the stream goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// eventually polls cond for up to 10 seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// shimPid reads the shim's pid from its state directory.
func shimPid(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, proto.PidFile))
	must(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	must(t, err)
	if pid <= 1 {
		t.Fatalf("shim pid file holds %d", pid)
	}
	return pid
}

// alive reports whether pid runs (a zombie waiting for init to reap it
// has exited).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// assertGone checks that nothing of a container and its shim is left: no
// shim process, no state directory or socket, no runtime state, no
// cgroup, no process of the container.
func assertGone(t *testing.T, r rt, id, dir string, pids ...int) {
	t.Helper()
	for _, pid := range pids {
		if pid > 0 && alive(pid) {
			t.Errorf("process %d still runs", pid)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		ents, _ := os.ReadDir(dir)
		t.Errorf("shim state directory %s left behind (%v, %d entries)", dir, err, len(ents))
	}
	if r.root != "" {
		if _, err := os.Stat(filepath.Join(r.root, id)); !os.IsNotExist(err) {
			t.Errorf("%s state of %s left behind (%v)", r.name, id, err)
		}
	}
	for _, ctrl := range []string{"memory", "pids", "cpu", "devices", "freezer", "blkio", "unified"} {
		p := filepath.Join("/sys/fs/cgroup", ctrl, cgroupParent, id)
		if _, err := os.Stat(p); err == nil {
			t.Errorf("cgroup %s left behind", p)
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		if bytes.Contains(b, []byte(dir)) {
			pid, _ := strconv.Atoi(strings.Split(p, "/")[2])
			if alive(pid) {
				t.Errorf("process %s (%q) left behind", p, bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
			}
		}
	}
}

// startContainer starts a shim for a bundle running args.
func startContainer(t *testing.T, r rt, args []string, mutate func(*specs.Spec), adjust func(*shim.Config)) (*shim.Client, shim.Config) {
	t.Helper()
	id := newID("c")
	cfg := r.config(t, id, newBundle(t, id, args, mutate))
	if adjust != nil {
		adjust(&cfg)
	}
	c, err := shim.Start(testCtx(t), cfg)
	if err != nil {
		t.Fatalf("shim.Start: %v", err)
	}
	return c, cfg
}

// deleteAndCheck deletes the container and checks nothing is left.
func deleteAndCheck(t *testing.T, r rt, c *shim.Client, force bool) shim.ExitStatus {
	t.Helper()
	pid := shimPid(t, c.StateDir())
	st, err := c.Delete(testCtx(t), force)
	if err != nil {
		t.Fatalf("Delete: %v", err)
	}
	assertGone(t, r, c.ID(), c.StateDir(), pid, c.Pid())
	// The shim was our child (or, after a kill of its starter, init's):
	// whoever its parent is reaps it, so no zombie stays behind.
	eventually(t, "the shim reaped", func() bool {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
		return os.IsNotExist(err)
	})
	return st
}

// hakodEnv makes the test binary a stand-in for hakod (see fakeHakod).
const hakodEnv = "HAKO_SHIM_TEST_HAKOD"

// fakeHakod starts the container described by the JSON shim.Config in
// cfg, starts its program, prints "ready" and waits to be killed, as a
// hakod that gets kill -9ed while its containers run.
func fakeHakod(cfg string) int {
	var c shim.Config
	if err := json.Unmarshal([]byte(cfg), &c); err != nil {
		fmt.Println("bad config:", err)
		return 1
	}
	ctx := context.Background()
	cl, err := shim.Start(ctx, c)
	if err != nil {
		fmt.Println("start:", err)
		return 1
	}
	if err := cl.Start(ctx); err != nil {
		fmt.Println("start:", err)
		return 1
	}
	fmt.Println("ready")
	// Like hakod: wait for the exit, which the kill interrupts.
	_, _ = cl.Wait(ctx)
	select {}
}

func contextWithCancel(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithCancel(ctx)
}

func contextWithTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}
