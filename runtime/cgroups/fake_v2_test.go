package cgroups

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// fakeV2 builds a cgroup2 tree under a temp dir with the files a v2 kernel
// would show (this host has no v2 memory/cpu/io/pids controllers, so these
// mappings are tested against files), and returns the root and the leaf
// "hako/c1" (pre-created, as the kernel would populate it on mkdir).
func fakeV2(t *testing.T, withLeaf bool) (root, leaf string) {
	t.Helper()
	root = t.TempDir()
	write := func(dir, name, val string) {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(val), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(root, "cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma\n")
	write(root, "cgroup.subtree_control", "")
	write(root, "cpuset.cpus.effective", "0-1\n")
	write(root, "cpuset.mems.effective", "0\n")
	leaf = filepath.Join(root, "hako", "c1")
	if !withLeaf {
		return root, leaf
	}
	write(filepath.Join(root, "hako"), "cgroup.subtree_control", "")
	for name, val := range map[string]string{
		"cgroup.procs": "", "cgroup.freeze": "0\n", "cgroup.events": "populated 1\nfrozen 0\n", "cgroup.kill": "",
		"memory.max": "max\n", "memory.swap.max": "max\n", "memory.low": "0\n", "memory.high": "max\n",
		"cpu.weight": "100\n", "cpu.max": "max 100000\n", "cpu.max.burst": "0\n", "cpu.idle": "0\n",
		"cpuset.cpus": "", "cpuset.mems": "", "cpuset.cpus.effective": "0-1\n", "cpuset.mems.effective": "0\n",
		"pids.max": "max\n", "pids.current": "3\n", "io.weight": "default 100\n", "io.max": "", "rdma.max": "",
		"hugetlb.2MB.max": "max\n", "hugetlb.2MB.rsvd.max": "max\n", "hugetlb.2MB.current": "2097152\n", "hugetlb.2MB.events": "max 4\n",
		"memory.stat":    "anon 1000\nfile 2000\nkernel 300\n",
		"memory.current": "3000\n", "memory.peak": "5000\n", "memory.events": "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\n",
		"memory.swap.current": "100\n", "memory.swap.peak": "200\n", "memory.swap.events": "max 0\n",
		"memory.pressure": "some avg10=1.50 avg60=0.00 avg300=0.00 total=42\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=7\n",
		"cpu.stat":        "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\nnr_throttled 2\nthrottled_usec 30\n",
		"cpu.pressure":    "some avg10=0.00 avg60=0.00 avg300=0.00 total=1\n",
		"io.stat":         "254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
	} {
		write(leaf, name, val)
	}
	return root, leaf
}

func fakeManager(t *testing.T, root string) *manager {
	t.Helper()
	c := Config{ID: "c1", Root: root, Logger: quiet}
	spec, err := parsePath(c)
	if err != nil {
		t.Fatal(err)
	}
	m, err := newFrom(c, root, spec, []byte("28 20 0:25 / "+root+" rw - cgroup2 cgroup2 rw,nsdelegate\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.mode != ModeUnified {
		t.Fatalf("mode %v, want v2", m.mode)
	}
	return m
}

func readTrim(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func hasHugepages2MB() bool {
	_, err := os.Stat(filepath.Join(hugepageDir, "hugepages-2048kB"))
	return err == nil
}

func TestFakeV2Apply(t *testing.T) {
	root, leaf := fakeV2(t, true)
	m := fakeManager(t, root)
	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(96 << 20), Reservation: i64(32 << 20), Swappiness: u64(10)},
		CPU:    &specs.LinuxCPU{Shares: u64(1024), Quota: i64(50000), Period: u64(100000), Burst: u64(10000), Cpus: "1", Mems: "0", Idle: i64(0)},
		Pids:   &specs.LinuxPids{Limit: i64(42)},
		BlockIO: &specs.LinuxBlockIO{Weight: u16(500),
			ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 254, Minor: 0}, Rate: 1 << 20}}},
		Rdma:    map[string]specs.LinuxRdma{"mlx5_0": {HcaHandles: u32(3), HcaObjects: u32(100)}},
		Unified: map[string]string{"memory.high": "50000000"},
	}
	if hasHugepages2MB() {
		r.HugepageLimits = []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}}
	}
	if err := m.Create(r); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"memory.max": "67108864", "memory.swap.max": "33554432", "memory.low": "33554432",
		"cpu.weight": "100", "cpu.max": "50000 100000", "cpu.max.burst": "10000", "cpu.idle": "0",
		"cpuset.cpus": "1", "cpuset.mems": "0", "pids.max": "42", "io.weight": "4950", "io.max": "254:0 rbps=1048576",
		"rdma.max": "mlx5_0 hca_handle=3 hca_object=100", "memory.high": "50000000",
	}
	if hasHugepages2MB() {
		want["hugetlb.2MB.max"] = "4194304"
		want["hugetlb.2MB.rsvd.max"] = "4194304"
	}
	for f, v := range want {
		if got := readTrim(t, leaf, f); got != v {
			t.Errorf("%s = %q, want %q", f, got, v)
		}
	}
	if got := readTrim(t, root, "cgroup.subtree_control"); got != "+cpuset +cpu +io +memory +hugetlb +pids +rdma" {
		t.Errorf("root subtree_control %q", got)
	}

	// Update: only what is given changes; memory -1 makes swap max.
	if err := m.Set(MergeUpdate(r, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(-1)}, CPU: &specs.LinuxCPU{Quota: i64(-1)}})); err != nil {
		t.Fatal(err)
	}
	for f, v := range map[string]string{"memory.max": "max", "memory.swap.max": "max", "cpu.max": "max 100000"} {
		if got := readTrim(t, leaf, f); got != v {
			t.Errorf("after update %s = %q, want %q", f, got, v)
		}
	}

	// checkBeforeUpdate refuses a limit below memory.current (3000 here).
	err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(2048), CheckBeforeUpdate: boolp(true)}})
	if err == nil || !strings.Contains(err.Error(), "linux.resources.memory.limit: 2048 is below the current usage 3000") {
		t.Fatalf("checkBeforeUpdate: err = %v", err)
	}
	if got := readTrim(t, leaf, "memory.max"); got != "max" {
		t.Fatalf("refused update still wrote memory.max = %q", got)
	}
}

