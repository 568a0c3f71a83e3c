package selinux

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeHost builds a host whose selinuxfs and process context are as given;
// the kernel's policy accepts every label except those containing "bad_t".
func fakeHost(t *testing.T, selinuxfs bool, current string) host {
	t.Helper()
	root := t.TempDir()
	if current != "" {
		dir := filepath.Join(root, "proc/self/attr")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "current"), []byte(current), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return host{
		root:        root,
		isSelinuxfs: func(p string) bool { return selinuxfs && p == filepath.Join(root, FSMount) },
		kernelCheck: func(label string) error {
			if strings.Contains(label, "bad_t") {
				return errors.New("the loaded SELinux policy does not accept it")
			}
			return nil
		},
	}
}

const (
	procLabel  = "system_u:system_r:container_t:s0:c1,c2"
	mountLabel = "system_u:object_r:container_file_t:s0:c1,c2"
)

func TestEnabled(t *testing.T) {
	for _, tc := range []struct {
		name      string
		selinuxfs bool
		current   string
		want      bool
	}{
		{"on", true, "unconfined_u:unconfined_r:unconfined_t:s0\x00", true},
		{"no policy loaded", true, "kernel\x00", false},
		{"no selinuxfs", false, "unconfined_u:unconfined_r:unconfined_t:s0", false},
		{"no attr", true, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fakeHost(t, tc.selinuxfs, tc.current).enabled(); got != tc.want {
				t.Fatalf("enabled() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCheckEnabledHost(t *testing.T) {
	h := fakeHost(t, true, "system_u:system_r:kernel_t:s0")
	for _, ok := range []string{"", procLabel, mountLabel, "u:r:t", "u:r:t:s0-s0:c0.c1023"} {
		if err := h.check(processField, ok); err != nil {
			t.Errorf("check(%q): %v", ok, err)
		}
	}
	for label, want := range map[string]string{
		"container_t":                `process.selinuxLabel "container_t": not an SELinux context: want user:role:type[:level]`,
		"u:r":                        "want user:role:type[:level]",
		":r:t:s0":                    "the user is empty",
		"u::t":                       "the role is empty",
		"u:r::s0":                    "the type is empty",
		"u:r:t:s0 c1":                "contains U+0020",
		"u:r:t:s0\n":                 "contains U+000A",
		`u:r:t:s0",nosuid`:           `contains U+0022`,
		"system_u:system_r:bad_t:s0": `process.selinuxLabel "system_u:system_r:bad_t:s0": the loaded SELinux policy does not accept it`,
	} {
		err := h.check(processField, label)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("check(%q) = %v, want %q", label, err, want)
		}
	}
	if err := h.check(mountField, "x"); err == nil || !strings.HasPrefix(err.Error(), `linux.mountLabel "x": `) {
		t.Errorf("mount label error does not name its field: %v", err)
	}
}

func TestProcessWritesEnabledHost(t *testing.T) {
	h := fakeHost(t, true, "system_u:system_r:kernel_t:s0")
	ws, err := h.processWrites(procLabel)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 2 || ws[0].Path != "/proc/self/attr/keycreate" || ws[1].Path != "/proc/self/attr/exec" {
		t.Fatalf("writes = %+v", ws)
	}
	for _, w := range ws {
		if string(w.Data) != procLabel {
			t.Errorf("%s gets %q, want %q", w.Path, w.Data, procLabel)
		}
	}
	if ws, err := h.processWrites(""); ws != nil || err != nil {
		t.Errorf("no label: %v, %v", ws, err)
	}
	if _, err := h.processWrites("u:r:bad_t"); err == nil {
		t.Error("processWrites accepted a label the policy refuses")
	}
}

func TestDisabledHost(t *testing.T) {
	for _, h := range []host{fakeHost(t, false, ""), fakeHost(t, true, "kernel")} {
		err := h.check(processField, procLabel)
		want := `process.selinuxLabel "` + procLabel + `": SELinux is not enabled on this host`
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("err = %v, want prefix %q", err, want)
		}
		if _, err := h.processWrites(procLabel); err == nil {
			t.Error("processWrites accepted a label on a disabled host")
		}
		// A malformed label is reported as malformed even here.
		if err := h.check(mountField, "oops"); err == nil || !strings.Contains(err.Error(), "not an SELinux context") {
			t.Errorf("malformed label on disabled host: %v", err)
		}
	}
}

func TestMountOptions(t *testing.T) {
	if got := MountOption(mountLabel); got != `context="`+mountLabel+`"` {
		t.Errorf("MountOption = %s", got)
	}
	if MountOption("") != "" || AddMountOption("mode=755", "") != "mode=755" {
		t.Error("an empty label changed the mount data")
	}
	if got := AddMountOption("", "u:r:t"); got != `context="u:r:t"` {
		t.Errorf("AddMountOption to empty data = %s", got)
	}
	if got := AddMountOption("mode=755,size=65536k", "u:r:t:s0:c1,c2"); got != `mode=755,size=65536k,context="u:r:t:s0:c1,c2"` {
		t.Errorf("AddMountOption = %s", got)
	}
	for _, tc := range []struct {
		fstype string
		bind   bool
		want   bool
	}{
		{"tmpfs", false, true}, {"devpts", false, true}, {"proc", false, false}, {"sysfs", false, false},
		{"mqueue", false, false}, {"cgroup2", false, false}, {"none", true, false}, {"bind", false, false},
	} {
		if got := Labelable(tc.fstype, tc.bind); got != tc.want {
			t.Errorf("Labelable(%q, %v) = %v", tc.fstype, tc.bind, got)
		}
	}
}

// TestThisHost checks the real host: where SELinux is off (as on this
// project's CI machine) both label fields must be refused clearly.
func TestThisHost(t *testing.T) {
	if Enabled() {
		if err := CheckProcessLabel("u:r:hako_test_no_such_type_t:s0"); err == nil {
			t.Fatal("the kernel accepted a type no policy defines")
		}
		t.Log("SELinux is enabled here; only the policy refusal was tested")
		return
	}
	for _, check := range []struct {
		field string
		fn    func(string) error
	}{{processField, CheckProcessLabel}, {mountField, CheckMountLabel}} {
		err := check.fn(procLabel)
		if err == nil || !strings.HasPrefix(err.Error(), check.field+` "`) || !strings.Contains(err.Error(), "SELinux is not enabled on this host") {
			t.Errorf("%s on a host without SELinux: %v", check.field, err)
		}
	}
	if _, err := ProcessWrites(procLabel); err == nil {
		t.Error("ProcessWrites accepted a label on a host without SELinux")
	}
	if ws, err := ProcessWrites(""); ws != nil || err != nil {
		t.Errorf("ProcessWrites(\"\") = %v, %v", ws, err)
	}
}
