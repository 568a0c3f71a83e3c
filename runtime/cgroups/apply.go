package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/runtime/cgroups/devicefilter"
)

// apply writes r to the cgroup files, each controller in the hierarchy the
// host has it in. create adds the devices rules (see Manager.Set).
func (m *manager) apply(r *specs.LinuxResources, create bool) error {
	if m.mode == ModeHybrid {
		if err := m.enableOnUnified(r); err != nil {
			return err
		}
	}
	if create && r.Devices != nil {
		if err := m.applyDevices(r.Devices); err != nil {
			return err
		}
	}
	if r.Memory != nil {
		if err := m.applyMemory(r.Memory, create); err != nil {
			return err
		}
	}
	if r.CPU != nil {
		if err := m.applyCPU(r.CPU); err != nil {
			return err
		}
		if err := m.applyCpuset(r.CPU); err != nil {
			return err
		}
	}
	if r.Pids != nil && r.Pids.Limit != nil {
		h, err := m.place("pids")
		if err != nil {
			return fmt.Errorf("linux.resources.pids: %w", err)
		}
		v := "max"
		if *r.Pids.Limit > 0 {
			v = strconv.FormatInt(*r.Pids.Limit, 10)
		}
		if err := writeFile(h.Path, "pids.max", v); err != nil {
			return fmt.Errorf("linux.resources.pids.limit: %w", err)
		}
	}
	if r.BlockIO != nil {
		if err := m.applyBlockIO(r.BlockIO); err != nil {
			return err
		}
	}
	if len(r.HugepageLimits) > 0 {
		if err := m.applyHugetlb(r.HugepageLimits); err != nil {
			return err
		}
	}
	if r.Network != nil {
		if err := m.applyNetwork(r.Network); err != nil {
			return err
		}
	}
	if len(r.Rdma) > 0 {
		if err := m.applyRdma(r.Rdma); err != nil {
			return err
		}
	}
	if len(r.Unified) > 0 {
		u := m.unified()
		if u == nil {
			return errors.New("linux.resources.unified: the host has no cgroup v2 hierarchy")
		}
		// Sorted, so a failure names the same key every run.
		for _, k := range slices.Sorted(mapsKeys(r.Unified)) {
			if err := writeFile(u.Path, k, r.Unified[k]); err != nil {
				if errors.Is(err, unix.ENOENT) {
					return fmt.Errorf("linux.resources.unified[%q]: no such file in %s (controller not enabled or unknown key)", k, u.Path)
				}
				return fmt.Errorf("linux.resources.unified[%q]: %w", k, err)
			}
		}
	}
	return nil
}

// enableOnUnified enables, on a hybrid host's cgroup2 hierarchy, the
// controllers that live only there and that r uses (hugetlb here). Only
// what is needed: enabling costs writes on the Create path.
func (m *manager) enableOnUnified(r *specs.LinuxResources) error {
	u := m.unified()
	if u == nil {
		return nil
	}
	var need []string
	add := func(ctrl string) {
		if h, err := m.place(ctrl); err == nil && h.Unified && !slices.Contains(need, v2Name(ctrl)) {
			need = append(need, v2Name(ctrl))
		}
	}
	if len(r.HugepageLimits) > 0 {
		add("hugetlb")
	}
	if len(r.Rdma) > 0 {
		add("rdma")
	}
	if len(r.Unified) > 0 {
		ctrls, err := m.unifiedControllers()
		if err != nil {
			return err
		}
		for k := range r.Unified {
			c, _, _ := strings.Cut(k, ".")
			if slices.Contains(ctrls, c) && !slices.Contains(need, c) {
				need = append(need, c)
			}
		}
	}
	slices.Sort(need)
	return enableControllers(u, need)
}

