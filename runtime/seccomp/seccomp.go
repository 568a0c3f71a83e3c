// Package seccomp compiles the runtime-spec's linux.seccomp into the
// classic BPF program and seccomp(2) flags that hako-runtime's init loads,
// and hands a notify listener to the container's seccomp agent.
//
// The init is C that runs before the Go runtime, so it cannot call
// libseccomp's filter builder: all validation and compilation happens here,
// in the parent, and the init only makes the raw call
//
//	seccomp(SECCOMP_SET_MODE_FILTER, prog.Flags, &(struct sock_fprog){len, prog.Bytes()})
//
// The semantics follow runc (libcontainer/seccomp and its patchbpf): the
// same action and operator meanings, the same treatment of multiple
// conditions on one argument, syscalls unknown to libseccomp skipped when
// they are real Linux syscalls, and an ENOSYS stub so that new syscalls
// fall back instead of failing with EPERM. See docs/hardening.md.
package seccomp

import (
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// maxInstructions is the kernel's limit on one filter (BPF_MAXINSNS).
const maxInstructions = 4096

// maxArgs is the number of syscall arguments seccomp_data carries.
const maxArgs = 6

// Program is a compiled seccomp filter, ready for the init.
type Program struct {
	// Instructions is the filter: the ENOSYS stub (StubLen instructions,
	// possibly none) followed by libseccomp's program.
	Instructions []unix.SockFilter
	// StubLen is the number of ENOSYS stub instructions at the start.
	StubLen int
	// Flags is the flags argument of seccomp(2). It includes
	// SECCOMP_FILTER_FLAG_NEW_LISTENER when a rule uses SCMP_ACT_NOTIFY:
	// then seccomp(2) returns the listener fd, which the init sends to
	// the parent (see SendListener).
	Flags uint
	// ListenerPath and ListenerMetadata are copied from the spec for the
	// notify hand-off.
	ListenerPath     string
	ListenerMetadata string
	// Skipped lists syscall names the profile uses that are Linux syscalls
	// unknown to the linked libseccomp; they get ENOSYS or the default
	// action, as in runc.
	Skipped []string
}

// Notify reports whether the filter creates a notify listener.
func (p *Program) Notify() bool { return p.Flags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 }

// Bytes returns the filter as the init passes it to the kernel: an array
// of struct sock_filter in the host's byte order, 8 bytes each.
func (p *Program) Bytes() []byte {
	b := make([]byte, 0, len(p.Instructions)*8)
	for _, in := range p.Instructions {
		b = binary.NativeEndian.AppendUint16(b, in.Code)
		b = append(b, in.Jt, in.Jf)
		b = binary.NativeEndian.AppendUint32(b, in.K)
	}
	return b
}

// parseInstructions is the inverse of Bytes.
func parseInstructions(b []byte) ([]unix.SockFilter, error) {
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("BPF program of %d bytes is not a whole number of instructions", len(b))
	}
	out := make([]unix.SockFilter, len(b)/8)
	for i := range out {
		in := b[i*8:]
		out[i] = unix.SockFilter{
			Code: binary.NativeEndian.Uint16(in),
			Jt:   in[2],
			Jf:   in[3],
			K:    binary.NativeEndian.Uint32(in[4:]),
		}
	}
	return out, nil
}

// notifyForbidden are syscalls a NOTIFY rule may not cover: right after
// loading the filter the init sends the listener fd to the parent with
// sendmsg(2), and only then can the agent answer notifications, so a
// notified sendmsg would wait forever. write(2) is refused as runc refuses
// it, for the same reason in runc's own init.
var notifyForbidden = [...]string{"write", "sendmsg"}

// rule is one validated linux.seccomp.syscalls entry.
type rule struct {
	field string
	act   action
	names []resolvedName
	conds []libseccomp.ScmpCondition
	// separate adds each condition as its own rule (OR) because two of
	// them test the same argument, which libseccomp cannot AND.
	separate bool
}

type resolvedName struct {
	field string
	name  string
	nr    libseccomp.ScmpSyscall
}

// Compile validates s and compiles it for the host. A nil s means no
// filter and returns nil. Every error names the offending field, e.g.
// `linux.seccomp.syscalls[3].names[1]: unknown syscall "foo"`.
func Compile(s *specs.LinuxSeccomp) (*Program, error) {
	return compile(s, hostKernel{})
}

// builder turns validated rules into a BPF program; buildPerArch is the
// real one, tests compare it with libseccomp's merged build.
type builder func(def action, arches []libseccomp.ScmpArch, archFields []string, rules []rule) ([]unix.SockFilter, error)

