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

// Kinds of mount point the init creates when the destination is missing.
const (
	createNone = 0
	createDir  = 1
	createFile = 2
)

// mountOp is one mount(2) as the init will make it.
type mountOp struct {
	field     string
	source    string
	dest      string
	fstype    string
	flags     uintptr // for mount(2)
	data      string
	prop      uintptr // propagation, applied after the mount
	attrSet   uint64  // recursive mount_setattr attributes (rro and friends)
	create    int
	resolve   uint64  // extra openat2 RESOLVE_* flags for the destination
	remount   uintptr // bind mounts: flags for a second, remounting call
	bind      bool
	propNames []string
}

type flagOpt struct {
	set   bool
	flag  uintptr
	attr  uint64 // recursive variant ("rro") for mount_setattr
	recur bool
}

// Mount options of mount(8) that map to flags; the rest is file-system data.
var flagOpts = map[string]flagOpt{
	"defaults": {set: false, flag: 0},
	"ro":       {set: true, flag: unix.MS_RDONLY}, "rw": {set: false, flag: unix.MS_RDONLY},
	"nosuid": {set: true, flag: unix.MS_NOSUID}, "suid": {set: false, flag: unix.MS_NOSUID},
	"nodev": {set: true, flag: unix.MS_NODEV}, "dev": {set: false, flag: unix.MS_NODEV},
	"noexec": {set: true, flag: unix.MS_NOEXEC}, "exec": {set: false, flag: unix.MS_NOEXEC},
	"sync": {set: true, flag: unix.MS_SYNCHRONOUS}, "async": {set: false, flag: unix.MS_SYNCHRONOUS},
	"dirsync": {set: true, flag: unix.MS_DIRSYNC},
	"remount": {set: true, flag: unix.MS_REMOUNT},
	"mand":    {set: true, flag: unix.MS_MANDLOCK}, "nomand": {set: false, flag: unix.MS_MANDLOCK},
	"noatime": {set: true, flag: unix.MS_NOATIME}, "atime": {set: false, flag: unix.MS_NOATIME},
	"nodiratime": {set: true, flag: unix.MS_NODIRATIME}, "diratime": {set: false, flag: unix.MS_NODIRATIME},
	"relatime": {set: true, flag: unix.MS_RELATIME}, "norelatime": {set: false, flag: unix.MS_RELATIME},
	"strictatime": {set: true, flag: unix.MS_STRICTATIME}, "nostrictatime": {set: false, flag: unix.MS_STRICTATIME},
	"lazytime": {set: true, flag: unix.MS_LAZYTIME}, "nolazytime": {set: false, flag: unix.MS_LAZYTIME},
	"silent": {set: true, flag: unix.MS_SILENT}, "loud": {set: false, flag: unix.MS_SILENT},
	"iversion": {set: true, flag: unix.MS_I_VERSION}, "noiversion": {set: false, flag: unix.MS_I_VERSION},
	"nosymfollow": {set: true, flag: unix.MS_NOSYMFOLLOW}, "symfollow": {set: false, flag: unix.MS_NOSYMFOLLOW},
	"bind":  {set: true, flag: unix.MS_BIND},
	"rbind": {set: true, flag: unix.MS_BIND | unix.MS_REC},
	// Recursive variants (runtime-spec 1.1): applied with mount_setattr(2).
	"rro": {attr: unix.MOUNT_ATTR_RDONLY, recur: true}, "rnosuid": {attr: unix.MOUNT_ATTR_NOSUID, recur: true},
	"rnodev": {attr: unix.MOUNT_ATTR_NODEV, recur: true}, "rnoexec": {attr: unix.MOUNT_ATTR_NOEXEC, recur: true},
	"rnoatime": {attr: unix.MOUNT_ATTR_NOATIME, recur: true}, "rnodiratime": {attr: unix.MOUNT_ATTR_NODIRATIME, recur: true},
	"rnosymfollow": {attr: unix.MOUNT_ATTR_NOSYMFOLLOW, recur: true},
	"rrw":          {recur: true}, "rsuid": {recur: true}, "rdev": {recur: true}, "rexec": {recur: true},
	"ratime": {recur: true}, "rdiratime": {recur: true}, "rsymfollow": {recur: true},
	"rrelatime": {recur: true}, "rstrictatime": {recur: true},
}

// Options that only matter to other runtimes' extensions and are safe to skip.
var ignoredOpts = map[string]bool{"tmpcopyup": true}

// procAllowed lists what may be mounted over inside /proc: runc's list of
// files that LXCFS-style tools replace. Anything else under /proc could hide
// or redirect the kernel's interfaces (CVE-2019-16884 class).
var procAllowed = map[string]bool{
	"/proc/cpuinfo": true, "/proc/diskstats": true, "/proc/meminfo": true, "/proc/stat": true,
	"/proc/swaps": true, "/proc/uptime": true, "/proc/loadavg": true, "/proc/slabinfo": true,
	"/proc/net/dev": true, "/proc/sys/kernel/ns_last_pid": true,
}