func (m *manager) applyDevices(devs []specs.LinuxDeviceCgroup) error {
	rules, err := devicefilter.ParseRules(devs)
	if err != nil {
		return fmt.Errorf("linux.resources.%w", err)
	}
	if m.mode != ModeUnified {
		if h := m.v1("devices"); h != nil {
			// As runc: start from nothing allowed, then replay the list,
			// so the result does not depend on what the parent allows.
			if err := writeFile(h.Path, "devices.deny", "a"); err != nil {
				return fmt.Errorf("linux.resources.devices: %w", err)
			}
			for i, r := range rules {
				file := "devices.deny"
				if r.Allow {
					file = "devices.allow"
				}
				if err := writeFile(h.Path, file, r.String()); err != nil {
					return fmt.Errorf("linux.resources.devices[%d]: %w", i, err)
				}
			}
			return nil
		}
	}
	u := m.unified()
	if u == nil {
		return errors.New("linux.resources.devices: no devices controller and no cgroup2 hierarchy")
	}
	if err := devicefilter.AttachDir(u.Path, rules); err != nil {
		return fmt.Errorf("linux.resources.devices: %w", err)
	}
	return nil
}

// pageSize rounds memory limits the way the kernel stores them.
var pageSize = int64(os.Getpagesize())

// checkLimit reads back a memory limit: the kernel rounds it down to a page
// and a write it cannot honour may be accepted and ignored.
func checkLimit(field, dir, file string, want int64) error {
	if want <= 0 {
		return nil
	}
	got, err := readUint(dir, file)
	if err != nil {
		return fmt.Errorf("%s: read back: %w", field, err)
	}
	if int64(got) != want/pageSize*pageSize {
		return fmt.Errorf("%s: wrote %d to %s/%s but the kernel kept %d", field, want, dir, file, got)
	}
	return nil
}

func (m *manager) applyMemory(mem *specs.LinuxMemory, create bool) error {
	if mem.Kernel != nil {
		m.log.Warn("linux.resources.memory.kernel is ignored: kernel memory limits are deprecated and not enforced by Linux >= 5.16 (runc 1.2 ignores it too)")
	}
	if mem.Limit == nil && mem.Reservation == nil && mem.Swap == nil && mem.Swappiness == nil &&
		mem.DisableOOMKiller == nil && mem.KernelTCP == nil && mem.UseHierarchy == nil {
		return nil
	}
	h, err := m.place("memory")
	if err != nil {
		return fmt.Errorf("linux.resources.memory: %w", err)
	}
	var limit, swap int64
	if mem.Limit != nil {
		limit = *mem.Limit
	}
	if mem.Swap != nil {
		swap = *mem.Swap
	}
	check := !create && mem.CheckBeforeUpdate != nil && *mem.CheckBeforeUpdate && limit > 0
	if h.Unified {
		return m.memoryV2(h.Path, mem, limit, swap, check)
	}
	return m.memoryV1(h.Path, mem, limit, swap, check)
}

