package monitor

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/hako-project/hako/runtime/cgroups"
)

// findCgroup finds the container's cgroup path from its init's
// /proc/PID/cgroup, which works whichever runtime made it (runc and crun
// keep their cgroup state in formats of their own).
func findCgroup(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return "", fmt.Errorf("cgroup of pid %d: %w", pid, err)
	}
	path, err := cgroupPath(b)
	if err != nil {
		return "", fmt.Errorf("cgroup of pid %d: %w", pid, err)
	}
	return path, nil
}

// cgroup returns the manager of the container's cgroup, or nil if it has
// none. It is made at first use (stats, OOM check and kill at the exit,
// delete), not at create: parsing the mount table and the manager it makes
// cost an idle shim about 45 KiB that most never need.
func (m *Monitor) cgroup() cgroups.Manager {
	m.cgroupOnce.Do(func() {
		if m.cgroupPath == "" {
			return
		}
		cg, err := cgroups.New(cgroups.Config{Path: m.cgroupPath, ID: m.cfg.ID})
		if err != nil {
			m.log.Warn("no cgroup for stats and OOM reports", "err", err)
			return
		}
		m.cgroupMgr = cg
	})
	return m.cgroupMgr
}

// cgroupPath picks the container's cgroup path from a /proc/PID/cgroup:
// the memory controller's on v1 and hybrid hosts (the one that matters
// for OOM kills), else the cgroup2 path.
func cgroupPath(b []byte) (string, error) {
	var unified string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[0] == "0" && f[1] == "" {
			unified = f[2]
			continue
		}
		if slices.Contains(strings.Split(f[1], ","), "memory") {
			return f[2], nil
		}
	}
	if unified != "" {
		return unified, nil
	}
	return "", fmt.Errorf("no memory or cgroup2 entry in %q", b)
}

// oomKilled reports whether the kernel OOM-killed any process in the
// container's cgroup: the oom_kill counter of memory.oom_control (v1) or
// memory.events (v2). The cgroup outlives the init until Delete, so the
// counter is still there when the exit is recorded.
func oomKilled(cg cgroups.Manager) bool {
	if cg == nil {
		return false
	}
	st := cg.State()
	for _, h := range st.Hierarchies {
		var file string
		switch {
		case !h.Unified && slices.Contains(h.Controllers, "memory"):
			file = "memory.oom_control"
		case h.Unified && st.Mode == cgroups.ModeUnified:
			file = "memory.events"
		default:
			continue
		}
		if n, ok := readCounter(filepath.Join(h.Path, file), "oom_kill"); ok {
			return n > 0
		}
	}
	return false
}

// readCounter reads "key N" from a flat-keyed cgroup file.
func readCounter(path, key string) (uint64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if ok && k == key {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
