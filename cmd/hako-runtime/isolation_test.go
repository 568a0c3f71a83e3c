package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// hostNS returns the inode of one of the test process's namespaces.
func hostNS(t *testing.T, kind string) string {
	t.Helper()
	l, err := os.Readlink("/proc/self/ns/" + kind)
	must(t, err)
	return l
}

func TestAllEightNamespacesNew(t *testing.T) {
	r := newRT(t)
	kinds := []string{"pid", "net", "mnt", "ipc", "uts", "user", "cgroup", "time"}
	script := ""
	for _, k := range kinds {
		script += fmt.Sprintf("echo %s $(readlink /proc/self/ns/%s);", k, k)
	}
	b := newBundle(t, "sh", "-c", script+"cat /proc/self/uid_map; cat /proc/uptime")
	b.spec.Linux.Namespaces = []specs.LinuxNamespace{
		{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.MountNamespace},
		{Type: specs.IPCNamespace}, {Type: specs.UTSNamespace}, {Type: specs.UserNamespace},
		{Type: specs.CgroupNamespace}, {Type: specs.TimeNamespace},
	}
	b.spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	b.spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	b.spec.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 86400 * 365}}
	// In a user namespace sysfs needs its own network namespace (it has one)
	// and the cgroup mount stays; the rootfs must be reachable by uid 100000.
	must(t, os.Chmod(b.dir, 0o755))
	must(t, os.Chmod(filepath.Dir(b.dir), 0o755))
	id := uniqueID(t)
	out, errs, code := r.runBundle(b, id)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, k := range kinds {
		var got string
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, k+" ") {
				got = strings.TrimPrefix(l, k+" ")
			}
		}
		if got == "" || got == hostNS(t, k) {
			t.Errorf("%s namespace: container %q, host %q", k, got, hostNS(t, k))
		}
	}
	if !strings.Contains(out, "0     100000      65536") && !strings.Contains(out, "0 100000 65536") {
		t.Errorf("uid_map not applied:\n%s", out)
	}
	// The boottime offset of a year shows in /proc/uptime.
	lines := strings.Split(strings.TrimSpace(out), "\n")
	up, _ := strconv.ParseFloat(strings.Fields(lines[len(lines)-1])[0], 64)
	if up < 86400*365 {
		t.Errorf("uptime %v: time namespace offset not applied", up)
	}
	r.assertGone(id, b)
}

func TestJoinNamespacesByPath(t *testing.T) {
	r := newRT(t)
	a := newBundle(t, "sleep", "60")
	a.spec.Hostname = "first"
	a.save()
	ida := uniqueID(t)
	r.must("run", "-d", "--bundle", a.dir, ida)
	pid := int(r.state(ida)["pid"].(float64))

	b := newBundle(t, "sh", "-c", "readlink /proc/self/ns/net; readlink /proc/self/ns/uts; readlink /proc/self/ns/ipc; hostname")
	b.spec.Hostname = ""
	var nss []specs.LinuxNamespace
	for _, ns := range b.spec.Linux.Namespaces {
		switch ns.Type {
		case specs.NetworkNamespace, specs.UTSNamespace, specs.IPCNamespace:
			ns.Path = fmt.Sprintf("/proc/%d/ns/%s", pid, map[specs.LinuxNamespaceType]string{
				specs.NetworkNamespace: "net", specs.UTSNamespace: "uts", specs.IPCNamespace: "ipc"}[ns.Type])
		}
		nss = append(nss, ns)
	}
	b.spec.Linux.Namespaces = nss
	idb := uniqueID(t)
	out, errs, code := r.runBundle(b, idb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	want := ""
	for _, k := range []string{"net", "uts", "ipc"} {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, k))
		must(t, err)
		want += l + "\n"
	}
	want += "first\n"
	if out != want {
		t.Errorf("joined namespaces:\n got %q\nwant %q", out, want)
	}
	// A path that is a namespace of another type is refused up front.
	c := newBundle(t, "true")
	for i, ns := range c.spec.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			c.spec.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/uts", pid)
		}
	}
	idc := uniqueID(t)
	if _, errs, code := r.runBundle(c, idc); code == 0 || !strings.Contains(errs, "linux.namespaces") || !strings.Contains(errs, "not a network namespace") {
		t.Errorf("wrong namespace type: code %d, %q", code, errs)
	}
	r.assertGone(idc, c)
	r.must("delete", "--force", ida)
	r.assertGone(ida, a)
}

