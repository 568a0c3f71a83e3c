package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestParseMountInfo(t *testing.T) {
	in := `22 26 0:21 / /sys rw,relatime - sysfs sysfs rw
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime shared:5 - cgroup2 cgroup2 rw
43 42 0:38 / /tmp/with\040space/proc rw,nosuid - proc proc rw
`
	ms, err := ParseMountInfo(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 {
		t.Fatalf("got %d mounts", len(ms))
	}
	if ms[1].ID != 40 || ms[1].FSType != "cgroup2" || ms[1].Point != "/sys/fs/cgroup/unified" {
		t.Errorf("optional fields confuse the parser: %+v", ms[1])
	}
	if ms[2].Point != "/tmp/with space/proc" {
		t.Errorf("octal escape not undone: %q", ms[2].Point)
	}
	if got := CgroupRoots(ms); len(got) != 1 || got[0] != "/sys/fs/cgroup/unified" {
		t.Errorf("CgroupRoots = %q", got)
	}
	for _, bad := range []string{"x 1 2\n", "12 1 0:1 / /a rw\n", "abc 1 0:1 / /a rw - ext4 /dev/a rw\n"} {
		if _, err := ParseMountInfo(strings.NewReader(bad)); err == nil {
			t.Errorf("accepted malformed line %q", bad)
		}
	}
}

func TestSuiteCgroup(t *testing.T) {
	for p, want := range map[string]bool{
		"/sys/fs/cgroup/pids/cgrouptest":                                         true,
		"/sys/fs/cgroup/memory/process_api/x/testdir/cgrouptest/container":       true,
		"/sys/fs/cgroup/cpu/3b241101-e2bb-4255-8caf-4136c566a962":                true,
		"/sys/fs/cgroup/unified/crun-3b241101-e2bb-4255-8caf-4136c566a962.scope": true,
		"/sys/fs/cgroup/cpu/crun-3b241101-e2bb-4255-8caf-4136c566a962":           true,
		"/sys/fs/cgroup/memory/docker/0123456789abcdef":                          false,
		"/sys/fs/cgroup/memory/process_api/1b5c2009a74f1027e40e59d3d212461b":     false,
	} {
		if got := suiteCgroup(p); got != want {
			t.Errorf("suiteCgroup(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestWithin(t *testing.T) {
	for _, c := range []struct {
		p, dir string
		want   bool
	}{
		{"/tmp/s/a/b", "/tmp/s", true},
		{"/tmp/s", "/tmp/s", true},
		{"/tmp/s2/a", "/tmp/s", false},
		{"/tmp", "/tmp/s", false},
		{"/tmp/s/a", "", false},
	} {
		if got := within(c.p, c.dir); got != c.want {
			t.Errorf("within(%q, %q) = %v", c.p, c.dir, got)
		}
	}
}

// fakeRuntime writes a shell script that answers "list -q" and
// "delete --force ID" from a directory of container files, the way a real
// runtime answers from its state root.
func fakeRuntime(t *testing.T) (path, state string) {
	t.Helper()
	dir := t.TempDir()
	state = filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o755); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, "fake-runtime")
	script := `#!/bin/sh
state=` + state + `
case "$1" in
list) ls "$state" ;;
delete) [ "$2" = --force ] && [ -e "$state/$3" ] && rm "$state/$3" ;;
*) echo "fake-runtime: unsupported $*" >&2; exit 1 ;;
esac
`
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, state
}

func TestReclaimRemovesSuiteLeftoversOnly(t *testing.T) {
	rt, state := fakeRuntime(t)
	cgRoot := t.TempDir() // stands in for a cgroup hierarchy: rmdir works the same
	scratch := t.TempDir()
	touch := func(p string) {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mkdir := func(p string) {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	touch(filepath.Join(state, "11111111-2222-3333-4444-555555555555")) // there before: not ours
	mkdir(filepath.Join(cgRoot, "cgrouptest"))                          // there before: not ours
	h := Host{Runtime: Runtime{Path: rt}, CgroupRoots: []string{cgRoot}, Scratch: scratch}
	before, err := h.Snap(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	leaked := "3b241101-e2bb-4255-8caf-4136c566a962"
	touch(filepath.Join(state, leaked))
	touch(filepath.Join(state, "someone-elses-container"))
	mkdir(filepath.Join(cgRoot, "testdir", "cgrouptest", "container"))
	mkdir(filepath.Join(cgRoot, "docker", "abc"))

	leaks, _, err := h.Reclaim(context.Background(), before)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(leaks, "\n")
	if len(leaks) != 4 {
		t.Errorf("want 4 leaks (1 container, 3 cgroups), got:\n%s", joined)
	}
	if !strings.Contains(joined, "container "+leaked+" still listed by the runtime (force-deleted)") {
		t.Errorf("leaked container not reported:\n%s", joined)
	}
	for _, gone := range []string{filepath.Join(state, leaked), filepath.Join(cgRoot, "testdir")} {
		if _, err := os.Stat(gone); !os.IsNotExist(err) {
			t.Errorf("%s still exists (%v)", gone, err)
		}
	}
	for _, kept := range []string{
		filepath.Join(state, "11111111-2222-3333-4444-555555555555"),
		filepath.Join(state, "someone-elses-container"),
		filepath.Join(cgRoot, "cgrouptest"),
		filepath.Join(cgRoot, "docker", "abc"),
	} {
		if _, err := os.Stat(kept); err != nil {
			t.Errorf("%s was not ours but is gone: %v", kept, err)
		}
	}
}

func TestReclaimFailsWhenRuntimeCannotList(t *testing.T) {
	h := Host{Runtime: Runtime{Path: "/bin/false"}, CgroupRoots: nil, Scratch: t.TempDir()}
	if _, err := h.Snap(context.Background()); err == nil {
		t.Fatal("Snap succeeded although the runtime's list failed")
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount; CI runs as root")
	}
}

func TestReclaimUnmountsBelowScratchAndRemoveTreeRefusesMounts(t *testing.T) {
	needRoot(t)
	rt, _ := fakeRuntime(t)
	scratch := t.TempDir()
	h := Host{Runtime: Runtime{Path: rt}, Scratch: scratch}
	before, err := h.Snap(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(scratch, "bundle", "proc")
	if err := os.MkdirAll(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", target, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(target, syscall.MNT_DETACH) })
	if err := os.WriteFile(filepath.Join(target, "precious"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := RemoveTree(scratch); err == nil || !strings.Contains(err.Error(), "still mounted") {
		t.Fatalf("RemoveTree went through a mount: %v", err)
	}
	if _, err := os.Stat(filepath.Join(target, "precious")); err != nil {
		t.Fatalf("file under the mount was touched: %v", err)
	}
	leaks, _, err := h.Reclaim(context.Background(), before)
	if err != nil {
		t.Fatal(err)
	}
	if len(leaks) != 1 || !strings.Contains(leaks[0], target+" (tmpfs) left in the host mount namespace (unmounted)") {
		t.Fatalf("leaks = %q", leaks)
	}
	if err := RemoveTree(scratch); err != nil {
		t.Fatalf("RemoveTree after unmount: %v", err)
	}
}

func TestAncestryHoldsSelfAndParent(t *testing.T) {
	a := ancestry()
	if !a[os.Getpid()] || !a[os.Getppid()] {
		t.Fatalf("ancestry %v lacks self %d or parent %d", a, os.Getpid(), os.Getppid())
	}
}
