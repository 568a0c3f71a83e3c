package cgroups

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The test binary doubles as the process put into cgroups: "sleep" blocks
// until stdin closes; "alloc" waits for one byte on stdin, then allocates
// and touches memory until the OOM killer ends it.
func TestMain(m *testing.M) {
	switch os.Getenv("HAKO_CGROUPS_HELPER") {
	case "sleep":
		// Each byte read allocates and touches 8 MiB more, so the
		// memory cgroup sees usage after the process was moved in.
		var keep [][]byte
		b := make([]byte, 1)
		for {
			if _, err := os.Stdin.Read(b); err != nil {
				os.Exit(0)
			}
			c := make([]byte, 8<<20)
			for i := 0; i < len(c); i += 4096 {
				c[i] = 1
			}
			keep = append(keep, c)
			runtime.KeepAlive(keep)
		}
	case "alloc":
		b := make([]byte, 1)
		os.Stdin.Read(b)
		var keep [][]byte
		for range 4096 { // up to 4 GiB, far above any test limit
			c := make([]byte, 1<<20)
			for i := 0; i < len(c); i += 4096 {
				c[i] = 1
			}
			keep = append(keep, c)
		}
		fmt.Println(len(keep))
		os.Exit(3) // not killed: the limit did not hold
	}
	os.Exit(m.Run())
}

var quiet = slog.New(slog.DiscardHandler)

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates cgroups under /sys/fs/cgroup (CI runs as root)")
	}
}

// testParent is a per-process cgroup parent; cleanup removes it from every
// hierarchy and fails the test if anything is left.
func testParent(t testing.TB) string {
	t.Helper()
	p := fmt.Sprintf("/hako-cgtest-%d", os.Getpid())
	t.Cleanup(func() {
		mi, _ := os.ReadFile("/proc/self/mountinfo")
		l, err := parseMountinfo(mi, DefaultRoot)
		if err != nil {
			return
		}
		roots := []string{}
		for _, h := range l.hier {
			roots = append(roots, h.Mountpoint)
		}
		if u, err := parseMountinfo(mi, "/sys/fs/cgroup/unified"); err == nil && u.mode == ModeUnified {
			roots = append(roots, "/sys/fs/cgroup/unified")
		}
		for _, r := range slices.Compact(roots) {
			dir := r + p
			if err := removeTree(dir); err != nil {
				t.Errorf("cleanup %s: %v", dir, err)
			}
		}
	})
	return p
}

type helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   bytes.Buffer
}

func startHelper(t *testing.T, mode string, attr *syscall.SysProcAttr) *helper {
	t.Helper()
	h := &helper{cmd: exec.Command("/proc/self/exe", "-test.run=^$")}
	h.cmd.Env = append(os.Environ(), "HAKO_CGROUPS_HELPER="+mode)
	h.cmd.SysProcAttr = attr
	h.cmd.Stdout = &h.out
	h.cmd.Stderr = &h.out
	var err error
	if h.stdin, err = h.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.cmd.Process.Kill()
		h.cmd.Wait()
	})
	return h
}

func (h *helper) pid() int { return h.cmd.Process.Pid }

func hybridOrV1(t *testing.T, m Manager) {
	t.Helper()
	if m.Mode() == ModeUnified {
		t.Skip("host is pure cgroup v2; this test exercises v1/hybrid hierarchies")
	}
}

// blockDev returns major, minor of a real block device of this host.
func blockDev(t *testing.T) (int64, int64) {
	t.Helper()
	for _, name := range []string{"vda", "sda", "nvme0n1", "xvda", "loop0"} {
		b, err := os.ReadFile("/sys/block/" + name + "/dev")
		if err != nil {
			continue
		}
		var maj, min int64
		if _, err := fmt.Sscanf(string(b), "%d:%d", &maj, &min); err == nil {
			return maj, min
		}
	}
	t.Skip("no block device found for blkio throttling")
	return 0, 0
}

func fileIs(t *testing.T, dir, name, want string) {
	t.Helper()
	got, err := readFile(dir, name)
	if err != nil {
		t.Error(err)
		return
	}
	if strings.TrimSpace(got) != want {
		t.Errorf("%s/%s = %q, want %q", dir, name, got, want)
	}
}

