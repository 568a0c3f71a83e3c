package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hako-project/hako/runtime/cgroups/devicefilter"
)

// Kernel limits for CFS bandwidth control (kernel/sched/core.c:
// min_cfs_quota_period = 1 ms, max_cfs_quota_period = 1 s).
const (
	minCFSQuota  = 1000
	minCFSPeriod = 1000
	maxCFSPeriod = 1000000
)

// Validate checks everything about r that does not depend on the host
// beyond its cgroup mode, so the runtime can refuse a bad config.json before
// it creates anything. Errors name the field ("linux.resources.memory.swap:
// ..."). Manager.Create repeats it and adds the checks that need the host
// (controllers present, cpus online, hugepage sizes).
func Validate(r *specs.LinuxResources, mode Mode) error {
	if r == nil {
		return nil
	}
	var errs []error
	add := func(field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("linux.resources.%s: "+format, append([]any{field}, a...)...))
	}
	if mem := r.Memory; mem != nil {
		validateMemory(mem, add)
	}
	if cpu := r.CPU; cpu != nil {
		validateCPU(cpu, mode, add)
	}
	if bio := r.BlockIO; bio != nil {
		checkWeight := func(field string, w *uint16) {
			if w != nil && *w != 0 && (*w < 10 || *w > 1000) {
				add(field, "%d is outside 10..1000", *w)
			}
		}
		checkWeight("blockIO.weight", bio.Weight)
		checkWeight("blockIO.leafWeight", bio.LeafWeight)
		for i, d := range bio.WeightDevice {
			f := fmt.Sprintf("blockIO.weightDevice[%d]", i)
			checkDev(f, d.LinuxBlockIODevice, add)
			checkWeight(f+".weight", d.Weight)
			checkWeight(f+".leafWeight", d.LeafWeight)
			if d.Weight == nil && d.LeafWeight == nil {
				add(f, "neither weight nor leafWeight set")
			}
		}
		for name, list := range map[string][]specs.LinuxThrottleDevice{
			"throttleReadBpsDevice": bio.ThrottleReadBpsDevice, "throttleWriteBpsDevice": bio.ThrottleWriteBpsDevice,
			"throttleReadIOPSDevice": bio.ThrottleReadIOPSDevice, "throttleWriteIOPSDevice": bio.ThrottleWriteIOPSDevice,
		} {
			for i, d := range list {
				checkDev(fmt.Sprintf("blockIO.%s[%d]", name, i), d.LinuxBlockIODevice, add)
			}
		}
	}
	for i, h := range r.HugepageLimits {
		if _, err := parsePageSize(h.Pagesize); err != nil {
			add(fmt.Sprintf("hugepageLimits[%d].pageSize", i), "%v", err)
		}
	}
	if r.Devices != nil {
		if _, err := devicefilter.ParseRules(r.Devices); err != nil {
			errs = append(errs, fmt.Errorf("linux.resources.%w", err))
		}
	}
	if n := r.Network; n != nil && (n.ClassID != nil || len(n.Priorities) > 0) {
		if mode == ModeUnified {
			add("network", "net_cls/net_prio are cgroup v1 controllers; cgroup v2 has no equivalent (use an eBPF or tc classifier instead)")
		}
		for i, p := range n.Priorities {
			if p.Name == "" || strings.ContainsAny(p.Name, " \n/") {
				add(fmt.Sprintf("network.priorities[%d].name", i), "%q is not an interface name", p.Name)
			}
		}
	}
	for dev, lim := range r.Rdma {
		if dev == "" || strings.ContainsAny(dev, " \n=") {
			add(fmt.Sprintf("rdma[%q]", dev), "not a device name")
		}
		if lim.HcaHandles == nil && lim.HcaObjects == nil {
			add(fmt.Sprintf("rdma[%q]", dev), "neither hcaHandles nor hcaObjects set")
		}
	}
	if len(r.Unified) > 0 {
		if mode == ModeV1 {
			add("unified", "the host has no cgroup v2 hierarchy; unified keys need cgroup v2 (or a hybrid host)")
		}
		for _, k := range slices.Sorted(mapsKeys(r.Unified)) {
			if err := checkUnifiedKey(k, r.Unified[k]); err != nil {
				add(fmt.Sprintf("unified[%q]", k), "%v", err)
			}
		}
	}
	return errors.Join(errs...)
}

