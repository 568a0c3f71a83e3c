package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// runtimeBin is the hako-runtime binary the integration tests drive: the
// one named by $HAKO_RUNTIME (make test builds it) or one built here.
var runtimeBin string

func TestMain(m *testing.M) {
	if os.Getenv(traceWriterEnv) != "" {
		os.Exit(writeTraceLines()) // trace_test.go
	}
	code := func() int {
		flag.Parse()
		runtimeBin = os.Getenv("HAKO_RUNTIME")
		if runtimeBin == "" && os.Getuid() == 0 && !testing.Short() {
			dir, err := os.MkdirTemp("", "hako-runtime-test")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer os.RemoveAll(dir)
			_ = os.Chmod(dir, 0o755) // the rootless test runs it as nobody
			runtimeBin = filepath.Join(dir, "hako-runtime")
			build := exec.Command("go", "build", "-tags", "netgo osusergo", "-ldflags", "-extldflags -static", "-o", runtimeBin, ".")
			build.Stderr = os.Stderr
			if err := build.Run(); err != nil {
				fmt.Fprintln(os.Stderr, "build hako-runtime:", err)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
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

// rt is one runtime root for a test, so tests never see each other's
// containers, and a check that nothing was left behind.
type rt struct {
	t    *testing.T
	root string
}

func newRT(t *testing.T) *rt {
	needRoot(t)
	r := &rt{t: t, root: t.TempDir()}
	t.Cleanup(func() {
		out, _, _ := r.run("list", "-q")
		for _, id := range strings.Fields(out) {
			r.run("delete", "--force", id)
		}
	})
	return r
}

// run runs hako-runtime with args and returns stdout, stderr and the exit
// code.
func (r *rt) run(args ...string) (string, string, int) {
	return r.runIn("", nil, args...)
}

func (r *rt) runIn(dir string, extra []*os.File, args ...string) (string, string, int) {
	r.t.Helper()
	cmd := exec.Command(runtimeBin, append([]string{"--root", r.root}, args...)...)
	cmd.Dir = dir
	// Files, not pipes: a detached container inherits the runtime's stdio,
	// and a pipe would keep Wait waiting for the container to exit.
	outF, err := os.CreateTemp(r.t.TempDir(), "stdout")
	must(r.t, err)
	errF, err := os.CreateTemp(r.t.TempDir(), "stderr")
	must(r.t, err)
	defer outF.Close()
	defer errF.Close()
	cmd.Stdout, cmd.Stderr = outF, errF
	cmd.ExtraFiles = extra
	err = cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		r.t.Fatalf("run %v: %v", args, err)
	}
	out, _ := os.ReadFile(outF.Name())
	errs, _ := os.ReadFile(errF.Name())
	return string(out), string(errs), code
}

// must runs a command that has to succeed.
func (r *rt) must(args ...string) string {
	r.t.Helper()
	out, errs, code := r.run(args...)
	if code != 0 {
		r.t.Fatalf("hako-runtime %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// state returns `state ID` parsed.
func (r *rt) state(id string) map[string]any {
	r.t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.must("state", id)), &m); err != nil {
		r.t.Fatalf("state %s: %v", id, err)
	}
	return m
}

// waitStatus polls until the container reaches status.
func (r *rt) waitStatus(id, status string) {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if s := r.state(id)["status"]; s == status {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("container %s never became %s (is %v)", id, status, r.state(id)["status"])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// assertGone checks that nothing of container id is left: no state, no
// cgroup, no mount of the bundle.
func (r *rt) assertGone(id string, b *bundle) {
	r.t.Helper()
	if _, err := os.Stat(filepath.Join(r.root, id)); !os.IsNotExist(err) {
		r.t.Errorf("state directory of %s left behind (%v)", id, err)
	}
	for _, ctrl := range []string{"memory", "pids", "cpu", "devices", "freezer", "unified"} {
		p := filepath.Join("/sys/fs/cgroup", ctrl, "hako", id)
		if _, err := os.Stat(p); err == nil {
			r.t.Errorf("cgroup %s left behind", p)
		}
	}
	if b != nil {
		mi, _ := os.ReadFile("/proc/self/mountinfo")
		if strings.Contains(string(mi), b.dir) {
			r.t.Errorf("mounts of %s left behind:\n%s", b.dir, grepLines(string(mi), b.dir))
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// bundle is an OCI bundle with a busybox rootfs.
type bundle struct {
	t    *testing.T
	dir  string
	spec *specs.Spec
}

// newBundle makes a bundle whose process runs args, from runc's default
// spec without a terminal.
func newBundle(t *testing.T, args ...string) *bundle {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "etc", "tmp", "root", "proc", "sys", "dev"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	list, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range strings.Fields(string(list)) {
		if a != "busybox" {
			_ = os.Symlink("busybox", filepath.Join(root, "bin", a))
		}
	}
	must(t, os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nuser:x:1000:1000:u:/home/user:/bin/sh\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n"), 0o644))
	must(t, os.Chmod(filepath.Join(root, "tmp"), 0o1777))
	s := DefaultSpec()
	s.Process.Terminal = false
	s.Process.Args = args
	s.Root.Readonly = false
	return &bundle{t: t, dir: dir, spec: s}
}

// save writes config.json.
func (b *bundle) save() {
	b.t.Helper()
	data, err := json.MarshalIndent(b.spec, "", "  ")
	must(b.t, err)
	must(b.t, os.WriteFile(filepath.Join(b.dir, "config.json"), data, 0o644))
}

// runOut runs the bundle to completion with `run` and returns stdout and
// the exit code; stderr is reported on failure to start.
func (r *rt) runBundle(b *bundle, id string) (string, string, int) {
	r.t.Helper()
	b.save()
	return r.run("run", "--bundle", b.dir, id)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var testSeq int

// uniqueID names a container after the test.
func uniqueID(t *testing.T) string {
	testSeq++
	n := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	if len(n) > 40 {
		n = n[:40]
	}
	return fmt.Sprintf("%s-%d-%d", strings.ToLower(n), os.Getpid(), testSeq)
}

// waitFile waits until path holds want.
func waitFile(t *testing.T, path, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if string(b) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %q, want %q", path, b, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
