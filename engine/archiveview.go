package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/mount"
	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/internal/mountns"
	"github.com/hako-project/hako/internal/tarfs"
	"github.com/hako-project/hako/trace"
)

// The container's view for docker cp. docker mounts a container's volumes,
// bind mounts and /etc/hostname, /etc/hosts, /etc/resolv.conf on its root
// filesystem for the time of a copy (not its tmpfs mounts: a copy sees
// what is under them), in a mount namespace of its own, running or not;
// hakod does the same. A thread of hakod unshares its mount namespace,
// makes it a slave of the host's (nothing it mounts propagates back),
// binds each mount's source at its destination, resolved inside the
// container's root, and runs the copy there; the thread, with its
// namespace and mounts, ends with the copy.
//
// The other way, mapping a path to the mount whose destination is its
// longest prefix and working from that mount's source, was not taken: a
// symlink in a volume that points to "/etc" must lead to the container's
// /etc, which is in another tree; a copy of "/" or of a directory holding
// a mount point must contain the mount's files, which a walk of one tree
// does not meet. With the mounts in place, securejoin's RESOLVE_IN_ROOT
// and tarfs's *at walk cross mount points as the container's own lookups
// do, and the root stays the limit: a symlink to "/" in a volume leads to
// the container's root, never the host's.

// viewMount is one mount of the copy's view.
type viewMount struct {
	dest, source string
	rw           bool
	volume       string // the volume's name, for a volume
}

// viewMounts lists what docker mounts for a copy, parents before children
// (docker sorts by the depth of the destination): volumes and binds, then
// the /etc files hakod wrote at the container's last start, unless a mount
// of the user's is at their place. tmpfs mounts are not part of the view.
func (e *Engine) viewMounts(c *Container) []viewMount {
	snap := c.Snapshot()
	var out []viewMount
	taken := map[string]bool{}
	for _, mp := range snap.Mounts {
		if mp.Type != mount.TypeVolume && mp.Type != mount.TypeBind {
			continue
		}
		m := viewMount{dest: path.Clean(mp.Destination), source: mp.Source, rw: mp.RW}
		if mp.Type == mount.TypeVolume {
			m.volume = mp.Name
		}
		taken[m.dest] = true
		out = append(out, m)
	}
	for _, f := range []string{"hostname", "hosts", "resolv.conf"} {
		p := filepath.Join(e.RunDir(c.ID), f)
		if _, err := os.Stat(p); err == nil && !taken["/etc/"+f] {
			out = append(out, viewMount{dest: "/etc/" + f, source: p, rw: true})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		return strings.Count(out[i].dest, "/") < strings.Count(out[j].dest, "/")
	})
	return out
}

// mountAt finds which mount of the view holds p (absolute, resolved in the
// container): the one with the longest destination that is p or a parent
// of it, as the kernel's lookup finds it. ok is false for the root
// filesystem.
func mountAt(mounts []viewMount, p string) (m viewMount, ok bool) {
	for _, x := range mounts {
		if (p == x.dest || strings.HasPrefix(p, strings.TrimSuffix(x.dest, "/")+"/")) && len(x.dest) >= len(m.dest) {
			m, ok = x, true
		}
	}
	return m, ok
}

// withContainerView is withRootfs with the container's view mounted: fn
// runs on a thread of its own mount namespace, and root and host name the
// container's root with its volumes and binds in place.
func (e *Engine) withContainerView(ctx context.Context, c *Container, fn func(root *os.File, host string, mounts []viewMount) error) error {
	return e.withRootfs(ctx, c, func(_ *os.File, host string) (err error) {
		mounts := e.viewMounts(c)
		// A volume with options (tmpfs, nfs, a bind of the host) has its
		// file system only while someone uses it: the copy is a user of its
		// own, as docker's is.
		ref := c.ID + "/cp"
		for i, m := range mounts {
			if m.volume == "" {
				continue
			}
			src, err := e.volumes.Mount(m.volume, ref)
			if err != nil {
				return err
			}
			defer func() {
				if _, err := e.volumes.Unmount(m.volume, ref); err != nil {
					e.log.Warn("unmount a volume after a copy", "id", c.ID, "volume", m.volume, "err", err)
				}
			}()
			mounts[i].source = src
		}
		_, span := trace.Start(ctx, "engine.archive.view", "id", c.ID, "mounts", fmt.Sprint(len(mounts)))
		defer func() { span.End(err) }()
		return mountns.Run(func() error {
			// Detached before the result goes back, so no copy of the
			// container's overlay outlives the call (a start mounts it
			// again); the volumes' binds go with it.
			defer func() { _ = unix.Unmount(host, unix.MNT_DETACH) }()
			root, err := mountView(host, mounts)
			if err != nil {
				return fmt.Errorf("mount the volumes of container %s: %w", c.ID, err)
			}
			defer root.Close()
			return fn(root, host, mounts)
		})
	})
}