func compile(s *specs.LinuxSeccomp, k kernel) (*Program, error) {
	return compileWith(s, k, buildPerArch)
}

func compileWith(s *specs.LinuxSeccomp, k kernel, buildProgram builder) (*Program, error) {
	if s == nil {
		return nil, nil
	}
	def, err := parseAction(s.DefaultAction, s.DefaultErrnoRet, "linux.seccomp.defaultAction", "linux.seccomp.defaultErrnoRet")
	if err != nil {
		return nil, err
	}
	if def.name == specs.ActNotify {
		return nil, fmt.Errorf("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action: the init could not hand the listener to the agent")
	}

	native, err := libseccomp.GetNativeArch()
	if err != nil {
		return nil, fmt.Errorf("seccomp: native architecture: %w", err)
	}
	arches := []libseccomp.ScmpArch{native}
	archFields := []string{"native architecture"}
	for i, a := range s.Architectures {
		field := fmt.Sprintf("linux.seccomp.architectures[%d]", i)
		arch, err := parseArch(a)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		if !slices.Contains(arches, arch) {
			arches = append(arches, arch)
			archFields = append(archFields, field)
		}
	}

	var (
		prog      = &Program{ListenerPath: s.ListenerPath, ListenerMetadata: s.ListenerMetadata}
		rules     []rule
		actions   = []action{def}
		actFields = []string{"linux.seccomp.defaultAction"}
		notify    bool
	)
	for i, sc := range s.Syscalls {
		field := fmt.Sprintf("linux.seccomp.syscalls[%d]", i)
		act, err := parseAction(sc.Action, sc.ErrnoRet, field+".action", field+".errnoRet")
		if err != nil {
			return nil, err
		}
		if act.name == specs.ActNotify {
			notify = true
		}
		if !slices.ContainsFunc(actions, func(a action) bool { return a.kernel == act.kernel }) {
			actions = append(actions, act)
			actFields = append(actFields, field+".action")
		}
		r := rule{field: field, act: act}
		if len(sc.Names) == 0 {
			return nil, fmt.Errorf("%s.names: empty; name at least one syscall", field)
		}
		for j, name := range sc.Names {
			nfield := fmt.Sprintf("%s.names[%d]", field, j)
			if name == "" {
				return nil, fmt.Errorf("%s: empty syscall name", nfield)
			}
			if act.name == specs.ActNotify && slices.Contains(notifyForbidden[:], name) {
				return nil, fmt.Errorf("%s: SCMP_ACT_NOTIFY cannot be used for %q: the init needs it to hand the listener to the agent", nfield, name)
			}
			nr, err := libseccomp.GetSyscallFromName(name)
			if err != nil {
				if !isNewerSyscall(name) {
					return nil, fmt.Errorf("%s: unknown syscall %q", nfield, name)
				}
				if !slices.Contains(prog.Skipped, name) {
					prog.Skipped = append(prog.Skipped, name)
				}
				continue
			}
			r.names = append(r.names, resolvedName{field: nfield, name: name, nr: nr})
		}
		var perArg [maxArgs]int
		for j, arg := range sc.Args {
			afield := fmt.Sprintf("%s.args[%d]", field, j)
			if arg.Index >= maxArgs {
				return nil, fmt.Errorf("%s.index: %d is out of range (syscalls have arguments 0..%d)", afield, arg.Index, maxArgs-1)
			}
			op, ok := parseOperator(arg.Op)
			if !ok {
				return nil, fmt.Errorf("%s.op: unknown operator %q", afield, arg.Op)
			}
			values := []uint64{arg.Value}
			if op == libseccomp.CompareMaskedEqual {
				// value is the mask, valueTwo what the masked argument
				// must equal.
				values = append(values, arg.ValueTwo)
			}
			cond, err := libseccomp.MakeCondition(arg.Index, op, values...)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", afield, err)
			}
			perArg[arg.Index]++
			if perArg[arg.Index] > 1 {
				r.separate = true
			}
			r.conds = append(r.conds, cond)
		}
		rules = append(rules, r)
	}

	if notify {
		if err := checkListenerPath(s.ListenerPath); err != nil {
			return nil, err
		}
	} else if s.ListenerPath != "" {
		slog.Debug("seccomp listenerPath ignored: no rule uses SCMP_ACT_NOTIFY", "listenerPath", s.ListenerPath)
	}

	for i, a := range actions {
		if err := k.actionAvailable(a.kernel); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", actFields[i], a.name, err)
		}
	}
	flags, err := parseFlags(s.Flags, notify, k)
	if err != nil {
		return nil, err
	}
	prog.Flags = flags

	raw, err := buildProgram(def, arches, archFields, rules)
	if err != nil {
		return nil, err
	}
	if stubWanted(def) {
		stub, err := enosysStub(archLimits(arches, rules))
		if err != nil {
			return nil, fmt.Errorf("linux.seccomp: %w", err)
		}
		prog.StubLen = len(stub)
		raw = append(stub, raw...)
	}
	if len(raw) > maxInstructions {
		return nil, fmt.Errorf("linux.seccomp: the filter compiles to %d instructions, more than the kernel's limit of %d", len(raw), maxInstructions)
	}
	prog.Instructions = raw
	if len(prog.Skipped) > 0 {
		major, minor, micro := libseccomp.GetLibraryVersion()
		slog.Debug("seccomp syscalls unknown to libseccomp skipped", "syscalls", prog.Skipped,
			"libseccomp", fmt.Sprintf("%d.%d.%d", major, minor, micro))
	}
	return prog, nil
}

