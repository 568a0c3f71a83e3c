package cgroups

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// FavorDynMods is what SetFavorDynMods found and did.
type FavorDynMods struct {
	// Mountpoint is the cgroup2 mount whose options carry the flag.
	Mountpoint string
	// Already is true when the flag was as asked before (nothing was done).
	Already bool
}

// SetFavorDynMods turns the kernel's "favordynmods" cgroup mount option
// (Linux 6.0+) on or off on the cgroup2 hierarchy mounted at or below root
// (/sys/fs/cgroup on a v2 host, /sys/fs/cgroup/unified on a hybrid one).
//
// Why: moving a process into a cgroup (a write to cgroup.procs) takes the
// kernel's global cgroup_threadgroup_rwsem for writing, and without the
// option the first such write after a pause waits for an RCU grace period
// first: 7-17 ms per container start on the VMs we measure, more than
// anything else the runtime does (the runtime.cgroups.join span). With it,
// the lock is kept in the mode where writers do not wait (and, from Linux
// 6.18, each thread group has a lock of its own), at some cost to fork and
// exit. The lock is global, so the cgroup2 mount's option serves the v1
// hierarchies of a hybrid host too. A pure v2 host, where containers are
// cloned straight into their cgroup (CLONE_INTO_CGROUP), gains only at
// exec; a v1 or hybrid host gains at every start.
//
// It changes the host, not just hako: every later cgroup migration on the
// machine is affected, and on Linux 6.18+ the per-thread-group locking
// stays on until reboot even once the option is off again. So hakod sets
// it only when asked (--cgroup-favordynmods). The remount repeats the
// mount's own per-mount flags (nosuid, nodev, noexec, ...) and super
// options (nsdelegate, memory_recursiveprot, ...), which a remount would
// otherwise clear.
func SetFavorDynMods(root string, on bool) (FavorDynMods, error) {
	mi, err := readAll("/proc/self/mountinfo")
	if err != nil {
		return FavorDynMods{}, fmt.Errorf("read mountinfo: %w", err)
	}
	m, err := favorMount(mi, filepath.Clean(root))
	if err != nil {
		return FavorDynMods{}, err
	}
	opts := slices.DeleteFunc(slices.Clone(m.super), func(o string) bool { return o == "favordynmods" })
	res := FavorDynMods{Mountpoint: m.mountpoint, Already: (len(opts) < len(m.super)) == on}
	if res.Already {
		return res, nil
	}
	if on {
		opts = append(opts, "favordynmods")
	}
	data := strings.Join(opts, ",")
	if err := unix.Mount("", m.mountpoint, "", unix.MS_REMOUNT|m.flags, data); err != nil {
		return res, fmt.Errorf("remount %s with options %q: %w", m.mountpoint, data, err)
	}
	return res, nil
}

// favorTarget is a cgroup mount as a remount must repeat it.
type favorTarget struct {
	mountpoint string
	// flags are the per-mount flags (MS_NOSUID, MS_RDONLY, ...).
	flags uintptr
	// super are the super options other than rw/ro.
	super []string
}

// favorMount finds the cgroup2 mount at or below root in mountinfo (the
// last one at its mountpoint, the visible one). Only cgroup2 takes the
// option at a remount: v1 refuses to change flags then, so a v1-only host
// needs it at boot (cgroup_favordynmods=true on the kernel command line).
func favorMount(mountinfo []byte, root string) (favorTarget, error) {
	if _, err := parseMountinfo(mountinfo, root); err != nil {
		return favorTarget{}, err
	}
	var t favorTarget
	for line := range strings.SplitSeq(string(mountinfo), "\n") {
		sep := strings.Index(line, " - cgroup2 ")
		if sep < 0 {
			continue
		}
		f := strings.Fields(line[:sep])
		p := strings.Fields(line[sep+3:])
		if len(f) < 6 || len(p) < 3 {
			continue
		}
		mp := unescapeMountinfo(f[4])
		if mp != root && filepath.Dir(mp) != root {
			continue
		}
		t = favorTarget{mountpoint: mp, flags: mountFlags(f[5])}
		for o := range strings.SplitSeq(p[2], ",") {
			if o != "rw" && o != "ro" && o != "" {
				t.super = append(t.super, o)
			}
		}
	}
	if t.mountpoint == "" {
		return favorTarget{}, fmt.Errorf("no cgroup2 mount at or below %s to set favordynmods on (cgroup v1 takes it only at boot: cgroup_favordynmods=true on the kernel command line)", root)
	}
	return t, nil
}

// mountFlags turns mountinfo's per-mount options (field 6) into the flags
// mount(2) takes.
func mountFlags(opts string) uintptr {
	var fl uintptr
	for o := range strings.SplitSeq(opts, ",") {
		switch o {
		case "ro":
			fl |= unix.MS_RDONLY
		case "nosuid":
			fl |= unix.MS_NOSUID
		case "nodev":
			fl |= unix.MS_NODEV
		case "noexec":
			fl |= unix.MS_NOEXEC
		case "noatime":
			fl |= unix.MS_NOATIME
		case "nodiratime":
			fl |= unix.MS_NODIRATIME
		case "relatime":
			fl |= unix.MS_RELATIME
		case "strictatime":
			fl |= unix.MS_STRICTATIME
		case "nosymfollow":
			fl |= unix.MS_NOSYMFOLLOW
		}
	}
	return fl
}
