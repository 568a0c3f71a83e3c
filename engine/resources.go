package engine

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// applyResources maps docker's resource flags onto linux.resources, as
// dockerd does: --memory, --memory-swap, --memory-reservation,
// --memory-swappiness, --oom-kill-disable, --cpus, --cpu-shares,
// --cpu-quota/--cpu-period, --cpuset-*, --pids-limit, --blkio-weight,
// --device and --ulimit.
func applyResources(s *specs.Spec, hc *container.HostConfig) {
	r := s.Linux.Resources
	if r == nil {
		r = &specs.LinuxResources{}
		s.Linux.Resources = r
	}
	if hc.Memory > 0 || hc.MemoryReservation > 0 || hc.MemorySwap != 0 || hc.MemorySwappiness != nil || hc.OomKillDisable != nil {
		m := &specs.LinuxMemory{}
		if hc.Memory > 0 {
			v := hc.Memory
			m.Limit = &v
			// docker: swap defaults to twice the memory limit.
			swap := hc.Memory * 2
			if hc.MemorySwap != 0 {
				swap = hc.MemorySwap
			}
			m.Swap = &swap
		}
		if hc.MemoryReservation > 0 {
			v := hc.MemoryReservation
			m.Reservation = &v
		}
		if hc.MemorySwappiness != nil && *hc.MemorySwappiness >= 0 {
			v := uint64(*hc.MemorySwappiness)
			m.Swappiness = &v
		}
		if hc.OomKillDisable != nil {
			v := *hc.OomKillDisable
			m.DisableOOMKiller = &v
		}
		r.Memory = m
	}
	cpu := &specs.LinuxCPU{}
	cpuSet := false
	if hc.NanoCPUs > 0 {
		period := uint64(100000)
		quota := hc.NanoCPUs * int64(period) / 1e9
		cpu.Period, cpu.Quota = &period, &quota
		cpuSet = true
	}
	if hc.CPUQuota > 0 {
		q := hc.CPUQuota
		cpu.Quota = &q
		cpuSet = true
	}
	if hc.CPUPeriod > 0 {
		p := uint64(hc.CPUPeriod)
		cpu.Period = &p
		cpuSet = true
	}
	if hc.CPUShares > 0 {
		v := uint64(hc.CPUShares)
		cpu.Shares = &v
		cpuSet = true
	}
	if hc.CpusetCpus != "" {
		cpu.Cpus = hc.CpusetCpus
		cpuSet = true
	}
	if hc.CpusetMems != "" {
		cpu.Mems = hc.CpusetMems
		cpuSet = true
	}
	if cpuSet {
		r.CPU = cpu
	}
	if hc.PidsLimit != nil && *hc.PidsLimit != 0 {
		limit := *hc.PidsLimit
		r.Pids = &specs.LinuxPids{Limit: &limit}
	}
	if hc.BlkioWeight > 0 {
		w := hc.BlkioWeight
		r.BlockIO = &specs.LinuxBlockIO{Weight: &w}
	}
	for _, d := range hc.Devices {
		addDevice(s, d)
	}
	for _, u := range hc.Ulimits {
		name := "RLIMIT_" + strings.ToUpper(u.Name)
		replaced := false
		for i := range s.Process.Rlimits {
			if s.Process.Rlimits[i].Type == name {
				s.Process.Rlimits[i] = specs.POSIXRlimit{Type: name, Soft: uint64(u.Soft), Hard: uint64(u.Hard)}
				replaced = true
			}
		}
		if !replaced {
			s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: name, Soft: uint64(u.Soft), Hard: uint64(u.Hard)})
		}
	}
}

// addDevice gives the container a host device node (--device) and the
// cgroup rule to use it.
func addDevice(s *specs.Spec, d container.DeviceMapping) {
	fi, err := os.Stat(d.PathOnHost)
	if err != nil {
		return
	}
	st, ok := statDev(fi)
	if !ok {
		return
	}
	path := d.PathInContainer
	if path == "" {
		path = d.PathOnHost
	}
	perms := d.CgroupPermissions
	if perms == "" {
		perms = "rwm"
	}
	mode := fi.Mode().Perm()
	zero := uint32(0)
	s.Linux.Devices = append(s.Linux.Devices, specs.LinuxDevice{Path: path, Type: st.kind, Major: st.major, Minor: st.minor, FileMode: &mode, UID: &zero, GID: &zero})
	maj, min := st.major, st.minor
	s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: st.kind, Major: &maj, Minor: &min, Access: perms})
}