func (m *manager) memoryV1(dir string, mem *specs.LinuxMemory, limit, swap int64, check bool) error {
	const memsw = "memory.memsw.limit_in_bytes"
	if check {
		usage, err := readUint(dir, "memory.usage_in_bytes")
		if err != nil {
			return fmt.Errorf("linux.resources.memory.checkBeforeUpdate: %w", err)
		}
		if usage > uint64(limit) {
			return fmt.Errorf("linux.resources.memory.limit: %d is below the current usage %d (checkBeforeUpdate)", limit, usage)
		}
	}
	hasMemsw := false
	if swap != 0 || limit == -1 {
		hasMemsw = exists(dir, memsw)
	}
	if limit == -1 && mem.Swap == nil && hasMemsw {
		swap = -1 // unlimited memory means unlimited memory+swap, as runc
	}
	if swap != 0 && !hasMemsw {
		if swap != -1 {
			return fmt.Errorf("linux.resources.memory.swap: swap accounting is off on this host (%s/%s absent; boot with swapaccount=1)", dir, memsw)
		}
		swap = 0
	}
	setLimit := func() error {
		if limit == 0 {
			return nil
		}
		if err := writeFile(dir, "memory.limit_in_bytes", strconv.FormatInt(limit, 10)); err != nil {
			if errors.Is(err, unix.EBUSY) {
				usage, _ := readUint(dir, "memory.usage_in_bytes")
				return fmt.Errorf("linux.resources.memory.limit: %d is below the current usage %d: %w", limit, usage, err)
			}
			return fmt.Errorf("linux.resources.memory.limit: %w", err)
		}
		return checkLimit("linux.resources.memory.limit", dir, "memory.limit_in_bytes", limit)
	}
	setSwap := func() error {
		if swap == 0 {
			return nil
		}
		if err := writeFile(dir, memsw, strconv.FormatInt(swap, 10)); err != nil {
			return fmt.Errorf("linux.resources.memory.swap: %w", err)
		}
		return checkLimit("linux.resources.memory.swap", dir, memsw, swap)
	}
	// memsw must stay >= limit at every moment: raise it first when
	// growing, lower it last when shrinking.
	first, second := setLimit, setSwap
	if limit != 0 && swap != 0 {
		cur, err := readUint(dir, "memory.limit_in_bytes")
		if err != nil {
			return fmt.Errorf("linux.resources.memory: %w", err)
		}
		if swap == -1 || cur < uint64(swap) {
			first, second = setSwap, setLimit
		}
	}
	if err := first(); err != nil {
		return err
	}
	if err := second(); err != nil {
		return err
	}
	if mem.Reservation != nil && *mem.Reservation != 0 {
		if err := writeFile(dir, "memory.soft_limit_in_bytes", strconv.FormatInt(*mem.Reservation, 10)); err != nil {
			return fmt.Errorf("linux.resources.memory.reservation: %w", err)
		}
	}
	if mem.KernelTCP != nil && *mem.KernelTCP != 0 {
		if err := writeFile(dir, "memory.kmem.tcp.limit_in_bytes", strconv.FormatInt(*mem.KernelTCP, 10)); err != nil {
			if !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("linux.resources.memory.kernelTCP: %w", err)
			}
			m.log.Warn("linux.resources.memory.kernelTCP is ignored: memory.kmem.tcp.limit_in_bytes absent", "dir", dir)
		}
	}
	if mem.Swappiness != nil {
		if err := writeFile(dir, "memory.swappiness", strconv.FormatUint(*mem.Swappiness, 10)); err != nil {
			return fmt.Errorf("linux.resources.memory.swappiness: %w", err)
		}
	}
	if mem.DisableOOMKiller != nil {
		v := "0"
		if *mem.DisableOOMKiller {
			v = "1"
		}
		if err := writeFile(dir, "memory.oom_control", v); err != nil {
			return fmt.Errorf("linux.resources.memory.disableOOMKiller: %w", err)
		}
	}
	if mem.UseHierarchy != nil {
		if *mem.UseHierarchy {
			if err := writeFile(dir, "memory.use_hierarchy", "1"); err != nil {
				return fmt.Errorf("linux.resources.memory.useHierarchy: %w", err)
			}
		} else {
			m.log.Warn("linux.resources.memory.useHierarchy=false is ignored: Linux >= 5.x always accounts hierarchically")
		}
	}
	return nil
}

