package cgroups

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func i64(v int64) *int64   { return &v }
func u64(v uint64) *uint64 { return &v }
func u16(v uint16) *uint16 { return &v }
func u32(v uint32) *uint32 { return &v }
func boolp(v bool) *bool   { return &v }

// hybridMountinfo is this development host's layout (Debian 12 VM):
// separate v1 mounts and cgroup2 at /sys/fs/cgroup/unified.
const hybridMountinfo = `22 1 0:21 / / rw,relatime - ext4 /dev/vda rw
30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
33 30 0:30 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
35 30 0:32 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
36 30 0:33 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
37 30 0:34 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
41 22 0:38 / /var/lib/other/sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
`

const selfCgroupHybrid = `9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/abc
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
`

// comountedMountinfo is a classic systemd v1 host: cpu,cpuacct co-mounted,
// the runtime inside a cgroup namespace (mount root not "/").
const comountedMountinfo = `25 20 0:22 /ns /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
26 20 0:23 /ns /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
27 20 0:24 /ns /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
`

const v2Mountinfo = `28 20 0:25 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`

func TestParseMountinfo(t *testing.T) {
	l, err := parseMountinfo([]byte(hybridMountinfo), "/sys/fs/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if l.mode != ModeHybrid || len(l.hier) != 10 {
		t.Fatalf("mode %v with %d hierarchies, want hybrid with 10", l.mode, len(l.hier))
	}
	if u := l.hier[len(l.hier)-1]; !u.Unified || u.Mountpoint != "/sys/fs/cgroup/unified" {
		t.Fatalf("last hierarchy %+v, want the unified one", u)
	}
	for _, h := range l.hier {
		if strings.HasPrefix(h.Mountpoint, "/var") {
			t.Fatalf("mount outside the root picked up: %s", h.Mountpoint)
		}
	}

	l, err = parseMountinfo([]byte(comountedMountinfo), "/sys/fs/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if l.mode != ModeV1 || len(l.hier) != 3 || !slices.Equal(l.hier[0].Controllers, []string{"cpu", "cpuacct"}) {
		t.Fatalf("got %+v", l)
	}
	if !slices.Equal(l.hier[2].Options, []string{"xattr", "name=systemd"}) || !slices.Equal(l.hier[2].Controllers, []string{"name=systemd"}) {
		t.Fatalf("systemd hierarchy %+v", l.hier[2])
	}

	l, err = parseMountinfo([]byte(v2Mountinfo), "/sys/fs/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if l.mode != ModeUnified || len(l.hier) != 1 || !slices.Equal(l.hier[0].Options, []string{"nsdelegate", "memory_recursiveprot"}) {
		t.Fatalf("got %+v", l)
	}

	if _, err := parseMountinfo([]byte("1 0 0:1 / / rw - ext4 /dev/vda rw\n"), "/sys/fs/cgroup"); err == nil {
		t.Fatal("no cgroup mounts: want an error")
	}
	if got := unescapeMountinfo(`/a\040b\134c`); got != `/a b\c` {
		t.Fatalf("unescape = %q", got)
	}
}

func newTest(t *testing.T, c Config, mountinfo, self string) (*manager, error) {
	t.Helper()
	root := c.Root
	if root == "" {
		root = DefaultRoot
	}
	spec, err := parsePath(c)
	if err != nil {
		return nil, err
	}
	return newFrom(c, root, spec, []byte(mountinfo), func() ([]byte, error) { return []byte(self), nil })
}

