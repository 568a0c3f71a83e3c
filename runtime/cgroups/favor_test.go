package cgroups

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestFavorMount(t *testing.T) {
	// Hybrid: the unified hierarchy, with its per-mount flags.
	m, err := favorMount([]byte(hybridMountinfo), "/sys/fs/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if m.mountpoint != "/sys/fs/cgroup/unified" || m.flags != unix.MS_RELATIME || len(m.super) != 0 {
		t.Fatalf("hybrid: got %+v", m)
	}
	// Pure v2: nsdelegate and memory_recursiveprot must be repeated, or
	// the remount would clear them.
	m, err = favorMount([]byte(v2Mountinfo), "/sys/fs/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if m.mountpoint != "/sys/fs/cgroup" || m.flags != unix.MS_NOSUID || !slices.Equal(m.super, []string{"nsdelegate", "memory_recursiveprot"}) {
		t.Fatalf("v2: got %+v", m)
	}
	// v1 only: a remount cannot change a v1 hierarchy's flags; the error
	// says what can.
	if _, err := favorMount([]byte(comountedMountinfo), "/sys/fs/cgroup"); err == nil || !strings.Contains(err.Error(), "cgroup_favordynmods=true") {
		t.Fatalf("v1 only: got %v, want an error naming the boot parameter", err)
	}
	if _, err := favorMount([]byte("1 0 0:1 / / rw - ext4 /dev/vda rw\n"), "/sys/fs/cgroup"); err == nil {
		t.Fatal("no cgroup mount: want an error")
	}
	if got := mountFlags("ro,nosuid,nodev,noexec,noatime"); got != unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC|unix.MS_NOATIME {
		t.Fatalf("mountFlags = %#x", got)
	}
}

// TestSetFavorDynMods remounts a private cgroup2 mount, not the host's,
// though the flag it sets belongs to the one cgroup2 hierarchy they share:
// off and on again, the option lands, the per-mount flags and the other
// super options survive, a second call changes nothing, and the host's
// setting is put back afterwards. (On Linux 6.18+ the per-thread-group cgroup locking the
// option turns on stays on until reboot, as with hakod
// --cgroup-favordynmods.)
func TestSetFavorDynMods(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts cgroup2")
	}
	root := t.TempDir()
	mp := filepath.Join(root, "unified")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("cgroup2", mp, "cgroup2", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		t.Skipf("cannot mount cgroup2 here: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(mp, unix.MNT_DETACH) })
	read := func() favorTarget {
		t.Helper()
		mi, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			t.Fatal(err)
		}
		m, err := favorMount(mi, root)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	before := read()
	wasOn := slices.Contains(before.super, "favordynmods")
	t.Cleanup(func() {
		if _, err := SetFavorDynMods(root, wasOn); err != nil {
			t.Errorf("put favordynmods back: %v", err)
		}
	})
	// From off, so that the remount path runs.
	if _, err := SetFavorDynMods(root, false); err != nil {
		if errors.Is(err, unix.EINVAL) {
			t.Skipf("kernel without favordynmods (Linux < 6.0)? %v", err)
		}
		t.Fatal(err)
	}
	off := read()
	if slices.Contains(off.super, "favordynmods") {
		t.Fatalf("still on after turning it off: %v", off.super)
	}

	res, err := SetFavorDynMods(root, true)
	if err != nil {
		if errors.Is(err, unix.EINVAL) {
			t.Skipf("kernel without favordynmods (Linux < 6.0): %v", err)
		}
		t.Fatal(err)
	}
	if res.Mountpoint != mp || res.Already {
		t.Fatalf("got %+v, want a change on %s", res, mp)
	}
	after := read()
	if want := append(slices.Clone(off.super), "favordynmods"); !sameSet(after.super, want) {
		t.Fatalf("super options after the remount: %v, want %v", after.super, want)
	}
	if after.flags&(unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC) != unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC {
		t.Fatalf("per-mount flags lost in the remount: %#x", after.flags)
	}
	res, err = SetFavorDynMods(root, true)
	if err != nil || !res.Already {
		t.Fatalf("second call: %+v, %v; want already set", res, err)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
