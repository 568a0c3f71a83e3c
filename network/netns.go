package network

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// A container's network namespace is created by hakod, not by the OCI
// runtime, and pinned by a bind mount of its nsfs file onto
// EXEC-ROOT/netns/ID. It so exists before the runtime starts (the CNI
// plugins configure it first; the spec joins it by path), outlives the
// container's processes (CNI DEL still finds the interfaces to delete),
// and can be joined by several containers (a pod's sandbox).

// prepareNetNSDir creates the directory of the pins. It is not made a
// mount point of its own (as `ip netns` makes /run/netns a shared one, so
// that an unpin reaches the copies other mount namespaces took of a pin):
// a mount below the roots while hakod runs is what its leak checks look
// for, and it is not needed for the interfaces: CNI DEL deletes them in
// the namespace before the pin goes, so a copy of a pin elsewhere (a mount
// namespace made while the container ran) keeps at most an empty
// namespace alive, until that mount namespace ends. On hosts whose root
// mount is shared (systemd's default) the unpin propagates anyway.
func prepareNetNSDir(dir string) error {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return nil
}

// createNetNS creates a new network namespace with its loopback interface
// up and pins it at path (which must not exist). With ipv4Only, the
// interfaces made in it afterwards (the plugins' eth0, eth1...) start with
// IPv6 disabled (disableIPv6Default).
//
// The namespace is made by a thread of our own: it unshares, so only that
// thread enters the new namespace; it bind-mounts its own nsfs file onto
// path and brings lo up through a netlink socket opened inside. The thread
// is never unlocked, so the Go runtime ends it instead of reusing it for
// other goroutines in the wrong namespace. Bringing lo up here saves the
// two executions of CNI's loopback plugin (ADD and DEL) per container:
// this is all that plugin does.
func createNetNS(path string, ipv4Only bool) (err error) {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("create netns file: %w", err)
	}
	f.Close()
	defer func() {
		if err != nil {
			_ = unix.Unmount(path, unix.MNT_DETACH)
			_ = os.Remove(path)
		}
	}()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread's namespace changed, so it dies
		// with this goroutine.
		errc <- func() error {
			if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
				return fmt.Errorf("unshare the network namespace: %w", err)
			}
			self := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
			if err := unix.Mount(self, path, "none", unix.MS_BIND, ""); err != nil {
				return fmt.Errorf("pin the network namespace at %s: %w", path, err)
			}
			h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
			if err != nil {
				return fmt.Errorf("netlink in the new namespace: %w", err)
			}
			defer h.Close()
			lo, err := h.LinkByName("lo")
			if err != nil {
				return fmt.Errorf("find lo: %w", err)
			}
			if err := h.LinkSetUp(lo); err != nil {
				return fmt.Errorf("bring lo up: %w", err)
			}
			if ipv4Only {
				disableIPv6Default()
			}
			return nil
		}()
	}()
	return <-errc
}

// disableIPv6Default sets net.ipv6.conf.default.disable_ipv6 in the
// calling thread's network namespace (/proc/sys/net is the opener's), so
// that interfaces created in it later have no IPv6: no link-local address,
// no duplicate address detection or multicast listener reports sent
// through the bridge to every other container on it as each one starts.
// hakod's networks are IPv4 only (IPv6 networks are refused, create.go),
// and docker (26.1 and later) disables IPv6 on the interfaces of IPv4-only
// networks as well; lo keeps ::1. Doing it on the namespace's default,
// before the bridge plugin makes eth0, means the address is never made
// rather than made and withdrawn. A kernel without IPv6, or a read-only
// /proc/sys, leaves IPv6 on, as docker before 26.1 did: not worth failing
// a container for.
func disableIPv6Default() {
	f, err := os.OpenFile("/proc/sys/net/ipv6/conf/default/disable_ipv6", os.O_WRONLY, 0)
	if err != nil {
		return
	}
	_, _ = f.WriteString("1")
	f.Close()
}

// socketCounts reads, from /proc/net/sockstat as seen inside the network
// namespace pinned at path, how many sockets are open in it ("sockets:
// used": any kind, wherever their descriptors went) and how many TCP
// connections are in time-wait ("TCP: ... tw"). A few counters, where
// /proc/net/tcp would walk the whole TCP hash table, shared by every
// namespace (~5 ms of CPU for each of tcp and tcp6 on this 24 GiB
// machine). A thread of our own enters the namespace and comes back;
// should it fail to come back, it is not unlocked and so dies with its
// goroutine.
func socketCounts(path string) (used, tw int, err error) {
	type result struct {
		used, tw int
		err      error
	}
	res := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		self := fmt.Sprintf("/proc/%d/task/%d/", os.Getpid(), unix.Gettid())
		own, err := os.Open(self + "ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			res <- result{err: fmt.Errorf("open the network namespace of hakod: %w", err)}
			return
		}
		defer own.Close()
		target, err := os.Open(path)
		if err != nil {
			runtime.UnlockOSThread()
			res <- result{err: fmt.Errorf("open network namespace %s: %w", path, err)}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			res <- result{err: fmt.Errorf("enter network namespace %s: %w", path, err)}
			return
		}
		var r result
		b, err := os.ReadFile(self + "net/sockstat")
		if err != nil {
			r.err = fmt.Errorf("read the socket counts of %s: %w", path, err)
		} else {
			r.used, r.tw, r.err = parseSockstat(string(b))
		}
		if unix.Setns(int(own.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		res <- r
	}()
	r := <-res
	return r.used, r.tw, r.err
}

// parseSockstat reads a /proc/net/sockstat: the sockets in use and the
// TCP connections in time-wait.
func parseSockstat(s string) (used, tw int, err error) {
	seen := 0
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[0] == "sockets:" && f[1] == "used":
			if used, err = strconv.Atoi(f[2]); err != nil {
				return 0, 0, fmt.Errorf("sockstat: %q: %w", line, err)
			}
			seen++
		case len(f) >= 7 && f[0] == "TCP:" && f[5] == "tw":
			if tw, err = strconv.Atoi(f[6]); err != nil {
				return 0, 0, fmt.Errorf("sockstat: %q: %w", line, err)
			}
			seen++
		}
	}
	if seen != 2 {
		return 0, 0, fmt.Errorf("sockstat without the socket and time-wait counts: %q", s)
	}
	return used, tw, nil
}

// nsGetNSType is linux/nsfs.h's NS_GET_NSTYPE, _IO(0xb7, 0x3).
const nsGetNSType = 0xb703

// isNetNS reports whether path is a network namespace (an nsfs file, such
// as a pin or /proc/PID/ns/net).
func isNetNS(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil || st.Type != unix.NSFS_MAGIC {
		return false
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	kind, err := unix.IoctlRetInt(fd, nsGetNSType)
	return err == nil && kind == unix.CLONE_NEWNET
}

// removeNetNS unpins the namespace at path and removes the file; the
// namespace ends once no process is in it. A missing path is no error.
func removeNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unpin network namespace %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}

// netnsDir is where namespaces are pinned, below the exec root.
func netnsDir(execRoot string) string { return filepath.Join(execRoot, "netns") }
