package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Each test here attempts a known container escape and asserts it fails.

// CVE-2019-5736: a process in the container opens the runtime's binary
// through /proc/<pid>/exe and writes it once the runtime exits. The init
// (and everything exec'd from it that re-executes /proc/self/exe) must run
// a binary nobody can open for writing.
func TestEscapeOverwriteRuntimeBinary(t *testing.T) {
	r := newRT(t)
	b := newBundle(t, "sleep", "30")
	b.save()
	id := uniqueID(t)
	r.must("create", "--bundle", b.dir, id)
	defer r.run("delete", "--force", id)
	pid := int(r.state(id)["pid"].(float64))
	// The attack: hold the init's binary by an O_PATH fd while it runs ...
	exe := fmt.Sprintf("/proc/%d/exe", pid)
	held, err := unix.Open(exe, unix.O_PATH|unix.O_CLOEXEC, 0)
	must(t, err)
	defer unix.Close(held)
	// ... and, once no process executes it any more, reopen it for writing.
	r.must("delete", "--force", id)
	fd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", held), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err == nil {
		unix.Close(fd)
		t.Fatalf("reopened the container init's binary for writing: the runtime binary is exposed")
	}
	if !errors.Is(err, unix.EROFS) && !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EACCES) {
		t.Fatalf("reopen for writing: %v (want EROFS: a sealed, read-only copy)", err)
	}
	// Even root in the container, re-executing itself through
	// /proc/self/exe, cannot get at the runtime binary.
	b2 := newBundle(t, "sh", "-c", `printf '#!/proc/self/exe\n' > /tmp/evil; chmod +x /tmp/evil; /tmp/evil & p=$!; sleep 0.05; ( echo x > /proc/$p/exe ) 2>&1; wait $p; true`)
	b2.spec.Process.Capabilities = nil // all capabilities
	id2 := uniqueID(t)
	out, errs, code := r.runBundle(b2, id2)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "Read-only file system") && !strings.Contains(out, "can't create") && !strings.Contains(out, "No such") {
		t.Errorf("writing /proc/<pid>/exe from inside: %q", out)
	}
	if fi, err := os.Stat(runtimeBin); err != nil || fi.Size() < 1000 {
		t.Fatalf("runtime binary damaged: %v", err)
	}
}

// CVE-2024-21626: a file descriptor the runtime inherited (a directory of
// the host) leaks into the container, and a cwd of /proc/self/fd/N walks
// out through it.
func TestEscapeLeakedFDAndCwd(t *testing.T) {
	r := newRT(t)
	hostDir, err := os.Open("/")
	must(t, err)
	defer hostDir.Close()
	b := newBundle(t, "sh", "-c", "ls /proc/self/fd")
	b.save()
	id := uniqueID(t)
	// fd 3 of the runtime is the host's /; without --preserve-fds the
	// container must not have it.
	out, errs, code := r.runIn("", []*os.File{hostDir}, "run", "--bundle", b.dir, id)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, f := range strings.Fields(out) {
		if f != "0" && f != "1" && f != "2" && f != "3" { // 3 is ls's own directory fd
			t.Errorf("fd %s leaked into the container (fds: %q)", f, out)
		}
	}
	r.assertGone(id, b)
	// A cwd through a leaked fd fails instead of starting outside the root.
	for _, cwd := range []string{"/proc/self/fd/3", "/proc/self/cwd", "/proc/1/cwd/.."} {
		b2 := newBundle(t, "sh", "-c", "pwd; ls /")
		b2.spec.Process.Cwd = cwd
		id2 := uniqueID(t)
		b2.save()
		out, _, code := r.runIn("", []*os.File{hostDir}, "run", "--bundle", b2.dir, id2)
		if code == 0 && (strings.Contains(out, "vmlinuz") || strings.Contains(out, "boot\n") || strings.Contains(out, "work\n")) {
			t.Errorf("cwd %s reached the host's root:\n%s", cwd, out)
		}
		r.assertGone(id2, b2)
	}
}

