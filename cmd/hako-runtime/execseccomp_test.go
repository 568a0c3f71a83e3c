package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hako-project/hako/runtime/seccomp"
	"github.com/hako-project/hako/runtime/state"
)

// denyMkdir is a profile that allows everything but mkdir, which fails
// with errno.
func denyMkdir(errno uint) *specs.LinuxSeccomp {
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls: []specs.LinuxSyscall{{
			Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: &errno,
		}},
	}
}

// TestExecSeccomp: an exec'd process runs under the container's filter,
// the one create kept in the state directory; for a container without it
// (made by an older runtime) the filter is compiled from the saved spec.
func TestExecSeccomp(t *testing.T) {
	r := newRT(t)
	b := newBundle(t, "sleep", "60")
	b.spec.Linux.Seccomp = denyMkdir(1) // EPERM
	b.save()
	id := uniqueID(t)
	r.must("run", "--detach", "--bundle", b.dir, id)
	kept := filepath.Join(r.root, id, state.SeccompFile)
	if _, err := os.Stat(kept); err != nil {
		t.Fatalf("create kept no seccomp filter: %v", err)
	}
	mkdir := func() string {
		t.Helper()
		_, errs, code := r.run("exec", id, "mkdir", "/tmp/d")
		if code == 0 {
			t.Fatal("mkdir succeeded under a filter that denies it")
		}
		return errs
	}
	if errs := mkdir(); !strings.Contains(errs, "Operation not permitted") {
		t.Errorf("exec under the container's filter: %q", errs)
	}

	// The kept filter is the one exec loads: swap in another one.
	other, err := seccomp.Compile(denyMkdir(13)) // EACCES
	must(t, err)
	must(t, seccomp.Keep(kept, other))
	if errs := mkdir(); !strings.Contains(errs, "Permission denied") {
		t.Errorf("exec did not load the kept filter: %q", errs)
	}

	// Without it, the saved profile is compiled.
	must(t, os.Remove(kept))
	if errs := mkdir(); !strings.Contains(errs, "Operation not permitted") {
		t.Errorf("exec without a kept filter: %q", errs)
	}
	r.must("delete", "--force", id)
	r.assertGone(id, b)
}