func (m *manager) memoryV2(dir string, mem *specs.LinuxMemory, limit, swap int64, check bool) error {
	if check {
		cur, err := readUint(dir, "memory.current")
		if err != nil {
			return fmt.Errorf("linux.resources.memory.checkBeforeUpdate: %w", err)
		}
		if cur > uint64(limit) {
			return fmt.Errorf("linux.resources.memory.limit: %d is below the current usage %d (checkBeforeUpdate)", limit, cur)
		}
	}
	if mem.Swap != nil || limit == -1 {
		v, set, err := SwapToV2(swap, limit)
		if err != nil {
			return fmt.Errorf("linux.resources.memory.swap: %w", err)
		}
		if set {
			if err := writeFile(dir, "memory.swap.max", formatLimit(v)); err != nil {
				// No swap accounting: "max" and "0" ask for nothing it
				// could refuse.
				if !errors.Is(err, unix.ENOENT) || (v != -1 && v != 0) {
					return fmt.Errorf("linux.resources.memory.swap: %w", err)
				}
			}
		}
	}
	if limit != 0 {
		if err := writeFile(dir, "memory.max", formatLimit(limit)); err != nil {
			return fmt.Errorf("linux.resources.memory.limit: %w", err)
		}
		if err := checkLimit("linux.resources.memory.limit", dir, "memory.max", limit); err != nil {
			return err
		}
	}
	if mem.Reservation != nil && *mem.Reservation != 0 {
		if err := writeFile(dir, "memory.low", formatLimit(*mem.Reservation)); err != nil {
			return fmt.Errorf("linux.resources.memory.reservation: %w", err)
		}
	}
	if mem.Swappiness != nil {
		m.log.Warn("linux.resources.memory.swappiness is ignored: cgroup v2 has no per-cgroup swappiness")
	}
	if mem.DisableOOMKiller != nil && *mem.DisableOOMKiller {
		m.log.Warn("linux.resources.memory.disableOOMKiller is ignored: cgroup v2 cannot disable the OOM killer")
	}
	if mem.KernelTCP != nil {
		m.log.Warn("linux.resources.memory.kernelTCP is ignored on cgroup v2 (socket memory is part of memory.max)")
	}
	return nil
}

func (m *manager) applyCPU(cpu *specs.LinuxCPU) error {
	if cpu.Shares == nil && cpu.Quota == nil && cpu.Period == nil && cpu.Burst == nil &&
		cpu.RealtimePeriod == nil && cpu.RealtimeRuntime == nil && cpu.Idle == nil {
		return nil
	}
	h, err := m.place("cpu")
	if err != nil {
		return fmt.Errorf("linux.resources.cpu: %w", err)
	}
	if h.Unified {
		return cpuV2(h.Path, cpu)
	}
	return cpuV1(h, cpu)
}