func pathOf(t *testing.T, m Manager, ctrl string) string {
	t.Helper()
	h, err := m.(*manager).place(ctrl)
	if err != nil {
		t.Fatalf("%s: %v", ctrl, err)
	}
	return h.Path
}

func TestRealHybridLifecycle(t *testing.T) {
	requireRoot(t)
	parent := testParent(t)
	mi, err := New(Config{Path: parent + "/life", ID: "life", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	hybridOrV1(t, mi)
	m := mi.(*manager)
	maj, min := blockDev(t)
	devices := append([]specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}, AllowedDevices()...)
	r := &specs.LinuxResources{
		Devices: devices,
		Memory: &specs.LinuxMemory{Limit: i64(256 << 20), Swap: i64(256 << 20), Reservation: i64(128 << 20),
			Swappiness: u64(20), DisableOOMKiller: boolp(false), KernelTCP: i64(64 << 20), Kernel: i64(64 << 20)},
		CPU: &specs.LinuxCPU{Shares: u64(512), Quota: i64(50000), Period: u64(100000), Burst: u64(10000),
			RealtimePeriod: u64(1000000), RealtimeRuntime: i64(10000), Cpus: "0", Mems: "0", Idle: i64(0)},
		Pids: &specs.LinuxPids{Limit: i64(64)},
		BlockIO: &specs.LinuxBlockIO{Weight: u16(200),
			ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: maj, Minor: min}, Rate: 1 << 20}},
			ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: maj, Minor: min}, Rate: 100}}},
	}
	if _, err := m.place("hugetlb"); err == nil && hasHugepages2MB() {
		r.HugepageLimits = []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 8 << 20}}
	}
	if err := m.Create(r); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Destroy() })

	mem, cpu, cpuset, pids, blkio := pathOf(t, m, "memory"), pathOf(t, m, "cpu"), pathOf(t, m, "cpuset"), pathOf(t, m, "pids"), pathOf(t, m, "blkio")
	fileIs(t, mem, "memory.limit_in_bytes", "268435456")
	fileIs(t, mem, "memory.memsw.limit_in_bytes", "268435456")
	fileIs(t, mem, "memory.soft_limit_in_bytes", "134217728")
	fileIs(t, mem, "memory.swappiness", "20")
	fileIs(t, mem, "memory.kmem.tcp.limit_in_bytes", "67108864")
	fileIs(t, cpu, "cpu.shares", "512")
	fileIs(t, cpu, "cpu.cfs_quota_us", "50000")
	fileIs(t, cpu, "cpu.cfs_period_us", "100000")
	fileIs(t, cpu, "cpu.cfs_burst_us", "10000")
	fileIs(t, cpu, "cpu.rt_runtime_us", "10000")
	fileIs(t, cpuset, "cpuset.cpus", "0")
	fileIs(t, pids, "pids.max", "64")
	fileIs(t, blkio, "blkio.throttle.read_bps_device", fmt.Sprintf("%d:%d 1048576", maj, min))
	fileIs(t, blkio, "blkio.throttle.write_iops_device", fmt.Sprintf("%d:%d 100", maj, min))
	if exists(blkio, "blkio.bfq.weight") {
		fileIs(t, blkio, "blkio.bfq.weight", "200")
	}
	if r.HugepageLimits != nil {
		hp := pathOf(t, m, "hugetlb")
		if m.mode == ModeHybrid && strings.HasPrefix(hp, "/sys/fs/cgroup/unified/") {
			fileIs(t, hp, "hugetlb.2MB.max", "8388608")
		}
	}
	if h := m.v1("devices"); h != nil {
		list, _ := readFile(h.Path, "devices.list")
		if strings.Contains(list, "a *:* rwm") || !strings.Contains(list, "c 1:3 rwm") || !strings.Contains(list, "c 136:* rwm") {
			t.Errorf("devices.list after deny-all + allowed list:\n%s", list)
		}
	}

	// A process put in with Add shows the container's cgroup on every
	// hierarchy in /proc/PID/cgroup.
	h := startHelper(t, "sleep", nil)
	if err := m.Add(h.pid()); err != nil {
		t.Fatal(err)
	}
	pc, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", h.pid()))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(pc)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if parts[1] == "" && m.unified() == nil {
			continue
		}
		if !strings.HasSuffix(parts[2], parent+"/life") {
			t.Errorf("/proc/%d/cgroup line %q is not in the container cgroup", h.pid(), line)
		}
	}
	if p, err := m.Pids(); err != nil || !slices.Equal(p, []int{h.pid()}) {
		t.Errorf("Pids() = %v, %v; want [%d]", p, err, h.pid())
	}
	// Charge 8 MiB to the container's memory cgroup.
	if _, err := h.stdin.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		u, _ := readUint(mem, "memory.usage_in_bytes")
		if u >= 8<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("memory.usage_in_bytes = %d after the helper allocated 8 MiB", u)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Freeze, check the kernel state, thaw.
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if fr, err := m.Frozen(); err != nil || !fr {
		t.Fatalf("Frozen() = %v, %v after Freeze", fr, err)
	}
	if fz := m.v1("freezer"); fz != nil {
		fileIs(t, fz.Path, "freezer.state", "FROZEN")
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if fr, err := m.Frozen(); err != nil || fr {
		t.Fatalf("Frozen() = %v, %v after Thaw", fr, err)
	}

	// update: shrink memory (limit before memsw), change quota and pids,
	// and check the files and Stats agree.
	upd := MergeUpdate(r, &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64(128 << 20), Swap: i64(128 << 20), CheckBeforeUpdate: boolp(true)},
		CPU:    &specs.LinuxCPU{Quota: i64(20000), Shares: u64(2048)},
		Pids:   &specs.LinuxPids{Limit: i64(32)},
	})
	if err := m.Set(upd); err != nil {
		t.Fatal(err)
	}
	fileIs(t, mem, "memory.limit_in_bytes", "134217728")
	fileIs(t, mem, "memory.memsw.limit_in_bytes", "134217728")
	fileIs(t, cpu, "cpu.cfs_quota_us", "20000")
	fileIs(t, cpu, "cpu.shares", "2048")
	fileIs(t, pids, "pids.max", "32")
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Memory.Usage.Limit != 128<<20 || st.Memory.Swap.Limit != 128<<20 || st.Pids.Limit != 32 || st.Pids.Current != uint64(threads(t, h.pid())) {
		t.Errorf("stats disagree with the files: memory %+v swap %+v pids %+v", st.Memory.Usage, st.Memory.Swap, st.Pids)
	}
	if st.Memory.Usage.Usage < 8<<20 || st.Memory.Raw["rss"] < 8<<20 {
		t.Errorf("memory usage not read: %+v", st.Memory)
	}
	if st.CPU.Usage.Total == 0 || len(st.CPU.Usage.Percpu) == 0 {
		t.Errorf("cpu usage not read: %+v", st.CPU.Usage)
	}
	if !slices.Equal(st.CPUSet.CPUs, []uint16{0}) {
		t.Errorf("cpuset stats %+v", st.CPUSet)
	}
	if r.HugepageLimits != nil {
		if _, ok := st.Hugetlb["2MB"]; !ok {
			t.Errorf("hugetlb stats missing: %+v", st.Hugetlb)
		}
	}

	// A limit below current usage is refused (checkBeforeUpdate) and
	// leaves the old one.
	err = m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(4096), CheckBeforeUpdate: boolp(true)}})
	if err == nil || !strings.Contains(err.Error(), "linux.resources.memory.limit") {
		t.Errorf("limit below usage: err = %v", err)
	}
	fileIs(t, mem, "memory.limit_in_bytes", "134217728")

	// SIGKILL to everything (cgroup.kill on the unified hierarchy in
	// hybrid mode), then Destroy leaves no directory anywhere.
	if err := m.Kill(unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	werr := h.cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(werr, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper exit: %v, want SIGKILL", werr)
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	for _, hr := range m.hier {
		if _, err := os.Stat(hr.Path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists after Destroy (%v)", hr.Path, err)
		}
	}
	if err := m.Destroy(); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
}

func threads(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestRealOOMEvent(t *testing.T) {
	requireRoot(t)
	parent := testParent(t)
	m, err := New(Config{Path: parent + "/oom", ID: "oom", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Create(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(32 << 20), Swap: i64(32 << 20)}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Destroy() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := m.OOMEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h := startHelper(t, "alloc", nil)
	if err := m.Add(h.pid()); err != nil {
		t.Fatal(err)
	}
	if _, err := h.stdin.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatal("event channel closed without an OOM event")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no OOM event within 30 s")
	}
	werr := h.cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(werr, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("allocating helper: %v (%s), want killed by the OOM killer", werr, h.out.String())
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Memory.Usage.Max < 30<<20 {
		t.Errorf("peak usage %d after an OOM kill in a 32 MiB limit", st.Memory.Usage.Max)
	}
	if oc, err := oomControl(pathOf(t, m, "memory")); err == nil && oc["oom_kill"] < 1 {
		t.Errorf("memory.oom_control oom_kill = %d after the kill", oc["oom_kill"])
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	// Removing the cgroup ends the event stream.
	select {
	case _, ok := <-ch:
		for ok {
			_, ok = <-ch
		}
	case <-time.After(10 * time.Second):
		t.Fatal("event channel not closed after Destroy")
	}
}

// TestRealUnifiedV2 runs the manager in pure v2 mode on the cgroup2 mount
// (on a hybrid host, /sys/fs/cgroup/unified: every cgroup2 feature that does
// not need a controller works there: procs, clone3 into the cgroup, freeze,
// cgroup.kill, the eBPF device filter, and hugetlb where enabled).
func TestRealUnifiedV2(t *testing.T) {
	requireRoot(t)
	root := "/sys/fs/cgroup/unified"
	var st unix.Statfs_t
	if unix.Statfs(root, &st) != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
		root = DefaultRoot
		if unix.Statfs(root, &st) != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
			t.Skip("no cgroup2 mount")
		}
	}
	parent := testParent(t)
	mi, err := New(Config{Path: parent + "/v2", ID: "v2", Root: root, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	m := mi.(*manager)
	if m.Mode() != ModeUnified {
		t.Fatalf("mode %v on %s, want v2", m.Mode(), root)
	}
	null := int64(3)
	one := int64(1)
	r := &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: true, Access: "rwm"},
		{Allow: false, Type: "c", Major: &one, Minor: &null, Access: "rwm"},
	}}
	ctrls, _ := m.unifiedControllers()
	if slices.Contains(ctrls, "hugetlb") && hasHugepages2MB() {
		r.HugepageLimits = []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 2 << 20}}
		r.Unified = map[string]string{"hugetlb.2MB.rsvd.max": "4194304"}
	}
	if err := m.Create(r); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Destroy() })
	leaf := m.unified().Path
	if r.HugepageLimits != nil {
		fileIs(t, leaf, "hugetlb.2MB.max", "2097152")
		fileIs(t, leaf, "hugetlb.2MB.rsvd.max", "4194304") // unified keys are written last
	}

	fd, err := m.UnifiedFD()
	if err != nil || fd == nil {
		t.Fatalf("UnifiedFD() = %v, %v", fd, err)
	}
	defer fd.Close()
	// The device filter: /dev/null denied (EPERM), /dev/zero allowed.
	for dev, wantOK := range map[string]bool{"/dev/null": false, "/dev/zero": true} {
		cmd := exec.Command("/bin/sh", "-c", "exec 3<"+dev)
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(fd.Fd())}
		out, err := cmd.CombinedOutput()
		if (err == nil) != wantOK {
			t.Errorf("open %s in cgroup: err=%v out=%q, want ok=%v", dev, err, out, wantOK)
		}
		if !wantOK && !strings.Contains(string(out), "Operation not permitted") {
			t.Errorf("open %s: %q, want EPERM", dev, out)
		}
	}

	h := startHelper(t, "sleep", &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(fd.Fd())})
	pc, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", h.pid()))
	if !strings.Contains(string(pc), "0::"+parent+"/v2\n") {
		t.Errorf("/proc/%d/cgroup = %q, want 0::%s/v2", h.pid(), pc, parent)
	}
	if p, err := m.Pids(); err != nil || !slices.Equal(p, []int{h.pid()}) {
		t.Errorf("Pids() = %v, %v", p, err)
	}
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if fr, _ := m.Frozen(); !fr {
		t.Error("not frozen after Freeze")
	}
	fileIs(t, leaf, "cgroup.freeze", "1")
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", h.pid()))
	if !strings.Contains(string(status), "State:\tS") && !strings.Contains(string(status), "State:\tD") {
		t.Logf("frozen task status: %s", status)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if fr, _ := m.Frozen(); fr {
		t.Error("still frozen after Thaw")
	}
	// Kill(SIGTERM) goes process by process; the helper dies of it.
	if err := m.Kill(unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	werr := h.cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(werr, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Fatalf("helper exit %v, want SIGTERM", werr)
	}
	// SIGKILL through cgroup.kill.
	h2 := startHelper(t, "sleep", &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(fd.Fd())})
	if err := m.Kill(unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if werr := h2.cmd.Wait(); !errors.As(werr, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper exit %v, want SIGKILL", werr)
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(leaf); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s left after Destroy", leaf)
	}
}

// TestRealBadInput: every bad value fails Create with an error naming the
// field, before anything exists on any hierarchy.
func TestRealBadInput(t *testing.T) {
	requireRoot(t)
	parent := testParent(t)
	maj, min := blockDev(t)
	_ = maj
	_ = min
	mi, err := New(Config{Path: parent + "/bad", ID: "bad", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	m := mi.(*manager)
	ncpu := 0
	if h, err := m.place("cpuset"); err == nil {
		s, _ := readFile(filepath.Dir(h.Path), "cpuset.effective_cpus")
		if s == "" {
			s, _ = readFile(h.Mountpoint, "cpuset.effective_cpus")
		}
		l, _ := parseList(s)
		ncpu = len(l)
	}
	type tc struct {
		field string
		r     *specs.LinuxResources
	}
	cases := []tc{
		{"linux.resources.memory.swap", &specs.LinuxResources{Memory: &specs.LinuxMemory{Swap: i64(64 << 20)}}},
		{"linux.resources.memory.swap", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(32 << 20)}}},
		{"linux.resources.cpu.quota", &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(500)}}},
		{"linux.resources.cpu.period", &specs.LinuxResources{CPU: &specs.LinuxCPU{Period: u64(2000000)}}},
		{"linux.resources.devices[1]", &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Access: "rwm"}, {Allow: true, Type: "c", Access: "rwq"}}}},
		{"linux.resources.devices[0]", &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Type: "z"}}}},
		{"linux.resources.cpu.cpus", &specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "0-"}}},
		{"linux.resources.cpu.cpus", &specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: strconv.Itoa(ncpu + 7)}}},
		{"linux.resources.cpu.mems", &specs.LinuxResources{CPU: &specs.LinuxCPU{Mems: "9"}}},
		{"linux.resources.hugepageLimits[0].pageSize", &specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "3MB", Limit: 1}}}},
		// Fails at write time (no such block device): Create must roll
		// back the directories it already made.
		{"linux.resources.blockIO.throttleReadBpsDevice[0]", &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{
			ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 4000, Minor: 99}, Rate: 1}}}}},
	}
	if m.mode == ModeHybrid {
		cases = append(cases, tc{`linux.resources.unified["memory.max"]`, &specs.LinuxResources{Unified: map[string]string{"memory.max": "1"}}})
	}
	if m.mode == ModeV1 {
		cases = append(cases, tc{"linux.resources.unified", &specs.LinuxResources{Unified: map[string]string{"memory.max": "1"}}})
	}
	if _, err := m.place("net_cls"); err != nil {
		cases = append(cases, tc{"linux.resources.network.classID", &specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: u32(0x100001)}}})
	}
	if _, err := m.place("rdma"); err != nil {
		cases = append(cases, tc{"linux.resources.rdma", &specs.LinuxResources{Rdma: map[string]specs.LinuxRdma{"mlx5_0": {HcaHandles: u32(1)}}}})
	}
	if _, err := m.place("blkio"); err == nil && !exists(m.v1("blkio").Mountpoint, "blkio.leaf_weight") {
		cases = append(cases, tc{"linux.resources.blockIO.leafWeight", &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{LeafWeight: u16(100)}}})
	}
	for _, c := range cases {
		m, err := New(Config{Path: parent + "/bad", ID: "bad", Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		err = m.Create(c.r)
		if err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: err = %v, want it to name the field", c.field, err)
		}
		for _, h := range m.State().Hierarchies {
			if _, err := os.Stat(h.Mountpoint + parent); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s: %s%s exists after the failed Create", c.field, h.Mountpoint, parent)
			}
		}
	}

	// Paths and flags, refused by New.
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Path: "/../../../etc", ID: "x"}, "climbs above the cgroup root"},
		{Config{Path: "/a/../../..", ID: "x"}, "climbs above the cgroup root"},
		{Config{Path: "system.slice:hako:x", ID: "x"}, "needs --systemd-cgroup"},
		{Config{Path: "/hako/x", ID: "x", Systemd: true}, "--systemd-cgroup needs the form"},
		{Config{Path: "system.slice:hako:x", ID: "x", Systemd: true}, "--systemd-cgroup"},
	} {
		_, err := New(c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) err = %v, want %q", c.cfg, err, c.want)
		}
	}
	if _, err := os.Stat(systemdRunDir); err != nil {
		_, err := New(Config{Path: "system.slice:hako:x", ID: "x", Systemd: true})
		if !errors.Is(err, ErrSystemdUnavailable) || !strings.Contains(err.Error(), "systemd is not running") {
			t.Errorf("systemd absent: err = %v", err)
		}
	}
}