func TestMountsAndReadonly(t *testing.T) {
	r := newRT(t)
	host := t.TempDir()
	must(t, os.WriteFile(filepath.Join(host, "file"), []byte("from host\n"), 0o644))
	// A submount under the bind source, to see rro reach it.
	sub := filepath.Join(host, "sub")
	must(t, os.Mkdir(sub, 0o755))
	must(t, unix.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"))
	defer unix.Unmount(sub, unix.MNT_DETACH)

	b := newBundle(t, "sh", "-c", strings.Join([]string{
		"cat /data/file",
		"touch /data/x 2>/dev/null && echo data-writable || echo data-ro",
		"touch /rro/sub/x 2>/dev/null && echo sub-writable || echo sub-ro",
		"touch /rw/x && echo rw-ok",
		"touch /newfile 2>/dev/null && echo root-writable || echo root-ro",
		"grep ' /scratch ' /proc/self/mountinfo | grep -q 'size=1024k' && echo tmpfs-opts",
		"cat /proc/timer_list | wc -c",
		"echo 1 > /proc/sys/kernel/sysrq 2>/dev/null && echo sys-writable || echo sys-ro",
		"cat /single",
	}, "; "))
	b.spec.Root.Readonly = true
	b.spec.Mounts = append(b.spec.Mounts,
		specs.Mount{Destination: "/data", Type: "bind", Source: host, Options: []string{"bind", "ro"}},
		specs.Mount{Destination: "/rro", Type: "bind", Source: host, Options: []string{"rbind", "rro"}},
		specs.Mount{Destination: "/rw", Type: "bind", Source: t.TempDir(), Options: []string{"bind", "rw"}},
		specs.Mount{Destination: "/scratch", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1024k", "nosuid"}},
		specs.Mount{Destination: "/single", Type: "bind", Source: filepath.Join(host, "file"), Options: []string{"bind"}},
	)
	id := uniqueID(t)
	out, errs, code := r.runBundle(b, id)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	want := "from host\ndata-ro\nsub-ro\nrw-ok\nroot-ro\ntmpfs-opts\n0\nsys-ro\nfrom host\n"
	if out != want {
		t.Errorf("mounts:\n got %q\nwant %q", out, want)
	}
	r.assertGone(id, b)
}

// TestReadonlyRemountKeepsFlags: making /proc/sys (readonlyPaths) and the
// cgroup tmpfs read-only keeps their nosuid, nodev and noexec, as runc
// does (a bare MS_BIND|MS_RDONLY remount once cleared them).
func TestReadonlyRemountKeepsFlags(t *testing.T) {
	r := newRT(t)
	b := newBundle(t, "sh", "-c", "awk '$2 == \"/proc/sys\" || $2 == \"/sys/fs/cgroup\" { print $2, $4 }' /proc/mounts")
	for i, m := range b.spec.Mounts {
		if m.Destination == "/proc" {
			b.spec.Mounts[i].Options = []string{"nosuid", "noexec", "nodev"}
		}
	}
	id := uniqueID(t)
	out, errs, code := r.runBundle(b, id)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 {
		t.Fatalf("want /proc/sys and /sys/fs/cgroup in /proc/mounts, got %q", out)
	}
	for _, l := range lines {
		dst, opts, _ := strings.Cut(l, " ")
		set := map[string]bool{}
		for _, o := range strings.Split(opts, ",") {
			set[o] = true
		}
		for _, want := range []string{"ro", "nosuid", "nodev", "noexec"} {
			if !set[want] {
				t.Errorf("%s mounted %s: lacks %s", dst, opts, want)
			}
		}
	}
	r.assertGone(id, b)
}

func TestDevicesAndLinks(t *testing.T) {
	r := newRT(t)
	b := newBundle(t, "sh", "-c", "ls -ln /dev/fuse0 /dev/null /dev/zero | awk '{print $1, $3, $4, $5, $6}'; readlink /dev/fd; readlink /dev/stdin; readlink /dev/ptmx; test -p /dev/myfifo && echo fifo")
	mode := os.FileMode(0o640)
	uid, gid := uint32(1000), uint32(1000)
	b.spec.Linux.Devices = []specs.LinuxDevice{
		{Path: "/dev/fuse0", Type: "c", Major: 10, Minor: 229, FileMode: &mode, UID: &uid, GID: &gid},
		{Path: "/dev/myfifo", Type: "p"},
	}
	id := uniqueID(t)
	out, errs, code := r.runBundle(b, id)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, w := range []string{"crw-r----- 1000 1000 10, 229", "crw-rw-rw- 0 0 1, 3", "crw-rw-rw- 0 0 1, 5", "/proc/self/fd\n/proc/self/fd/0\npts/ptmx", "fifo"} {
		if !strings.Contains(out, w) {
			t.Errorf("devices: %q missing in\n%s", w, out)
		}
	}
	r.assertGone(id, b)
}

func TestCgroupPlacement(t *testing.T) {
	r := newRT(t)
	b := newBundle(t, "sh", "-c", "cat /proc/self/cgroup")
	// Without a cgroup namespace the container sees its host path.
	var nss []specs.LinuxNamespace
	for _, ns := range b.spec.Linux.Namespaces {
		if ns.Type != specs.CgroupNamespace {
			nss = append(nss, ns)
		}
	}
	b.spec.Linux.Namespaces = nss
	id := uniqueID(t)
	b.spec.Linux.CgroupsPath = "/hako-test/" + id
	out, errs, code := r.runBundle(b, id)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, ctrl := range []string{"memory", "pids", "cpu", "devices", "freezer"} {
		if !strings.Contains(out, ctrl+":/hako-test/"+id) && !strings.Contains(out, ","+ctrl+":/hako-test/"+id) {
			t.Errorf("%s: container not in /hako-test/%s:\n%s", ctrl, id, out)
		}
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", ctrl, "hako-test", id)); err == nil {
			t.Errorf("%s cgroup left behind", ctrl)
		}
	}
	r.assertGone(id, b)
}

func TestNoPivot(t *testing.T) {
	r := newRT(t)
	b := newBundle(t, "sh", "-c", "ls /; cat /proc/self/mountinfo | head -1")
	b.save()
	id := uniqueID(t)
	out, errs, code := r.run("run", "--no-pivot", "--bundle", b.dir, id)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "bin\n") || !strings.Contains(out, " / ") {
		t.Errorf("no-pivot root:\n%s", out)
	}
	r.assertGone(id, b)
}