// checkListenerPath validates linux.seccomp.listenerPath for a filter that
// uses SCMP_ACT_NOTIFY.
func checkListenerPath(p string) error {
	const field = "linux.seccomp.listenerPath"
	switch {
	case p == "":
		return fmt.Errorf("%s: required when a rule uses SCMP_ACT_NOTIFY", field)
	case !filepath.IsAbs(p):
		return fmt.Errorf("%s %q: must be an absolute path", field, p)
	case len(p) >= len(unix.RawSockaddrUnix{}.Path):
		return fmt.Errorf("%s %q: %d bytes is too long for a unix socket address (at most %d)", field, p, len(p), len(unix.RawSockaddrUnix{}.Path)-1)
	}
	return nil
}

// parseFlags turns linux.seccomp.flags into the seccomp(2) flags word and
// checks the kernel accepts each.
func parseFlags(specFlags []specs.LinuxSeccompFlag, notify bool, k kernel) (uint, error) {
	var flags uint
	for i, f := range specFlags {
		field := fmt.Sprintf("linux.seccomp.flags[%d]", i)
		var bit, probe uint
		switch f {
		case FlagTsync:
			// The C init is single-threaded, so TSYNC changes nothing
			// there; it is passed on so the filter means what it says.
			bit, probe = unix.SECCOMP_FILTER_FLAG_TSYNC, unix.SECCOMP_FILTER_FLAG_TSYNC
		case FlagLog:
			bit, probe = unix.SECCOMP_FILTER_FLAG_LOG, unix.SECCOMP_FILTER_FLAG_LOG
		case FlagSpecAllow:
			bit, probe = unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW, unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW
		case FlagWaitKillableRecv:
			// Only meaningful with a listener: the kernel refuses it
			// without NEW_LISTENER, so without a NOTIFY rule it is
			// dropped rather than failing the container.
			probe = unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV | unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
			if notify {
				bit = unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
			} else {
				slog.Debug("seccomp flag ignored: no rule uses SCMP_ACT_NOTIFY", "flag", string(f))
			}
		default:
			return 0, fmt.Errorf("%s: unknown flag %q", field, f)
		}
		if err := k.flagsSupported(probe); err != nil {
			return 0, fmt.Errorf("%s: %s: %w", field, f, err)
		}
		flags |= bit
	}
	if notify {
		flags |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
		if flags&unix.SECCOMP_FILTER_FLAG_TSYNC != 0 {
			// TSYNC and NEW_LISTENER both want the return value; with
			// TSYNC_ESRCH a TSYNC failure is reported as ESRCH instead.
			flags |= unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
		}
		if err := k.flagsSupported(flags); err != nil {
			return 0, fmt.Errorf("linux.seccomp: SCMP_ACT_NOTIFY with flags %#x: %w", flags, err)
		}
	}
	return flags, nil
}

// stubWanted reports whether the ENOSYS stub belongs in front of a filter
// with this default action (see enosys.go).
func stubWanted(def action) bool {
	switch def.name {
	case specs.ActAllow, specs.ActLog, specs.ActTrace:
		return false
	case specs.ActErrno:
		return def.scmp.GetReturnCode() != int16(unix.ENOSYS)
	}
	return true
}