// CVE-2021-30465 class: a mount destination that is (or passes through) a
// symlink pointing out of the rootfs must land inside the rootfs.
func TestEscapeMountDestinationSymlink(t *testing.T) {
	r := newRT(t)
	b := newBundle(t, "sh", "-c", "grep -c escape-target /proc/self/mountinfo; ls -d /outside-target 2>&1")
	hostTarget := filepath.Join(t.TempDir(), "escape-target")
	must(t, os.Mkdir(hostTarget, 0o755))
	must(t, os.Symlink(hostTarget, filepath.Join(b.dir, "rootfs", "evil")))
	must(t, os.Symlink("../../../../../../../../outside-target", filepath.Join(b.dir, "rootfs", "dotdot")))
	b.spec.Mounts = append(b.spec.Mounts,
		specs.Mount{Destination: "/evil", Type: "tmpfs", Source: "tmpfs"},
		specs.Mount{Destination: "/dotdot", Type: "tmpfs", Source: "tmpfs"},
	)
	id := uniqueID(t)
	_, errs, code := r.runBundle(b, id)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if m := grepLines(mustRead(t, "/proc/self/mountinfo"), hostTarget); m != "" {
		t.Fatalf("a container mount landed on the host: %s", m)
	}
	if _, err := os.Stat("/outside-target"); err == nil {
		os.Remove("/outside-target")
		t.Fatalf("a mount point was created outside the rootfs")
	}
	// Inside, the symlinks resolved within the rootfs.
	if _, err := os.Stat(filepath.Join(b.dir, "rootfs", hostTarget)); err != nil {
		t.Errorf("the mount point was not made inside the rootfs: %v", err)
	}
	r.assertGone(id, b)
}

// CVE-2019-16884/19921 class: /proc or /sys in the rootfs is a symlink, so a
// proc or sysfs mount would land elsewhere (e.g. over a directory the
// container controls): refused.
func TestEscapeProcSysSymlinkTargets(t *testing.T) {
	r := newRT(t)
	for _, target := range []string{"proc", "sys"} {
		b := newBundle(t, "true")
		root := filepath.Join(b.dir, "rootfs")
		must(t, os.RemoveAll(filepath.Join(root, target)))
		must(t, os.Mkdir(filepath.Join(root, "decoy"), 0o755))
		must(t, os.Symlink("decoy", filepath.Join(root, target)))
		id := uniqueID(t)
		_, errs, code := r.runBundle(b, id)
		if code == 0 || !strings.Contains(errs, "symlink") {
			t.Errorf("/%s as a symlink: code %d %q", target, code, errs)
		}
		r.assertGone(id, b)
	}
}

// A masked path must stay masked whichever way the container reaches it:
// through /proc/self/root, another pid's root, or a symlink it makes.
func TestEscapeMaskedPathBypass(t *testing.T) {
	if _, err := os.Stat("/proc/timer_list"); err != nil {
		t.Skip("host has no /proc/timer_list to mask")
	}
	r := newRT(t)
	b := newBundle(t, "sh", "-c", strings.Join([]string{
		"ln -s /proc/timer_list /tmp/link",
		"for p in /proc/timer_list /proc/self/root/proc/timer_list /proc/1/root/proc/timer_list /tmp/link; do echo $p $(cat $p 2>/dev/null | wc -c); done",
		"mkdir /tmp/p; mount -t proc proc /tmp/p 2>&1 | head -c 80; echo",
		"mount --bind /proc /tmp/p 2>&1 | head -c 80; echo",
	}, "; "))
	b.spec.Linux.MaskedPaths = append(b.spec.Linux.MaskedPaths, "/proc/timer_list")
	id := uniqueID(t)
	out, errs, code := r.runBundle(b, id)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && strings.HasPrefix(f[0], "/") && f[1] != "0" {
			t.Errorf("masked path readable via %s (%s bytes)", f[0], f[1])
		}
	}
	if strings.Count(out, "ermission denied")+strings.Count(out, "not permitted") < 2 {
		t.Errorf("a new proc mount or bind of /proc was allowed without CAP_SYS_ADMIN:\n%s", out)
	}
	r.assertGone(id, b)
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	return string(b)
}
