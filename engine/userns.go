package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/snapshot"
)

// User namespaces of pods. hakod cannot unshare a user namespace from a
// thread (the kernel refuses CLONE_NEWUSER to a multithreaded process), so
// the pod's pause process is started in a new user namespace with the
// pod's ID mappings and new network, IPC, UTS and PID namespaces, which
// therefore belong to it; hakod then pins them from /proc/PID/ns like the
// others. Containers join the user namespace first and the others after
// (hako-runtime's order), and their root filesystem is ID-mapped with it
// (idmapRootfs), so that the image's root-owned files are the container
// root's.

// IDMappings are a user namespace's uid and gid mappings.
type IDMappings struct {
	UIDs, GIDs []specs.LinuxIDMapping
}

func sysMaps(m []specs.LinuxIDMapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(m))
	for i, x := range m {
		out[i] = syscall.SysProcIDMap{ContainerID: int(x.ContainerID), HostID: int(x.HostID), Size: int(x.Size)}
	}
	return out
}

// pinUserNamespaces pins the pause process's user, network, IPC and UTS
// namespaces into dir and sets the pod's hostname and loopback in them.
func pinUserNamespaces(rec *SandboxRecord, dir, hostname string) error {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return fmt.Errorf("namespace directory: %w", err)
	}
	paths := map[string]*string{"user": &rec.UserNS, "net": &rec.NetNS, "ipc": &rec.IPCNS, "uts": &rec.UTSNS}
	for _, name := range []string{"user", "net", "ipc", "uts"} {
		p := filepath.Join(dir, name)
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
		if err != nil {
			return fmt.Errorf("pin file: %w", err)
		}
		f.Close()
		src := fmt.Sprintf("/proc/%d/ns/%s", rec.PausePid, name)
		if err := unix.Mount(src, p, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("pin the pod's %s namespace: %w", name, err)
		}
		*paths[name] = p
	}
	return inNamespaces(map[string]int{rec.UTSNS: unix.CLONE_NEWUTS, rec.NetNS: unix.CLONE_NEWNET}, func() error {
		if hostname != "" {
			if err := unix.Sethostname([]byte(hostname)); err != nil {
				return fmt.Errorf("set hostname %q: %w", hostname, err)
			}
		}
		return loopbackUp()
	})
}

// inNamespaces runs fn on a thread that joined the given namespaces (path
// to kind). hakod's root is privileged over namespaces its pods' user
// namespaces own, so it may join them without joining those.
func inNamespaces(nss map[string]int, fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		for path, kind := range nss {
			fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				ch <- err
				return
			}
			err = unix.Setns(fd, kind)
			unix.Close(fd)
			if err != nil {
				ch <- fmt.Errorf("join %s: %w", path, err)
				return
			}
		}
		ch <- fn()
	}()
	return <-ch
}

// idmapRootfs remounts the container's root filesystem on ID-mapped
// image layers, mapped through the pod's user namespace at userns, so
// that the image's files keep the owners they have on disk as the
// container sees them (root's are its root's). Overlayfs cannot itself be
// an ID-mapped mount, but its lower layers can (Linux 5.19): each is
// cloned with open_tree, ID-mapped with mount_setattr, and the overlay is
// mounted again on those clones, as containerd 2 does. The upper dir is
// the container's own and stays unmapped: what the container writes is
// stored with its host ids, and its root (root: the host uid and gid of
// the namespace's root) owns the upper dir's top.
func (e *Engine) idmapRootfs(ctx context.Context, id, rootfs, userns string, root [2]uint32) (err error) {
	mounts, err := e.images.Snapshots().Mounts(ctx, id)
	if err != nil || len(mounts) != 1 {
		return fmt.Errorf("the container's filesystem: %v", err)
	}
	m := mounts[0]
	// The runtime reaches the rootfs as the pod's root, a host uid that
	// is not root: the container's run directory (0710) must let it
	// through.
	if err := os.Chmod(e.RunDir(id), 0o711); err != nil {
		return fmt.Errorf("container directory: %w", err)
	}
	for d := filepath.Dir(e.RunDir(id)); d != "/" && d != "."; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
			return errdefs.Conflictf("a pod with a user namespace needs %s to be searchable by others (chmod o+x): its root is not the host's", d)
		}
	}
	nsfd, err := unix.Open(userns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open the pod's user namespace: %w", err)
	}
	defer unix.Close(nsfd)
	// mapped clones src, ID-mapped, onto dst.
	mapped := func(src, dst string) error {
		tree, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
		if err != nil {
			return fmt.Errorf("clone %s: %w", src, err)
		}
		defer unix.Close(tree)
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(nsfd)}
		if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &attr); err != nil {
			return fmt.Errorf("ID-map %s (the filesystem may not allow it): %w", src, err)
		}
		if err := os.MkdirAll(dst, 0o700); err != nil {
			return err
		}
		if err := unix.MoveMount(tree, "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			return fmt.Errorf("mount the ID-mapped %s: %w", src, err)
		}
		return nil
	}
	if m.Type == "bind" {
		if err := unix.Unmount(rootfs, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount the root filesystem: %w", err)
		}
		return mapped(m.Source, rootfs)
	}
	// The ID-mapped layers are mounted under a directory of their own
	// only until the overlay holds them; then they are detached.
	dir := filepath.Join(e.cfg.ExecRoot, "idmap", id)
	defer func() {
		ents, _ := os.ReadDir(dir)
		for _, ent := range ents {
			p := filepath.Join(dir, ent.Name())
			_ = unix.Unmount(p, unix.MNT_DETACH)
			_ = os.Remove(p)
		}
		_ = os.Remove(dir)
	}()
	var lowers []string
	for i, l := range m.LowerDirs() {
		p := filepath.Join(dir, fmt.Sprintf("l%d", i))
		if err := mapped(l, p); err != nil {
			return err
		}
		lowers = append(lowers, p)
	}
	idm := snapshot.Mount{Type: "overlay", Source: "overlay", Options: []string{"index=off", "lowerdir=" + strings.Join(lowers, ":")}}
	if up := m.UpperDir(); up != "" {
		if err := os.Chown(up, int(root[0]), int(root[1])); err != nil {
			return fmt.Errorf("give the upper dir to the pod's root: %w", err)
		}
		idm.Options = append(idm.Options, "upperdir="+up, "workdir="+m.WorkDir())
	}
	if err := unix.Unmount(rootfs, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount the root filesystem: %w", err)
	}
	if err := idm.Mount(rootfs); err != nil {
		return fmt.Errorf("mount the root filesystem on ID-mapped layers: %w", err)
	}
	return nil
}
