package lsm

import (
	"strings"
	"testing"

	"github.com/hako-project/hako/runtime/lsm/apparmor"
	"github.com/hako-project/hako/runtime/lsm/selinux"
	"github.com/opencontainers/runtime-spec/specs-go"
)

func TestPrepareNothingAsked(t *testing.T) {
	for _, tc := range []struct {
		p *specs.Process
		l *specs.Linux
	}{{nil, nil}, {&specs.Process{}, &specs.Linux{}}} {
		plan, err := Prepare(tc.p, tc.l)
		if err != nil {
			t.Fatal(err)
		}
		if plan.AppArmor != nil || plan.SELinux != nil || plan.MountLabel != "" {
			t.Fatalf("plan for an empty spec does something: %+v", plan)
		}
	}
}

// TestPrepareOnThisHost checks that every field the host cannot honour is
// refused, naming the field, and that all of them are reported at once.
func TestPrepareOnThisHost(t *testing.T) {
	if apparmor.Enabled() || selinux.Enabled() {
		t.Skip("this host has AppArmor or SELinux on; the refusals are tested in the module packages")
	}
	_, err := Prepare(
		&specs.Process{ApparmorProfile: "docker-default", SelinuxLabel: "system_u:system_r:container_t:s0:c1,c2"},
		&specs.Linux{MountLabel: "system_u:object_r:container_file_t:s0:c1,c2"},
	)
	if err == nil {
		t.Fatal("Prepare accepted LSM labels on a host without LSMs")
	}
	for _, want := range []string{
		`process.apparmorProfile "docker-default": AppArmor is not enabled on this host`,
		`process.selinuxLabel "system_u:system_r:container_t:s0:c1,c2": SELinux is not enabled on this host`,
		`linux.mountLabel "system_u:object_r:container_file_t:s0:c1,c2": SELinux is not enabled on this host`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q\ndoes not contain %q", err, want)
		}
	}
	// "unconfined" on a host without AppArmor is the state already.
	plan, err := Prepare(&specs.Process{ApparmorProfile: apparmor.Unconfined}, nil)
	if err != nil || plan.AppArmor != nil {
		t.Fatalf("unconfined: %+v, %v", plan, err)
	}
}

func TestPrepareMalformedLabel(t *testing.T) {
	// A malformed label is refused on any host, SELinux or not.
	_, err := Prepare(nil, &specs.Linux{MountLabel: "container_file_t"})
	if err == nil || !strings.Contains(err.Error(), `linux.mountLabel "container_file_t": not an SELinux context`) {
		t.Fatalf("err = %v", err)
	}
}
