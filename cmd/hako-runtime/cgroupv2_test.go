package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pureV2 reports whether /sys/fs/cgroup itself is a cgroup2 mount.
func pureV2() bool { return isCgroup2("/sys/fs/cgroup") }

// isCgroup2 reports whether path is the root of a cgroup2 mount.
func isCgroup2(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

// TestPureV2ClonesIntoCgroup runs the runtime as on a pure cgroup v2 host,
// whatever this one is: in a mount namespace of its own where
// /sys/fs/cgroup is the cgroup2 hierarchy. The first process of the
// container, and of an exec into it, must be cloned straight into the
// container's cgroup (clone3 CLONE_INTO_CGROUP): their traces have no
// runtime.cgroups.join (a move through cgroup.procs), both see themselves
// in the cgroup, and the cgroup is gone after.
func TestPureV2ClonesIntoCgroup(t *testing.T) {
	r := newRT(t)
	if !strings.Contains(readFileOr("/proc/filesystems"), "cgroup2") {
		t.Skip("no cgroup2 in this kernel")
	}
	id := uniqueID(t)
	b := newBundle(t, "sh", "-c", "cat /proc/self/cgroup; exec sleep 100")
	// The host's cgroup namespace, so /proc/self/cgroup shows the path.
	ns := b.spec.Linux.Namespaces[:0]
	for _, n := range b.spec.Linux.Namespaces {
		if n.Type != "cgroup" {
			ns = append(ns, n)
		}
	}
	b.spec.Linux.Namespaces = ns
	b.spec.Linux.CgroupsPath = "/hako-v2test/" + id
	b.save()
	dir := t.TempDir()
	script := `set -e
mount --make-rprivate /
umount -l /sys/fs/cgroup
mount -t cgroup2 cgroup2 /sys/fs/cgroup
rt() { "$RT" --root "$ROOT" "$@"; }
rt --trace run -d --bundle "$BUNDLE" "$ID" >"$OUT/run.out" 2>"$OUT/run.err"
rt --trace exec "$ID" cat /proc/self/cgroup >"$OUT/exec.out" 2>"$OUT/exec.err"
rt kill "$ID" KILL
for i in $(seq 100); do rt delete "$ID" 2>/dev/null && exit 0; sleep 0.05; done
rt delete --force "$ID"`
	cmd := exec.Command("unshare", "-m", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "RT="+runtimeBin, "ROOT="+r.root, "BUNDLE="+b.dir, "ID="+id, "OUT="+dir)
	out, err := cmd.CombinedOutput()
	read := func(name string) string { return readFileOr(filepath.Join(dir, name)) }
	if err != nil {
		t.Fatalf("on cgroup v2: %v\n%s\nrun: %s%s\nexec: %s%s", err, out, read("run.out"), read("run.err"), read("exec.out"), read("exec.err"))
	}
	want := "0::/hako-v2test/" + id
	for _, step := range []string{"run", "exec"} {
		if !waitContains(filepath.Join(dir, step+".out"), want) {
			t.Errorf("%s: /proc/self/cgroup:\n%s\nwant the line %q", step, read(step+".out"), want)
		}
		tr := read(step + ".err")
		if !strings.Contains(tr, "runtime.nsexec.start") {
			t.Errorf("%s: no trace:\n%s", step, tr)
		}
		if strings.Contains(tr, "runtime.cgroups.join") {
			t.Errorf("%s: the process was moved into its cgroup, not cloned into it:\n%s", step, tr)
		}
	}
	// Where the host has cgroup2 (pure or hybrid), the cgroup is gone.
	for _, root := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		if !isCgroup2(root) {
			continue
		}
		parent := filepath.Join(root, "hako-v2test")
		if _, err := os.Stat(filepath.Join(parent, id)); err == nil {
			t.Errorf("cgroup %s left behind", filepath.Join(parent, id))
		}
		_ = os.Remove(parent)
	}
}

// waitContains waits up to 5 s for the file to contain sub (a detached
// container writes it on its own time).
func waitContains(path, sub string) bool {
	for range 100 {
		if strings.Contains(readFileOr(path), sub) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func readFileOr(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}