// build makes one libseccomp filter for exactly the given architectures
// (arches[0] is the native one when it is included at all) and exports its
// BPF program.
func build(def action, arches []libseccomp.ScmpArch, archFields []string, rules []rule) ([]unix.SockFilter, error) {
	f, err := libseccomp.NewFilter(def.scmp)
	if err != nil {
		return nil, fmt.Errorf("linux.seccomp.defaultAction: create filter: %w", err)
	}
	defer f.Release()
	for i, a := range arches {
		if err := f.AddArch(a); err != nil {
			major, minor, micro := libseccomp.GetLibraryVersion()
			return nil, fmt.Errorf("%s: %s is not supported by libseccomp %d.%d.%d: %w", archFields[i], a, major, minor, micro, err)
		}
	}
	native, err := libseccomp.GetNativeArch()
	if err != nil {
		return nil, fmt.Errorf("seccomp: native architecture: %w", err)
	}
	if !slices.Contains(arches, native) {
		// A new filter always holds the native architecture.
		if err := f.RemoveArch(native); err != nil {
			return nil, fmt.Errorf("%s: remove native architecture: %w", archFields[0], err)
		}
	}
	// No-new-privileges is the init's own step (process.noNewPrivileges);
	// the exported program does not carry it anyway.
	if err := f.SetNoNewPrivsBit(false); err != nil {
		return nil, fmt.Errorf("linux.seccomp: %w", err)
	}
	n := 0
	for _, r := range rules {
		n += len(r.names)
	}
	if n > 32 {
		// A binary tree of syscall numbers instead of a linear list:
		// docker's profile goes from hundreds of comparisons on the
		// slowest path to about ten. libseccomp before 2.5 lacks it,
		// which only costs speed.
		if err := f.SetOptimize(2); err != nil {
			slog.Debug("seccomp binary tree optimisation unavailable", "error", err)
		}
	}
	for _, r := range rules {
		if r.act.scmp == def.scmp {
			// libseccomp refuses a rule that repeats the default action;
			// it changes nothing anyway.
			continue
		}
		for _, n := range r.names {
			var err error
			switch {
			case len(r.conds) == 0:
				err = f.AddRule(n.nr, r.act.scmp)
			case r.separate:
				for _, c := range r.conds {
					if err = f.AddRuleConditional(n.nr, r.act.scmp, []libseccomp.ScmpCondition{c}); err != nil {
						break
					}
				}
			default:
				err = f.AddRuleConditional(n.nr, r.act.scmp, r.conds)
			}
			if err != nil {
				return nil, fmt.Errorf("%s: add rule for %q: %w", n.field, n.name, err)
			}
		}
	}
	b, err := export(f)
	if err != nil {
		return nil, fmt.Errorf("linux.seccomp: %w", err)
	}
	return parseInstructions(b)
}

// export returns the filter's BPF program. libseccomp 2.6 can export to
// memory; older releases only to a file descriptor, so a memfd is used.
func export(f *libseccomp.ScmpFilter) ([]byte, error) {
	if b, err := f.ExportBPFMem(); err == nil {
		return b, nil
	}
	fd, err := unix.MemfdCreate("hako-seccomp-bpf", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("export BPF: memfd_create: %w", err)
	}
	file := os.NewFile(uintptr(fd), "hako-seccomp-bpf")
	defer file.Close()
	if err := f.ExportBPF(file); err != nil {
		return nil, fmt.Errorf("export BPF: %w", err)
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("export BPF: rewind: %w", err)
	}
	b, err := io.ReadAll(file)
	if err != nil {
		return nil, fmt.Errorf("export BPF: read back: %w", err)
	}
	return b, nil
}

// archLimits finds, for each kernel architecture in the filter, the
// largest syscall number any rule names.
func archLimits(arches []libseccomp.ScmpArch, rules []rule) []archLimit {
	var limits []archLimit
	for _, a := range arches {
		audit, ok := auditArch(a)
		if !ok {
			continue // falls through the stub to libseccomp's program
		}
		i := slices.IndexFunc(limits, func(l archLimit) bool { return l.audit == audit })
		if i < 0 {
			limits = append(limits, archLimit{audit: audit})
			i = len(limits) - 1
		}
		l := &limits[i]
		for _, r := range rules {
			for _, n := range r.names {
				nr, err := libseccomp.GetSyscallFromNameByArch(n.name, a)
				if err != nil || nr < 0 {
					continue // not a syscall on this architecture
				}
				v := uint32(nr)
				if a == libseccomp.ArchX32 {
					if !l.hasX32 || v > l.x32Max {
						l.x32Max, l.hasX32 = v, true
					}
					continue
				}
				if !l.hasMax || v > l.max {
					l.max, l.hasMax = v, true
				}
			}
		}
	}
	return limits
}