func TestPaths(t *testing.T) {
	cases := []struct {
		name  string
		c     Config
		mi    string
		want  map[string]string // mountpoint -> leaf
		error string
	}{
		{"default", Config{ID: "c1"}, hybridMountinfo, map[string]string{
			"/sys/fs/cgroup/cpu": "/sys/fs/cgroup/cpu/hako/c1", "/sys/fs/cgroup/unified": "/sys/fs/cgroup/unified/hako/c1"}, ""},
		{"absolute", Config{Path: "/a/b", ID: "c1"}, hybridMountinfo, map[string]string{
			"/sys/fs/cgroup/memory": "/sys/fs/cgroup/memory/a/b"}, ""},
		{"absolute with harmless dotdot", Config{Path: "/a/../b/./c", ID: "c1"}, hybridMountinfo, map[string]string{
			"/sys/fs/cgroup/pids": "/sys/fs/cgroup/pids/b/c"}, ""},
		{"relative follows own cgroup per hierarchy", Config{Path: "x/y", ID: "c1"}, hybridMountinfo, map[string]string{
			"/sys/fs/cgroup/memory": "/sys/fs/cgroup/memory/process_api/abc/x/y",
			"/sys/fs/cgroup/cpu":    "/sys/fs/cgroup/cpu/x/y"}, ""},
		{"relative may climb within the hierarchy", Config{Path: "../x", ID: "c1"}, hybridMountinfo, map[string]string{
			"/sys/fs/cgroup/memory": "/sys/fs/cgroup/memory/process_api/x"}, "climbs above"}, // cpu's own cgroup is "/": escapes
		{"absolute escaping root", Config{Path: "/../../etc", ID: "c1"}, hybridMountinfo, nil, `"..\" climbs above the cgroup root`},
		{"absolute escaping later", Config{Path: "/a/../../etc", ID: "c1"}, hybridMountinfo, nil, "climbs above the cgroup root"},
		{"root itself", Config{Path: "/", ID: "c1"}, hybridMountinfo, nil, "cgroup root itself"},
		{"systemd form without flag", Config{Path: "system.slice:hako:c1", ID: "c1"}, hybridMountinfo, nil, "needs --systemd-cgroup"},
		{"flag without systemd form", Config{Path: "/a/b", ID: "c1", Systemd: true}, hybridMountinfo, nil, "--systemd-cgroup needs the form"},
		{"systemd here", Config{Path: "system.slice:hako:c1", ID: "c1", Systemd: true}, hybridMountinfo, nil, "--systemd-cgroup"},
		{"bad id for default", Config{ID: "a/b"}, hybridMountinfo, nil, "cannot name a cgroup"},
		{"cgroupns mount root stripped", Config{Path: "k", ID: "c1"}, comountedMountinfo, map[string]string{
			"/sys/fs/cgroup/cpu,cpuacct": "/sys/fs/cgroup/cpu,cpuacct/sub/k"}, ""},
	}
	self := map[string]string{hybridMountinfo: selfCgroupHybrid, comountedMountinfo: "3:cpu,cpuacct:/ns/sub\n2:memory:/ns/sub\n1:name=systemd:/ns/sub\n"}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := newTest(t, c.c, c.mi, self[c.mi])
			if c.error != "" {
				if err == nil || !strings.Contains(err.Error(), strings.ReplaceAll(c.error, `\"`, `"`)) {
					t.Fatalf("err = %v, want it to contain %q", err, c.error)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for mp, want := range c.want {
				found := false
				for _, h := range m.hier {
					if h.Mountpoint == mp {
						found = true
						if h.Path != want {
							t.Errorf("%s: path %s, want %s", mp, h.Path, want)
						}
					}
				}
				if !found {
					t.Errorf("no hierarchy %s", mp)
				}
			}
		})
	}
}

