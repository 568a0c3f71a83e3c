package cgroups

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// UpdateFlags are the per-field flags of `runc update`, as strings exactly
// as given on the command line ("" = flag not given). The CLI fills this and
// calls Resources; it needs no parsing of its own.
type UpdateFlags struct {
	BlkioWeight       string // --blkio-weight
	CPUPeriod         string // --cpu-period
	CPUQuota          string // --cpu-quota
	CPUBurst          string // --cpu-burst
	CPUShare          string // --cpu-share
	CPURtPeriod       string // --cpu-rt-period
	CPURtRuntime      string // --cpu-rt-runtime
	CpusetCpus        string // --cpuset-cpus
	CpusetMems        string // --cpuset-mems
	CPUIdle           string // --cpu-idle
	Memory            string // --memory (units allowed: 512m, 1g)
	MemoryReservation string // --memory-reservation
	MemorySwap        string // --memory-swap ("-1" = unlimited)
	PidsLimit         string // --pids-limit
	KernelMemory      string // --kernel-memory (ignored, as runc)
	KernelMemoryTCP   string // --kernel-memory-tcp (ignored, as runc)
}

// Resources turns the flags into the partial resources they ask for; nil
// fields are left as they are by MergeUpdate. Errors name the flag.
func (f UpdateFlags) Resources() (*specs.LinuxResources, error) {
	r := &specs.LinuxResources{}
	mem := func() *specs.LinuxMemory {
		if r.Memory == nil {
			r.Memory = &specs.LinuxMemory{}
		}
		return r.Memory
	}
	cpu := func() *specs.LinuxCPU {
		if r.CPU == nil {
			r.CPU = &specs.LinuxCPU{}
		}
		return r.CPU
	}
	if f.BlkioWeight != "" {
		v, err := strconv.ParseUint(f.BlkioWeight, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("invalid value for --blkio-weight: %q", f.BlkioWeight)
		}
		if v != 0 {
			w := uint16(v)
			r.BlockIO = &specs.LinuxBlockIO{Weight: &w}
		}
	}
	for _, u := range []struct {
		flag, val string
		dst       func() **uint64
	}{
		{"--cpu-period", f.CPUPeriod, func() **uint64 { return &cpu().Period }},
		{"--cpu-burst", f.CPUBurst, func() **uint64 { return &cpu().Burst }},
		{"--cpu-share", f.CPUShare, func() **uint64 { return &cpu().Shares }},
		{"--cpu-rt-period", f.CPURtPeriod, func() **uint64 { return &cpu().RealtimePeriod }},
	} {
		if u.val == "" {
			continue
		}
		v, err := strconv.ParseUint(u.val, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("invalid value for %s: %q", u.flag, u.val)
		}
		*u.dst() = &v
	}
	for _, u := range []struct {
		flag, val string
		dst       func() **int64
	}{
		{"--cpu-quota", f.CPUQuota, func() **int64 { return &cpu().Quota }},
		{"--cpu-rt-runtime", f.CPURtRuntime, func() **int64 { return &cpu().RealtimeRuntime }},
		{"--cpu-idle", f.CPUIdle, func() **int64 { return &cpu().Idle }},
	} {
		if u.val == "" {
			continue
		}
		v, err := strconv.ParseInt(u.val, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("invalid value for %s: %q", u.flag, u.val)
		}
		*u.dst() = &v
	}
	if f.CpusetCpus != "" {
		cpu().Cpus = f.CpusetCpus
	}
	if f.CpusetMems != "" {
		cpu().Mems = f.CpusetMems
	}
	for _, u := range []struct {
		flag, val string
		dst       func() **int64
	}{
		{"--memory", f.Memory, func() **int64 { return &mem().Limit }},
		{"--memory-reservation", f.MemoryReservation, func() **int64 { return &mem().Reservation }},
		{"--memory-swap", f.MemorySwap, func() **int64 { return &mem().Swap }},
	} {
		if u.val == "" {
			continue
		}
		v, err := RAMInBytes(u.val)
		if err != nil {
			return nil, fmt.Errorf("invalid value for %s: %w", u.flag, err)
		}
		*u.dst() = &v
	}
	if f.PidsLimit != "" {
		v, err := strconv.ParseInt(f.PidsLimit, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("invalid value for --pids-limit: %q", f.PidsLimit)
		}
		// runc passes 0 (flag absent) through as "no change"; any
		// value given is applied, <= 0 meaning unlimited.
		r.Pids = &specs.LinuxPids{Limit: &v}
	}
	return r, nil
}

// IgnoredFlags names the flags that were given but are ignored (runc warns
// about the same ones).
func (f UpdateFlags) IgnoredFlags() []string {
	var out []string
	if f.KernelMemory != "" {
		out = append(out, "--kernel-memory")
	}
	if f.KernelMemoryTCP != "" {
		out = append(out, "--kernel-memory-tcp")
	}
	return out
}

