package seccomp

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	libseccomp "github.com/seccomp/libseccomp-golang"
)

// Features describes what Compile accepts, for `hako-runtime features`:
// every action and operator, the architectures the linked libseccomp knows,
// and the flags the running kernel supports.
func Features() *features.Seccomp {
	t := true
	f := &features.Seccomp{Enabled: &t}
	for _, a := range []specs.LinuxSeccompAction{
		specs.ActKill, specs.ActKillProcess, specs.ActKillThread, specs.ActTrap, specs.ActErrno,
		specs.ActTrace, specs.ActAllow, specs.ActLog, specs.ActNotify,
	} {
		f.Actions = append(f.Actions, string(a))
	}
	for _, o := range []specs.LinuxSeccompOperator{
		specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
		specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual,
	} {
		f.Operators = append(f.Operators, string(o))
	}
	for _, a := range []specs.Arch{
		specs.ArchX86, specs.ArchX86_64, specs.ArchX32, specs.ArchARM, specs.ArchAARCH64,
		specs.ArchMIPS, specs.ArchMIPS64, specs.ArchMIPS64N32, specs.ArchMIPSEL, specs.ArchMIPSEL64,
		specs.ArchMIPSEL64N32, specs.ArchPPC, specs.ArchPPC64, specs.ArchPPC64LE, specs.ArchS390,
		specs.ArchS390X, specs.ArchRISCV64,
	} {
		if _, err := parseArch(a); err == nil {
			f.Archs = append(f.Archs, string(a))
		}
	}
	k := hostKernel{}
	for _, fl := range []specs.LinuxSeccompFlag{FlagTsync, FlagLog, FlagSpecAllow, FlagWaitKillableRecv} {
		f.KnownFlags = append(f.KnownFlags, string(fl))
		if _, err := parseFlags([]specs.LinuxSeccompFlag{fl}, fl == FlagWaitKillableRecv, k); err == nil {
			f.SupportedFlags = append(f.SupportedFlags, string(fl))
		}
	}
	return f
}

// LibraryVersion is the linked libseccomp's version.
func LibraryVersion() string {
	major, minor, micro := libseccomp.GetLibraryVersion()
	return fmt.Sprintf("%d.%d.%d", major, minor, micro)
}