func cpuV1(h *Hierarchy, cpu *specs.LinuxCPU) error {
	dir := h.Path
	if cpu.Shares != nil && *cpu.Shares != 0 {
		if err := writeFile(dir, "cpu.shares", strconv.FormatUint(*cpu.Shares, 10)); err != nil {
			return fmt.Errorf("linux.resources.cpu.shares: %w", err)
		}
		got, err := readUint(dir, "cpu.shares")
		if err != nil {
			return fmt.Errorf("linux.resources.cpu.shares: %w", err)
		}
		if got != *cpu.Shares {
			return fmt.Errorf("linux.resources.cpu.shares: %d is outside the kernel's range, it kept %d", *cpu.Shares, got)
		}
	}
	period := func() error {
		if cpu.Period == nil || *cpu.Period == 0 {
			return nil
		}
		if err := writeFile(dir, "cpu.cfs_period_us", strconv.FormatUint(*cpu.Period, 10)); err != nil {
			return fmt.Errorf("linux.resources.cpu.period: %w", err)
		}
		return nil
	}
	quota := func() error {
		if cpu.Quota == nil || *cpu.Quota == 0 {
			return nil
		}
		if err := writeFile(dir, "cpu.cfs_quota_us", strconv.FormatInt(*cpu.Quota, 10)); err != nil {
			return fmt.Errorf("linux.resources.cpu.quota: %w", err)
		}
		return nil
	}
	// A new period can be refused against the old quota (and the other way
	// round); try the other order before giving up.
	if err := period(); err != nil {
		if qerr := quota(); qerr != nil {
			return err
		}
		if err := period(); err != nil {
			return err
		}
	} else if err := quota(); err != nil {
		return err
	}
	// With no quota there is nothing to burst above (and v1 refuses the
	// write), so an unlimited quota skips the burst.
	unlimited := cpu.Quota != nil && *cpu.Quota == -1
	if cpu.Burst != nil && !unlimited {
		if err := writeFile(dir, "cpu.cfs_burst_us", strconv.FormatUint(*cpu.Burst, 10)); err != nil {
			return fmt.Errorf("linux.resources.cpu.burst: %w", err)
		}
	}
	if cpu.RealtimePeriod != nil && *cpu.RealtimePeriod != 0 {
		if err := writeFile(dir, "cpu.rt_period_us", strconv.FormatUint(*cpu.RealtimePeriod, 10)); err != nil {
			return fmt.Errorf("linux.resources.cpu.realtimePeriod: %w", err)
		}
	}
	if cpu.RealtimeRuntime != nil && *cpu.RealtimeRuntime != 0 {
		v := strconv.FormatInt(*cpu.RealtimeRuntime, 10)
		if err := writeFile(dir, "cpu.rt_runtime_us", v); err != nil {
			// The parents' RT budget must cover the child's: grant it
			// along the path below the hierarchy root, then retry.
			if !errors.Is(err, unix.EINVAL) || *cpu.RealtimeRuntime < 0 {
				return fmt.Errorf("linux.resources.cpu.realtimeRuntime: %w", err)
			}
			if perr := growRtParents(h, *cpu.RealtimeRuntime); perr != nil {
				return fmt.Errorf("linux.resources.cpu.realtimeRuntime: %w (and granting the parents RT budget failed: %v)", err, perr)
			}
			if err := writeFile(dir, "cpu.rt_runtime_us", v); err != nil {
				return fmt.Errorf("linux.resources.cpu.realtimeRuntime: %w", err)
			}
		}
	}
	if cpu.Idle != nil {
		if err := writeFile(dir, "cpu.idle", strconv.FormatInt(*cpu.Idle, 10)); err != nil {
			return fmt.Errorf("linux.resources.cpu.idle: %w", err)
		}
	}
	return nil
}

// growRtParents raises cpu.rt_runtime_us of every ancestor between the
// hierarchy root and the leaf to at least want, top down.
func growRtParents(h *Hierarchy, want int64) error {
	rel := strings.Trim(strings.TrimPrefix(filepath.Dir(h.Path), h.Mountpoint), "/")
	if rel == "" {
		return errors.New("parent is the hierarchy root")
	}
	dir := h.Mountpoint
	for e := range strings.SplitSeq(rel, "/") {
		dir = filepath.Join(dir, e)
		cur, err := readUint(dir, "cpu.rt_runtime_us")
		if err != nil {
			return err
		}
		if int64(cur) >= want {
			continue
		}
		if err := writeFile(dir, "cpu.rt_runtime_us", strconv.FormatInt(want, 10)); err != nil {
			return err
		}
	}
	return nil
}

func cpuV2(dir string, cpu *specs.LinuxCPU) error {
	if cpu.Idle != nil {
		if err := writeFile(dir, "cpu.idle", strconv.FormatInt(*cpu.Idle, 10)); err != nil {
			return fmt.Errorf("linux.resources.cpu.idle: %w", err)
		}
	}
	if cpu.Shares != nil && *cpu.Shares != 0 {
		w := SharesToWeight(*cpu.Shares)
		if err := writeFile(dir, "cpu.weight", strconv.FormatUint(w, 10)); err != nil {
			return fmt.Errorf("linux.resources.cpu.shares (as cpu.weight %d): %w", w, err)
		}
	}
	burstPending := false
	if cpu.Burst != nil && !(cpu.Quota != nil && *cpu.Quota == -1) {
		if err := writeFile(dir, "cpu.max.burst", strconv.FormatUint(*cpu.Burst, 10)); err != nil {
			// A larger burst can be refused against the old quota; retry
			// once the new quota is in.
			if !errors.Is(err, unix.EINVAL) || cpu.Quota == nil {
				return fmt.Errorf("linux.resources.cpu.burst: %w", err)
			}
			burstPending = true
		}
	}
	if (cpu.Quota != nil && *cpu.Quota != 0) || (cpu.Period != nil && *cpu.Period != 0) {
		q := "max"
		if cpu.Quota != nil && *cpu.Quota > 0 {
			q = strconv.FormatInt(*cpu.Quota, 10)
		}
		p := uint64(100000) // the kernel's default period
		if cpu.Period != nil && *cpu.Period != 0 {
			p = *cpu.Period
		}
		if err := writeFile(dir, "cpu.max", q+" "+strconv.FormatUint(p, 10)); err != nil {
			return fmt.Errorf("linux.resources.cpu.quota/period: %w", err)
		}
	}
	if burstPending {
		if err := writeFile(dir, "cpu.max.burst", strconv.FormatUint(*cpu.Burst, 10)); err != nil {
			return fmt.Errorf("linux.resources.cpu.burst: %w", err)
		}
	}
	return nil
}

