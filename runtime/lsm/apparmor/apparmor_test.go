package apparmor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeHost builds a /sys tree with AppArmor in the given state.
func fakeHost(t *testing.T, securityfs bool, param string, profiles *string) host {
	t.Helper()
	root := t.TempDir()
	if securityfs {
		if err := os.MkdirAll(filepath.Join(root, "sys/kernel/security/apparmor"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if param != "" {
		dir := filepath.Join(root, "sys/module/apparmor/parameters")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "enabled"), []byte(param), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if profiles != nil {
		p := filepath.Join(root, "sys/kernel/security/apparmor/profiles")
		if err := os.WriteFile(p, []byte(*profiles), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return host{root: root}
}

func ptr(s string) *string { return &s }

const profileList = "docker-default (enforce)\nmy profile (complain)\n/usr/bin/man (enforce)\n"

func TestEnabled(t *testing.T) {
	for _, tc := range []struct {
		name       string
		securityfs bool
		param      string
		want       bool
	}{
		{"on", true, "Y\n", true},
		{"parameter N", true, "N\n", false},
		{"no securityfs", false, "Y\n", false},
		{"no module", true, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fakeHost(t, tc.securityfs, tc.param, nil).enabled(); got != tc.want {
				t.Fatalf("enabled() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCheckProfileEnabledHost(t *testing.T) {
	h := fakeHost(t, true, "Y", ptr(profileList))
	for _, ok := range []string{"", "docker-default", "my profile", "/usr/bin/man", Unconfined} {
		if err := h.checkProfile(ok); err != nil {
			t.Errorf("checkProfile(%q): %v", ok, err)
		}
	}
	for name, want := range map[string]string{
		"missing":        `process.apparmorProfile "missing": no such AppArmor profile is loaded`,
		"docker":         `process.apparmorProfile "docker": no such AppArmor profile is loaded`,
		"bad\nname":      `process.apparmorProfile "bad\nname": profile name contains control character U+000A`,
		"nul\x00in-name": `control character U+0000`,
	} {
		err := h.checkProfile(name)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("checkProfile(%q) = %v, want %q", name, err, want)
		}
	}
}

func TestCheckProfileUnreadableList(t *testing.T) {
	// No profiles file at all is an error that says what could not be read.
	h := fakeHost(t, true, "Y", nil)
	if err := h.checkProfile("x"); err == nil || !strings.Contains(err.Error(), "read loaded AppArmor profiles") {
		t.Fatalf("checkProfile without a profile list: %v", err)
	}
}

func TestExecWriteEnabledHost(t *testing.T) {
	h := fakeHost(t, true, "Y", ptr(profileList))
	w, err := h.execWrite("docker-default")
	if err != nil {
		t.Fatal(err)
	}
	if string(w.Data) != "exec docker-default" {
		t.Errorf("data = %q", w.Data)
	}
	if len(w.Paths) != 2 || w.Paths[0] != "/proc/self/attr/apparmor/exec" || w.Paths[1] != "/proc/self/attr/exec" {
		t.Errorf("paths = %q", w.Paths)
	}
	if w, err := h.execWrite(""); w != nil || err != nil {
		t.Errorf("empty profile: %v, %v", w, err)
	}
	// "unconfined" is written where AppArmor is on: the container may be
	// started from a confined runtime.
	if w, err := h.execWrite(Unconfined); err != nil || string(w.Data) != "exec unconfined" {
		t.Errorf("unconfined: %+v, %v", w, err)
	}
	if _, err := h.execWrite("missing"); err == nil {
		t.Error("execWrite accepted a profile that is not loaded")
	}
}

func TestDisabledHost(t *testing.T) {
	h := fakeHost(t, false, "", nil)
	err := h.checkProfile("docker-default")
	want := `process.apparmorProfile "docker-default": AppArmor is not enabled on this host`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
	if w, err := h.execWrite(Unconfined); w != nil || err != nil {
		t.Fatalf("unconfined on a disabled host: %v, %v; want nothing to do", w, err)
	}
	if _, err := h.execWrite("x"); err == nil {
		t.Fatal("execWrite accepted a profile on a disabled host")
	}
}

// TestThisHost checks the real host: where AppArmor is off (as on this
// project's CI machine) a profile must be refused with the clear error.
func TestThisHost(t *testing.T) {
	if Enabled() {
		if err := CheckProfile("hako-test-no-such-profile"); err == nil {
			t.Fatal("a profile that is not loaded was accepted")
		}
		t.Log("AppArmor is enabled here; only the not-loaded refusal was tested")
		return
	}
	err := CheckProfile("docker-default")
	if err == nil || !strings.Contains(err.Error(), "AppArmor is not enabled on this host") {
		t.Fatalf("CheckProfile on a host without AppArmor: %v", err)
	}
	if _, err := ExecWrite("docker-default"); err == nil {
		t.Fatal("ExecWrite accepted a profile on a host without AppArmor")
	}
	if w, err := ExecWrite(""); w != nil || err != nil {
		t.Fatalf("ExecWrite(\"\") = %v, %v", w, err)
	}
}
