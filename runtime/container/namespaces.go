package container

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/runtime/nsexec"
)

var nsFlags = map[specs.LinuxNamespaceType]uintptr{
	specs.PIDNamespace: unix.CLONE_NEWPID, specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.MountNamespace: unix.CLONE_NEWNS, specs.IPCNamespace: unix.CLONE_NEWIPC,
	specs.UTSNamespace: unix.CLONE_NEWUTS, specs.UserNamespace: unix.CLONE_NEWUSER,
	specs.CgroupNamespace: unix.CLONE_NEWCGROUP, specs.TimeNamespace: unix.CLONE_NEWTIME,
}

// procNames are the /proc/<pid>/ns entries of each type.
var procNames = map[specs.LinuxNamespaceType]string{
	specs.PIDNamespace: "pid", specs.NetworkNamespace: "net", specs.MountNamespace: "mnt",
	specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts", specs.UserNamespace: "user",
	specs.CgroupNamespace: "cgroup", specs.TimeNamespace: "time",
}

// nsPlan is what the container does with namespaces.
type nsPlan struct {
	join    []specs.LinuxNamespace // joined by path, user first, mount last
	newUser bool
	newMask uintptr // new namespaces other than user
	fork    bool    // a new or joined PID (or time) namespace applies only to children
	has     map[specs.LinuxNamespaceType]bool
}

func planNamespaces(nss []specs.LinuxNamespace) (nsPlan, error) {
	pl := nsPlan{has: map[specs.LinuxNamespaceType]bool{}}
	var user, mnt []specs.LinuxNamespace
	for i, ns := range nss {
		pl.has[ns.Type] = true
		if ns.Path == "" {
			if ns.Type == specs.UserNamespace {
				pl.newUser = true
			} else {
				pl.newMask |= nsFlags[ns.Type]
			}
			if ns.Type == specs.PIDNamespace || ns.Type == specs.TimeNamespace {
				pl.fork = true
			}
			continue
		}
		if err := checkNSPath(ns); err != nil {
			return pl, fmt.Errorf("linux.namespaces[%d].path: %w", i, err)
		}
		switch ns.Type {
		case specs.UserNamespace:
			user = append(user, ns)
		case specs.MountNamespace:
			mnt = append(mnt, ns)
		default:
			if ns.Type == specs.PIDNamespace {
				pl.fork = true
			}
			pl.join = append(pl.join, ns)
		}
	}
	pl.join = append(append(user, pl.join...), mnt...)
	return pl, nil
}

// checkNSPath makes sure a namespace path names a namespace of that type,
// so a typo fails here and not halfway through set-up.
func checkNSPath(ns specs.LinuxNamespace) error {
	fd, err := unix.Open(ns.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", ns.Path, err)
	}
	defer unix.Close(fd)
	t, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if err != nil {
		return fmt.Errorf("%s is not a namespace file: %w", ns.Path, err)
	}
	if uintptr(t) != nsFlags[ns.Type] {
		return fmt.Errorf("%s is not a %s namespace", ns.Path, ns.Type)
	}
	return nil
}

// addNamespaces appends the namespace operations: join by path, then a new
// user namespace (mapped by the parent), then the other new namespaces, so
// that they belong to the container's user namespace; then the fork into a
// new PID namespace.
func (pl nsPlan) add(p *nsexec.Program, s *specs.Spec) {
	p.Begin("runtime.namespaces", nil)
	if len(pl.join) > 0 {
		args := []any{len(pl.join)}
		var names []string
		for _, ns := range pl.join {
			args = append(args, uint64(nsFlags[ns.Type]), ns.Path)
			names = append(names, string(ns.Type)+"="+ns.Path)
		}
		p.Add(nsexec.OpSetns, nsexec.Step{Span: "runtime.namespaces.setns", Field: "linux.namespaces",
			Attrs: map[string]string{"join": strings.Join(names, " ")}}, args...)
	}
	if pl.has[specs.UserNamespace] && !pl.newUser {
		// A user namespace joined by path (a pod's) leaves the host's
		// credentials, which it need not map: files made in the new mounts
		// would fail with EOVERFLOW. Become its root, as runc does.
		p.Add(nsexec.OpSetidRoot, nsexec.Step{Field: "linux.namespaces"})
	}
	if pl.newUser {
		p.Add(nsexec.OpUnshare, nsexec.Step{Span: "runtime.namespaces.unshare", Field: "linux.namespaces",
			Attrs: map[string]string{"new": "user"}}, uint64(unix.CLONE_NEWUSER))
		p.Add(nsexec.OpUsernsSync, nsexec.Step{Span: "runtime.namespaces.map_ids", Field: "linux.uidMappings"})
		p.Add(nsexec.OpSetidRoot, nsexec.Step{Field: "linux.uidMappings"})
	}
	if pl.newMask != 0 {
		p.Add(nsexec.OpUnshare, nsexec.Step{Span: "runtime.namespaces.unshare", Field: "linux.namespaces",
			Attrs: map[string]string{"new": pl.newNames()}}, uint64(pl.newMask))
	}
	if pl.newMask&unix.CLONE_NEWTIME != 0 && len(s.Linux.TimeOffsets) > 0 {
		var b strings.Builder
		for clock, off := range s.Linux.TimeOffsets {
			fmt.Fprintf(&b, "%s %d %d\n", clock, off.Secs, off.Nanosecs)
		}
		p.Add(nsexec.OpWrite, nsexec.Step{Field: "linux.timeOffsets"}, "/proc/self/timens_offsets", b.String(), 0)
	}
	p.Add(nsexec.OpFork, nsexec.Step{Span: "runtime.namespaces.fork", Field: "linux.namespaces"}, pl.fork)
	p.End()
}

