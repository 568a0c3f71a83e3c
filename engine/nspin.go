package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// Pinned namespaces: a pod sandbox's network, IPC and UTS namespaces exist
// without a process in them. A thread of hakod unshares them and their
// nsfs files are bind-mounted under the exec root, which keeps them alive
// after the thread is gone, as CRI-O's pinns and `ip netns add` do. This
// spares every pod a pause process, its shim and two runtime calls (see
// docs/cri.md for the choice). Only a PID namespace cannot be pinned: it
// dies with its init, so a pod that shares one gets a pause container.

// nsFiles names the nsfs entry of each namespace kind hakod pins.
var nsFiles = map[int]string{unix.CLONE_NEWNET: "net", unix.CLONE_NEWIPC: "ipc", unix.CLONE_NEWUTS: "uts", unix.CLONE_NEWUSER: "user"}

// pinNamespaces creates new namespaces of the kinds in flags (CLONE_NEWNET,
// CLONE_NEWIPC, CLONE_NEWUTS) and pins each at dir/<kind>. A new UTS
// namespace gets hostname; a new network namespace gets its loopback up.
// It returns the pinned paths by kind ("net", "ipc", "uts"). On error
// nothing is left pinned.
func pinNamespaces(dir string, flags int, hostname string) (map[string]string, error) {
	if flags == 0 {
		return map[string]string{}, nil
	}
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, fmt.Errorf("namespace directory: %w", err)
	}
	type result struct {
		paths map[string]string
		err   error
	}
	ch := make(chan result, 1)
	go func() {
		// The thread is never unlocked: when this goroutine returns the Go
		// runtime ends it, so no other goroutine runs in its namespaces.
		runtime.LockOSThread()
		paths, err := pinOnThread(dir, flags, hostname)
		ch <- result{paths, err}
	}()
	r := <-ch
	if r.err != nil {
		unpinAll(dir)
		return nil, r.err
	}
	return r.paths, nil
}

func pinOnThread(dir string, flags int, hostname string) (map[string]string, error) {
	if err := unix.Unshare(flags); err != nil {
		return nil, fmt.Errorf("unshare namespaces: %w", err)
	}
	if flags&unix.CLONE_NEWUTS != 0 && hostname != "" {
		if err := unix.Sethostname([]byte(hostname)); err != nil {
			return nil, fmt.Errorf("set hostname %q: %w", hostname, err)
		}
	}
	if flags&unix.CLONE_NEWNET != 0 {
		if err := loopbackUp(); err != nil {
			return nil, fmt.Errorf("bring up loopback: %w", err)
		}
	}
	paths := map[string]string{}
	for _, kind := range []int{unix.CLONE_NEWNET, unix.CLONE_NEWIPC, unix.CLONE_NEWUTS} {
		if flags&kind == 0 {
			continue
		}
		name := nsFiles[kind]
		p := filepath.Join(dir, name)
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
		if err != nil {
			return nil, fmt.Errorf("pin file: %w", err)
		}
		f.Close()
		src := fmt.Sprintf("/proc/thread-self/ns/%s", name)
		if err := unix.Mount(src, p, "none", unix.MS_BIND, ""); err != nil {
			return nil, fmt.Errorf("pin %s namespace at %s: %w", name, p, err)
		}
		paths[name] = p
	}
	return paths, nil
}

// loopbackUp sets IFF_UP on lo in the calling thread's network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// unpin releases one pinned namespace; a missing pin is not an error, so
// removal can be retried after a crash.
func unpin(path string) error {
	if path == "" {
		return nil
	}
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unpin %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}

// unpinAll releases every namespace pinned in dir and removes dir.
func unpinAll(dir string) {
	for _, name := range nsFiles {
		_ = unpin(filepath.Join(dir, name))
	}
	_ = os.Remove(dir)
}
