// Package selinux validates process.selinuxLabel and linux.mountLabel
// against the host and says what hako-runtime's init must write, and which
// mount option to add, to label the container.
//
// Policy is not this package's job: it neither loads policy nor picks
// labels (the engine does, from its MCS allocator); it checks a label is
// well formed and accepted by the kernel, and refuses labels on hosts
// without SELinux instead of silently running the container unlabelled.
package selinux

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// FSMount is where selinuxfs lives when SELinux is on.
const FSMount = "/sys/fs/selinux"

// Attribute files the init writes, seen inside the container's /proc. The
// init is single-threaded, so /proc/self is its only thread.
const (
	// ExecAttrPath takes the label the next execve switches to.
	ExecAttrPath = "/proc/self/attr/exec"
	// KeyCreateAttrPath takes the label of keyrings the process creates,
	// so the container's session keyring is labelled like the container.
	KeyCreateAttrPath = "/proc/self/attr/keycreate"
)

const (
	processField = "process.selinuxLabel"
	mountField   = "linux.mountLabel"
)

// host reads SELinux's state below root; tests point it at a fake tree
// and replace the two kernel probes.
type host struct {
	root string
	// isSelinuxfs reports whether path is a mounted selinuxfs.
	isSelinuxfs func(path string) bool
	// kernelCheck asks the loaded policy whether label is valid.
	kernelCheck func(label string) error
}

func system() host {
	return host{root: "/", isSelinuxfs: isSelinuxfs, kernelCheck: kernelCheck}
}

func (h host) path(p string) string { return filepath.Join(h.root, p) }

// Enabled reports whether SELinux is on: selinuxfs is mounted at FSMount
// and the calling process has a context other than "kernel" (a kernel
// with SELinux compiled in but no policy loaded).
func Enabled() bool { return system().enabled() }

func (h host) enabled() bool {
	if !h.isSelinuxfs(h.path(FSMount)) {
		return false
	}
	b, err := os.ReadFile(h.path("/proc/self/attr/current"))
	if err != nil {
		return false
	}
	con := string(bytes.TrimRight(b, "\x00\n"))
	return con != "" && con != "kernel"
}

// isSelinuxfs checks the filesystem magic, so a plain directory at
// /sys/fs/selinux does not count.
func isSelinuxfs(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return uint32(st.Type) == unix.SELINUX_MAGIC
}

// kernelCheck writes the label to selinuxfs's "context" file, which the
// kernel answers with EINVAL when the loaded policy does not know it (the
// check libselinux's security_check_context makes).
func kernelCheck(label string) error {
	f, err := os.OpenFile(filepath.Join(FSMount, "context"), os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("ask the kernel to check it: %w", err)
	}
	defer f.Close()
	if _, err := f.Write([]byte(label)); err != nil {
		if errors.Is(err, unix.EINVAL) {
			return errors.New("the loaded SELinux policy does not accept it")
		}
		return fmt.Errorf("ask the kernel to check it: %w", err)
	}
	return nil
}

// CheckProcessLabel validates a process.selinuxLabel value for this host;
// the empty label asks for nothing.
func CheckProcessLabel(label string) error { return system().check(processField, label) }

// CheckMountLabel validates a linux.mountLabel value for this host; the
// empty label asks for nothing.
func CheckMountLabel(label string) error { return system().check(mountField, label) }

func (h host) check(field, label string) error {
	if label == "" {
		return nil
	}
	if err := syntax(label); err != nil {
		return fmt.Errorf("%s %q: %w", field, label, err)
	}
	if !h.enabled() {
		return fmt.Errorf("%s %q: SELinux is not enabled on this host (no selinuxfs with a loaded policy at %s)", field, label, FSMount)
	}
	if err := h.kernelCheck(label); err != nil {
		return fmt.Errorf("%s %q: %w", field, label, err)
	}
	return nil
}

// syntax checks the shape user:role:type[:level]; the level itself may
// contain colons ("s0:c1,c2") and is left to the kernel.
func syntax(label string) error {
	parts := strings.SplitN(label, ":", 4)
	if len(parts) < 3 {
		return errors.New("not an SELinux context: want user:role:type[:level]")
	}
	for i, p := range parts[:3] {
		if p == "" {
			return fmt.Errorf("not an SELinux context: the %s is empty", [...]string{"user", "role", "type"}[i])
		}
	}
	for _, r := range label {
		if r <= 0x20 || r == 0x7f || r == '"' {
			return fmt.Errorf("not an SELinux context: contains %U", r)
		}
	}
	return nil
}

// Write is one write the init performs: Data to Path, as one write(2).
type Write struct {
	Path string
	Data []byte
}

// ProcessWrites checks label and returns, in order, what the init must
// write: the keyring label (before it joins its session keyring) and the
// exec label (last thing before the execve of the user's program, which is
// when the label takes effect). No label gives no writes.
func ProcessWrites(label string) ([]Write, error) { return system().processWrites(label) }

func (h host) processWrites(label string) ([]Write, error) {
	if err := h.check(processField, label); err != nil {
		return nil, err
	}
	if label == "" {
		return nil, nil
	}
	return []Write{
		{Path: KeyCreateAttrPath, Data: []byte(label)},
		{Path: ExecAttrPath, Data: []byte(label)},
	}, nil
}

// MountOption returns the mount option that labels a whole filesystem,
// `context="LABEL"`, or "" for no label. Call CheckMountLabel first.
func MountOption(label string) string {
	if label == "" {
		return ""
	}
	return `context="` + label + `"`
}

// AddMountOption appends MountOption(label) to a mount's data string.
func AddMountOption(data, label string) string {
	opt := MountOption(label)
	switch {
	case opt == "":
		return data
	case data == "":
		return opt
	default:
		return data + "," + opt
	}
}

// Labelable reports whether a mount takes the context option, as in runc:
// new filesystems do (tmpfs, devpts, ...); bind mounts keep their source's
// labels; proc, sysfs, cgroup and mqueue refuse or ignore the option
// (mqueue's root is labelled with setxattr after mounting instead).
func Labelable(fstype string, bind bool) bool {
	if bind {
		return false
	}
	switch fstype {
	case "proc", "sysfs", "cgroup", "cgroup2", "mqueue", "bind":
		return false
	}
	return true
}
