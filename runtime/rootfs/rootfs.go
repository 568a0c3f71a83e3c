// Package rootfs plans the container's root filesystem: the mounts of
// config.json, /dev and its devices, pivot_root, and the read-only and
// masked paths. It writes the plan as operations of the init program
// (runtime/nsexec), which carries them out inside the new mount namespace
// with every destination resolved inside the rootfs.
package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/runtime/bundle"
	"github.com/hako-project/hako/runtime/cgroups"
	"github.com/hako-project/hako/runtime/lsm/selinux"
	"github.com/hako-project/hako/runtime/nsexec"
)

// Options are the facts about the container that change how its root is
// built.
type Options struct {
	Bundle string // directory relative mount sources are resolved against
	// InUserNS: the container has its own user namespace, so device nodes
	// cannot be created and are bind-mounted from the host instead.
	InUserNS bool
	// CgroupNS: the container has its own cgroup namespace, so cgroup
	// filesystems are mounted rather than the host's directories bound.
	CgroupNS bool
	// Cgroups describes what a "cgroup" mount must show.
	Cgroups []cgroups.Mount
	// MountLabel is the SELinux context for the mounts that take one.
	MountLabel string
	// HostMountNS: the container shares the runtime's mount namespace (no
	// mount namespace in the spec). Its mounts then land in the host's
	// namespace: / keeps its propagation, the root is entered with a plain
	// chroot, and delete unmounts everything under the rootfs (Unmount).
	HostMountNS bool
}

// Prepare appends the operations that bind the rootfs and mount everything
// config.json asks for, then /dev's devices and links. The caller runs the
// createContainer hooks after it and then calls Pivot.
func Prepare(p *nsexec.Program, s *specs.Spec, o Options) error {
	prop := uintptr(unix.MS_SLAVE | unix.MS_REC)
	if s.Linux.RootfsPropagation != "" {
		prop, _ = bundle.Propagation(s.Linux.RootfsPropagation)
	}
	if prop&unix.MS_UNBINDABLE != 0 {
		// An unbindable / could not be bound as the rootfs; Pivot makes
		// the new root unbindable instead.
		prop = unix.MS_SLAVE | unix.MS_REC
	}
	private := ""
	if o.HostMountNS {
		prop = 0
	} else if prop&unix.MS_SHARED != 0 {
		// pivot_root refuses a new root whose parent mount is shared. The
		// parent is the mount holding root.path, which is root.path itself
		// when the rootfs is a mount point (hakod's overlay), as in runc's
		// getParentMount.
		mp, err := mountPointOf(s.Root.Path)
		if err != nil {
			return fmt.Errorf("root.path: %w", err)
		}
		private = mp
	}
	p.Add(nsexec.OpRootfs, nsexec.Step{Span: "runtime.rootfs.bind", Field: "root.path", Attrs: map[string]string{"rootfs": s.Root.Path}},
		s.Root.Path, uint64(prop), private, true)

	p.Begin("runtime.rootfs.mounts", map[string]string{"count": fmt.Sprint(len(s.Mounts))})
	devBound := false
	for i, m := range s.Mounts {
		field := fmt.Sprintf("mounts[%d]", i)
		if m.Type == "cgroup" || m.Type == "cgroup2" {
			if err := cgroupMount(p, m, field, o); err != nil {
				return err
			}
			continue
		}
		mo, err := parseMount(m, field, o.Bundle)
		if err != nil {
			return err
		}
		if o.MountLabel != "" && selinux.Labelable(mo.fstype, mo.bind) {
			mo.data = selinux.AddMountOption(mo.data, o.MountLabel)
		}
		if filepath.Clean(m.Destination) == "/dev" && mo.bind {
			devBound = true
		}
		mount(p, mo)
	}
	p.End()
	if !devBound {
		devices(p, s, o)
	}
	return nil
}

// Pivot appends the change of root: pivot_root(2), or with noPivot (for
// roots on ramfs, where pivot_root is impossible) a move of the rootfs onto
// / and chroot. linux.rootfsPropagation then applies to the new root too,
// so that "shared" makes mounts under / visible to its other binds.
func Pivot(p *nsexec.Program, s *specs.Spec, noPivot bool, o Options) {
	switch {
	case o.HostMountNS:
		// pivot_root or a move would change the host's own root.
		p.Add(nsexec.OpChroot, nsexec.Step{Span: "runtime.rootfs.chroot", Field: "linux.namespaces (no mount namespace)"}, false)
		return
	case noPivot:
		p.Add(nsexec.OpChroot, nsexec.Step{Span: "runtime.rootfs.chroot", Field: "--no-pivot"}, true)
	default:
		p.Add(nsexec.OpPivotRoot, nsexec.Step{Span: "runtime.rootfs.pivot_root", Field: "root.path"})
	}
	if s.Linux.RootfsPropagation != "" {
		prop, _ := bundle.Propagation(s.Linux.RootfsPropagation)
		p.Add(nsexec.OpPropagation, nsexec.Step{Field: "linux.rootfsPropagation"}, "/", uint64(prop))
	}
}

// Finalize appends the remount of a read-only root, in the final root.
func Finalize(p *nsexec.Program, s *specs.Spec) {
	if s.Root.Readonly {
		p.Add(nsexec.OpRemountRO, nsexec.Step{Span: "runtime.rootfs.readonly", Field: "root.readonly"}, "/", false)
	}
}

// Protect appends the read-only and masked paths. It comes after sysctls,
// which write to /proc/sys before it turns read-only.
func Protect(p *nsexec.Program, s *specs.Spec) {
	if len(s.Linux.ReadonlyPaths) > 0 {
		p.Begin("runtime.rootfs.readonly_paths", map[string]string{"count": fmt.Sprint(len(s.Linux.ReadonlyPaths))})
		for i, path := range s.Linux.ReadonlyPaths {
			p.Add(nsexec.OpRemountRO, nsexec.Step{Field: fmt.Sprintf("linux.readonlyPaths[%d]", i)}, path, true)
		}
		p.End()
	}
	if len(s.Linux.MaskedPaths) > 0 {
		p.Begin("runtime.rootfs.masked_paths", map[string]string{"count": fmt.Sprint(len(s.Linux.MaskedPaths))})
		for i, path := range s.Linux.MaskedPaths {
			p.Add(nsexec.OpMask, nsexec.Step{Field: fmt.Sprintf("linux.maskedPaths[%d]", i)}, path)
		}
		p.End()
	}
}

// Unmount lazily unmounts every mount at or below rootfs in the calling
// process's mount namespace, deepest first: what a container without its
// own mount namespace left in the host's.
func Unmount(rootfs string) error {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var mps []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescape(f[4])
		if mp == rootfs || strings.HasPrefix(mp, rootfs+"/") {
			mps = append(mps, mp)
		}
	}
	var errs []error
	for i := len(mps) - 1; i >= 0; i-- {
		if err := unix.Unmount(mps[i], unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			errs = append(errs, fmt.Errorf("unmount %s: %w", mps[i], err))
		}
	}
	return errors.Join(errs...)
}

// mountPointOf finds the mount point that contains path.
func mountPointOf(path string) (string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	best := ""
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescape(f[4])
		if (path == mp || strings.HasPrefix(path, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > len(best) {
			best = mp
		}
	}
	if best == "" {
		return "", fmt.Errorf("no mount point contains %s", path)
	}
	return best, nil
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + byte(c-'0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
