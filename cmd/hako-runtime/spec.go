package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hako-project/hako/runtime/caps"
)

func specVersion() string { return specs.Version }

func init() {
	register(command{
		name:    "spec",
		summary: "write a default config.json (runc's defaults) into the bundle",
		flags: func(fs *flag.FlagSet) func(*env, []string) error {
			bundle := fs.String("bundle", "", "directory to write config.json in (default: current directory)")
			fs.StringVar(bundle, "b", "", "directory to write config.json in")
			rootless := fs.Bool("rootless", false, "a spec for an unprivileged user (user namespace, no cgroup limits)")
			return func(e *env, args []string) error {
				if len(args) != 0 {
					return usagef("spec takes no arguments")
				}
				path := filepath.Join(*bundle, "config.json")
				if _, err := os.Stat(path); err == nil {
					return fmt.Errorf("%s exists; remove it first", path)
				} else if !errors.Is(err, os.ErrNotExist) {
					return err
				}
				s := DefaultSpec()
				if *rootless {
					ToRootless(s, os.Getuid(), os.Getgid())
				}
				b, err := json.MarshalIndent(s, "", "\t")
				if err != nil {
					return err
				}
				return os.WriteFile(path, append(b, '\n'), 0o666)
			}
		},
	})
}

// DefaultSpec is runc's default configuration: sh in ./rootfs with a
// terminal, the usual mounts, namespaces, masked paths and a deny-all device
// cgroup.
func DefaultSpec() *specs.Spec {
	c := caps.SpecFor(caps.RuncDefault())
	return &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "rootfs", Readonly: true},
		Process: &specs.Process{
			Terminal: true,
			User:     specs.User{},
			Args:     []string{"sh"},
			Env:      []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"},
			Cwd:      "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: c.Bounding, Effective: c.Effective, Permitted: c.Permitted,
				// runc's default leaves inheritable and ambient empty.
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
			NoNewPrivileges: true,
		},
		Hostname: "hako",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		},
		Linux: &specs.Linux{
			Resources: &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace}, {Type: specs.CgroupNamespace},
			},
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
				"/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
			},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
}

// ToRootless adapts s for an unprivileged user, as `runc spec --rootless`:
// a user namespace mapping uid/gid to root, no network namespace, /sys bound
// from the host, no cgroup mount or device limits.
func ToRootless(s *specs.Spec, uid, gid int) {
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	var ns []specs.LinuxNamespace
	for _, n := range s.Linux.Namespaces {
		if n.Type != specs.NetworkNamespace && n.Type != specs.CgroupNamespace {
			ns = append(ns, n)
		}
	}
	s.Linux.Namespaces = ns
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{HostID: uint32(uid), ContainerID: 0, Size: 1}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{HostID: uint32(gid), ContainerID: 0, Size: 1}}
	var mounts []specs.Mount
	for _, m := range s.Mounts {
		switch m.Destination {
		case "/sys":
			m = specs.Mount{Destination: "/sys", Type: "none", Source: "/sys", Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}}
		case "/sys/fs/cgroup":
			continue
		case "/dev/pts":
			var opts []string
			for _, o := range m.Options {
				if o != "gid=5" {
					opts = append(opts, o)
				}
			}
			m.Options = opts
		}
		mounts = append(mounts, m)
	}
	s.Mounts = mounts
	s.Linux.Resources = nil
}
