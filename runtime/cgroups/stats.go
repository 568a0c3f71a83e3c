package cgroups

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Stats is the "data" of a `runc events --stats` event: the same JSON
// field names and omission rules as runc's types/events.go, so tools that
// parse runc's output (containerd's runc shim, monitoring scripts) parse
// ours.
type Stats struct {
	CPU               CPU                `json:"cpu"`
	CPUSet            CPUSet             `json:"cpuset"`
	Memory            Memory             `json:"memory"`
	Pids              Pids               `json:"pids"`
	Blkio             Blkio              `json:"blkio"`
	Hugetlb           map[string]Hugetlb `json:"hugetlb"`
	IntelRdt          IntelRdt           `json:"intel_rdt"`
	NetworkInterfaces []*struct{}        `json:"network_interfaces"`
}

// Event is one line of `runc events` output.
type Event struct {
	Type string `json:"type"` // "stats" or "oom"
	ID   string `json:"id"`
	Data any    `json:"data,omitempty"`
}

// IntelRdt is always empty: hako does not manage resctrl. It is present so
// the JSON has runc's shape.
type IntelRdt struct{}

// Hugetlb is one huge page size's usage.
type Hugetlb struct {
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

// BlkioEntry is one device/operation counter.
type BlkioEntry struct {
	Major uint64 `json:"major,omitempty"`
	Minor uint64 `json:"minor,omitempty"`
	Op    string `json:"op,omitempty"`
	Value uint64 `json:"value,omitempty"`
}

// Blkio are the block I/O counters.
type Blkio struct {
	IoServiceBytesRecursive []BlkioEntry `json:"ioServiceBytesRecursive,omitempty"`
	IoServicedRecursive     []BlkioEntry `json:"ioServicedRecursive,omitempty"`
	IoQueuedRecursive       []BlkioEntry `json:"ioQueueRecursive,omitempty"`
	IoServiceTimeRecursive  []BlkioEntry `json:"ioServiceTimeRecursive,omitempty"`
	IoWaitTimeRecursive     []BlkioEntry `json:"ioWaitTimeRecursive,omitempty"`
	IoMergedRecursive       []BlkioEntry `json:"ioMergedRecursive,omitempty"`
	IoTimeRecursive         []BlkioEntry `json:"ioTimeRecursive,omitempty"`
	SectorsRecursive        []BlkioEntry `json:"sectorsRecursive,omitempty"`
	PSI                     *PSIStats    `json:"psi,omitempty"`
}

// Pids is the process count and limit (0 = unlimited).
type Pids struct {
	Current uint64 `json:"current,omitempty"`
	Limit   uint64 `json:"limit,omitempty"`
}

// Throttling is CFS bandwidth throttling (time in ns).
type Throttling struct {
	Periods          uint64 `json:"periods,omitempty"`
	ThrottledPeriods uint64 `json:"throttledPeriods,omitempty"`
	ThrottledTime    uint64 `json:"throttledTime,omitempty"`
}

// CPUUsage is CPU time in nanoseconds.
type CPUUsage struct {
	Total        uint64   `json:"total,omitempty"`
	Percpu       []uint64 `json:"percpu,omitempty"`
	PercpuKernel []uint64 `json:"percpu_kernel,omitempty"`
	PercpuUser   []uint64 `json:"percpu_user,omitempty"`
	Kernel       uint64   `json:"kernel"`
	User         uint64   `json:"user"`
}

// CPU is CPU usage and throttling.
type CPU struct {
	Usage      CPUUsage   `json:"usage,omitempty"`
	Throttling Throttling `json:"throttling,omitempty"`
	PSI        *PSIStats  `json:"psi,omitempty"`
}

// CPUSet is the cpuset configuration as the kernel reports it.
type CPUSet struct {
	CPUs                  []uint16 `json:"cpus,omitempty"`
	CPUExclusive          uint64   `json:"cpu_exclusive"`
	Mems                  []uint16 `json:"mems,omitempty"`
	MemHardwall           uint64   `json:"mem_hardwall"`
	MemExclusive          uint64   `json:"mem_exclusive"`
	MemoryMigrate         uint64   `json:"memory_migrate"`
	MemorySpreadPage      uint64   `json:"memory_spread_page"`
	MemorySpreadSlab      uint64   `json:"memory_spread_slab"`
	MemoryPressure        uint64   `json:"memory_pressure"`
	SchedLoadBalance      uint64   `json:"sched_load_balance"`
	SchedRelaxDomainLevel int64    `json:"sched_relax_domain_level"`
}

// MemoryEntry is one memory counter group (bytes).
type MemoryEntry struct {
	Limit   uint64 `json:"limit"`
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

// Memory is memory usage. Swap is memory+swap, as on v1, on both versions.
type Memory struct {
	Cache     uint64            `json:"cache,omitempty"`
	Usage     MemoryEntry       `json:"usage,omitempty"`
	Swap      MemoryEntry       `json:"swap,omitempty"`
	Kernel    MemoryEntry       `json:"kernel,omitempty"`
	KernelTCP MemoryEntry       `json:"kernelTCP,omitempty"`
	Raw       map[string]uint64 `json:"raw,omitempty"`
	PSI       *PSIStats         `json:"psi,omitempty"`
}

// PSIData is one line of a *.pressure file.
type PSIData struct {
	Avg10  float64 `json:"avg10"`
	Avg60  float64 `json:"avg60"`
	Avg300 float64 `json:"avg300"`
	Total  uint64  `json:"total"`
}

// PSIStats is a *.pressure file (cgroup v2 only).
type PSIStats struct {
	Some PSIData `json:"some,omitzero"`
	Full PSIData `json:"full,omitzero"`
}

// Stats reads every controller's counters from the hierarchy the host has
// it in. A controller the host lacks leaves its section zero, as runc does.
func (m *manager) Stats() (*Stats, error) {
	s := &Stats{Hugetlb: map[string]Hugetlb{}}
	type reader struct {
		ctrl string
		v1   func(dir string, s *Stats) error
		v2   func(dir string, s *Stats) error
	}
	for _, r := range []reader{
		{"cpu", cpuStatsV1, cpuStatsV2},
		{"cpuacct", cpuacctStatsV1, nil},
		{"cpuset", func(d string, s *Stats) error { return cpusetStats(d, s, false) }, func(d string, s *Stats) error { return cpusetStats(d, s, true) }},
		{"memory", memoryStatsV1, memoryStatsV2},
		{"pids", pidsStats, pidsStats},
		{"blkio", blkioStatsV1, ioStatsV2},
		{"hugetlb", hugetlbStatsV1, hugetlbStatsV2},
	} {
		h, err := m.place(r.ctrl)
		if err != nil {
			continue // controller absent: nothing to report
		}
		f := r.v1
		if h.Unified {
			f = r.v2
		}
		if f == nil {
			continue
		}
		if err := f(h.Path, s); err != nil {
			return nil, fmt.Errorf("%s stats: %w", r.ctrl, err)
		}
	}
	return s, nil
}

func cpuStatsV1(dir string, s *Stats) error {
	kv, err := readKV(dir, "cpu.stat")
	if err != nil {
		return err
	}
	s.CPU.Throttling = Throttling{Periods: kv["nr_periods"], ThrottledPeriods: kv["nr_throttled"], ThrottledTime: kv["throttled_time"]}
	return nil
}

// clockTicks is USER_HZ, the unit of cpuacct.stat; 100 on every Linux
// architecture Go supports.
const clockTicks = 100

func cpuacctStatsV1(dir string, s *Stats) error {
	total, err := readUint(dir, "cpuacct.usage")
	if err != nil {
		return err
	}
	s.CPU.Usage.Total = total
	kv, err := readKV(dir, "cpuacct.stat")
	if err != nil {
		return err
	}
	s.CPU.Usage.User = kv["user"] * (1e9 / clockTicks)
	s.CPU.Usage.Kernel = kv["system"] * (1e9 / clockTicks)
	pc, err := readFile(dir, "cpuacct.usage_percpu")
	if err != nil {
		return err
	}
	for f := range strings.FieldsSeq(pc) {
		v, err := parseUint(f, dir+"/cpuacct.usage_percpu")
		if err != nil {
			return err
		}
		s.CPU.Usage.Percpu = append(s.CPU.Usage.Percpu, v)
	}
	// cpuacct.usage_all: "cpu user system" per line (Linux 4.7+).
	all, err := readFile(dir, "cpuacct.usage_all")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for i, line := range strings.Split(all, "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) != 3 {
			continue // header "cpu user system"
		}
		u, err1 := strconv.ParseUint(f[1], 10, 64)
		k, err2 := strconv.ParseUint(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("parse %s/cpuacct.usage_all line %q", dir, line)
		}
		s.CPU.Usage.PercpuUser = append(s.CPU.Usage.PercpuUser, u)
		s.CPU.Usage.PercpuKernel = append(s.CPU.Usage.PercpuKernel, k)
	}
	return nil
}

func cpuStatsV2(dir string, s *Stats) error {
	kv, err := readKV(dir, "cpu.stat")
	if err != nil {
		return err
	}
	s.CPU.Usage.Total = kv["usage_usec"] * 1000
	s.CPU.Usage.User = kv["user_usec"] * 1000
	s.CPU.Usage.Kernel = kv["system_usec"] * 1000
	s.CPU.Throttling = Throttling{Periods: kv["nr_periods"], ThrottledPeriods: kv["nr_throttled"], ThrottledTime: kv["throttled_usec"] * 1000}
	s.CPU.PSI, err = readPSI(dir, "cpu.pressure")
	return err
}

func cpusetStats(dir string, s *Stats, v2 bool) error {
	cpusFile, memsFile := "cpuset.effective_cpus", "cpuset.effective_mems"
	if v2 {
		cpusFile, memsFile = "cpuset.cpus.effective", "cpuset.mems.effective"
	}
	for _, f := range []struct {
		file string
		dst  *[]uint16
	}{{cpusFile, &s.CPUSet.CPUs}, {memsFile, &s.CPUSet.Mems}} {
		v, err := readFile(dir, f.file)
		if err != nil {
			return err
		}
		list, err := parseList(v)
		if err != nil {
			return fmt.Errorf("%s/%s: %w", dir, f.file, err)
		}
		for _, n := range list {
			*f.dst = append(*f.dst, uint16(n))
		}
	}
	if v2 {
		return nil
	}
	for _, f := range []struct {
		file string
		dst  *uint64
	}{
		{"cpuset.cpu_exclusive", &s.CPUSet.CPUExclusive}, {"cpuset.mem_hardwall", &s.CPUSet.MemHardwall},
		{"cpuset.mem_exclusive", &s.CPUSet.MemExclusive}, {"cpuset.memory_migrate", &s.CPUSet.MemoryMigrate},
		{"cpuset.memory_spread_page", &s.CPUSet.MemorySpreadPage}, {"cpuset.memory_spread_slab", &s.CPUSet.MemorySpreadSlab},
		{"cpuset.memory_pressure", &s.CPUSet.MemoryPressure}, {"cpuset.sched_load_balance", &s.CPUSet.SchedLoadBalance},
	} {
		v, err := readUint(dir, f.file)
		if err != nil {
			return err
		}
		*f.dst = v
	}
	lvl, err := readFile(dir, "cpuset.sched_relax_domain_level")
	if err != nil {
		return err
	}
	if s.CPUSet.SchedRelaxDomainLevel, err = strconv.ParseInt(strings.TrimSpace(lvl), 10, 64); err != nil {
		return fmt.Errorf("parse %s/cpuset.sched_relax_domain_level: %w", dir, err)
	}
	return nil
}

// memEntryV1 reads memory.[prefix.]{usage_in_bytes,max_usage_in_bytes,
// failcnt,limit_in_bytes}. A missing prefix group (memsw without swap
// accounting) reads as zero.
func memEntryV1(dir, prefix string) (MemoryEntry, error) {
	p := "memory."
	if prefix != "" {
		p += prefix + "."
	}
	var e MemoryEntry
	for _, f := range []struct {
		name string
		dst  *uint64
	}{{"usage_in_bytes", &e.Usage}, {"max_usage_in_bytes", &e.Max}, {"failcnt", &e.Failcnt}, {"limit_in_bytes", &e.Limit}} {
		v, err := readUint(dir, p+f.name)
		if err != nil {
			if prefix != "" && errors.Is(err, os.ErrNotExist) {
				return MemoryEntry{}, nil
			}
			return MemoryEntry{}, err
		}
		*f.dst = v
	}
	return e, nil
}

func memoryStatsV1(dir string, s *Stats) error {
	raw, err := readKV(dir, "memory.stat")
	if err != nil {
		return err
	}
	s.Memory.Raw = raw
	s.Memory.Cache = raw["cache"]
	for _, f := range []struct {
		prefix string
		dst    *MemoryEntry
	}{{"", &s.Memory.Usage}, {"memsw", &s.Memory.Swap}, {"kmem", &s.Memory.Kernel}, {"kmem.tcp", &s.Memory.KernelTCP}} {
		if *f.dst, err = memEntryV1(dir, f.prefix); err != nil {
			return err
		}
	}
	return nil
}

func memoryStatsV2(dir string, s *Stats) error {
	raw, err := readKV(dir, "memory.stat")
	if err != nil {
		return err
	}
	s.Memory.Raw = raw
	s.Memory.Cache = raw["file"]
	entry := func(prefix string) (MemoryEntry, error) {
		var e MemoryEntry
		cur, err := readUint(dir, prefix+".current")
		if err != nil {
			return e, err
		}
		e.Usage = cur
		if e.Limit, err = readUint(dir, prefix+".max"); err != nil {
			return e, err
		}
		if e.Max, err = readUint(dir, prefix+".peak"); err != nil && !errors.Is(err, os.ErrNotExist) {
			return e, err
		}
		ev, err := readKV(dir, prefix+".events")
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return e, err
		}
		e.Failcnt = ev["max"]
		return e, nil
	}
	if s.Memory.Usage, err = entry("memory"); err != nil {
		return err
	}
	swap, err := entry("memory.swap")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	// runc reports v2 swap as memory+swap, like v1's memsw; peak cannot be
	// combined and is left out.
	swap.Usage += s.Memory.Usage.Usage
	if swap.Limit != math.MaxUint64 && s.Memory.Usage.Limit != math.MaxUint64 {
		swap.Limit += s.Memory.Usage.Limit
	} else {
		swap.Limit = math.MaxUint64
	}
	swap.Max = 0
	s.Memory.Swap = swap
	s.Memory.PSI, err = readPSI(dir, "memory.pressure")
	return err
}

