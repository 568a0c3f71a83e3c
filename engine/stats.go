package engine

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/runtime/cgroups"
)

// ContainerStats is one sample of a container's resource use in docker's shape
// (GET /containers/{id}/stats), read by its shim from its cgroup (v1, v2
// or hybrid alike) plus what docker adds from the host: the host's CPU
// time, against which the CLI computes CPU %, the number of CPUs, and the
// network counters of the container's network namespace. A container that
// does not run gets only its name and ID, as docker's does. PreCPUStats is
// left to the caller, which keeps the previous sample.
func (e *Engine) ContainerStats(ctx context.Context, ref string) (container.StatsResponse, error) {
	c, err := e.Get(ref)
	if err != nil {
		return container.StatsResponse{}, err
	}
	c.mu.Lock()
	resp := container.StatsResponse{ID: c.ID, Name: "/" + c.Name}
	task := c.task
	running := c.State.Status == container.StateRunning || c.State.Status == container.StatePaused
	pid := c.State.Pid
	c.mu.Unlock()
	if task == nil || !running {
		return resp, nil
	}
	st, err := task.Stats(ctx)
	if err != nil {
		if s := c.Snapshot().State.Status; s != container.StateRunning && s != container.StatePaused {
			return resp, nil // it stopped meanwhile
		}
		return resp, fmt.Errorf("stats of container %s: %w", c.ID, err)
	}
	resp.OSType = "linux"
	resp.Read = time.Now().UTC()
	resp.CPUStats = cpuStats(st)
	resp.MemoryStats = memoryStats(st)
	resp.PidsStats = container.PidsStats{Current: st.Pids.Current, Limit: st.Pids.Limit}
	resp.BlkioStats = blkioStats(st)
	if nets, err := netStats(pid); err == nil && len(nets) > 0 {
		resp.Networks = nets
	}
	return resp, nil
}

func cpuStats(st *cgroups.Stats) container.CPUStats {
	cs := container.CPUStats{
		CPUUsage: container.CPUUsage{
			TotalUsage: st.CPU.Usage.Total, PercpuUsage: st.CPU.Usage.Percpu,
			UsageInKernelmode: st.CPU.Usage.Kernel, UsageInUsermode: st.CPU.Usage.User,
		},
		OnlineCPUs: uint32(runtime.NumCPU()),
		ThrottlingData: container.ThrottlingData{Periods: st.CPU.Throttling.Periods,
			ThrottledPeriods: st.CPU.Throttling.ThrottledPeriods, ThrottledTime: st.CPU.Throttling.ThrottledTime},
	}
	cs.SystemUsage, _ = systemCPUUsage()
	return cs
}

// systemCPUUsage is the host's CPU time in nanoseconds: the first seven
// fields of /proc/stat's "cpu" line (user to softirq), as dockerd reads it.
func systemCPUUsage() (uint64, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 || fields[0] != "cpu" {
			continue
		}
		var ticks uint64
		for _, v := range fields[1:8] {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse /proc/stat: %w", err)
			}
			ticks += n
		}
		return ticks * (1e9 / 100), nil // USER_HZ is 100
	}
	return 0, fmt.Errorf("/proc/stat has no cpu line")
}

// memoryStats is docker's memory section: without a limit of its own the
// container's limit is the host's memory, as dockerd reports it.
func memoryStats(st *cgroups.Stats) container.MemoryStats {
	ms := container.MemoryStats{Usage: st.Memory.Usage.Usage, MaxUsage: st.Memory.Usage.Max,
		Failcnt: st.Memory.Usage.Failcnt, Limit: st.Memory.Usage.Limit, Stats: st.Memory.Raw}
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		if host := uint64(si.Totalram) * uint64(si.Unit); host > 0 && (ms.Limit > host || ms.Limit == 0) {
			ms.Limit = host
		}
	}
	if ms.Limit == math.MaxUint64 {
		ms.Limit = 0
	}
	return ms
}

func blkioStats(st *cgroups.Stats) container.BlkioStats {
	conv := func(in []cgroups.BlkioEntry) []container.BlkioStatEntry {
		if in == nil {
			return nil
		}
		out := make([]container.BlkioStatEntry, len(in))
		for i, e := range in {
			out[i] = container.BlkioStatEntry{Major: e.Major, Minor: e.Minor, Op: e.Op, Value: e.Value}
		}
		return out
	}
	b := st.Blkio
	return container.BlkioStats{
		IoServiceBytesRecursive: conv(b.IoServiceBytesRecursive), IoServicedRecursive: conv(b.IoServicedRecursive),
		IoQueuedRecursive: conv(b.IoQueuedRecursive), IoServiceTimeRecursive: conv(b.IoServiceTimeRecursive),
		IoWaitTimeRecursive: conv(b.IoWaitTimeRecursive), IoMergedRecursive: conv(b.IoMergedRecursive),
		IoTimeRecursive: conv(b.IoTimeRecursive), SectorsRecursive: conv(b.SectorsRecursive),
	}
}

// netStats reads the interfaces of the container's network namespace from
// /proc/PID/net/dev, loopback left out as docker leaves it out. A
// container in the host's namespace (--network host) has no counters of
// its own.
func netStats(pid int) (map[string]container.NetworkStats, error) {
	if pid <= 0 {
		return nil, nil
	}
	var own, host unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &own); err != nil {
		return nil, err
	}
	if err := unix.Stat("/proc/thread-self/ns/net", &host); err == nil && own.Ino == host.Ino && own.Dev == host.Dev {
		return nil, nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return nil, err
	}
	return parseNetDev(string(b)), nil
}

// parseNetDev parses /proc/net/dev: two header lines, then
// "iface: rx_bytes rx_packets rx_errs rx_drop fifo frame compressed
// multicast tx_bytes tx_packets tx_errs tx_drop ...".
func parseNetDev(s string) map[string]container.NetworkStats {
	out := map[string]container.NetworkStats{}
	for _, line := range strings.Split(s, "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		f := strings.Fields(rest)
		if name == "lo" || len(f) < 12 {
			continue
		}
		n := make([]uint64, 12)
		for i := range n {
			n[i], _ = strconv.ParseUint(f[i], 10, 64)
		}
		out[name] = container.NetworkStats{RxBytes: n[0], RxPackets: n[1], RxErrors: n[2], RxDropped: n[3],
			TxBytes: n[8], TxPackets: n[9], TxErrors: n[10], TxDropped: n[11]}
	}
	return out
}