// mountView binds each mount's source at its destination below host (the
// container's root as this thread sees it) and opens the root. Each
// destination is resolved inside the root, created if missing (a
// directory, or an empty file for a file's bind, as docker creates it),
// and mounted through its file descriptor, so a symlink the container
// made cannot place a mount outside of it.
func mountView(host string, mounts []viewMount) (*os.File, error) {
	root, err := os.OpenFile(host, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open the root: %w", err)
	}
	defer root.Close()
	for _, m := range mounts {
		if err := bindInRoot(root, m); err != nil {
			return nil, fmt.Errorf("%s: %w", m.dest, tarfs.CleanErr(err))
		}
	}
	// Reopened after the mounts: a mount on "/" itself would be missed by
	// the handle taken before.
	return os.OpenFile(host, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}

// bindInRoot bind-mounts m.source (recursively, read-only unless rw) at
// m.dest inside root.
func bindInRoot(root *os.File, m viewMount) error {
	var st unix.Stat_t
	if err := unix.Stat(m.source, &st); err != nil {
		return fmt.Errorf("source %s: %w", m.source, err)
	}
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	dst, err := securejoin.OpenatInRoot(root, m.dest)
	if errors.Is(err, unix.ENOENT) {
		dst, err = createInRoot(root, m.dest, isDir)
	}
	if err != nil {
		return err
	}
	target := fmt.Sprintf("/proc/self/fd/%d", dst.Fd())
	err = unix.Mount(m.source, target, "", unix.MS_BIND|unix.MS_REC, "")
	dst.Close()
	if err != nil {
		return fmt.Errorf("bind %s: %w", m.source, err)
	}
	// A bind is made read-write; read-only is a remount of the new mount,
	// reached by resolving the destination again.
	top, err := securejoin.OpenatInRoot(root, m.dest)
	if err != nil {
		return err
	}
	defer top.Close()
	top2 := fmt.Sprintf("/proc/self/fd/%d", top.Fd())
	if err := unix.Mount("", top2, "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make private: %w", err)
	}
	if m.rw {
		return nil
	}
	if err := unix.Mount("", top2, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		return fmt.Errorf("remount read-only: %w", err)
	}
	return nil
}

// createInRoot makes the missing destination p inside root: its parents
// as directories, then p, a directory or an empty file.
func createInRoot(root *os.File, p string, isDir bool) (*os.File, error) {
	if isDir {
		return securejoin.MkdirAllHandle(root, p, 0o755)
	}
	parent, err := securejoin.MkdirAllHandle(root, path.Dir(p), 0o755)
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	fd, err := unix.Openat(int(parent.Fd()), path.Base(p), unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_RDONLY|unix.O_CLOEXEC, 0o755)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), p), nil
}

// checkWritable is docker's check before an extraction into dir (resolved
// in the container, symlinks followed inside it): a read-only volume or
// bind refuses it, and so does a read-only root outside of the mounts.
func checkWritable(host string, mounts []viewMount, dir string, readonlyRoot bool) error {
	resolved := dir
	if p, err := securejoin.SecureJoin(host, dir); err == nil {
		if rel, err := filepath.Rel(host, p); err == nil {
			resolved = filepath.Join("/", rel)
		}
	}
	m, inMount := mountAt(mounts, resolved)
	switch {
	case inMount && !m.rw:
		return errdefs.Invalidf("mounted volume is marked read-only")
	case !inMount && readonlyRoot:
		return errdefs.Invalidf("container rootfs is marked read-only")
	}
	return nil
}