func (m *manager) applyCpuset(cpu *specs.LinuxCPU) error {
	if cpu.Cpus == "" && cpu.Mems == "" {
		return nil
	}
	h, err := m.place("cpuset")
	if err != nil {
		return fmt.Errorf("linux.resources.cpu: %w", err)
	}
	for _, f := range []struct{ field, file, val string }{{"cpus", "cpuset.cpus", cpu.Cpus}, {"mems", "cpuset.mems", cpu.Mems}} {
		if f.val == "" {
			continue
		}
		if err := writeFile(h.Path, f.file, f.val); err != nil {
			return fmt.Errorf("linux.resources.cpu.%s: %w", f.field, err)
		}
		got, err := readFile(h.Path, f.file)
		if err != nil {
			return fmt.Errorf("linux.resources.cpu.%s: %w", f.field, err)
		}
		want, _ := parseList(f.val)
		have, err := parseList(got)
		if err != nil || !slices.Equal(want, have) {
			return fmt.Errorf("linux.resources.cpu.%s: wrote %q but the kernel kept %q", f.field, f.val, got)
		}
	}
	return nil
}

func (m *manager) applyBlockIO(b *specs.LinuxBlockIO) error {
	if b.Weight == nil && b.LeafWeight == nil && len(b.WeightDevice) == 0 && len(b.ThrottleReadBpsDevice) == 0 &&
		len(b.ThrottleWriteBpsDevice) == 0 && len(b.ThrottleReadIOPSDevice) == 0 && len(b.ThrottleWriteIOPSDevice) == 0 {
		return nil
	}
	h, err := m.place("blkio")
	if err != nil {
		return fmt.Errorf("linux.resources.blockIO: %w", err)
	}
	if h.Unified {
		return m.ioV2(h.Path, b)
	}
	return blkioV1(h.Path, b)
}