// parseMount turns a config.json mount into the mount(2) calls it needs.
func parseMount(m specs.Mount, field, dir string) (mountOp, error) {
	mo := mountOp{field: field, source: m.Source, dest: filepath.Clean(m.Destination), fstype: m.Type, create: createDir}
	var data []string
	for _, o := range m.Options {
		if f, ok := flagOpts[o]; ok {
			switch {
			case f.recur:
				mo.attrSet |= f.attr
			case f.set:
				mo.flags |= f.flag
			default:
				mo.flags &^= f.flag
			}
			continue
		}
		if p, ok := bundle.Propagation(o); ok && o != "" {
			mo.prop |= p
			mo.propNames = append(mo.propNames, o)
			continue
		}
		if ignoredOpts[o] {
			continue
		}
		if o == "idmap" || o == "ridmap" {
			return mo, fmt.Errorf("%s.options: %q (id-mapped mounts) is not supported yet", field, o)
		}
		data = append(data, o)
	}
	mo.data = strings.Join(data, ",")
	if m.Type == "bind" {
		mo.flags |= unix.MS_BIND
	}
	mo.bind = mo.flags&unix.MS_BIND != 0
	if mo.bind {
		src := m.Source
		if !filepath.IsAbs(src) {
			src = filepath.Join(dir, src)
		}
		mo.source = src
		fi, err := os.Stat(src)
		if err != nil {
			return mo, fmt.Errorf("%s.source: %w", field, err)
		}
		if !fi.IsDir() {
			mo.create = createFile
		}
		// A bind mount takes its flags in a second, remounting call.
		extra := mo.flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT)
		mo.flags &= unix.MS_BIND | unix.MS_REC
		if extra != 0 {
			mo.remount = unix.MS_BIND | extra
		}
		mo.fstype = "bind"
	}
	switch m.Type {
	case "proc", "sysfs":
		// A proc or sysfs destination that is a symlink could land the
		// kernel's interfaces somewhere the container controls.
		mo.resolve = unix.RESOLVE_NO_SYMLINKS
	}
	if strings.HasPrefix(mo.dest, "/proc/") && !procAllowed[mo.dest] {
		return mo, fmt.Errorf("%s.destination: mounting over %s is refused (it would hide or replace a kernel interface)", field, mo.dest)
	}
	if mo.dest == "/proc" && m.Type != "proc" {
		return mo, fmt.Errorf("%s.destination: only a proc file system may be mounted on /proc, not %q", field, m.Type)
	}
	return mo, nil
}

// mount appends one mount to the program.
func mount(p *nsexec.Program, mo mountOp) {
	attrs := map[string]string{"destination": mo.dest, "type": mo.fstype}
	if mo.source != "" && mo.source != mo.fstype {
		attrs["source"] = mo.source
	}
	p.Add(nsexec.OpMount, nsexec.Step{Span: "runtime.rootfs.mount", Field: mo.field, Attrs: attrs},
		mo.source, mo.dest, fstypeArg(mo), uint64(mo.flags), mo.data, uint64(mo.prop), mo.attrSet,
		mo.create, mo.resolve, uint64(mo.remount))
}

func fstypeArg(mo mountOp) string {
	if mo.bind {
		return ""
	}
	return mo.fstype
}

// cgroupMount shows the container its cgroups at m.Destination: a tmpfs with
// one directory per v1 hierarchy (or the cgroup2 itself on a v2 host), each
// either a cgroup file system in the container's cgroup namespace or, with
// no cgroup namespace, a bind of the container's own cgroup directory.
func cgroupMount(p *nsexec.Program, m specs.Mount, field string, o Options) error {
	base, err := parseMount(specs.Mount{Destination: m.Destination, Type: "tmpfs", Source: "tmpfs", Options: m.Options}, field, o.Bundle)
	if err != nil {
		return err
	}
	flags := base.flags
	p.Begin("runtime.rootfs.mount_cgroups", map[string]string{"destination": base.dest})
	defer p.End()
	if len(o.Cgroups) == 0 {
		return fmt.Errorf("%s: the host has no cgroup hierarchy to show the container", field)
	}
	if len(o.Cgroups) == 1 && o.Cgroups[0].Dir == "" {
		mount(p, cgroupSub(o.Cgroups[0], base.dest, field, flags, o.CgroupNS))
		return nil
	}
	// v1 or hybrid: a tmpfs to hold a directory per hierarchy, read-only at the end if asked.
	tmp := base
	tmp.flags = flags &^ unix.MS_RDONLY
	tmp.data = "mode=755"
	tmp.fstype = "tmpfs"
	tmp.source = "tmpfs"
	mount(p, tmp)
	for _, cg := range o.Cgroups {
		mount(p, cgroupSub(cg, filepath.Join(base.dest, cg.Dir), field, flags, o.CgroupNS))
		for _, l := range cg.Symlinks {
			if l != cg.Dir {
				p.Add(nsexec.OpSymlink, nsexec.Step{Field: field}, cg.Dir, filepath.Join(base.dest, l), false)
			}
		}
	}
	if flags&unix.MS_RDONLY != 0 {
		p.Add(nsexec.OpRemountRO, nsexec.Step{Field: field}, base.dest, false)
	}
	return nil
}

func cgroupSub(cg cgroups.Mount, dest, field string, flags uintptr, cgroupNS bool) mountOp {
	mo := mountOp{field: field, dest: dest, create: createDir}
	if cgroupNS {
		mo.source = cg.Type
		mo.fstype = cg.Type
		mo.flags = flags
		mo.data = strings.Join(cg.Options, ",")
		return mo
	}
	mo.source = cg.Source
	mo.fstype = "bind"
	mo.bind = true
	mo.flags = unix.MS_BIND | unix.MS_REC
	if extra := flags &^ (unix.MS_BIND | unix.MS_REC); extra != 0 {
		mo.remount = unix.MS_BIND | extra
	}
	return mo
}
