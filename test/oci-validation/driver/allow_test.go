package main

import (
	"os"
	"strings"
	"testing"
)

func TestParseAllowList(t *testing.T) {
	in := `# comment
linux_cgroups_hugetlb  # host: hugetlb is only on cgroup2 here

hooks # suite: expects "post-start1" where the hooks write "post-start1 called"
odd # no kind given
poststart # race: the hook and the process write at once
`
	m, err := ParseAllowList(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 4 {
		t.Fatalf("got %d entries: %+v", len(m), m)
	}
	if a := m["linux_cgroups_hugetlb"]; !a.HostLimit() || a.Line != 2 || a.Reason != "host: hugetlb is only on cgroup2 here" {
		t.Errorf("hugetlb entry = %+v", a)
	}
	if a := m["hooks"]; a.HostLimit() || a.Kind() != "suite" {
		t.Errorf("hooks entry = %+v kind %q", a, a.Kind())
	}
	if a := m["poststart"]; !a.Racy() || a.HostLimit() || m["hooks"].Racy() {
		t.Errorf("poststart entry = %+v, racy %v", a, a.Racy())
	}
	if a := m["odd"]; a.HostLimit() || a.Kind() != "" {
		t.Errorf("odd entry = %+v kind %q", a, a.Kind())
	}
}

func TestParseAllowListRejects(t *testing.T) {
	for name, in := range map[string]string{
		"no reason":    "hooks\n",
		"empty reason": "hooks #   \n",
		"bad name":     "validation/hooks/hooks.t # suite: x\n",
		"duplicate":    "hooks # suite: a\nhooks # suite: b\n",
	} {
		t.Run(name, func(t *testing.T) {
			if m, err := ParseAllowList(strings.NewReader(in)); err == nil {
				t.Fatalf("accepted %q as %+v", in, m)
			}
		})
	}
}

// The allow-list that ships with the driver must parse, and every entry
// must name a real validation program of the pinned runtime-tools version.
func TestShippedAllowListIsValid(t *testing.T) {
	f, err := os.Open("../known-failures.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := ParseAllowList(f)
	if err != nil {
		t.Fatal(err)
	}
	known := strings.Fields(validationPrograms)
	if len(known) != 58 {
		t.Fatalf("validationPrograms lists %d programs, want 58", len(known))
	}
	set := map[string]bool{}
	for _, k := range known {
		set[k] = true
	}
	for name, a := range m {
		if !set[name] {
			t.Errorf("line %d: %s is not a runtime-tools validation program", a.Line, name)
		}
		if k := a.Kind(); k != "host" && k != "suite" && k != "compat" && k != "race" {
			t.Errorf("line %d: %s: reason must start with \"host:\", \"suite:\", \"compat:\" or \"race:\", got %q", a.Line, name, a.Reason)
		}
	}
}

// validationPrograms are the 58 programs of runtime-tools
// v0.9.1-0.20241108202711-f7e3563b0271 (validation/*/ without util).
const validationPrograms = `config_updates_without_affect create default delete
delete_only_create_resources delete_resources hooks hooks_stdin hostname kill
kill_no_effect killsig linux_cgroups_blkio linux_cgroups_cpus
linux_cgroups_devices linux_cgroups_hugetlb linux_cgroups_memory
linux_cgroups_network linux_cgroups_pids linux_cgroups_relative_blkio
linux_cgroups_relative_cpus linux_cgroups_relative_devices
linux_cgroups_relative_hugetlb linux_cgroups_relative_memory
linux_cgroups_relative_network linux_cgroups_relative_pids linux_devices
linux_masked_paths linux_mount_label linux_ns_itype linux_ns_nopath
linux_ns_path linux_ns_path_type linux_process_apparmor_profile
linux_readonly_paths linux_rootfs_propagation linux_seccomp linux_sysctl
linux_uid_mappings misc_props mounts pidfile poststart poststart_fail poststop
poststop_fail prestart prestart_fail process process_capabilities
process_capabilities_fail process_oom_score_adj process_rlimits
process_rlimits_fail process_user root_readonly_true start state`