// writeFirst writes val to the first of files that exists.
func writeFirst(dir string, files []string, val string) error {
	var err error
	for _, f := range files {
		if err = writeFile(dir, f, val); !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	return fmt.Errorf("none of %s present in %s: %w", strings.Join(files, ", "), dir, err)
}

func blkioV1(dir string, b *specs.LinuxBlockIO) error {
	weightFiles := []string{"blkio.weight", "blkio.bfq.weight"}
	if b.Weight != nil && *b.Weight != 0 {
		if err := writeFirst(dir, weightFiles, strconv.Itoa(int(*b.Weight))); err != nil {
			return fmt.Errorf("linux.resources.blockIO.weight: %w (needs the CFQ or BFQ I/O scheduler's weight file)", err)
		}
	}
	if b.LeafWeight != nil && *b.LeafWeight != 0 {
		if err := writeFile(dir, "blkio.leaf_weight", strconv.Itoa(int(*b.LeafWeight))); err != nil {
			return fmt.Errorf("linux.resources.blockIO.leafWeight: %w (leaf weights existed only with the CFQ scheduler, removed in Linux 5.0)", err)
		}
	}
	for i, d := range b.WeightDevice {
		dev := fmt.Sprintf("%d:%d", d.Major, d.Minor)
		if d.Weight != nil {
			if err := writeFirst(dir, []string{"blkio.weight_device", "blkio.bfq.weight_device"}, dev+" "+strconv.Itoa(int(*d.Weight))); err != nil {
				return fmt.Errorf("linux.resources.blockIO.weightDevice[%d].weight: %w", i, err)
			}
		}
		if d.LeafWeight != nil {
			if err := writeFile(dir, "blkio.leaf_weight_device", dev+" "+strconv.Itoa(int(*d.LeafWeight))); err != nil {
				return fmt.Errorf("linux.resources.blockIO.weightDevice[%d].leafWeight: %w (CFQ only)", i, err)
			}
		}
	}
	for _, t := range []struct {
		field, file string
		list        []specs.LinuxThrottleDevice
	}{
		{"throttleReadBpsDevice", "blkio.throttle.read_bps_device", b.ThrottleReadBpsDevice},
		{"throttleWriteBpsDevice", "blkio.throttle.write_bps_device", b.ThrottleWriteBpsDevice},
		{"throttleReadIOPSDevice", "blkio.throttle.read_iops_device", b.ThrottleReadIOPSDevice},
		{"throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", b.ThrottleWriteIOPSDevice},
	} {
		for i, d := range t.list {
			if err := writeFile(dir, t.file, fmt.Sprintf("%d:%d %d", d.Major, d.Minor, d.Rate)); err != nil {
				return fmt.Errorf("linux.resources.blockIO.%s[%d]: %w", t.field, i, err)
			}
		}
	}
	return nil
}

func (m *manager) ioV2(dir string, b *specs.LinuxBlockIO) error {
	bfq := exists(dir, "io.bfq.weight")
	if b.Weight != nil && *b.Weight != 0 {
		var err error
		if bfq {
			err = writeFile(dir, "io.bfq.weight", strconv.Itoa(int(*b.Weight)))
		} else {
			err = writeFile(dir, "io.weight", strconv.FormatUint(BlkioWeightToIOWeight(*b.Weight), 10))
		}
		if err != nil {
			return fmt.Errorf("linux.resources.blockIO.weight: %w", err)
		}
	}
	if b.LeafWeight != nil {
		m.log.Warn("linux.resources.blockIO.leafWeight is ignored: cgroup v2 has no leaf weights")
	}
	for i, d := range b.WeightDevice {
		if d.LeafWeight != nil {
			m.log.Warn("linux.resources.blockIO.weightDevice leafWeight is ignored on cgroup v2", "index", i)
		}
		if d.Weight == nil {
			continue
		}
		dev := fmt.Sprintf("%d:%d", d.Major, d.Minor)
		var err error
		if bfq {
			err = writeFile(dir, "io.bfq.weight", dev+" "+strconv.Itoa(int(*d.Weight)))
		} else {
			err = writeFile(dir, "io.weight", dev+" "+strconv.FormatUint(BlkioWeightToIOWeight(*d.Weight), 10))
		}
		if err != nil {
			return fmt.Errorf("linux.resources.blockIO.weightDevice[%d]: %w", i, err)
		}
	}
	for _, t := range []struct {
		field, key string
		list       []specs.LinuxThrottleDevice
	}{
		{"throttleReadBpsDevice", "rbps", b.ThrottleReadBpsDevice},
		{"throttleWriteBpsDevice", "wbps", b.ThrottleWriteBpsDevice},
		{"throttleReadIOPSDevice", "riops", b.ThrottleReadIOPSDevice},
		{"throttleWriteIOPSDevice", "wiops", b.ThrottleWriteIOPSDevice},
	} {
		for i, d := range t.list {
			v := strconv.FormatUint(d.Rate, 10)
			if d.Rate == 0 {
				v = "max" // v1 writes 0 to remove a limit
			}
			if err := writeFile(dir, "io.max", fmt.Sprintf("%d:%d %s=%s", d.Major, d.Minor, t.key, v)); err != nil {
				return fmt.Errorf("linux.resources.blockIO.%s[%d]: %w", t.field, i, err)
			}
		}
	}
	return nil
}

// kernelPageSizeName formats a huge page size the way hugetlb file names
// spell it ("2MB", "1GB", "64KB").
func kernelPageSizeName(size uint64) string {
	switch {
	case size >= 1<<30 && size%(1<<30) == 0:
		return fmt.Sprintf("%dGB", size>>30)
	case size >= 1<<20 && size%(1<<20) == 0:
		return fmt.Sprintf("%dMB", size>>20)
	}
	return fmt.Sprintf("%dKB", size>>10)
}

func (m *manager) applyHugetlb(limits []specs.LinuxHugepageLimit) error {
	h, err := m.place("hugetlb")
	if err != nil {
		return fmt.Errorf("linux.resources.hugepageLimits: %w", err)
	}
	limitFile, rsvdFile := "limit_in_bytes", "rsvd.limit_in_bytes"
	if h.Unified {
		limitFile, rsvdFile = "max", "rsvd.max"
	}
	for i, l := range limits {
		size, err := parsePageSize(l.Pagesize)
		if err != nil {
			return fmt.Errorf("linux.resources.hugepageLimits[%d].pageSize: %w", i, err)
		}
		base := "hugetlb." + kernelPageSizeName(size) + "."
		v := strconv.FormatUint(l.Limit, 10)
		if err := writeFile(h.Path, base+limitFile, v); err != nil {
			return fmt.Errorf("linux.resources.hugepageLimits[%d]: %w", i, err)
		}
		// The spec asks for reservation limits where the kernel has them
		// (5.7+), so a mmap beyond the limit fails instead of a later
		// page fault killing the process.
		if err := writeFile(h.Path, base+rsvdFile, v); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("linux.resources.hugepageLimits[%d] (reservation): %w", i, err)
		}
	}
	return nil
}