func TestSystemdPath(t *testing.T) {
	for in, want := range map[string]string{
		"system.slice:docker:abc":     "/system.slice/docker-abc.scope",
		":hako:x":                     "/system.slice/hako-x.scope",
		"a-b-c.slice:p:n":             "/a.slice/a-b.slice/a-b-c.slice/p-n.scope",
		"-.slice:p:n":                 "/p-n.scope",
		"user.slice::machine.slice":   "/user.slice/machine.slice",
		"kubepods-pod1.slice:cri:abc": "/kubepods.slice/kubepods-pod1.slice/cri-abc.scope",
	} {
		got, err := systemdPath(in)
		if err != nil || got != want {
			t.Errorf("systemdPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"a:b:", "noslice:p:n", "a--b.slice:p:n", "-a.slice:p:n"} {
		if _, err := systemdPath(bad); err == nil {
			t.Errorf("systemdPath(%q): want an error", bad)
		}
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		r    specs.LinuxResources
		mode Mode
		want string // "" = valid
	}{
		{"empty", specs.LinuxResources{}, ModeV1, ""},
		{"swap without limit", specs.LinuxResources{Memory: &specs.LinuxMemory{Swap: i64(1 << 20)}}, ModeV1, "linux.resources.memory.swap: 1048576 set without memory.limit"},
		{"swap below limit", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(2 << 20), Swap: i64(1 << 20)}}, ModeHybrid, "linux.resources.memory.swap: 1048576 is less than memory.limit"},
		{"swap unlimited ok", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(2 << 20), Swap: i64(-1)}}, ModeV1, ""},
		{"negative limit", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(-5)}}, ModeV1, "linux.resources.memory.limit: -5"},
		{"swappiness", specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: u64(101)}}, ModeV1, "linux.resources.memory.swappiness: 101"},
		{"quota below minimum", specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(999)}}, ModeV1, "linux.resources.cpu.quota: 999 µs is below the kernel minimum of 1000 µs"},
		{"quota -1 ok", specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(-1)}}, ModeV1, ""},
		{"period too small", specs.LinuxResources{CPU: &specs.LinuxCPU{Period: u64(999)}}, ModeV1, "linux.resources.cpu.period: 999"},
		{"period too large", specs.LinuxResources{CPU: &specs.LinuxCPU{Period: u64(1000001)}}, ModeUnified, "linux.resources.cpu.period: 1000001"},
		{"burst without quota", specs.LinuxResources{CPU: &specs.LinuxCPU{Burst: u64(1000)}}, ModeV1, "linux.resources.cpu.burst: needs a cpu.quota"},
		{"burst above quota", specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(2000), Burst: u64(3000)}}, ModeV1, "linux.resources.cpu.burst: 3000"},
		{"cpus garbage", specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "0-x"}}, ModeV1, "linux.resources.cpu.cpus:"},
		{"cpus reversed range", specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "3-1"}}, ModeV1, "linux.resources.cpu.cpus:"},
		{"mems garbage", specs.LinuxResources{CPU: &specs.LinuxCPU{Mems: ",,"}}, ModeV1, "linux.resources.cpu.mems:"},
		{"idle 2", specs.LinuxResources{CPU: &specs.LinuxCPU{Idle: i64(2)}}, ModeV1, "linux.resources.cpu.idle"},
		{"realtime on v2", specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: i64(1000)}}, ModeUnified, "linux.resources.cpu.realtimeRuntime: cgroup v2"},
		{"realtime runtime above period", specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: i64(2000), RealtimePeriod: u64(1000)}}, ModeV1, "linux.resources.cpu.realtimeRuntime: 2000"},
		{"blkio weight", specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: u16(5)}}, ModeV1, "linux.resources.blockIO.weight: 5"},
		{"blkio device", specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: -1}, Rate: 1}}}}, ModeV1, "linux.resources.blockIO.throttleReadBpsDevice[0]"},
		{"device bad type", specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}, {Allow: true, Type: "x", Access: "r"}}}, ModeV1, `linux.resources.devices[1]: type "x"`},
		{"device bad access", specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Type: "c", Access: "rwz"}}}, ModeUnified, `linux.resources.devices[0]: access "rwz"`},
		{"unified on v1", specs.LinuxResources{Unified: map[string]string{"memory.high": "1"}}, ModeV1, "linux.resources.unified: the host has no cgroup v2"},
		{"unified path key", specs.LinuxResources{Unified: map[string]string{"../memory.max": "1"}}, ModeUnified, `linux.resources.unified["../memory.max"]`},
		{"unified procs key", specs.LinuxResources{Unified: map[string]string{"cgroup.procs": "1"}}, ModeUnified, "managed by the runtime"},
		{"hugepage size", specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2M", Limit: 1}}}, ModeV1, "linux.resources.hugepageLimits[0].pageSize"},
		{"network on v2", specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: u32(1)}}, ModeUnified, "linux.resources.network: net_cls/net_prio are cgroup v1"},
		{"rdma empty", specs.LinuxResources{Rdma: map[string]specs.LinuxRdma{"mlx": {}}}, ModeUnified, `linux.resources.rdma["mlx"]`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Validate(&c.r, c.mode)
			if c.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestConversions(t *testing.T) {
	for shares, want := range map[uint64]uint64{0: 0, 1: 1, 2: 1, 1024: 100, 262144: 10000, 999999: 10000, 512: 59, 4096: 303} {
		if got := SharesToWeight(shares); got != want {
			t.Errorf("SharesToWeight(%d) = %d, want %d", shares, got, want)
		}
	}
	for w, want := range map[uint16]uint64{0: 0, 10: 1, 1000: 10000, 500: 4950, 100: 910} {
		if got := BlkioWeightToIOWeight(w); got != want {
			t.Errorf("BlkioWeightToIOWeight(%d) = %d, want %d", w, got, want)
		}
	}
	swapCases := []struct {
		swap, limit int64
		want        int64
		set         bool
		err         bool
	}{
		{0, 0, 0, false, false},
		{0, -1, -1, true, false},
		{-1, 100, -1, true, false},
		{300, 100, 200, true, false},
		{100, 100, 0, true, false},
		{300, -1, 300, true, false},
		{300, 0, 0, false, true},
		{50, 100, 0, false, true},
	}
	for _, c := range swapCases {
		got, set, err := SwapToV2(c.swap, c.limit)
		if (err != nil) != c.err || got != c.want || set != c.set {
			t.Errorf("SwapToV2(%d,%d) = %d,%v,%v; want %d,%v,err=%v", c.swap, c.limit, got, set, err, c.want, c.set, c.err)
		}
	}
}

func TestParseList(t *testing.T) {
	got, err := parseList("0-2,5,1,7-8")
	if err != nil || !slices.Equal(got, []int{0, 1, 2, 5, 7, 8}) {
		t.Fatalf("got %v %v", got, err)
	}
	for _, bad := range []string{"a", "1-", "-1", "3-1", "1,,2", "70000"} {
		if _, err := parseList(bad); err == nil {
			t.Errorf("parseList(%q): want error", bad)
		}
	}
}

func TestPageSize(t *testing.T) {
	for in, want := range map[string]uint64{"2MB": 2 << 20, "1GB": 1 << 30, "64KB": 64 << 10} {
		got, err := parsePageSize(in)
		if err != nil || got != want {
			t.Errorf("parsePageSize(%q) = %d, %v", in, got, err)
		}
		if kernelPageSizeName(got) != in {
			t.Errorf("kernelPageSizeName(%d) = %q, want %q", got, kernelPageSizeName(got), in)
		}
	}
	for _, bad := range []string{"", "MB", "2mb", "2 MB", "0MB", "x2MB"} {
		if _, err := parsePageSize(bad); err == nil {
			t.Errorf("parsePageSize(%q): want error", bad)
		}
	}
}

func TestRAMInBytes(t *testing.T) {
	for in, want := range map[string]int64{"-1": -1, "1024": 1024, "1k": 1024, "512m": 512 << 20, "1g": 1 << 30, "1.5GiB": 3 << 29, "2 MB": 2 << 20, "10b": 10} {
		got, err := RAMInBytes(in)
		if err != nil || got != want {
			t.Errorf("RAMInBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "m", "-2", "1x", "1e9", "inf", "0x10"} {
		if _, err := RAMInBytes(bad); err == nil {
			t.Errorf("RAMInBytes(%q): want error", bad)
		}
	}
}

func TestUpdateFlags(t *testing.T) {
	r, err := UpdateFlags{Memory: "64m", MemorySwap: "-1", CPUQuota: "50000", CPUPeriod: "100000", CPUShare: "512",
		CpusetCpus: "0", PidsLimit: "20", BlkioWeight: "300", CPUIdle: "1"}.Resources()
	if err != nil {
		t.Fatal(err)
	}
	if *r.Memory.Limit != 64<<20 || *r.Memory.Swap != -1 || *r.CPU.Quota != 50000 || *r.CPU.Period != 100000 ||
		*r.CPU.Shares != 512 || r.CPU.Cpus != "0" || *r.Pids.Limit != 20 || *r.BlockIO.Weight != 300 || *r.CPU.Idle != 1 {
		b, _ := json.Marshal(r)
		t.Fatalf("resources %s", b)
	}
	if r.Memory.Reservation != nil || r.CPU.Burst != nil {
		t.Fatal("unset flags must stay nil")
	}
	for _, f := range []UpdateFlags{{Memory: "lots"}, {CPUQuota: "1.5"}, {CPUPeriod: "-1"}, {PidsLimit: "x"}, {BlkioWeight: "70000"}} {
		if _, err := f.Resources(); err == nil || !strings.Contains(err.Error(), "--") {
			t.Errorf("%+v: err = %v, want an error naming the flag", f, err)
		}
	}
	if got := (UpdateFlags{KernelMemory: "1m"}).IgnoredFlags(); !slices.Equal(got, []string{"--kernel-memory"}) {
		t.Errorf("IgnoredFlags = %v", got)
	}
}

func TestMergeUpdate(t *testing.T) {
	cur := &specs.LinuxResources{
		Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
		Memory:  &specs.LinuxMemory{Limit: i64(100 << 20), Swap: i64(200 << 20)},
		CPU:     &specs.LinuxCPU{Quota: i64(50000), Period: u64(100000), Cpus: "0-1"},
	}
	out := MergeUpdate(cur, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(-1)}, CPU: &specs.LinuxCPU{Quota: i64(20000)}})
	if *out.Memory.Limit != -1 || *out.Memory.Swap != -1 {
		t.Errorf("memory -1 without swap must make swap -1 too: %+v", out.Memory)
	}
	if *out.CPU.Quota != 20000 || *out.CPU.Period != 100000 || out.CPU.Cpus != "0-1" {
		t.Errorf("cpu %+v", out.CPU)
	}
	if len(out.Devices) != 1 {
		t.Error("devices must be kept for persisting")
	}
	if *cur.Memory.Limit != 100<<20 || *cur.CPU.Quota != 50000 {
		t.Error("MergeUpdate modified its input")
	}
}

func TestStatsJSONShape(t *testing.T) {
	// The field names and omissions runc's `events --stats` prints.
	b, err := json.Marshal(Event{Type: "stats", ID: "c", Data: &Stats{Hugetlb: map[string]Hugetlb{"2MB": {}}}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"stats","id":"c","data":{"cpu":{"usage":{"kernel":0,"user":0},"throttling":{}},` +
		`"cpuset":{"cpu_exclusive":0,"mem_hardwall":0,"mem_exclusive":0,"memory_migrate":0,"memory_spread_page":0,"memory_spread_slab":0,"memory_pressure":0,"sched_load_balance":0,"sched_relax_domain_level":0},` +
		`"memory":{"usage":{"limit":0,"failcnt":0},"swap":{"limit":0,"failcnt":0},"kernel":{"limit":0,"failcnt":0},"kernelTCP":{"limit":0,"failcnt":0}},` +
		`"pids":{},"blkio":{},"hugetlb":{"2MB":{"failcnt":0}},"intel_rdt":{},"network_interfaces":null}}`
	if string(b) != want {
		t.Fatalf("json\n got %s\nwant %s", b, want)
	}
}

func TestLoadState(t *testing.T) {
	m, err := newTest(t, Config{ID: "c1"}, hybridMountinfo, "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(m.State())
	if err != nil {
		t.Fatal(err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	m2, err := Load(s)
	if err != nil {
		t.Fatal(err)
	}
	if m2.Mode() != ModeHybrid || !slices.EqualFunc(m2.State().Hierarchies, m.hier, func(a, b Hierarchy) bool { return a.Path == b.Path && a.Unified == b.Unified }) {
		t.Fatalf("round trip lost data: %s", b)
	}
	s.Hierarchies[0].Path = "/etc"
	if _, err := Load(s); err == nil {
		t.Fatal("Load accepted a path outside its mountpoint")
	}
	var bad State
	if err := json.Unmarshal([]byte(`{"mode":"v3"}`), &bad); err == nil {
		t.Fatal("unknown mode accepted")
	}
}

func TestMounts(t *testing.T) {
	m, err := newTest(t, Config{ID: "c1"}, comountedMountinfo, "")
	if err != nil {
		t.Fatal(err)
	}
	mounts := m.Mounts()
	if mounts[0].Dir != "cpu,cpuacct" || !slices.Equal(mounts[0].Symlinks, []string{"cpu", "cpuacct"}) ||
		!slices.Equal(mounts[0].Options, []string{"cpu", "cpuacct"}) || mounts[0].Source != "/sys/fs/cgroup/cpu,cpuacct/hako/c1" {
		t.Fatalf("cpu,cpuacct mount %+v", mounts[0])
	}
	if mounts[2].Dir != "systemd" || mounts[2].Symlinks != nil {
		t.Fatalf("systemd mount %+v", mounts[2])
	}
	m, _ = newTest(t, Config{ID: "c1"}, v2Mountinfo, "")
	if mt := m.Mounts(); len(mt) != 1 || mt[0].Dir != "" || mt[0].Type != "cgroup2" {
		t.Fatalf("v2 mounts %+v", mt)
	}
	m, _ = newTest(t, Config{ID: "c1"}, hybridMountinfo, "")
	mt := m.Mounts()
	if last := mt[len(mt)-1]; last.Dir != "unified" || last.Type != "cgroup2" {
		t.Fatalf("hybrid unified mount %+v", last)
	}
}
