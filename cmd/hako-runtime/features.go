package main

import (
	"encoding/json"
	"flag"
	"os"
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"

	"github.com/hako-project/hako/runtime/caps"
	"github.com/hako-project/hako/runtime/lsm/apparmor"
	"github.com/hako-project/hako/runtime/lsm/selinux"
)

func init() {
	register(command{
		name:    "features",
		summary: "print what this runtime supports (runtime-spec features JSON)",
		flags: func(fs *flag.FlagSet) func(*env, []string) error {
			return func(e *env, args []string) error {
				if len(args) != 0 {
					return usagef("features takes no arguments")
				}
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "    ")
				return enc.Encode(supported())
			}
		},
	})
}

func supported() *features.Features {
	t, f := true, false
	opts := mountOptions()
	sort.Strings(opts)
	nss := []string{"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"}
	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions:  opts,
		Linux: &features.Linux{
			Namespaces:   nss,
			Capabilities: caps.All(),
			Cgroup:       &features.Cgroup{V1: &t, V2: &t, Systemd: &f, SystemdUser: &f, Rdma: &t},
			Seccomp:      seccompFeatures(),
			Apparmor:     &features.Apparmor{Enabled: ptr(apparmor.Enabled())},
			Selinux:      &features.Selinux{Enabled: ptr(selinux.Enabled())},
			IntelRdt:     &features.IntelRdt{Enabled: &f},
			MountExtensions: &features.MountExtensions{
				IDMap: &features.IDMap{Enabled: &f},
			},
		},
		Annotations: map[string]string{
			"io.github.hako-project.hako.version": version,
			standbyAnnotation:                     "true",
		},
	}
}

func ptr(b bool) *bool { return &b }

// mountOptions are the options rootfs understands (runtime/rootfs).
func mountOptions() []string {
	return []string{
		"async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "iversion", "lazytime",
		"loud", "mand", "noatime", "nodev", "nodiratime", "noexec", "noiversion", "nolazytime", "nomand",
		"norelatime", "nostrictatime", "nosuid", "nosymfollow", "private", "ratime", "rbind", "rdev",
		"rdiratime", "relatime", "remount", "rexec", "rnoatime", "rnodev", "rnodiratime", "rnoexec",
		"rnosuid", "rnosymfollow", "ro", "rprivate", "rrelatime", "rro", "rrw", "rshared", "rslave",
		"rstrictatime", "rsuid", "rsymfollow", "runbindable", "rw", "shared", "silent", "slave",
		"strictatime", "suid", "symfollow", "sync", "tmpcopyup", "unbindable",
	}
}