func pidsStats(dir string, s *Stats) error {
	cur, err := readUint(dir, "pids.current")
	if err != nil {
		return err
	}
	lim, err := readUint(dir, "pids.max")
	if err != nil {
		return err
	}
	if lim == math.MaxUint64 {
		lim = 0
	}
	s.Pids = Pids{Current: cur, Limit: lim}
	return nil
}

// blkioStatsV1 reads the recursive counters from the first family present:
// CFQ's (kernels < 5.0), BFQ's, or the throttle layer's, as runc does.
func blkioStatsV1(dir string, s *Stats) error {
	for _, prefix := range []string{"blkio.", "blkio.bfq.", "blkio.throttle."} {
		if !exists(dir, prefix+"io_service_bytes_recursive") {
			continue
		}
		var err error
		if s.Blkio.IoServiceBytesRecursive, err = readBlkio(dir, prefix+"io_service_bytes_recursive"); err != nil {
			return err
		}
		if s.Blkio.IoServicedRecursive, err = readBlkio(dir, prefix+"io_serviced_recursive"); err != nil {
			return err
		}
		if prefix == "blkio." {
			for _, f := range []struct {
				name string
				dst  *[]BlkioEntry
			}{
				{"io_queued_recursive", &s.Blkio.IoQueuedRecursive}, {"io_service_time_recursive", &s.Blkio.IoServiceTimeRecursive},
				{"io_wait_time_recursive", &s.Blkio.IoWaitTimeRecursive}, {"io_merged_recursive", &s.Blkio.IoMergedRecursive},
				{"time_recursive", &s.Blkio.IoTimeRecursive}, {"sectors_recursive", &s.Blkio.SectorsRecursive},
			} {
				if *f.dst, err = readBlkio(dir, prefix+f.name); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return nil
}

// readBlkio parses "8:0 Read 4096" lines (and "8:0 4096" for time and
// sectors); the "Total N" summary line is skipped.
func readBlkio(dir, name string) ([]BlkioEntry, error) {
	s, err := readFile(dir, name)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []BlkioEntry
	for line := range strings.SplitSeq(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] == "Total" {
			continue
		}
		var e BlkioEntry
		if _, err := fmt.Sscanf(f[0], "%d:%d", &e.Major, &e.Minor); err != nil {
			return nil, fmt.Errorf("parse %s/%s line %q", dir, name, line)
		}
		val := f[1]
		if len(f) == 3 {
			e.Op, val = f[1], f[2]
		}
		if e.Value, err = strconv.ParseUint(val, 10, 64); err != nil {
			return nil, fmt.Errorf("parse %s/%s line %q", dir, name, line)
		}
		out = append(out, e)
	}
	return out, nil
}

// ioStatsV2 turns io.stat ("8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...") into
// the v1-shaped entries runc reports.
func ioStatsV2(dir string, s *Stats) error {
	txt, err := readFile(dir, "io.stat")
	if err != nil {
		return err
	}
	for line := range strings.SplitSeq(txt, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		var maj, min uint64
		if _, err := fmt.Sscanf(f[0], "%d:%d", &maj, &min); err != nil {
			return fmt.Errorf("parse %s/io.stat line %q", dir, line)
		}
		for _, kv := range f[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				continue
			}
			e := BlkioEntry{Major: maj, Minor: min, Value: n}
			switch k {
			case "rbytes":
				e.Op = "Read"
				s.Blkio.IoServiceBytesRecursive = append(s.Blkio.IoServiceBytesRecursive, e)
			case "wbytes":
				e.Op = "Write"
				s.Blkio.IoServiceBytesRecursive = append(s.Blkio.IoServiceBytesRecursive, e)
			case "rios":
				e.Op = "Read"
				s.Blkio.IoServicedRecursive = append(s.Blkio.IoServicedRecursive, e)
			case "wios":
				e.Op = "Write"
				s.Blkio.IoServicedRecursive = append(s.Blkio.IoServicedRecursive, e)
			}
		}
	}
	s.Blkio.PSI, err = readPSI(dir, "io.pressure")
	return err
}

// hugepageSizes lists the host's huge page sizes in hugetlb file spelling.
func hugepageSizes() ([]string, error) {
	ents, err := os.ReadDir(hugepageDir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []string
	for _, e := range ents {
		kb, ok := strings.CutPrefix(e.Name(), "hugepages-")
		kb, ok2 := strings.CutSuffix(kb, "kB")
		n, err := strconv.ParseUint(kb, 10, 64)
		if !ok || !ok2 || err != nil {
			continue
		}
		out = append(out, kernelPageSizeName(n<<10))
	}
	return out, nil
}

func hugetlbStatsV1(dir string, s *Stats) error {
	sizes, err := hugepageSizes()
	if err != nil {
		return err
	}
	for _, size := range sizes {
		var h Hugetlb
		p := "hugetlb." + size + "."
		for _, f := range []struct {
			name string
			dst  *uint64
		}{{"usage_in_bytes", &h.Usage}, {"max_usage_in_bytes", &h.Max}, {"failcnt", &h.Failcnt}} {
			if *f.dst, err = readUint(dir, p+f.name); err != nil {
				return err
			}
		}
		s.Hugetlb[size] = h
	}
	return nil
}

func hugetlbStatsV2(dir string, s *Stats) error {
	sizes, err := hugepageSizes()
	if err != nil {
		return err
	}
	for _, size := range sizes {
		p := "hugetlb." + size + "."
		if !exists(dir, p+"current") {
			continue // controller not enabled for this cgroup
		}
		var h Hugetlb
		if h.Usage, err = readUint(dir, p+"current"); err != nil {
			return err
		}
		ev, err := readKV(dir, p+"events")
		if err != nil {
			return err
		}
		h.Failcnt = ev["max"]
		s.Hugetlb[size] = h
	}
	return nil
}

// readPSI parses a *.pressure file; absent (PSI disabled) reads as nil.
func readPSI(dir, name string) (*PSIStats, error) {
	txt, err := readFile(dir, name)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.EOPNOTSUPP) {
			return nil, nil
		}
		return nil, err
	}
	var p PSIStats
	for line := range strings.SplitSeq(txt, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		var d *PSIData
		switch f[0] {
		case "some":
			d = &p.Some
		case "full":
			d = &p.Full
		default:
			continue
		}
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "avg10":
				d.Avg10, _ = strconv.ParseFloat(v, 64)
			case "avg60":
				d.Avg60, _ = strconv.ParseFloat(v, 64)
			case "avg300":
				d.Avg300, _ = strconv.ParseFloat(v, 64)
			case "total":
				d.Total, _ = strconv.ParseUint(v, 10, 64)
			}
		}
	}
	return &p, nil
}