func (m *manager) applyNetwork(n *specs.LinuxNetwork) error {
	if n.ClassID != nil {
		h, err := m.place("net_cls")
		if err != nil {
			return fmt.Errorf("linux.resources.network.classID: %w", err)
		}
		if err := writeFile(h.Path, "net_cls.classid", strconv.FormatUint(uint64(*n.ClassID), 10)); err != nil {
			return fmt.Errorf("linux.resources.network.classID: %w", err)
		}
	}
	if len(n.Priorities) > 0 {
		h, err := m.place("net_prio")
		if err != nil {
			return fmt.Errorf("linux.resources.network.priorities: %w", err)
		}
		for i, p := range n.Priorities {
			if err := writeFile(h.Path, "net_prio.ifpriomap", fmt.Sprintf("%s %d", p.Name, p.Priority)); err != nil {
				return fmt.Errorf("linux.resources.network.priorities[%d]: %w", i, err)
			}
		}
	}
	return nil
}

func (m *manager) applyRdma(r map[string]specs.LinuxRdma) error {
	h, err := m.place("rdma")
	if err != nil {
		return fmt.Errorf("linux.resources.rdma: %w", err)
	}
	for _, dev := range slices.Sorted(mapsKeys(r)) {
		l := r[dev]
		line := dev
		if l.HcaHandles != nil {
			line += fmt.Sprintf(" hca_handle=%d", *l.HcaHandles)
		}
		if l.HcaObjects != nil {
			line += fmt.Sprintf(" hca_object=%d", *l.HcaObjects)
		}
		if err := writeFile(h.Path, "rdma.max", line); err != nil {
			return fmt.Errorf("linux.resources.rdma[%q]: %w", dev, err)
		}
	}
	return nil
}