// etcFiles writes the container's /etc/hostname, /etc/hosts and
// /etc/resolv.conf in its directory and returns their mounts.
func (e *Engine) etcFiles(c *Container, snap Record) ([]specs.Mount, error) {
	dir := e.RunDir(c.ID) // container.go
	hostname := snap.Config.Hostname
	if hostname == "" {
		hostname = c.ID[:12]
	}
	netMode := string(snap.HostConfig.NetworkMode)
	var hosts bytes.Buffer
	if netMode == "host" {
		if b, err := os.ReadFile("/etc/hosts"); err == nil {
			hosts.Write(b)
		}
	} else {
		hosts.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
		fmt.Fprintf(&hosts, "127.0.1.1\t%s\n", hostname)
	}
	for _, h := range snap.HostConfig.ExtraHosts {
		name, ip, ok := strings.Cut(h, ":")
		if ok {
			fmt.Fprintf(&hosts, "%s\t%s\n", ip, name)
		}
	}
	resolv, err := resolvConf(snap.HostConfig)
	if err != nil {
		return nil, err
	}
	files := []struct {
		name, dest string
		data       []byte
	}{
		{"hostname", "/etc/hostname", []byte(hostname + "\n")},
		{"hosts", "/etc/hosts", hosts.Bytes()},
		{"resolv.conf", "/etc/resolv.conf", resolv},
	}
	var out []specs.Mount
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			return nil, fmt.Errorf("write %s: %w", p, err)
		}
		out = append(out, specs.Mount{Destination: f.dest, Type: "bind", Source: p, Options: []string{"rbind", "rprivate"}})
	}
	return out, nil
}

// resolvConf is the host's resolv.conf with --dns, --dns-search and
// --dns-option applied, as docker builds it.
func resolvConf(hc *container.HostConfig) ([]byte, error) {
	host, err := os.ReadFile("/etc/resolv.conf")
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	var out bytes.Buffer
	var servers, search, options []string
	for _, l := range strings.Split(string(host), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			servers = append(servers, f[1])
		case "search":
			search = f[1:]
		case "options":
			options = append(options, f[1:]...)
		}
	}
	if len(hc.DNS) > 0 {
		servers = nil
		for _, s := range hc.DNS {
			servers = append(servers, s.String())
		}
	}
	if len(hc.DNSSearch) > 0 {
		search = hc.DNSSearch
	}
	if len(hc.DNSOptions) > 0 {
		options = hc.DNSOptions
	}
	if len(search) > 0 {
		fmt.Fprintf(&out, "search %s\n", strings.Join(search, " "))
	}
	for _, s := range servers {
		fmt.Fprintf(&out, "nameserver %s\n", s)
	}
	if len(options) > 0 {
		fmt.Fprintf(&out, "options %s\n", strings.Join(options, " "))
	}
	return out.Bytes(), nil
}

// initBinary finds hako-init, the reaper --init runs as PID 1, next to
// hakod's own binary.
func initBinary() (string, error) {
	self, err := os.Executable()
	if err == nil {
		p := filepath.Join(filepath.Dir(self), "hako-init")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("--init: hako-init was not found next to hakod")
}

type devStat struct {
	kind         string
	major, minor int64
}

// statDev reads a device node's type and numbers.
func statDev(fi os.FileInfo) (devStat, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return devStat{}, false
	}
	d := devStat{major: int64(unix.Major(st.Rdev)), minor: int64(unix.Minor(st.Rdev))}
	switch fi.Mode().Type() {
	case os.ModeDevice | os.ModeCharDevice:
		d.kind = "c"
	case os.ModeDevice:
		d.kind = "b"
	default:
		return devStat{}, false
	}
	return d, true
}
