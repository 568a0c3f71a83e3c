// Package rootfs plans the container's root filesystem: the mounts of
// config.json, /dev and its devices, pivot_root, and the read-only and
// masked paths. It writes the plan as operations of the init program
// (runtime/nsexec), which carries them out inside the new mount namespace
// with every destination resolved inside the rootfs.
package rootfs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/runtime/bundle"
	"github.com/hako-project/hako/runtime/cgroups"
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
}

// Prepare appends the operations that bind the rootfs and mount everything
// config.json asks for, then /dev's devices and links. The caller runs the
// createContainer hooks after it and then calls Pivot.
func Prepare(p *nsexec.Program, s *specs.Spec, o Options) error {
	prop := uintptr(unix.MS_SLAVE | unix.MS_REC)
	if s.Linux.RootfsPropagation != "" {
		prop, _ = bundle.Propagation(s.Linux.RootfsPropagation)
	}
	private := ""
	if prop&unix.MS_SHARED != 0 {
		// pivot_root refuses a new root whose parent mount is shared.
		mp, err := mountPointOf(filepath.Dir(s.Root.Path))
		if err != nil {
			return fmt.Errorf("root.path: %w", err)
		}
		private = mp
	}
	p.Add(nsexec.OpRootfs, nsexec.Step{Span: "runtime.rootfs.bind", Field: "root.path", Attrs: map[string]string{"rootfs": s.Root.Path}},
		s.Root.Path, uint64(prop), private)

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
// / and chroot.
func Pivot(p *nsexec.Program, noPivot bool) {
	if noPivot {
		p.Add(nsexec.OpChroot, nsexec.Step{Span: "runtime.rootfs.chroot", Field: "--no-pivot"})
		return
	}
	p.Add(nsexec.OpPivotRoot, nsexec.Step{Span: "runtime.rootfs.pivot_root", Field: "root.path"})
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
