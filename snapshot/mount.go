package snapshot

import (
	"errors"
	"fmt"
	"io/fs"
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