func TestFakeV2Stats(t *testing.T) {
	root, _ := fakeV2(t, true)
	m := fakeManager(t, root)
	s, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.CPU.Usage.Total != 1500000 || s.CPU.Usage.User != 1000000 || s.CPU.Usage.Kernel != 500000 ||
		s.CPU.Throttling != (Throttling{Periods: 10, ThrottledPeriods: 2, ThrottledTime: 30000}) {
		t.Errorf("cpu %+v", s.CPU)
	}
	if s.Memory.Usage != (MemoryEntry{Limit: 1<<64 - 1, Usage: 3000, Max: 5000, Failcnt: 7}) || s.Memory.Cache != 2000 || s.Memory.Raw["anon"] != 1000 {
		t.Errorf("memory %+v", s.Memory)
	}
	if s.Memory.Swap.Usage != 3100 || s.Memory.Swap.Max != 0 {
		t.Errorf("swap must be memory+swap as runc reports it: %+v", s.Memory.Swap)
	}
	if s.Memory.PSI == nil || s.Memory.PSI.Some.Avg10 != 1.5 || s.Memory.PSI.Full.Total != 7 {
		t.Errorf("memory psi %+v", s.Memory.PSI)
	}
	if s.Pids != (Pids{Current: 3, Limit: 0}) {
		t.Errorf("pids %+v", s.Pids)
	}
	if !slices.Equal(s.CPUSet.CPUs, []uint16{0, 1}) || !slices.Equal(s.CPUSet.Mems, []uint16{0}) {
		t.Errorf("cpuset %+v", s.CPUSet)
	}
	wantIO := []BlkioEntry{{254, 0, "Read", 4096}, {254, 0, "Write", 8192}}
	if !slices.Equal(s.Blkio.IoServiceBytesRecursive, wantIO) || len(s.Blkio.IoServicedRecursive) != 2 {
		t.Errorf("blkio %+v", s.Blkio)
	}
	if hasHugepages2MB() && s.Hugetlb["2MB"] != (Hugetlb{Usage: 2 << 20, Failcnt: 4}) {
		t.Errorf("hugetlb %+v", s.Hugetlb)
	}
	if _, err := json.Marshal(s); err != nil {
		t.Fatal(err)
	}
}

func TestFakeV2OOMEvents(t *testing.T) {
	root, leaf := fakeV2(t, true)
	m := fakeManager(t, root)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := m.OOMEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Two more kills than the initial count of 1.
	if err := os.WriteFile(filepath.Join(leaf, "memory.events"), []byte("max 9\noom 3\noom_kill 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("oom event %d not delivered", i)
		}
	}
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("a third event was delivered for two kills")
		}
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("event after cancel")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed after cancel")
	}
}

// entries lists everything under dir, to prove a failed Create left
// nothing behind.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		out = append(out, p)
		return nil
	})
	return out
}

func TestFakeV2BadInputLeavesNothing(t *testing.T) {
	root, _ := fakeV2(t, false)
	before := entries(t, root)
	cases := map[string]*specs.LinuxResources{
		"linux.resources.memory.swap":                {Memory: &specs.LinuxMemory{Swap: i64(1 << 20)}},
		"linux.resources.cpu.quota":                  {CPU: &specs.LinuxCPU{Quota: i64(10)}},
		"linux.resources.cpu.period":                 {CPU: &specs.LinuxCPU{Period: u64(10)}},
		"linux.resources.devices[0]":                 {Devices: []specs.LinuxDeviceCgroup{{Type: "q"}}},
		"linux.resources.cpu.cpus":                   {CPU: &specs.LinuxCPU{Cpus: "5"}}, // not in cpuset.cpus.effective "0-1"
		"linux.resources.cpu.mems":                   {CPU: &specs.LinuxCPU{Mems: "zero"}},
		`linux.resources.unified["misc.max"]`:        {Unified: map[string]string{"misc.max": "x 1"}}, // misc not in cgroup.controllers
		"linux.resources.network":                    {Network: &specs.LinuxNetwork{ClassID: u32(7)}},
		"linux.resources.cpu.realtimeRuntime":        {CPU: &specs.LinuxCPU{RealtimeRuntime: i64(1000)}},
		"linux.resources.hugepageLimits[0].pageSize": {HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "3MB", Limit: 1}}},
		// Passes validation; fails on the first write (the fake leaf has
		// no files), so Create must roll back the dirs it made.
		"linux.resources.memory.limit": {Memory: &specs.LinuxMemory{Limit: i64(1 << 30)}},
	}
	for field, r := range cases {
		m := fakeManager(t, root)
		err := m.Create(r)
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: err = %v, want it to name the field", field, err)
		}
		if after := entries(t, root); !slices.Equal(before, after) {
			t.Errorf("%s: tree changed: %v -> %v", field, before, after)
		}
	}
}
