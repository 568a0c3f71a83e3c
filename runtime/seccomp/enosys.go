package seccomp

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// The ENOSYS stub.
//
// A profile is written against the system calls its author knew. When the
// default action is a refusal (ERRNO with EPERM, KILL, ...), a system call
// newer than every call the profile names would be refused with EPERM or
// kill the process, and programs that probe for new calls (glibc trying
// clone3 before clone, statx before stat) take EPERM as a real failure
// instead of falling back. runc solved this by prepending a stub that
// answers ENOSYS, "no such system call", for every number above the
// largest one the profile names on each architecture; hako does the same,
// with its own code:
//
//	ld  [4]                      ; seccomp_data.arch
//	jeq AUDIT_ARCH_A, secA       ; one per architecture in the filter
//	ja  end                      ; unknown architecture: libseccomp decides
//	secA:
//	ld  [0]                      ; seccomp_data.nr
//	jgt maxA, enosys, end        ; x86_64 first splits on the x32 bit,
//	                             ; s390(x) also sends nr 0 to enosys
//	enosys:
//	ret ERRNO(ENOSYS)
//	end:                         ; libseccomp's program starts here
//
// cBPF only jumps forward and the stub ends where libseccomp's program
// begins, so the program needs no relocation. Like runc, the stub is not
// added when the default action already lets calls through (ALLOW, LOG,
// TRACE) or already answers ENOSYS. Its limit, shared with runc: a call
// numbered below the largest named one but missing from the profile still
// gets the default action.

// Offsets in struct seccomp_data.
const (
	offNr   = 0
	offArch = 4
)

// x32Bit marks an x32 system call on x86_64 (__X32_SYSCALL_BIT).
const x32Bit = 0x40000000

// archLimit is the largest system call number a profile names on one
// kernel architecture.
type archLimit struct {
	audit  uint32 // AUDIT_ARCH_*
	max    uint32 // largest native number; valid when hasMax
	hasMax bool
	x32Max uint32 // largest x32 number including x32Bit; valid when hasX32
	hasX32 bool
}

// asm is a tiny assembler for the stub: instructions may jump to labels,
// which are resolved to relative offsets once the stub is complete.
type asm struct {
	insns  []unix.SockFilter
	fixups []fixup
	labels map[string]int
}

type fixup struct {
	at     int
	jt, jf string // label or "" for the next instruction
	ja     string // for an unconditional jump
}

func (a *asm) label(name string) { a.labels[name] = len(a.insns) }

func (a *asm) load(off uint32) {
	a.insns = append(a.insns, unix.SockFilter{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: off})
}

func (a *asm) jump(op uint16, k uint32, jt, jf string) {
	a.fixups = append(a.fixups, fixup{at: len(a.insns), jt: jt, jf: jf})
	a.insns = append(a.insns, unix.SockFilter{Code: unix.BPF_JMP | op | unix.BPF_K, K: k})
}

func (a *asm) ja(to string) {
	a.fixups = append(a.fixups, fixup{at: len(a.insns), ja: to})
	a.insns = append(a.insns, unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JA})
}

func (a *asm) ret(k uint32) {
	a.insns = append(a.insns, unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: k})
}

// offset returns how far an instruction at index at must jump to reach
// label ("" is the next instruction).
func (a *asm) offset(at int, label string) (int, error) {
	if label == "" {
		return 0, nil
	}
	to, ok := a.labels[label]
	if !ok {
		return 0, fmt.Errorf("ENOSYS stub: undefined label %q", label)
	}
	if to <= at {
		return 0, fmt.Errorf("ENOSYS stub: backward jump to %q", label)
	}
	return to - at - 1, nil
}

func (a *asm) assemble() ([]unix.SockFilter, error) {
	for _, f := range a.fixups {
		if f.ja != "" {
			off, err := a.offset(f.at, f.ja)
			if err != nil {
				return nil, err
			}
			a.insns[f.at].K = uint32(off)
			continue
		}
		jt, err := a.offset(f.at, f.jt)
		if err != nil {
			return nil, err
		}
		jf, err := a.offset(f.at, f.jf)
		if err != nil {
			return nil, err
		}
		if jt > 255 || jf > 255 {
			return nil, fmt.Errorf("ENOSYS stub: conditional jump of %d/%d instructions is too long", jt, jf)
		}
		a.insns[f.at].Jt, a.insns[f.at].Jf = uint8(jt), uint8(jf)
	}
	return a.insns, nil
}

// enosysStub builds the stub for the given architectures; it returns nil
// when no architecture has a limit.
func enosysStub(limits []archLimit) ([]unix.SockFilter, error) {
	var used []archLimit
	for _, l := range limits {
		if l.hasMax || l.hasX32 {
			used = append(used, l)
		}
	}
	if len(used) == 0 {
		return nil, nil
	}
	a := &asm{labels: map[string]int{}}
	a.load(offArch)
	for i, l := range used {
		a.jump(unix.BPF_JEQ, l.audit, fmt.Sprintf("arch%d", i), "")
	}
	a.ja("end")
	for i, l := range used {
		a.label(fmt.Sprintf("arch%d", i))
		a.load(offNr)
		if l.audit == unix.AUDIT_ARCH_S390 || l.audit == unix.AUDIT_ARCH_S390X {
			// Numbers the kernel does not know reach the filter as 0,
			// the long-gone setup(2), so 0 means "unknown" there.
			a.jump(unix.BPF_JEQ, 0, "enosys", "")
		}
		if l.audit == unix.AUDIT_ARCH_X86_64 {
			x32 := fmt.Sprintf("x32_%d", i)
			a.jump(unix.BPF_JSET, x32Bit, x32, "")
			if l.hasMax {
				a.jump(unix.BPF_JGT, l.max, "enosys", "end")
			} else {
				a.ja("end")
			}
			a.label(x32)
			if l.hasX32 {
				a.jump(unix.BPF_JGT, l.x32Max, "enosys", "end")
			} else {
				a.ja("end")
			}
			continue
		}
		a.jump(unix.BPF_JGT, l.max, "enosys", "end")
	}
	a.label("enosys")
	a.ret(unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS))
	a.label("end")
	return a.assemble()
}
