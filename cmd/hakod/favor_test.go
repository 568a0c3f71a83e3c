package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hako-project/hako/runtime/cgroups"
	"github.com/hako-project/hako/test/hakodtest"
)

// cgroup2Favors reports whether the host's cgroup2 mount (pure or hybrid)
// has favordynmods, and whether there is one.
func cgroup2Favors(t *testing.T) (on, found bool) {
	t.Helper()
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(mi), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || (f[4] != "/sys/fs/cgroup" && f[4] != "/sys/fs/cgroup/unified") || !strings.Contains(line, " - cgroup2 ") {
			continue
		}
		found = true
		on = strings.Contains(line[strings.Index(line, " - cgroup2 "):], "favordynmods")
	}
	return on, found
}

// TestCgroupFavorDynMods: hakod --cgroup-favordynmods remounts the host's
// cgroup2 hierarchy with the option, says so, and containers run. The
// host's setting is put back afterwards (the kernel's per-thread-group
// locking, once on, stays on until reboot: see cgroups.SetFavorDynMods).
func TestCgroupFavorDynMods(t *testing.T) {
	hakodtest.NeedRoot(t)
	was, found := cgroup2Favors(t)
	if !found {
		t.Skip("no cgroup2 mount at /sys/fs/cgroup or /sys/fs/cgroup/unified")
	}
	t.Cleanup(func() {
		if _, err := cgroups.SetFavorDynMods(cgroups.DefaultRoot, was); err != nil {
			t.Errorf("put favordynmods back: %v", err)
		}
	})
	if _, err := cgroups.SetFavorDynMods(cgroups.DefaultRoot, false); err != nil {
		t.Skipf("cannot remount cgroup2 here: %v", err)
	}
	d := hakodtest.Start(t, "--cgroup-favordynmods")
	if on, _ := cgroup2Favors(t); !on {
		t.Fatalf("cgroup2 mount without favordynmods after hakod started; log:\n%s", d.Log())
	}
	if !strings.Contains(d.Log(), "remounted with favordynmods") {
		t.Errorf("hakod's log does not say it remounted:\n%s", d.Log())
	}
	if out := d.MustDocker("run", "--rm", "--network", "none", d.DefaultImage(), "echo", "ok"); strings.TrimSpace(out) != "ok" {
		t.Errorf("run printed %q", out)
	}
}

func TestCgroupFavorDynModsConfigKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hakod.toml")
	if err := os.WriteFile(path, []byte("cgroup-favordynmods = true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := newCommand()
	var cfg Config
	if err := loadConfigFile(path, &cfg, cmd); err != nil {
		t.Fatal(err)
	}
	if !cfg.CgroupFavorDynMods {
		t.Error("cgroup-favordynmods = true not read")
	}
}