// BenchmarkCreateAddDestroy measures the runtime's hot path: New (mountinfo
// parse) + Create(nil) + Add + Destroy. Each iteration also moves the
// process back out (a second Add) so the cgroup can be removed; that costs
// about as much as Add itself.
func BenchmarkCreateAddDestroy(b *testing.B) { benchCreateAdd(b, 0) }

// BenchmarkAddAfterPause is the same with the machine's cgroups left alone
// for 100 ms (not timed) before each round, as between container starts:
// add-ns/op then includes the RCU grace period the kernel waits for before
// the first move into a cgroup after a pause, unless the cgroup2 mount has
// favordynmods (SetFavorDynMods; once set on Linux 6.18+, until reboot).
func BenchmarkAddAfterPause(b *testing.B) { benchCreateAdd(b, 100*time.Millisecond) }

func benchCreateAdd(b *testing.B, pause time.Duration) {
	requireRoot(b)
	parent := testParent(b)
	park, err := New(Config{Path: parent + "/park", ID: "park"})
	if err != nil {
		b.Fatal(err)
	}
	if err := park.Create(nil); err != nil {
		b.Fatal(err)
	}
	defer park.Destroy()
	cmd := exec.Command("/proc/self/exe", "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), "HAKO_CGROUPS_HELPER=sleep")
	stdin, _ := cmd.StdinPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	pid := cmd.Process.Pid
	// Per-phase times are reported as extra metrics, so the report can
	// say where the hot path's time goes.
	var tNew, tCreate, tAdd, tPark, tDestroy time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if pause > 0 {
			b.StopTimer()
			time.Sleep(pause)
			b.StartTimer()
		}
		t0 := time.Now()
		m, err := New(Config{Path: fmt.Sprintf("%s/c%d", parent, i), ID: "x"})
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := m.Create(nil); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if err := m.Add(pid); err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		if err := park.Add(pid); err != nil {
			b.Fatal(err)
		}
		t4 := time.Now()
		if err := m.Destroy(); err != nil {
			b.Fatal(err)
		}
		t5 := time.Now()
		tNew += t1.Sub(t0)
		tCreate += t2.Sub(t1)
		tAdd += t3.Sub(t2)
		tPark += t4.Sub(t3)
		tDestroy += t5.Sub(t4)
	}
	n := float64(b.N)
	b.ReportMetric(float64(tNew.Nanoseconds())/n, "new-ns/op")
	b.ReportMetric(float64(tCreate.Nanoseconds())/n, "create-ns/op")
	b.ReportMetric(float64(tAdd.Nanoseconds())/n, "add-ns/op")
	b.ReportMetric(float64(tPark.Nanoseconds())/n, "moveout-ns/op")
	b.ReportMetric(float64(tDestroy.Nanoseconds())/n, "destroy-ns/op")
}

// BenchmarkCreateDestroy is the same without a process.
func BenchmarkCreateDestroy(b *testing.B) {
	requireRoot(b)
	parent := testParent(b)
	for i := 0; b.Loop(); i++ {
		m, err := New(Config{Path: fmt.Sprintf("%s/c%d", parent, i), ID: "x"})
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Create(nil); err != nil {
			b.Fatal(err)
		}
		if err := m.Destroy(); err != nil {
			b.Fatal(err)
		}
	}
}