func (pl nsPlan) newNames() string {
	var n []string
	for t, f := range nsFlags {
		if pl.newMask&f != 0 {
			n = append(n, string(t))
		}
	}
	return strings.Join(n, ",")
}

// writeIDMaps writes a user namespace's uid and gid maps for pid. As root
// any mapping can be written. An unprivileged runtime (rootless) may map
// only its own ids, and only after denying setgroups in the namespace;
// other mappings go through the setuid helpers newuidmap and newgidmap
// (Debian's uidmap package), which check /etc/subuid and /etc/subgid.
func writeIDMaps(pid int, s *specs.Spec) error {
	if os.Geteuid() != 0 {
		return writeIDMapsRootless(pid, s)
	}
	if err := writeMap(pid, "uid_map", s.Linux.UIDMappings); err != nil {
		return err
	}
	return writeMap(pid, "gid_map", s.Linux.GIDMappings)
}

func mapText(m []specs.LinuxIDMapping) string {
	var b strings.Builder
	for _, e := range m {
		fmt.Fprintf(&b, "%d %d %d\n", e.ContainerID, e.HostID, e.Size)
	}
	return b.String()
}

func writeMap(pid int, file string, m []specs.LinuxIDMapping) error {
	path := fmt.Sprintf("/proc/%d/%s", pid, file)
	if err := os.WriteFile(path, []byte(mapText(m)), 0); err != nil {
		field := map[string]string{"uid_map": "uidMappings", "gid_map": "gidMappings"}[file]
		return fmt.Errorf("linux.%s: write %s: %w", field, path, err)
	}
	return nil
}

// ownOnly reports a mapping of exactly the caller's own id.
func ownOnly(m []specs.LinuxIDMapping, id int) bool {
	return len(m) == 1 && m[0].Size == 1 && int(m[0].HostID) == id
}

func writeIDMapsRootless(pid int, s *specs.Spec) error {
	uidOwn := ownOnly(s.Linux.UIDMappings, os.Geteuid())
	gidOwn := ownOnly(s.Linux.GIDMappings, os.Getegid())
	if uidOwn {
		if err := writeMap(pid, "uid_map", s.Linux.UIDMappings); err != nil {
			return err
		}
	} else if err := helperMap("newuidmap", pid, s.Linux.UIDMappings, "linux.uidMappings"); err != nil {
		return err
	}
	if gidOwn {
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/setgroups", pid), []byte("deny"), 0); err != nil {
			return fmt.Errorf("linux.gidMappings: deny setgroups (needed to map a gid without privilege): %w", err)
		}
		return writeMap(pid, "gid_map", s.Linux.GIDMappings)
	}
	return helperMap("newgidmap", pid, s.Linux.GIDMappings, "linux.gidMappings")
}

// helperMap maps ids through newuidmap or newgidmap.
func helperMap(helper string, pid int, m []specs.LinuxIDMapping, field string) error {
	path, err := exec.LookPath(helper)
	if err != nil {
		return fmt.Errorf("%s: mapping ids other than your own without privilege needs %s (apt-get install uidmap) and an entry in /etc/sub%s", field, helper, strings.TrimPrefix(strings.TrimSuffix(helper, "map"), "new"))
	}
	args := []string{strconv.Itoa(pid)}
	for _, e := range m {
		args = append(args, strconv.Itoa(int(e.ContainerID)), strconv.Itoa(int(e.HostID)), strconv.Itoa(int(e.Size)))
	}
	if out, err := exec.Command(path, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %s: %w: %s", field, helper, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// setgroupsDenied tells whether the container's user namespace had
// setgroups denied when its maps were written (see writeIDMapsRootless).
func setgroupsDenied(gidMappings []specs.LinuxIDMapping, userns bool) bool {
	return userns && os.Geteuid() != 0 && ownOnly(gidMappings, os.Getegid())
}
