package monitor

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/hako-project/hako/runtime/cgroups"
)

func TestCgroupPath(t *testing.T) {
	for _, c := range []struct {
		name, in, want string
	}{
		{"v1", "12:pids:/hako/c1\n9:memory:/hako/c1\n1:name=systemd:/x\n", "/hako/c1"},
		{"hybrid", "13:cpu,cpuacct:/a\n9:memory:/pod/c2\n0::/other\n", "/pod/c2"},
		{"co-mounted memory", "4:cpuset,memory:/m\n0::/u\n", "/m"},
		{"v2", "0::/system.slice/c3\n", "/system.slice/c3"},
	} {
		got, err := cgroupPath([]byte(c.in))
		if err != nil || got != c.want {
			t.Errorf("%s: %q, %v; want %q", c.name, got, err, c.want)
		}
	}
	if _, err := cgroupPath([]byte("3:cpu:/a\n")); err == nil {
		t.Error("a cgroup file without memory or cgroup2 entry was accepted")
	}
}

func TestReadBundle(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) {
		if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"process":{"terminal":true},"linux":{"namespaces":[{"type":"mount"},{"type":"pid"}]}}`)
	if info, err := readBundle(dir); err != nil || !info.terminal || !info.ownPidNS {
		t.Errorf("own pid namespace with a terminal: %+v %v", info, err)
	}
	write(`{"process":{},"linux":{"namespaces":[{"type":"pid","path":"/proc/1/ns/pid"}]}}`)
	if info, err := readBundle(dir); err != nil || info.terminal || info.ownPidNS {
		t.Errorf("joined pid namespace: %+v %v", info, err)
	}
	write(`{not json`)
	if _, err := readBundle(dir); err == nil || codeOf(err) != "invalid" {
		t.Errorf("bad config.json: %v", err)
	}
	if _, err := readBundle(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing bundle accepted")
	}
}

// fakeCgroup is a cgroups.Manager whose hierarchies are test directories.
type fakeCgroup struct {
	cgroups.Manager
	st cgroups.State
}

func (f fakeCgroup) State() cgroups.State { return f.st }

func TestOOMKilled(t *testing.T) {
	v1 := t.TempDir()
	v2 := t.TempDir()
	mgr := func(mode cgroups.Mode) fakeCgroup {
		if mode == cgroups.ModeUnified {
			return fakeCgroup{st: cgroups.State{Mode: mode, Hierarchies: []cgroups.Hierarchy{{Unified: true, Path: v2}}}}
		}
		// Hybrid: memory on v1; the cgroup2 mount's counters are not the
		// container's memory cgroup.
		return fakeCgroup{st: cgroups.State{Mode: mode, Hierarchies: []cgroups.Hierarchy{
			{Unified: true, Path: v2},
			{Controllers: []string{"cpu", "cpuacct"}, Path: t.TempDir()},
			{Controllers: []string{"memory"}, Path: v1},
		}}}
	}
	write := func(dir, file, s string) {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(v1, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
	write(v2, "memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
	if oomKilled(mgr(cgroups.ModeHybrid)) {
		t.Error("hybrid: the v1 memory cgroup says no OOM kill, but one was reported")
	}
	if !oomKilled(mgr(cgroups.ModeUnified)) {
		t.Error("v2: memory.events counts an OOM kill, none reported")
	}
	write(v1, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
	if !oomKilled(mgr(cgroups.ModeHybrid)) {
		t.Error("hybrid: oom_kill 2 not reported")
	}
	if oomKilled(nil) {
		t.Error("no cgroup: OOM reported")
	}
}

func TestOpErrors(t *testing.T) {
	if codeOf(conflictf("x")) != "conflict" || codeOf(notFoundf("x")) != "not_found" || codeOf(invalidf("x")) != "invalid" {
		t.Error("error classes")
	}
	if codeOf(context.Canceled) != "" {
		t.Error("an unclassified error got a class")
	}
}
