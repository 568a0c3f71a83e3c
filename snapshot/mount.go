package snapshot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Mount describes one mount as mount(8) would take it. For overlay the
// Options carry lowerdir=, upperdir= and workdir=.
type Mount struct {
	Type    string
	Source  string
	Options []string
}

func overlay(lowers []string, upper, work string) Mount {
	opts := []string{"index=off"}
	if upper != "" {
		opts = append(opts, "upperdir="+upper, "workdir="+work)
	} else {
		opts = append(opts, "ro")
	}
	opts = append(opts, "lowerdir="+strings.Join(lowers, ":"))
	return Mount{Type: "overlay", Source: "overlay", Options: opts}
}

func (m Mount) option(key string) string {
	for _, o := range m.Options {
		if v, ok := strings.CutPrefix(o, key+"="); ok {
			return v
		}
	}
	return ""
}

// LowerDirs are the overlay lower dirs, topmost first (nil for a bind).
func (m Mount) LowerDirs() []string {
	if v := m.option("lowerdir"); v != "" {
		return strings.Split(v, ":")
	}
	return nil
}

// UpperDir is the overlay upper dir, or the source of a read-write bind.
func (m Mount) UpperDir() string {
	if m.Type == "bind" {
		for _, o := range m.Options {
			if o == "rw" {
				return m.Source
			}
		}
		return ""
	}
	return m.option("upperdir")
}

// WorkDir is the overlay work dir ("" for a bind or read-only overlay).
func (m Mount) WorkDir() string { return m.option("workdir") }

// maxMountData is the largest data string mount(2) accepts (one page, with
// its terminating NUL).
const maxMountData = 4095

// Mount mounts m on target.
func (m Mount) Mount(target string) error {
	switch m.Type {
	case "bind":
		flags := uintptr(unix.MS_BIND | unix.MS_REC)
		if err := unix.Mount(m.Source, target, "", flags, ""); err != nil {
			return fmt.Errorf("bind mount %s on %s: %w", m.Source, target, err)
		}
		for _, o := range m.Options {
			if o == "ro" {
				if err := unix.Mount("", target, "", flags|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
					unix.Unmount(target, unix.MNT_DETACH)
					return fmt.Errorf("make bind mount %s read-only: %w", target, err)
				}
			}
		}
		return nil
	case "overlay":
		var flags uintptr
		var data []string
		for _, o := range m.Options {
			if o == "ro" {
				flags |= unix.MS_RDONLY
				continue
			}
			data = append(data, o)
		}
		d := strings.Join(data, ",")
		if len(d) <= maxMountData {
			if err := unix.Mount("overlay", target, "overlay", flags, d); err != nil {
				return fmt.Errorf("mount overlay on %s (%d lowerdirs): %w", target, len(m.LowerDirs()), err)
			}
			return nil
		}
		return mountOverlayFsconfig(m, target, flags&unix.MS_RDONLY != 0)
	}
	return fmt.Errorf("mount %s on %s: unsupported type %q", m.Source, target, m.Type)
}

// mountOverlayFsconfig mounts an overlay whose options do not fit one page
// by handing each lower dir to the kernel separately ("lowerdir+", Linux
// 6.8+), the way around the limit that does not need chdir (which Go
// cannot do per thread).
func mountOverlayFsconfig(m Mount, target string, ro bool) error {
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen overlay for %s: %w", target, err)
	}
	defer unix.Close(fsfd)
	set := func(k, v string) error {
		if err := unix.FsconfigSetString(fsfd, k, v); err != nil {
			return fmt.Errorf("overlay option %s=%s for %s: %w", k, v, target, err)
		}
		return nil
	}
	for _, o := range m.Options {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "ro":
		case "lowerdir":
			for _, l := range strings.Split(v, ":") {
				if err := set("lowerdir+", l); err != nil {
					return fmt.Errorf("%w (kernel older than 6.8 cannot mount this many layers)", err)
				}
			}
		default:
			if err := set(k, v); err != nil {
				return err
			}
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return fmt.Errorf("create overlay for %s: %w", target, err)
	}
	var attr int
	if ro {
		attr = unix.MOUNT_ATTR_RDONLY
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, attr)
	if err != nil {
		return fmt.Errorf("fsmount overlay for %s: %w", target, err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("attach overlay at %s: %w", target, err)
	}
	return nil
}

// MountAll mounts each of mounts on target in order. On failure the mounts
// already made are undone.
func MountAll(mounts []Mount, target string) error {
	for i, m := range mounts {
		if err := m.Mount(target); err != nil {
			for j := 0; j < i; j++ {
				unix.Unmount(target, unix.MNT_DETACH)
			}
			return err
		}
	}
	return nil
}

// MountVolatile mounts like MountAll, but a writable overlay with
// overlayfs's volatile option: the kernel then skips every sync of the
// upper layer, fsync inside the container and the sync at unmount (5 ms on
// this machine's disk when quiet, tens of ms under load, on the critical
// path of `run --rm`). Only for a layer that is thrown away when the
// container ends (docker's --rm; podman mounts those volatile too): after
// a crash its content may be incomplete, and overlayfs refuses to mount it
// again until the marker it leaves in the work dir is removed, which
// MountVolatile does first. A kernel without the option (before 5.10)
// gets a plain mount.
func MountVolatile(mounts []Mount, target string) error {
	vol := make([]Mount, len(mounts))
	copy(vol, mounts)
	changed := false
	for i, m := range vol {
		if m.Type != "overlay" || m.option("upperdir") == "" {
			continue
		}
		if work := m.option("workdir"); work != "" {
			if err := os.RemoveAll(filepath.Join(work, "work", "incompat", "volatile")); err != nil {
				return fmt.Errorf("remove overlay volatile marker: %w", err)
			}
		}
		vol[i].Options = append(append([]string(nil), m.Options...), "volatile")
		changed = true
	}
	if !changed {
		return MountAll(mounts, target)
	}
	if err := MountAll(vol, target); err != nil {
		if errors.Is(err, unix.EINVAL) {
			return MountAll(mounts, target)
		}
		return err
	}
	return nil
}

// UnmountAll unmounts everything stacked on target. A target that is not a
// mount point (or does not exist) is fine, so cleanup can run twice.
func UnmountAll(target string) error {
	for i := 0; i < 50; i++ {
		err := unix.Unmount(target, 0)
		switch {
		case err == nil:
			continue
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil
		case errors.Is(err, unix.EBUSY):
			// Still in use (a process inside, an open file): detach so the
			// caller can go on; the kernel frees it when the last user goes.
			if err := unix.Unmount(target, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("detach %s: %w", target, err)
			}
		default:
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
	return fmt.Errorf("unmount %s: still mounted after 50 unmounts", target)
}

func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