func validateMemory(mem *specs.LinuxMemory, add func(string, string, ...any)) {
	limit := int64(0)
	if mem.Limit != nil {
		limit = *mem.Limit
		if limit < -1 {
			add("memory.limit", "%d: must be -1 (unlimited) or a byte count", limit)
		}
	}
	if mem.Reservation != nil && *mem.Reservation < -1 {
		add("memory.reservation", "%d: must be -1 (unlimited) or a byte count", *mem.Reservation)
	}
	if mem.Swap != nil {
		swap := *mem.Swap
		switch {
		case swap < -1:
			add("memory.swap", "%d: must be -1 (unlimited) or a byte count", swap)
		case swap == -1 || swap == 0:
		case mem.Limit == nil || limit == 0:
			add("memory.swap", "%d set without memory.limit: the swap limit is memory+swap and needs a memory limit", swap)
		case limit > 0 && swap < limit:
			add("memory.swap", "%d is less than memory.limit %d: it is the memory+swap total and must be >= the memory limit", swap, limit)
		}
	}
	if mem.Swappiness != nil && *mem.Swappiness > 100 {
		add("memory.swappiness", "%d is outside 0..100", *mem.Swappiness)
	}
}

func validateCPU(cpu *specs.LinuxCPU, mode Mode, add func(string, string, ...any)) {
	if cpu.Quota != nil {
		q := *cpu.Quota
		if q != -1 && q != 0 && q < minCFSQuota {
			add("cpu.quota", "%d µs is below the kernel minimum of %d µs (use -1 for no limit)", q, minCFSQuota)
		}
	}
	if cpu.Period != nil {
		p := *cpu.Period
		if p != 0 && (p < minCFSPeriod || p > maxCFSPeriod) {
			add("cpu.period", "%d µs is outside the kernel range %d..%d µs", p, minCFSPeriod, maxCFSPeriod)
		}
	}
	if cpu.Burst != nil && *cpu.Burst != 0 {
		if cpu.Quota == nil || *cpu.Quota == 0 {
			add("cpu.burst", "needs a cpu.quota limit to burst above")
		} else if *cpu.Quota > 0 && int64(*cpu.Burst) > *cpu.Quota {
			add("cpu.burst", "%d µs exceeds cpu.quota %d µs", *cpu.Burst, *cpu.Quota)
		}
	}
	if mode == ModeUnified {
		if cpu.RealtimeRuntime != nil && *cpu.RealtimeRuntime != 0 {
			add("cpu.realtimeRuntime", "cgroup v2 has no realtime group scheduling")
		}
		if cpu.RealtimePeriod != nil && *cpu.RealtimePeriod != 0 {
			add("cpu.realtimePeriod", "cgroup v2 has no realtime group scheduling")
		}
	}
	if cpu.RealtimeRuntime != nil && *cpu.RealtimeRuntime < -1 {
		add("cpu.realtimeRuntime", "%d: must be -1 or a µs count", *cpu.RealtimeRuntime)
	}
	if cpu.RealtimeRuntime != nil && cpu.RealtimePeriod != nil && *cpu.RealtimePeriod != 0 && *cpu.RealtimeRuntime > int64(*cpu.RealtimePeriod) {
		add("cpu.realtimeRuntime", "%d µs exceeds cpu.realtimePeriod %d µs", *cpu.RealtimeRuntime, *cpu.RealtimePeriod)
	}
	if cpu.Cpus != "" {
		if _, err := parseList(cpu.Cpus); err != nil {
			add("cpu.cpus", "%v", err)
		}
	}
	if cpu.Mems != "" {
		if _, err := parseList(cpu.Mems); err != nil {
			add("cpu.mems", "%v", err)
		}
	}
	if cpu.Idle != nil && *cpu.Idle != 0 && *cpu.Idle != 1 {
		add("cpu.idle", "%d: must be 0 or 1", *cpu.Idle)
	}
}

