package rootfs

import (
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/runtime/nsexec"
)

// device is a node to create in the container's /dev.
type device struct {
	field        string
	path         string
	kind         uint32 // S_IFCHR, S_IFBLK or S_IFIFO
	major, minor int64
	mode         uint32
	uid, gid     uint32
}

// defaultDevices are the nodes every container gets, as with runc and docker.
var defaultDevices = []device{
	{path: "/dev/null", kind: unix.S_IFCHR, major: 1, minor: 3, mode: 0o666},
	{path: "/dev/zero", kind: unix.S_IFCHR, major: 1, minor: 5, mode: 0o666},
	{path: "/dev/full", kind: unix.S_IFCHR, major: 1, minor: 7, mode: 0o666},
	{path: "/dev/tty", kind: unix.S_IFCHR, major: 5, minor: 0, mode: 0o666},
	{path: "/dev/urandom", kind: unix.S_IFCHR, major: 1, minor: 9, mode: 0o666},
	{path: "/dev/random", kind: unix.S_IFCHR, major: 1, minor: 8, mode: 0o666},
}

// Devices lists the nodes the container's /dev gets: the defaults, replaced
// or extended by linux.devices.
func Devices(s *specs.Spec) []device {
	byPath := map[string]int{}
	var out []device
	for _, d := range defaultDevices {
		byPath[d.path] = len(out)
		d.field = "default device " + d.path
		out = append(out, d)
	}
	for i, d := range s.Linux.Devices {
		dev := device{field: fmt.Sprintf("linux.devices[%d]", i), path: filepath.Clean(d.Path), major: d.Major, minor: d.Minor, mode: 0o666}
		switch d.Type {
		case "c", "u":
			dev.kind = unix.S_IFCHR
		case "b":
			dev.kind = unix.S_IFBLK
		case "p":
			dev.kind = unix.S_IFIFO
		}
		if d.FileMode != nil {
			dev.mode = uint32(*d.FileMode & 0o7777)
		}
		if d.UID != nil {
			dev.uid = *d.UID
		}
		if d.GID != nil {
			dev.gid = *d.GID
		}
		if j, ok := byPath[dev.path]; ok {
			out[j] = dev
			continue
		}
		byPath[dev.path] = len(out)
		out = append(out, dev)
	}
	return out
}

// devices appends the device nodes and the /dev symlinks. In a user
// namespace mknod is refused, so the host's nodes are bind-mounted instead.
func devices(p *nsexec.Program, s *specs.Spec, o Options) {
	devs := Devices(s)
	p.Begin("runtime.rootfs.devices", map[string]string{"count": fmt.Sprint(len(devs))})
	for _, d := range devs {
		if o.InUserNS && d.kind != unix.S_IFIFO {
			p.Add(nsexec.OpBindDev, nsexec.Step{Field: d.field}, d.path, d.path)
			continue
		}
		p.Add(nsexec.OpMknod, nsexec.Step{Field: d.field}, d.path, uint64(d.kind|d.mode),
			uint64(unix.Mkdev(uint32(d.major), uint32(d.minor))), uint64(d.uid), uint64(d.gid))
	}
	links := [][2]string{
		{"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"},
		{"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
	}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		links = append(links, [2]string{"/proc/kcore", "/dev/core"})
	}
	for _, l := range links {
		p.Add(nsexec.OpSymlink, nsexec.Step{Field: "/dev symlinks"}, l[0], l[1], false)
	}
	// /dev/ptmx must be the container's own devpts instance.
	p.Add(nsexec.OpSymlink, nsexec.Step{Field: "/dev/ptmx"}, "pts/ptmx", "/dev/ptmx", true)
	p.End()
}
