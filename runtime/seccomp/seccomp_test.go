package seccomp

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hako-project/hako/runtime/caps"
	mobyseccomp "github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

func uptr(v uint) *uint { return &v }

// dockerDefault returns docker's default profile as docker's engine turns
// it into a spec for a container with docker's default capabilities.
func dockerDefault(t testing.TB) *specs.LinuxSeccomp {
	t.Helper()
	s, err := mobyseccomp.GetDefaultProfile(&specs.Spec{Process: &specs.Process{
		Capabilities: caps.SpecFor(caps.DockerDefault()),
	}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fakeKernel plays a kernel lacking some actions and flags.
type fakeKernel struct {
	noActions []uint32
	noFlags   uint
}

func (k fakeKernel) actionAvailable(ret uint32) error {
	if slices.Contains(k.noActions, ret) {
		return errUnsupported
	}
	return nil
}

func (k fakeKernel) flagsSupported(flags uint) error {
	if flags&k.noFlags != 0 {
		return errUnsupported
	}
	return nil
}

// nativeAudit is the AUDIT_ARCH of the machine running the tests.
func nativeAudit(t testing.TB) uint32 {
	t.Helper()
	a, err := libseccomp.GetNativeArch()
	if err != nil {
		t.Fatal(err)
	}
	audit, ok := auditArch(a)
	if !ok {
		t.Fatalf("no AUDIT_ARCH for native %v", a)
	}
	return audit
}

func nr(t testing.TB, name string) int32 {
	t.Helper()
	n, err := libseccomp.GetSyscallFromName(name)
	if err != nil {
		t.Fatalf("resolve %s: %v", name, err)
	}
	return int32(n)
}

func mustCompile(t testing.TB, s *specs.LinuxSeccomp) *Program {
	t.Helper()
	p, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// decide runs the compiled program for one call on the native arch.
func decide(t *testing.T, p *Program, nr int32, args ...uint64) uint32 {
	t.Helper()
	d := seccompData{nr: nr, arch: nativeAudit(t)}
	copy(d.args[:], args)
	ret, err := runBPF(p.Instructions, d)
	if err != nil {
		t.Fatal(err)
	}
	return ret
}

func errnoRet(e unix.Errno) uint32 { return unix.SECCOMP_RET_ERRNO | uint32(e) }

func TestCompileNil(t *testing.T) {
	p, err := Compile(nil)
	if p != nil || err != nil {
		t.Fatalf("Compile(nil) = %v, %v; want no filter", p, err)
	}
}

func TestCompileErrors(t *testing.T) {
	allow := specs.ActAllow
	base := func(mod func(s *specs.LinuxSeccomp)) *specs.LinuxSeccomp {
		s := &specs.LinuxSeccomp{
			DefaultAction: allow,
			Syscalls: []specs.LinuxSyscall{
				{Names: []string{"getpid"}, Action: specs.ActErrno},
				{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno},
			},
		}
		mod(s)
		return s
	}
	long := "/" + strings.Repeat("x", 200)
	tests := []struct {
		name string
		spec *specs.LinuxSeccomp
		want string
	}{
		{"missing default action", base(func(s *specs.LinuxSeccomp) { s.DefaultAction = "" }),
			"linux.seccomp.defaultAction: missing"},
		{"unknown default action", base(func(s *specs.LinuxSeccomp) { s.DefaultAction = "SCMP_ACT_FOO" }),
			`linux.seccomp.defaultAction: unknown action "SCMP_ACT_FOO"`},
		{"notify as default", base(func(s *specs.LinuxSeccomp) { s.DefaultAction = specs.ActNotify }),
			"linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action"},
		{"defaultErrnoRet with allow", base(func(s *specs.LinuxSeccomp) { s.DefaultErrnoRet = uptr(1) }),
			"linux.seccomp.defaultErrnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take a return value, not SCMP_ACT_ALLOW"},
		{"defaultErrnoRet too large", base(func(s *specs.LinuxSeccomp) {
			s.DefaultAction, s.DefaultErrnoRet = specs.ActErrno, uptr(5000)
		}), "linux.seccomp.defaultErrnoRet: 5000 is out of range for SCMP_ACT_ERRNO (0..4095)"},
		{"unknown architecture", base(func(s *specs.LinuxSeccomp) {
			s.Architectures = []specs.Arch{specs.ArchX86_64, "SCMP_ARCH_VAX"}
		}), `linux.seccomp.architectures[1]: unknown architecture "SCMP_ARCH_VAX"`},
		{"architecture without prefix", base(func(s *specs.LinuxSeccomp) { s.Architectures = []specs.Arch{"x86_64"} }),
			`linux.seccomp.architectures[0]: unknown architecture "x86_64"`},
		{"unknown flag", base(func(s *specs.LinuxSeccomp) {
			s.Flags = []specs.LinuxSeccompFlag{FlagLog, "SECCOMP_FILTER_FLAG_FOO"}
		}), `linux.seccomp.flags[1]: unknown flag "SECCOMP_FILTER_FLAG_FOO"`},
		{"no names", base(func(s *specs.LinuxSeccomp) { s.Syscalls[1].Names = nil }),
			"linux.seccomp.syscalls[1].names: empty"},
		{"empty name", base(func(s *specs.LinuxSeccomp) { s.Syscalls[1].Names = []string{"mkdir", ""} }),
			"linux.seccomp.syscalls[1].names[1]: empty syscall name"},
		{"unknown syscall", base(func(s *specs.LinuxSeccomp) {
			s.Syscalls = append(s.Syscalls, s.Syscalls[0], specs.LinuxSyscall{Names: []string{"read", "foo"}, Action: specs.ActErrno})
		}), `linux.seccomp.syscalls[3].names[1]: unknown syscall "foo"`},
		{"missing action", base(func(s *specs.LinuxSeccomp) { s.Syscalls[0].Action = "" }),
			"linux.seccomp.syscalls[0].action: missing"},
		{"unknown action", base(func(s *specs.LinuxSeccomp) { s.Syscalls[0].Action = "SCMP_ACT_KILLALL" }),
			`linux.seccomp.syscalls[0].action: unknown action "SCMP_ACT_KILLALL"`},
		{"errnoRet with kill", base(func(s *specs.LinuxSeccomp) {
			s.Syscalls[1].Action, s.Syscalls[1].ErrnoRet = specs.ActKillProcess, uptr(1)
		}), "linux.seccomp.syscalls[1].errnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take a return value, not SCMP_ACT_KILL_PROCESS"},
		{"trace return too large", base(func(s *specs.LinuxSeccomp) {
			s.Syscalls[1].Action, s.Syscalls[1].ErrnoRet = specs.ActTrace, uptr(70000)
		}), "linux.seccomp.syscalls[1].errnoRet: 70000 is out of range for SCMP_ACT_TRACE (0..65535)"},
		{"argument index", base(func(s *specs.LinuxSeccomp) {
			s.Syscalls[1].Args = []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo}, {Index: 6, Op: specs.OpEqualTo}}
		}), "linux.seccomp.syscalls[1].args[1].index: 6 is out of range"},
		{"argument operator", base(func(s *specs.LinuxSeccomp) {
			s.Syscalls[0].Args = []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_LIKE"}}
		}), `linux.seccomp.syscalls[0].args[0].op: unknown operator "SCMP_CMP_LIKE"`},
		{"notify without listener", base(func(s *specs.LinuxSeccomp) { s.Syscalls[0].Action = specs.ActNotify }),
			"linux.seccomp.listenerPath: required when a rule uses SCMP_ACT_NOTIFY"},
		{"relative listener", base(func(s *specs.LinuxSeccomp) {
			s.Syscalls[0].Action, s.ListenerPath = specs.ActNotify, "agent.sock"
		}), `linux.seccomp.listenerPath "agent.sock": must be an absolute path`},
		{"long listener", base(func(s *specs.LinuxSeccomp) {
			s.Syscalls[0].Action, s.ListenerPath = specs.ActNotify, long
		}), "is too long for a unix socket address"},
		{"notify on write", base(func(s *specs.LinuxSeccomp) {
			s.ListenerPath = "/run/agent.sock"
			s.Syscalls[1] = specs.LinuxSyscall{Names: []string{"read", "write"}, Action: specs.ActNotify}
		}), `linux.seccomp.syscalls[1].names[1]: SCMP_ACT_NOTIFY cannot be used for "write"`},
		{"notify on sendmsg", base(func(s *specs.LinuxSeccomp) {
			s.ListenerPath = "/run/agent.sock"
			s.Syscalls[0] = specs.LinuxSyscall{Names: []string{"sendmsg"}, Action: specs.ActNotify}
		}), `linux.seccomp.syscalls[0].names[0]: SCMP_ACT_NOTIFY cannot be used for "sendmsg"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compile(tc.spec)
			if err == nil {
				t.Fatalf("compiled to %d instructions, want error %q", len(p.Instructions), tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q\nwant      %q", err, tc.want)
			}
		})
	}
}

func TestCompileArchitectureLibseccompLacks(t *testing.T) {
	major, minor, _ := libseccomp.GetLibraryVersion()
	if major > 2 || minor >= 6 {
		t.Skipf("libseccomp %d.%d supports every architecture specs-go names", major, minor)
	}
	_, err := Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActErrno,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchLOONGARCH64}})
	if err == nil || !strings.Contains(err.Error(), "linux.seccomp.architectures[1]: loong") ||
		!strings.Contains(err.Error(), "is not supported by libseccomp 2.") {
		t.Fatalf("error = %v", err)
	}
}

func TestCompileOldKernel(t *testing.T) {
	notify := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/run/agent.sock",
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getpid"}, Action: specs.ActErrno},
			{Names: []string{"mkdir"}, Action: specs.ActNotify},
		}}
	if _, err := compile(notify, fakeKernel{noActions: []uint32{unix.SECCOMP_RET_USER_NOTIF}}); err == nil ||
		!strings.Contains(err.Error(), "linux.seccomp.syscalls[1].action: SCMP_ACT_NOTIFY: not supported by the running kernel") {
		t.Errorf("notify on a kernel without it: %v", err)
	}
	kill := &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess}
	if _, err := compile(kill, fakeKernel{noActions: []uint32{unix.SECCOMP_RET_KILL_PROCESS}}); err == nil ||
		!strings.Contains(err.Error(), "linux.seccomp.defaultAction: SCMP_ACT_KILL_PROCESS: not supported") {
		t.Errorf("kill process on a kernel without it: %v", err)
	}
	logFlag := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{FlagSpecAllow, FlagLog}}
	if _, err := compile(logFlag, fakeKernel{noFlags: unix.SECCOMP_FILTER_FLAG_LOG}); err == nil ||
		!strings.Contains(err.Error(), "linux.seccomp.flags[1]: SECCOMP_FILTER_FLAG_LOG: not supported") {
		t.Errorf("log flag on a kernel without it: %v", err)
	}
	notify.Flags = []specs.LinuxSeccompFlag{FlagTsync}
	if _, err := compile(notify, fakeKernel{noFlags: unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH}); err == nil ||
		!strings.Contains(err.Error(), "linux.seccomp: SCMP_ACT_NOTIFY with flags 0x19: not supported") {
		t.Errorf("TSYNC with notify on a kernel without TSYNC_ESRCH: %v", err)
	}
	if !errors.Is(fakeKernel{noFlags: 1}.flagsSupported(1), errUnsupported) {
		t.Error("fake kernel does not refuse")
	}
}

func TestFlags(t *testing.T) {
	rules := []specs.LinuxSyscall{{Names: []string{"getpid"}, Action: specs.ActErrno}}
	notifyRules := append(slices.Clone(rules), specs.LinuxSyscall{Names: []string{"mkdir"}, Action: specs.ActNotify})
	tests := []struct {
		name  string
		flags []specs.LinuxSeccompFlag
		rules []specs.LinuxSyscall
		want  uint
	}{
		{"none", nil, rules, 0},
		{"tsync", []specs.LinuxSeccompFlag{FlagTsync}, rules, unix.SECCOMP_FILTER_FLAG_TSYNC},
		{"log and spec allow", []specs.LinuxSeccompFlag{FlagLog, FlagSpecAllow}, rules,
			unix.SECCOMP_FILTER_FLAG_LOG | unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW},
		{"wait killable without notify is dropped", []specs.LinuxSeccompFlag{FlagWaitKillableRecv}, rules, 0},
		{"notify adds a listener", nil, notifyRules, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER},
		{"notify with wait killable", []specs.LinuxSeccompFlag{FlagWaitKillableRecv}, notifyRules,
			unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV},
		{"notify with tsync adds tsync_esrch", []specs.LinuxSeccompFlag{FlagTsync}, notifyRules,
			unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_TSYNC | unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := compile(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: tc.flags,
				ListenerPath: "/run/agent.sock", Syscalls: tc.rules}, fakeKernel{})
			if err != nil {
				t.Fatal(err)
			}
			if p.Flags != tc.want {
				t.Fatalf("flags = %#x, want %#x", p.Flags, tc.want)
			}
			if p.Notify() != (tc.want&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER != 0) {
				t.Fatal("Notify() disagrees with the flags")
			}
		})
	}
}

func TestBytesRoundTrip(t *testing.T) {
	p := mustCompile(t, dockerDefault(t))
	b := p.Bytes()
	if len(b) != 8*len(p.Instructions) {
		t.Fatalf("%d bytes for %d instructions", len(b), len(p.Instructions))
	}
	back, err := parseInstructions(b)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back, p.Instructions) {
		t.Fatal("Bytes does not round-trip")
	}
	if _, err := parseInstructions(b[:len(b)-3]); err == nil {
		t.Fatal("a truncated program was accepted")
	}
}

func TestActions(t *testing.T) {
	getpid, getppid := nr(t, "getpid"), nr(t, "getppid")
	for _, tc := range []struct {
		action specs.LinuxSeccompAction
		ret    *uint
		want   uint32
	}{
		{specs.ActKill, nil, unix.SECCOMP_RET_KILL_THREAD},
		{specs.ActKillThread, nil, unix.SECCOMP_RET_KILL_THREAD},
		{specs.ActKillProcess, nil, unix.SECCOMP_RET_KILL_PROCESS},
		{specs.ActTrap, nil, unix.SECCOMP_RET_TRAP},
		{specs.ActErrno, nil, errnoRet(unix.EPERM)},
		{specs.ActErrno, uptr(uint(unix.EXDEV)), errnoRet(unix.EXDEV)},
		{specs.ActErrno, uptr(0), unix.SECCOMP_RET_ERRNO},
		{specs.ActTrace, nil, unix.SECCOMP_RET_TRACE | uint32(unix.EPERM)},
		{specs.ActTrace, uptr(40000), unix.SECCOMP_RET_TRACE | 40000},
		{specs.ActLog, nil, unix.SECCOMP_RET_LOG},
		{specs.ActNotify, nil, unix.SECCOMP_RET_USER_NOTIF},
	} {
		t.Run(fmt.Sprintf("%s_%v", tc.action, tc.ret != nil), func(t *testing.T) {
			p := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/run/a.sock",
				Syscalls: []specs.LinuxSyscall{{Names: []string{"getpid"}, Action: tc.action, ErrnoRet: tc.ret}}})
			if got := decide(t, p, getpid); got != tc.want {
				t.Errorf("getpid -> %#x, want %#x", got, tc.want)
			}
			if got := decide(t, p, getppid); got != unix.SECCOMP_RET_ALLOW {
				t.Errorf("getppid -> %#x, want allow", got)
			}
		})
	}
}

func TestDefaultActionAndErrnoRet(t *testing.T) {
	p := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uptr(uint(unix.EACCES)),
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getpid", "read"}, Action: specs.ActAllow},
			// Same action as the default: skipped, not an error.
			{Names: []string{"write"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.EACCES))},
		}})
	if got := decide(t, p, nr(t, "getpid")); got != unix.SECCOMP_RET_ALLOW {
		t.Errorf("getpid -> %#x", got)
	}
	if got := decide(t, p, nr(t, "write")); got != errnoRet(unix.EACCES) {
		t.Errorf("write -> %#x, want EACCES", got)
	}
}

// TestArgumentOperators checks every operator, 64-bit values, the AND of
// conditions on different arguments and the OR of conditions on the same
// argument, as runc defines them.
func TestArgumentOperators(t *testing.T) {
	const big = 1<<33 | 5
	match := errnoRet(unix.EXDEV)
	tests := []struct {
		name  string
		args  []specs.LinuxSeccompArg
		cases map[[2]uint64]bool // (arg0, arg1) -> matches
	}{
		{"eq", []specs.LinuxSeccompArg{{Index: 0, Value: 5, Op: specs.OpEqualTo}},
			map[[2]uint64]bool{{5, 0}: true, {4, 0}: false, {big, 0}: false}},
		{"ne", []specs.LinuxSeccompArg{{Index: 0, Value: 5, Op: specs.OpNotEqual}},
			map[[2]uint64]bool{{5, 0}: false, {4, 0}: true, {big, 0}: true}},
		{"lt", []specs.LinuxSeccompArg{{Index: 0, Value: 5, Op: specs.OpLessThan}},
			map[[2]uint64]bool{{4, 0}: true, {5, 0}: false, {6, 0}: false}},
		{"le", []specs.LinuxSeccompArg{{Index: 0, Value: 5, Op: specs.OpLessEqual}},
			map[[2]uint64]bool{{4, 0}: true, {5, 0}: true, {6, 0}: false}},
		{"gt", []specs.LinuxSeccompArg{{Index: 0, Value: 5, Op: specs.OpGreaterThan}},
			map[[2]uint64]bool{{4, 0}: false, {5, 0}: false, {6, 0}: true, {big, 0}: true}},
		{"ge", []specs.LinuxSeccompArg{{Index: 0, Value: 5, Op: specs.OpGreaterEqual}},
			map[[2]uint64]bool{{4, 0}: false, {5, 0}: true, {6, 0}: true}},
		{"masked eq", []specs.LinuxSeccompArg{{Index: 0, Value: 0xf0, ValueTwo: 0x30, Op: specs.OpMaskedEqual}},
			map[[2]uint64]bool{{0x30, 0}: true, {0x3f, 0}: true, {0x130, 0}: true, {0x20, 0}: false, {0xf0, 0}: false}},
		{"64-bit value", []specs.LinuxSeccompArg{{Index: 1, Value: big, Op: specs.OpEqualTo}},
			map[[2]uint64]bool{{0, big}: true, {0, 5}: false, {0, 1 << 33}: false}},
		{"two args are ANDed", []specs.LinuxSeccompArg{
			{Index: 0, Value: 1, Op: specs.OpEqualTo}, {Index: 1, Value: 7, Op: specs.OpEqualTo}},
			map[[2]uint64]bool{{1, 7}: true, {1, 8}: false, {2, 7}: false}},
		{"same arg twice is ORed", []specs.LinuxSeccompArg{
			{Index: 0, Value: 1, Op: specs.OpEqualTo}, {Index: 0, Value: 2, Op: specs.OpEqualTo}},
			map[[2]uint64]bool{{1, 0}: true, {2, 0}: true, {3, 0}: false}},
	}
	getpriority := nr(t, "getpriority")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
				Syscalls: []specs.LinuxSyscall{{Names: []string{"getpriority"}, Action: specs.ActErrno,
					ErrnoRet: uptr(uint(unix.EXDEV)), Args: tc.args}}})
			for args, want := range tc.cases {
				got := decide(t, p, getpriority, args[0], args[1]) == match
				if got != want {
					t.Errorf("getpriority(%#x, %#x) matched = %v, want %v", args[0], args[1], got, want)
				}
			}
		})
	}
}

func TestENOSYSStub(t *testing.T) {
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "write", "getpid", "mkdirat", "exit_group"}, Action: specs.ActAllow},
		}}
	if nativeAudit(t) != unix.AUDIT_ARCH_X86_64 {
		t.Skip("the multi-arch stub layout is tested on x86_64")
	}
	p := mustCompile(t, s)
	if p.StubLen == 0 {
		t.Fatal("no ENOSYS stub for an ERRNO default")
	}
	const (
		x86_64 = unix.AUDIT_ARCH_X86_64
		i386   = unix.AUDIT_ARCH_I386
	)
	for _, tc := range []struct {
		name string
		arch uint32
		nr   int32
		want uint32
	}{
		{"allowed", x86_64, unix.SYS_MKDIRAT, unix.SECCOMP_RET_ALLOW},
		{"below the largest named: default", x86_64, unix.SYS_MKDIR, errnoRet(unix.EPERM)},
		{"largest named", x86_64, unix.SYS_MKDIRAT, unix.SECCOMP_RET_ALLOW},
		{"above the largest named: ENOSYS", x86_64, 435 /* clone3 */, errnoRet(unix.ENOSYS)},
		{"x32 allowed", x86_64, x32Bit /* + 0: read */, unix.SECCOMP_RET_ALLOW},
		{"x32 below largest: default", x86_64, x32Bit | 83 /* mkdir */, errnoRet(unix.EPERM)},
		{"x32 above largest: ENOSYS", x86_64, x32Bit | 435, errnoRet(unix.ENOSYS)},
		{"i386 allowed", i386, 3 /* read */, unix.SECCOMP_RET_ALLOW},
		{"i386 above largest: ENOSYS", i386, 435, errnoRet(unix.ENOSYS)},
		{"i386 below largest: default", i386, 39 /* mkdir */, errnoRet(unix.EPERM)},
		{"unknown architecture: libseccomp kills", unix.AUDIT_ARCH_AARCH64, 63, unix.SECCOMP_RET_KILL_THREAD},
	} {
		got, err := runBPF(p.Instructions, seccompData{nr: tc.nr, arch: tc.arch})
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("%s: %#x, want %#x", tc.name, got, tc.want)
		}
	}
	// Without the x32 architecture, x32 calls are libseccomp's to refuse.
	s.Architectures = []specs.Arch{specs.ArchX86_64}
	p = mustCompile(t, s)
	if got, _ := runBPF(p.Instructions, seccompData{nr: x32Bit | 435, arch: x86_64}); got == errnoRet(unix.ENOSYS) {
		t.Error("x32 call answered ENOSYS by a filter without x32")
	}
	if got, _ := runBPF(p.Instructions, seccompData{nr: 435, arch: x86_64}); got != errnoRet(unix.ENOSYS) {
		t.Errorf("clone3 without x32: %#x", got)
	}
}

func TestENOSYSStubOnlyForRefusingDefaults(t *testing.T) {
	rules := []specs.LinuxSyscall{{Names: []string{"getpid"}, Action: specs.ActErrno}}
	for _, tc := range []struct {
		def  specs.LinuxSeccompAction
		ret  *uint
		want bool
	}{
		{specs.ActAllow, nil, false}, {specs.ActLog, nil, false}, {specs.ActTrace, nil, false},
		{specs.ActErrno, uptr(uint(unix.ENOSYS)), false},
		{specs.ActErrno, nil, true}, {specs.ActKillProcess, nil, true}, {specs.ActKill, nil, true},
		{specs.ActTrap, nil, true},
	} {
		r := slices.Clone(rules)
		if tc.def == specs.ActErrno && tc.ret == nil {
			r[0].Action = specs.ActAllow
		}
		p := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: tc.def, DefaultErrnoRet: tc.ret, Syscalls: r})
		if (p.StubLen > 0) != tc.want {
			t.Errorf("default %s (ret %v): stub of %d instructions, want stub %v", tc.def, tc.ret, p.StubLen, tc.want)
		}
	}
}

func TestStubAssemblerRefusesBadJumps(t *testing.T) {
	a := &asm{labels: map[string]int{}}
	a.label("back")
	a.jump(unix.BPF_JEQ, 0, "back", "")
	if _, err := a.assemble(); err == nil {
		t.Error("backward jump accepted")
	}
	a = &asm{labels: map[string]int{}}
	a.ja("nowhere")
	if _, err := a.assemble(); err == nil {
		t.Error("undefined label accepted")
	}
	a = &asm{labels: map[string]int{}}
	a.jump(unix.BPF_JEQ, 0, "far", "")
	for i := 0; i < 300; i++ {
		a.load(0)
	}
	a.label("far")
	if _, err := a.assemble(); err == nil {
		t.Error("conditional jump over 255 instructions accepted")
	}
	if stub, err := enosysStub(nil); stub != nil || err != nil {
		t.Errorf("stub without limits = %v, %v", stub, err)
	}
}

func TestTooLarge(t *testing.T) {
	var rules []specs.LinuxSyscall
	for i := 0; i < 1500; i++ {
		rules = append(rules, specs.LinuxSyscall{Names: []string{"getpriority"}, Action: specs.ActErrno,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: uint64(i) << 20, Op: specs.OpEqualTo},
				{Index: 1, Value: uint64(i), Op: specs.OpEqualTo}}})
	}
	_, err := Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: rules})
	if err == nil || !strings.Contains(err.Error(), "more than the kernel's limit of 4096") {
		t.Fatalf("error = %v", err)
	}
}

func TestDockerDefaultCompiles(t *testing.T) {
	s := dockerDefault(t)
	p := mustCompile(t, s)
	if p.StubLen == 0 {
		t.Error("docker's profile (default ERRNO EPERM) got no ENOSYS stub")
	}
	if p.Flags != 0 {
		t.Errorf("flags = %#x, want none", p.Flags)
	}
	for _, name := range p.Skipped {
		if !isNewerSyscall(name) {
			t.Errorf("skipped %q, which is not in the newer-syscall table", name)
		}
	}
	major, minor, micro := libseccomp.GetLibraryVersion()
	t.Logf("docker default: %d rules, %d instructions (%d stub), libseccomp %d.%d.%d skipped %v",
		len(s.Syscalls), len(p.Instructions), p.StubLen, major, minor, micro, p.Skipped)

	deny := func(name string, args ...uint64) {
		t.Helper()
		if got := decide(t, p, nr(t, name), args...); got != errnoRet(unix.EPERM) {
			t.Errorf("%s%v -> %#x, want EPERM", name, args, got)
		}
	}
	allow := func(name string, args ...uint64) {
		t.Helper()
		if got := decide(t, p, nr(t, name), args...); got != unix.SECCOMP_RET_ALLOW {
			t.Errorf("%s%v -> %#x, want allow", name, args, got)
		}
	}
	allow("read")
	allow("openat")
	allow("clone", uint64(unix.SIGCHLD))
	allow("personality", 0)
	allow("socket", unix.AF_INET)
	deny("keyctl")
	deny("add_key")
	deny("unshare", unix.CLONE_NEWUSER)
	deny("clone", unix.CLONE_NEWUSER|uint64(unix.SIGCHLD))
	deny("mount")
	deny("kexec_load")
	deny("personality", 0x0040000 /* ADDR_NO_RANDOMIZE */)
	allow("personality", 0xffffffff)
	deny("socket", unix.AF_VSOCK)
	if got := decide(t, p, nr(t, "clone3")); got != errnoRet(unix.ENOSYS) {
		t.Errorf("clone3 -> %#x, want ENOSYS so callers fall back to clone", got)
	}
}

func TestDockerDefaultWithSysAdmin(t *testing.T) {
	// The engine's profile depends on the container's capabilities; with
	// CAP_SYS_ADMIN the namespace calls open up.
	s, err := mobyseccomp.GetDefaultProfile(&specs.Spec{Process: &specs.Process{
		Capabilities: caps.SpecFor(append(caps.DockerDefault(), "CAP_SYS_ADMIN")),
	}})
	if err != nil {
		t.Fatal(err)
	}
	p := mustCompile(t, s)
	for _, name := range []string{"mount", "unshare", "setns", "clone3"} {
		if got := decide(t, p, nr(t, name)); got != unix.SECCOMP_RET_ALLOW {
			t.Errorf("%s with CAP_SYS_ADMIN -> %#x, want allow", name, got)
		}
	}
}

func BenchmarkCompileDockerDefault(b *testing.B) {
	s := dockerDefault(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Compile(s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompileDockerDefaultMerged is the same profile built as one
// libseccomp filter for all architectures (runc's way), for comparison.
func BenchmarkCompileDockerDefaultMerged(b *testing.B) {
	s := dockerDefault(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := compileWith(s, hostKernel{}, build); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDockerDefaultProfileToSpec(b *testing.B) {
	// What the engine pays before Compile: moby's profile to a spec.
	for i := 0; i < b.N; i++ {
		dockerDefault(b)
	}
}

// TestPerArchMatchesMerged proves the per-architecture build decides every
// call exactly as libseccomp's merged multi-architecture filter does.
func TestPerArchMatchesMerged(t *testing.T) {
	if nativeAudit(t) != unix.AUDIT_ARCH_X86_64 {
		t.Skip("the comparison sweeps x86_64, x32 and i386 numbers")
	}
	withSysAdmin, err := mobyseccomp.GetDefaultProfile(&specs.Spec{Process: &specs.Process{
		Capabilities: caps.SpecFor(append(caps.DockerDefault(), "CAP_SYS_ADMIN")),
	}})
	if err != nil {
		t.Fatal(err)
	}
	args := []uint64{0, 1, 2, 8, 0x20000, 0x20008, 0xffffffff, 40 /* AF_VSOCK */, 16, /* AF_NETLINK */
		unix.CLONE_NEWUSER, unix.CLONE_NEWNS | uint64(unix.SIGCHLD), 0x7e020000, 1 << 33, ^uint64(0)}
	arches := []struct {
		audit uint32
		bit   int32
	}{{unix.AUDIT_ARCH_X86_64, 0}, {unix.AUDIT_ARCH_X86_64, x32Bit}, {unix.AUDIT_ARCH_I386, 0}, {unix.AUDIT_ARCH_AARCH64, 0}}
	for name, s := range map[string]*specs.LinuxSeccomp{
		"docker default":                 dockerDefault(t),
		"docker default with SYS_ADMIN":  withSysAdmin,
		"kill default, arguments, x32":   {DefaultAction: specs.ActKillProcess, Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX32, specs.ArchX86}, Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "write", "socket"}, Action: specs.ActAllow}, {Names: []string{"personality"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 8, Op: specs.OpLessEqual}}}}},
		"allow default, two arches only": {DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86}, Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir", "socketcall"}, Action: specs.ActErrno}}},
	} {
		t.Run(name, func(t *testing.T) {
			split, err := compileWith(s, hostKernel{}, buildPerArch)
			if err != nil {
				t.Fatal(err)
			}
			merged, err := compileWith(s, hostKernel{}, build)
			if err != nil {
				t.Fatal(err)
			}
			checked, differ := 0, 0
			for _, a := range arches {
				for n := int32(0); n < 600; n++ {
					for _, arg := range args {
						d := seccompData{nr: n | a.bit, arch: a.audit, args: [6]uint64{arg, arg, arg}}
						got, err1 := runBPF(split.Instructions, d)
						want, err2 := runBPF(merged.Instructions, d)
						if err1 != nil || err2 != nil {
							t.Fatalf("interpreter: %v, %v", err1, err2)
						}
						checked++
						if got != want && differ < 10 {
							differ++
							t.Errorf("arch %#x nr %#x arg %#x: per-arch %#x, merged %#x", a.audit, d.nr, arg, got, want)
						}
					}
				}
			}
			t.Logf("%d decisions compared; %d vs %d instructions", checked, len(split.Instructions), len(merged.Instructions))
		})
	}
}