// RAMInBytes parses a memory size as runc's flags accept it: a number with
// an optional binary unit (k, m, g, t, p; "b", "ib" suffixes allowed, any
// case), or "-1" for unlimited.
func RAMInBytes(s string) (int64, error) {
	if s == "-1" {
		return -1, nil
	}
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(t, "b")
	t = strings.TrimSuffix(t, "i")
	mult := 1.0
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'k':
			mult = 1 << 10
		case 'm':
			mult = 1 << 20
		case 'g':
			mult = 1 << 30
		case 't':
			mult = 1 << 40
		case 'p':
			mult = 1 << 50
		}
		if mult != 1 {
			t = t[:n-1]
		}
	}
	t = strings.TrimSpace(t)
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || t == "" || strings.ContainsAny(t, "eE+-xXpPnN") {
		return 0, fmt.Errorf("%q is not a size (e.g. 512m, 1g, 1048576)", s)
	}
	b := v * mult
	if b >= math.MaxInt64 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return int64(b), nil
}

// MergeUpdate applies an update on top of the resources the container
// runs with (persisted by the runtime) the way runc's update does, and
// returns the result for Manager.Set and for persisting. Fields upd leaves
// nil keep their value; a memory limit of -1 without a swap value makes
// swap unlimited too; cpus/mems and unified are taken from upd when given.
// Devices are never changed.
func MergeUpdate(cur, upd *specs.LinuxResources) *specs.LinuxResources {
	out := &specs.LinuxResources{}
	if cur != nil {
		c := *cur
		out = &c
		if cur.Memory != nil {
			m := *cur.Memory
			out.Memory = &m
		}
		if cur.CPU != nil {
			c := *cur.CPU
			out.CPU = &c
		}
		if cur.BlockIO != nil {
			b := *cur.BlockIO
			out.BlockIO = &b
		}
		if cur.Pids != nil {
			p := *cur.Pids
			out.Pids = &p
		}
	}
	if upd == nil {
		return out
	}
	if m := upd.Memory; m != nil {
		if out.Memory == nil {
			out.Memory = &specs.LinuxMemory{}
		}
		o := out.Memory
		setI(&o.Limit, m.Limit)
		setI(&o.Reservation, m.Reservation)
		setI(&o.Swap, m.Swap)
		if m.Limit != nil && *m.Limit == -1 && m.Swap == nil {
			v := int64(-1)
			o.Swap = &v
		}
		if m.Swappiness != nil {
			o.Swappiness = m.Swappiness
		}
		if m.DisableOOMKiller != nil {
			o.DisableOOMKiller = m.DisableOOMKiller
		}
		if m.CheckBeforeUpdate != nil {
			o.CheckBeforeUpdate = m.CheckBeforeUpdate
		}
	}
	if c := upd.CPU; c != nil {
		if out.CPU == nil {
			out.CPU = &specs.LinuxCPU{}
		}
		o := out.CPU
		setU(&o.Shares, c.Shares)
		setI(&o.Quota, c.Quota)
		setU(&o.Burst, c.Burst)
		setU(&o.Period, c.Period)
		setI(&o.RealtimeRuntime, c.RealtimeRuntime)
		setU(&o.RealtimePeriod, c.RealtimePeriod)
		setI(&o.Idle, c.Idle)
		if c.Cpus != "" {
			o.Cpus = c.Cpus
		}
		if c.Mems != "" {
			o.Mems = c.Mems
		}
	}
	if b := upd.BlockIO; b != nil {
		if out.BlockIO == nil {
			out.BlockIO = &specs.LinuxBlockIO{}
		}
		if b.Weight != nil {
			out.BlockIO.Weight = b.Weight
		}
		if b.LeafWeight != nil {
			out.BlockIO.LeafWeight = b.LeafWeight
		}
		if b.WeightDevice != nil {
			out.BlockIO.WeightDevice = b.WeightDevice
		}
		if b.ThrottleReadBpsDevice != nil {
			out.BlockIO.ThrottleReadBpsDevice = b.ThrottleReadBpsDevice
		}
		if b.ThrottleWriteBpsDevice != nil {
			out.BlockIO.ThrottleWriteBpsDevice = b.ThrottleWriteBpsDevice
		}
		if b.ThrottleReadIOPSDevice != nil {
			out.BlockIO.ThrottleReadIOPSDevice = b.ThrottleReadIOPSDevice
		}
		if b.ThrottleWriteIOPSDevice != nil {
			out.BlockIO.ThrottleWriteIOPSDevice = b.ThrottleWriteIOPSDevice
		}
	}
	if upd.Pids != nil && upd.Pids.Limit != nil {
		out.Pids = &specs.LinuxPids{Limit: upd.Pids.Limit}
	}
	if upd.HugepageLimits != nil {
		out.HugepageLimits = upd.HugepageLimits
	}
	if upd.Network != nil {
		out.Network = upd.Network
	}
	if upd.Rdma != nil {
		out.Rdma = upd.Rdma
	}
	if upd.Unified != nil {
		out.Unified = upd.Unified
	}
	return out
}

func setI(dst **int64, v *int64) {
	if v != nil {
		x := *v
		*dst = &x
	}
}

func setU(dst **uint64, v *uint64) {
	if v != nil {
		x := *v
		*dst = &x
	}
}
