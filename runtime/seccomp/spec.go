package seccomp

import (
	"fmt"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// Flag names the runtime-spec allows in linux.seccomp.flags. TSYNC has no
// constant in specs-go.
const (
	FlagTsync            specs.LinuxSeccompFlag = "SECCOMP_FILTER_FLAG_TSYNC"
	FlagLog                                     = specs.LinuxSeccompFlagLog
	FlagSpecAllow                               = specs.LinuxSeccompFlagSpecAllow
	FlagWaitKillableRecv                        = specs.LinuxSeccompFlagWaitKillableRecv
)

// Limits on return data the kernel keeps: ERRNO values above MAX_ERRNO are
// clamped by the kernel, so a larger errnoRet would not be what the user
// sees; TRACE passes 16 bits to the tracer.
const (
	maxErrno    = 4095
	maxTraceRet = 0xffff
)

// action is a spec action resolved for libseccomp and for the kernel.
type action struct {
	name   specs.LinuxSeccompAction
	scmp   libseccomp.ScmpAction
	kernel uint32 // SECCOMP_RET_* (without data), for the availability probe
}

// parseAction resolves a spec action and its errnoRet. field names the
// action's field; retField the errnoRet's.
func parseAction(a specs.LinuxSeccompAction, ret *uint, field, retField string) (action, error) {
	var act action
	act.name = a
	switch a {
	case specs.ActKill, specs.ActKillThread:
		// SCMP_ACT_KILL has meant "kill the thread" since before
		// KILL_PROCESS existed; runc and libseccomp keep that meaning.
		act.scmp, act.kernel = libseccomp.ActKillThread, unix.SECCOMP_RET_KILL_THREAD
	case specs.ActKillProcess:
		act.scmp, act.kernel = libseccomp.ActKillProcess, unix.SECCOMP_RET_KILL_PROCESS
	case specs.ActTrap:
		act.scmp, act.kernel = libseccomp.ActTrap, unix.SECCOMP_RET_TRAP
	case specs.ActErrno:
		act.scmp, act.kernel = libseccomp.ActErrno, unix.SECCOMP_RET_ERRNO
	case specs.ActTrace:
		act.scmp, act.kernel = libseccomp.ActTrace, unix.SECCOMP_RET_TRACE
	case specs.ActAllow:
		act.scmp, act.kernel = libseccomp.ActAllow, unix.SECCOMP_RET_ALLOW
	case specs.ActLog:
		act.scmp, act.kernel = libseccomp.ActLog, unix.SECCOMP_RET_LOG
	case specs.ActNotify:
		act.scmp, act.kernel = libseccomp.ActNotify, unix.SECCOMP_RET_USER_NOTIF
	case "":
		return action{}, fmt.Errorf("%s: missing (one of SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, ...)", field)
	default:
		return action{}, fmt.Errorf("%s: unknown action %q", field, a)
	}
	switch a {
	case specs.ActErrno, specs.ActTrace:
		// Without errnoRet both return EPERM, as in runc.
		code := uint(unix.EPERM)
		if ret != nil {
			code = *ret
			limit := uint(maxErrno)
			if a == specs.ActTrace {
				limit = maxTraceRet
			}
			if code > limit {
				return action{}, fmt.Errorf("%s: %d is out of range for %s (0..%d)", retField, code, a, limit)
			}
		}
		act.scmp = act.scmp.SetReturnCode(int16(code))
	default:
		if ret != nil {
			return action{}, fmt.Errorf("%s: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take a return value, not %s", retField, a)
		}
	}
	return act, nil
}

// parseOperator resolves a spec comparison operator.
func parseOperator(op specs.LinuxSeccompOperator) (libseccomp.ScmpCompareOp, bool) {
	switch op {
	case specs.OpNotEqual:
		return libseccomp.CompareNotEqual, true
	case specs.OpLessThan:
		return libseccomp.CompareLess, true
	case specs.OpLessEqual:
		return libseccomp.CompareLessOrEqual, true
	case specs.OpEqualTo:
		return libseccomp.CompareEqual, true
	case specs.OpGreaterEqual:
		return libseccomp.CompareGreaterEqual, true
	case specs.OpGreaterThan:
		return libseccomp.CompareGreater, true
	case specs.OpMaskedEqual:
		return libseccomp.CompareMaskedEqual, true
	}
	return libseccomp.CompareInvalid, false
}

// parseArch resolves a spec architecture such as "SCMP_ARCH_X86_64".
func parseArch(a specs.Arch) (libseccomp.ScmpArch, error) {
	s := string(a)
	if !strings.HasPrefix(s, "SCMP_ARCH_") {
		return libseccomp.ArchInvalid, fmt.Errorf("unknown architecture %q", s)
	}
	arch, err := libseccomp.GetArchFromString(strings.TrimPrefix(s, "SCMP_ARCH_"))
	if err != nil {
		return libseccomp.ArchInvalid, fmt.Errorf("unknown architecture %q", s)
	}
	return arch, nil
}

// auditArch returns the AUDIT_ARCH_* value the kernel puts in
// seccomp_data.arch for a libseccomp architecture (x32 shares x86_64's and
// sets bit 30 of the syscall number instead).
func auditArch(a libseccomp.ScmpArch) (uint32, bool) {
	switch a {
	case libseccomp.ArchX86:
		return unix.AUDIT_ARCH_I386, true
	case libseccomp.ArchAMD64, libseccomp.ArchX32:
		return unix.AUDIT_ARCH_X86_64, true
	case libseccomp.ArchARM:
		return unix.AUDIT_ARCH_ARM, true
	case libseccomp.ArchARM64:
		return unix.AUDIT_ARCH_AARCH64, true
	case libseccomp.ArchMIPS:
		return unix.AUDIT_ARCH_MIPS, true
	case libseccomp.ArchMIPS64:
		return unix.AUDIT_ARCH_MIPS64, true
	case libseccomp.ArchMIPS64N32:
		return unix.AUDIT_ARCH_MIPS64N32, true
	case libseccomp.ArchMIPSEL:
		return unix.AUDIT_ARCH_MIPSEL, true
	case libseccomp.ArchMIPSEL64:
		return unix.AUDIT_ARCH_MIPSEL64, true
	case libseccomp.ArchMIPSEL64N32:
		return unix.AUDIT_ARCH_MIPSEL64N32, true
	case libseccomp.ArchPPC:
		return unix.AUDIT_ARCH_PPC, true
	case libseccomp.ArchPPC64:
		return unix.AUDIT_ARCH_PPC64, true
	case libseccomp.ArchPPC64LE:
		return unix.AUDIT_ARCH_PPC64LE, true
	case libseccomp.ArchS390:
		return unix.AUDIT_ARCH_S390, true
	case libseccomp.ArchS390X:
		return unix.AUDIT_ARCH_S390X, true
	case libseccomp.ArchPARISC:
		return unix.AUDIT_ARCH_PARISC, true
	case libseccomp.ArchPARISC64:
		return unix.AUDIT_ARCH_PARISC64, true
	case libseccomp.ArchRISCV64:
		return unix.AUDIT_ARCH_RISCV64, true
	case libseccomp.ArchLOONGARCH64:
		return unix.AUDIT_ARCH_LOONGARCH64, true
	case libseccomp.ArchM68K:
		return unix.AUDIT_ARCH_M68K, true
	case libseccomp.ArchSH:
		return unix.AUDIT_ARCH_SHEL, true
	case libseccomp.ArchSHEB:
		return unix.AUDIT_ARCH_SH, true
	}
	return 0, false
}
