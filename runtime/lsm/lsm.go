// Package lsm checks a spec's Linux Security Module fields
// (process.apparmorProfile, process.selinuxLabel, linux.mountLabel) against
// the host in one call and gathers what hako-runtime's init must do for
// them. The per-module rules live in the apparmor and selinux packages.
package lsm

import (
	"errors"

	"github.com/hako-project/hako/runtime/lsm/apparmor"
	"github.com/hako-project/hako/runtime/lsm/selinux"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// Plan is what the init must do for the LSM fields; the zero Plan does
// nothing.
type Plan struct {
	// AppArmor is written after /proc is mounted in the container and
	// before execve; nil for none.
	AppArmor *apparmor.Write
	// SELinux are written in order: the keyring label before joining the
	// session keyring, the exec label before execve.
	SELinux []selinux.Write
	// MountLabel is the linux.mountLabel context; add it to the data of
	// mounts selinux.Labelable accepts with selinux.AddMountOption.
	MountLabel string
}

// Prepare validates the LSM fields of a container's (or an exec'd
// process's) spec against this host. Every field is checked and all
// problems are reported together, each naming its field, so the user fixes
// them in one go; nothing has been started when it fails.
func Prepare(process *specs.Process, linux *specs.Linux) (*Plan, error) {
	var (
		plan Plan
		errs []error
	)
	if process != nil {
		w, err := apparmor.ExecWrite(process.ApparmorProfile)
		if err != nil {
			errs = append(errs, err)
		}
		plan.AppArmor = w
		ws, err := selinux.ProcessWrites(process.SelinuxLabel)
		if err != nil {
			errs = append(errs, err)
		}
		plan.SELinux = ws
	}
	if linux != nil && linux.MountLabel != "" {
		if err := selinux.CheckMountLabel(linux.MountLabel); err != nil {
			errs = append(errs, err)
		}
		plan.MountLabel = linux.MountLabel
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &plan, nil
}