func checkDev(field string, d specs.LinuxBlockIODevice, add func(string, string, ...any)) {
	if d.Major < 0 || d.Major > 4095 || d.Minor < 0 || d.Minor > 1<<20-1 {
		add(field, "device %d:%d is not a valid major:minor", d.Major, d.Minor)
	}
}

// checkUnifiedKey accepts "controller.file" names of a cgroup2 directory
// and refuses anything that would write outside it.
func checkUnifiedKey(k, v string) error {
	if k == "" || strings.ContainsAny(k, "/\x00") || k == "." || k == ".." {
		return errors.New("not a cgroup2 file name")
	}
	ctrl, _, ok := strings.Cut(k, ".")
	if !ok || ctrl == "" {
		return errors.New("not of the form <controller>.<file>")
	}
	if k == "cgroup.procs" || k == "cgroup.threads" || k == "cgroup.subtree_control" || k == "cgroup.kill" {
		return errors.New("managed by the runtime, not settable")
	}
	if strings.ContainsRune(v, '\n') && !strings.HasSuffix(v, "\n") {
		return errors.New("value spans several lines")
	}
	return nil
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// parsePageSize turns "2MB", "64KB", "1GB" into bytes.
func parsePageSize(s string) (uint64, error) {
	units := []struct {
		suffix string
		mult   uint64
	}{{"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"TB", 1 << 40}, {"PB", 1 << 50}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok && num != "" {
			var n uint64
			for _, c := range num {
				if c < '0' || c > '9' {
					return 0, fmt.Errorf("%q is not <number><KB|MB|GB>", s)
				}
				n = n*10 + uint64(c-'0')
				if n > 1<<20 {
					return 0, fmt.Errorf("%q is too large", s)
				}
			}
			if n == 0 {
				return 0, fmt.Errorf("%q is zero", s)
			}
			return n * u.mult, nil
		}
	}
	return 0, fmt.Errorf("%q is not <number><KB|MB|GB> (e.g. 2MB)", s)
}

// hugepageDir is where the kernel lists supported huge page sizes.
const hugepageDir = "/sys/kernel/mm/hugepages"

// check runs the host-dependent validation: every controller a field needs
// is present (and writable for rootless), cpus/mems are available, huge
// page sizes exist. It creates nothing.
func (m *manager) check(r *specs.LinuxResources, create bool) error {
	var errs []error
	need := func(field, ctrl string) *Hierarchy {
		h, err := m.place(ctrl)
		if err != nil {
			errs = append(errs, fmt.Errorf("linux.resources.%s: %w", field, err))
			return nil
		}
		return h
	}
	if mem := r.Memory; mem != nil && (mem.Limit != nil || mem.Reservation != nil || mem.Swap != nil ||
		mem.Swappiness != nil || mem.DisableOOMKiller != nil || mem.KernelTCP != nil) {
		need("memory", "memory")
	}
	if cpu := r.CPU; cpu != nil {
		if cpu.Shares != nil || cpu.Quota != nil || cpu.Period != nil || cpu.Burst != nil ||
			cpu.RealtimePeriod != nil || cpu.RealtimeRuntime != nil || cpu.Idle != nil {
			need("cpu", "cpu")
		}
		for _, f := range []struct{ name, val string }{{"cpus", cpu.Cpus}, {"mems", cpu.Mems}} {
			if f.val == "" {
				continue
			}
			h := need("cpu."+f.name, "cpuset")
			if h == nil {
				continue
			}
			if err := m.checkAvailable(h, f.name, f.val); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if p := r.Pids; p != nil && p.Limit != nil {
		need("pids", "pids")
	}
	if b := r.BlockIO; b != nil && (b.Weight != nil || b.LeafWeight != nil || len(b.WeightDevice) > 0 ||
		len(b.ThrottleReadBpsDevice) > 0 || len(b.ThrottleWriteBpsDevice) > 0 ||
		len(b.ThrottleReadIOPSDevice) > 0 || len(b.ThrottleWriteIOPSDevice) > 0) {
		need("blockIO", "blkio")
	}
	if len(r.HugepageLimits) > 0 && need("hugepageLimits", "hugetlb") != nil {
		for i, hp := range r.HugepageLimits {
			size, err := parsePageSize(hp.Pagesize)
			if err != nil {
				continue // reported by Validate
			}
			d := filepath.Join(hugepageDir, fmt.Sprintf("hugepages-%dkB", size>>10))
			if _, err := os.Stat(d); err != nil {
				errs = append(errs, fmt.Errorf("linux.resources.hugepageLimits[%d].pageSize: %s is not a huge page size of this host (%s absent)", i, hp.Pagesize, d))
			}
		}
	}
	if n := r.Network; n != nil {
		if n.ClassID != nil {
			need("network.classID", "net_cls")
		}
		if len(n.Priorities) > 0 {
			need("network.priorities", "net_prio")
		}
	}
	if len(r.Rdma) > 0 {
		need("rdma", "rdma")
	}
	if create && r.Devices != nil {
		if m.mode == ModeUnified || m.v1("devices") == nil {
			if m.unified() == nil {
				errs = append(errs, errors.New("linux.resources.devices: the host has neither a v1 devices controller nor a cgroup2 hierarchy for an eBPF device filter"))
			}
		}
	}
	if len(r.Unified) > 0 && m.mode != ModeV1 {
		u := m.unified()
		if u == nil {
			errs = append(errs, errors.New("linux.resources.unified: no writable cgroup2 hierarchy"))
		} else {
			ctrls, err := m.unifiedControllers()
			if err != nil {
				errs = append(errs, fmt.Errorf("linux.resources.unified: %w", err))
			}
			for _, k := range slices.Sorted(mapsKeys(r.Unified)) {
				ctrl, _, _ := strings.Cut(k, ".")
				if ctrl == "cgroup" || slices.Contains(ctrls, ctrl) {
					continue
				}
				if m.mode == ModeHybrid {
					errs = append(errs, fmt.Errorf("linux.resources.unified[%q]: controller %q is not on this hybrid host's cgroup2 hierarchy %s (it offers: %s); set it through the v1 fields instead", k, ctrl, u.Mountpoint, strings.Join(ctrls, " ")))
				} else {
					errs = append(errs, fmt.Errorf("linux.resources.unified[%q]: controller %q is not available (cgroup.controllers: %s)", k, ctrl, strings.Join(ctrls, " ")))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// checkAvailable verifies that every cpu/mem node asked for is in the set
// the parent of the container's cpuset offers (the nearest existing
// ancestor, since the leaf may not exist yet).
func (m *manager) checkAvailable(h *Hierarchy, field, val string) error {
	want, err := parseList(val)
	if err != nil {
		return nil // reported by Validate
	}
	prefix, file := "cpuset.", "effective_"+field
	if h.Unified {
		file = field + ".effective"
	}
	dir := filepath.Dir(h.Path)
	for {
		if s, err := readFile(dir, prefix+file); err == nil {
			have, err := parseList(strings.TrimSpace(s))
			if err != nil {
				return fmt.Errorf("linux.resources.cpu.%s: %w", field, err)
			}
			for _, n := range want {
				if !slices.Contains(have, n) {
					return fmt.Errorf("linux.resources.cpu.%s: %q asks for %d, not available (%s/%s%s = %q)", field, val, n, dir, prefix, file, s)
				}
			}
			return nil
		}
		if dir == h.Mountpoint || dir == "/" {
			return fmt.Errorf("linux.resources.cpu.%s: cannot read %s%s under %s", field, prefix, file, h.Mountpoint)
		}
		dir = filepath.Dir(dir)
	}
}
