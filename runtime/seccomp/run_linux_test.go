package seccomp

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// These tests load compiled programs into a real kernel; with
// no_new_privs set that needs no privilege, so they run as any user. A test
// re-executes
// its own binary; the child installs the program exactly as hako-runtime's
// init does (no_new_privs, then the raw seccomp(2) call with the exported
// bytes and flags, sending the listener fd when there is one), runs the
// probes the test asked for and prints their results.

const childEnv = "HAKO_SECCOMP_TEST_CHILD"

type childRequest struct {
	Program      string // file holding Program.Bytes()
	Flags        uint
	ListenerPath string
	Metadata     string
	Mode         string // "" runs Probes; "kill-thread" runs Probes[0] on a thread of its own
	Probes       []probe
}

// probe is one system call made under the filter. Path, if set, is passed
// as a pointer in argument PathArg.
type probe struct {
	Nr      uintptr
	Args    [6]uintptr
	Path    string
	PathArg int
}

type probeResult struct {
	R1    uintptr
	Errno unix.Errno
}

type childReport struct {
	Results []probeResult
	Tasks   []string // "Seccomp:" line of every thread, after the probes
	Err     string
}

func TestMain(m *testing.M) {
	if req := os.Getenv(childEnv); req != "" {
		os.Exit(runChild(req))
	}
	os.Exit(m.Run())
}

// install loads the program the way the init does, on the calling thread.
func install(insns []unix.SockFilter, flags uint) (int, error) {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return -1, fmt.Errorf("PR_SET_NO_NEW_PRIVS: %w", err)
	}
	prog := unix.SockFprog{Len: uint16(len(insns)), Filter: &insns[0]}
	r1, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(flags), uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(insns)
	if e != 0 {
		return -1, fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER, %#x): %w", flags, e)
	}
	return int(r1), nil
}

func runChild(raw string) int {
	var req childRequest
	out := json.NewEncoder(os.Stdout)
	fail := func(err error) int {
		_ = out.Encode(childReport{Err: err.Error()})
		return 0
	}
	if err := json.Unmarshal([]byte(raw), &req); err != nil {
		return fail(err)
	}
	b, err := os.ReadFile(req.Program)
	if err != nil {
		return fail(err)
	}
	insns, err := parseInstructions(b)
	if err != nil {
		return fail(err)
	}
	// Everything the probes need is prepared before the filter exists.
	for i, p := range req.Probes {
		if p.Path != "" {
			ptr, err := unix.BytePtrFromString(p.Path)
			if err != nil {
				return fail(err)
			}
			req.Probes[i].Args[p.PathArg] = uintptr(unsafe.Pointer(ptr))
			defer runtime.KeepAlive(ptr)
		}
	}
	results := make([]probeResult, len(req.Probes))

	if req.Mode == "kill-thread" {
		return killThread(req, insns, out)
	}

	runtime.LockOSThread() // the filtered thread is never handed back
	fd, err := install(insns, req.Flags)
	if err != nil {
		return fail(err)
	}
	if req.Flags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
		prog := &Program{ListenerMetadata: req.Metadata}
		state := prog.ProcessState(os.Getpid(), specs.State{Version: specs.Version, ID: "hako-test",
			Status: specs.StateCreating, Pid: os.Getpid(), Bundle: "/nonexistent"})
		if err := SendListener(req.ListenerPath, fd, state); err != nil {
			return fail(err)
		}
		unix.Close(fd)
	}
	for i, p := range req.Probes {
		r1, _, e := unix.RawSyscall6(p.Nr, p.Args[0], p.Args[1], p.Args[2], p.Args[3], p.Args[4], p.Args[5])
		results[i] = probeResult{R1: r1, Errno: e}
	}
	_ = out.Encode(childReport{Results: results, Tasks: seccompOfTasks()})
	return 0
}

// killThread runs the first probe on a thread of its own, which a
// KILL_THREAD action ends, and reports whether that thread is gone while
// the process lives on.
func killThread(req childRequest, insns []unix.SockFilter, out *json.Encoder) int {
	tid := make(chan int)
	done := make(chan error)
	go func() {
		runtime.LockOSThread()
		if _, err := install(insns, req.Flags); err != nil {
			done <- err
			return
		}
		tid <- unix.Gettid()
		p := req.Probes[0]
		unix.RawSyscall6(p.Nr, p.Args[0], p.Args[1], p.Args[2], p.Args[3], p.Args[4], p.Args[5])
		done <- errors.New("the probe returned; the thread was not killed")
	}()
	var t int
	select {
	case t = <-tid:
	case err := <-done:
		_ = out.Encode(childReport{Err: err.Error()})
		return 0
	}
	select {
	case err := <-done:
		_ = out.Encode(childReport{Err: err.Error()})
		return 0
	case <-time.After(500 * time.Millisecond):
	}
	// A killed thread disappears, or stays a zombie if it was the
	// thread-group leader, until the process exits.
	if b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/status", t)); err == nil && !strings.Contains(string(b), "State:\tZ") {
		_ = out.Encode(childReport{Err: fmt.Sprintf("thread %d still runs: %s", t, b)})
		return 0
	}
	_ = out.Encode(childReport{Results: []probeResult{{R1: uintptr(t)}}})
	return 0
}

// seccompOfTasks returns the "Seccomp:" status line of every thread.
func seccompOfTasks() []string {
	var lines []string
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, task := range tasks {
		b, err := os.ReadFile(filepath.Join("/proc/self/task", task.Name(), "status"))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "Seccomp:") {
				lines = append(lines, strings.Join(strings.Fields(l), " "))
			}
		}
	}
	return lines
}

type childResult struct {
	report childReport
	state  *os.ProcessState
	stderr string
}

// runFiltered runs a child under p and returns what it reported.
func runFiltered(t *testing.T, p *Program, req childRequest) childResult {
	t.Helper()
	req.Program = filepath.Join(t.TempDir(), "filter.bpf")
	if err := os.WriteFile(req.Program, p.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	req.Flags = p.Flags
	raw, _ := json.Marshal(req)
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = append(os.Environ(), childEnv+"="+string(raw))
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("child hung; stderr: %s", stderr.String())
	}
	res := childResult{state: cmd.ProcessState, stderr: stderr.String()}
	if s := strings.TrimSpace(stdout.String()); s != "" {
		if err := json.Unmarshal([]byte(s), &res.report); err != nil {
			t.Fatalf("child output %q: %v", s, err)
		}
	}
	return res
}

// mustRun runs a child that must finish its probes.
func mustRun(t *testing.T, p *Program, req childRequest) childReport {
	t.Helper()
	res := runFiltered(t, p, req)
	if !res.state.Success() {
		t.Fatalf("child: %v\nstderr: %s", res.state, res.stderr)
	}
	if res.report.Err != "" {
		t.Fatalf("child: %s", res.report.Err)
	}
	if len(res.report.Results) != len(req.Probes) {
		t.Fatalf("child ran %d of %d probes", len(res.report.Results), len(req.Probes))
	}
	return res.report
}

func call(nr uintptr, args ...uintptr) probe {
	var p probe
	p.Nr = nr
	copy(p.Args[:], args)
	return p
}

func callPath(nr uintptr, path string, pathArg int, args ...uintptr) probe {
	p := call(nr, args...)
	p.Path, p.PathArg = path, pathArg
	return p
}

const atFdcwd = ^uintptr(99) // AT_FDCWD (-100) as a register value

func TestRunActionsAndArguments(t *testing.T) {
	p := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		// mkdir with mode 0700 is refused with the default EPERM.
		{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno,
			Args: []specs.LinuxSeccompArg{{Index: 2, Value: 0o700, Op: specs.OpEqualTo}}},
		// Two arguments: both must match, including a 64-bit value.
		{Names: []string{"getpriority"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.EXDEV)),
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: 1, Op: specs.OpEqualTo},
				{Index: 1, Value: 1<<32 | 5, Op: specs.OpEqualTo}}},
		// One argument twice: either matches.
		{Names: []string{"setpriority"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.EXDEV)),
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: 97, Op: specs.OpEqualTo},
				{Index: 0, Value: 98, Op: specs.OpEqualTo}}},
		{Names: []string{"getpgid"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.ENOTTY)),
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0xf0, ValueTwo: 0x30, Op: specs.OpMaskedEqual}}},
		{Names: []string{"getsid"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.ENOMEDIUM)),
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: 1000, Op: specs.OpGreaterThan}}},
		{Names: []string{"getppid"}, Action: specs.ActLog},
		// TRACE with no tracer attached fails the call with ENOSYS.
		{Names: []string{"getpgrp"}, Action: specs.ActTrace},
	}})
	dir := t.TempDir()
	probes := []probe{
		callPath(unix.SYS_MKDIRAT, filepath.Join(dir, "denied"), 1, atFdcwd, 0, 0o700),
		callPath(unix.SYS_MKDIRAT, filepath.Join(dir, "allowed"), 1, atFdcwd, 0, 0o755),
		call(unix.SYS_GETPRIORITY, 1, 1<<32|5),
		call(unix.SYS_GETPRIORITY, 1, 5),
		call(unix.SYS_GETPRIORITY, 0, 1<<32|5),
		call(unix.SYS_SETPRIORITY, 97, 0, 0),
		call(unix.SYS_SETPRIORITY, 98, 0, 0),
		call(unix.SYS_SETPRIORITY, 99, 0, 0),
		call(unix.SYS_GETPGID, 0x7ff30),
		call(unix.SYS_GETPGID, 0x7ff40),
		call(unix.SYS_GETSID, 0x7ffff),
		call(unix.SYS_GETSID, 0),
		call(unix.SYS_GETPPID),
		call(unix.SYS_GETPGRP),
		call(unix.SYS_GETPID),
	}
	r := mustRun(t, p, childRequest{Probes: probes}).Results
	expect := func(i int, want unix.Errno, what string) {
		t.Helper()
		if r[i].Errno != want {
			t.Errorf("%s: errno %d (%v), want %d (%v)", what, r[i].Errno, r[i].Errno, want, want)
		}
	}
	expect(0, unix.EPERM, "mkdir mode 0700")
	if _, err := os.Stat(filepath.Join(dir, "denied")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused mkdir created its directory: %v", err)
	}
	expect(1, 0, "mkdir mode 0755")
	if fi, err := os.Stat(filepath.Join(dir, "allowed")); err != nil || !fi.IsDir() {
		t.Errorf("the allowed mkdir did not create its directory: %v", err)
	}
	expect(2, unix.EXDEV, "getpriority(1, 1<<32|5): both arguments match")
	if r[3].Errno == unix.EXDEV || r[4].Errno == unix.EXDEV {
		t.Errorf("getpriority with one argument matching was refused: %v, %v", r[3].Errno, r[4].Errno)
	}
	expect(5, unix.EXDEV, "setpriority(97): first alternative")
	expect(6, unix.EXDEV, "setpriority(98): second alternative")
	expect(7, unix.EINVAL, "setpriority(99): no match reaches the kernel")
	expect(8, unix.ENOTTY, "getpgid(0x7ff30): masked equal")
	expect(9, unix.ESRCH, "getpgid(0x7ff40): masked differs")
	expect(10, unix.ENOMEDIUM, "getsid(0x7ffff) > 1000")
	expect(11, 0, "getsid(0)")
	expect(12, 0, "getppid under LOG")
	if int(r[12].R1) != os.Getpid() {
		t.Errorf("getppid under LOG returned %d, want %d", r[12].R1, os.Getpid())
	}
	expect(13, unix.ENOSYS, "getpgrp under TRACE without a tracer")
	expect(14, 0, "getpid, not in the profile")
}

func TestRunDefaultErrnoAndENOSYS(t *testing.T) {
	// Deny by default with EACCES, allowing what the Go runtime needs on
	// the filtered thread. clone3 is above every listed number, so it gets
	// ENOSYS from the stub; mkdirat is below them and gets the default.
	p := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uptr(uint(unix.EACCES)),
		Syscalls: []specs.LinuxSyscall{{Action: specs.ActAllow, Names: []string{
			"read", "write", "close", "mmap", "munmap", "mprotect", "madvise", "brk", "futex",
			"rt_sigreturn", "rt_sigaction", "rt_sigprocmask", "sigaltstack", "sched_yield",
			"nanosleep", "clock_nanosleep", "clock_gettime", "getpid", "gettid", "tgkill",
			"exit", "exit_group", "epoll_pwait", "epoll_ctl", "fcntl", "openat", "newfstatat",
			"fstat", "getrandom", "sched_getaffinity", "prlimit64", "pidfd_open"}}},
	})
	if p.StubLen == 0 {
		t.Fatal("no ENOSYS stub")
	}
	r := mustRun(t, p, childRequest{Probes: []probe{
		call(unix.SYS_GETPID),
		callPath(unix.SYS_MKDIRAT, filepath.Join(t.TempDir(), "x"), 1, atFdcwd, 0, 0o755),
		call(unix.SYS_CLONE3, 0, 0),
		call(unix.SYS_KEYCTL, 0, ^uintptr(2)),
	}}).Results
	if r[0].Errno != 0 || int(r[0].R1) <= 0 {
		t.Errorf("getpid: %v", r[0])
	}
	if r[1].Errno != unix.EACCES {
		t.Errorf("mkdirat: %v, want the defaultErrnoRet EACCES", r[1].Errno)
	}
	if r[2].Errno != unix.ENOSYS {
		t.Errorf("clone3: %v, want ENOSYS from the stub", r[2].Errno)
	}
	if r[3].Errno != unix.EACCES {
		t.Errorf("keyctl: %v, want EACCES", r[3].Errno)
	}
}

func TestRunKillProcess(t *testing.T) {
	p := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"getppid"}, Action: specs.ActKillProcess}}})
	res := runFiltered(t, p, childRequest{Probes: []probe{call(unix.SYS_GETPID), call(unix.SYS_GETPPID)}})
	ws, ok := res.state.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != unix.SIGSYS {
		t.Fatalf("child ended with %v, want killed by SIGSYS; report %+v", res.state, res.report)
	}
}

func TestRunTrap(t *testing.T) {
	p := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"getppid"}, Action: specs.ActTrap}}})
	res := runFiltered(t, p, childRequest{Probes: []probe{call(unix.SYS_GETPPID)}})
	// TRAP delivers SIGSYS to the process, which the Go runtime reports
	// as a fatal "bad system call".
	if res.state.Success() || !strings.Contains(res.stderr, "SIGSYS") {
		t.Fatalf("child ended with %v, stderr %q; want a SIGSYS crash", res.state, res.stderr)
	}
}

func TestRunKillThread(t *testing.T) {
	for _, act := range []specs.LinuxSeccompAction{specs.ActKillThread, specs.ActKill} {
		p := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getppid"}, Action: act}}})
		res := runFiltered(t, p, childRequest{Mode: "kill-thread", Probes: []probe{call(unix.SYS_GETPPID)}})
		if !res.state.Success() || res.report.Err != "" || len(res.report.Results) != 1 {
			t.Fatalf("%s: child %v, report %+v, stderr %s", act, res.state, res.report, res.stderr)
		}
	}
}

func TestRunFlags(t *testing.T) {
	rules := []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActErrno}}
	// Without TSYNC only the installing thread is filtered; with it, all.
	for _, tc := range []struct {
		flags    []specs.LinuxSeccompFlag
		allTasks bool
	}{
		{nil, false},
		{[]specs.LinuxSeccompFlag{FlagTsync, FlagLog, FlagSpecAllow}, true},
	} {
		p := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: tc.flags, Syscalls: rules})
		rep := mustRun(t, p, childRequest{Probes: []probe{call(unix.SYS_GETPPID)}})
		if rep.Results[0].Errno != unix.EPERM {
			t.Errorf("flags %v: getppid errno %v, want EPERM", tc.flags, rep.Results[0].Errno)
		}
		filtered := 0
		for _, l := range rep.Tasks {
			if l == "Seccomp: 2" {
				filtered++
			}
		}
		if len(rep.Tasks) < 2 {
			t.Fatalf("the child has %d threads; the test needs a multi-threaded child", len(rep.Tasks))
		}
		if tc.allTasks && filtered != len(rep.Tasks) || !tc.allTasks && filtered != 1 {
			t.Errorf("flags %v: %d of %d threads filtered (%q)", tc.flags, filtered, len(rep.Tasks), rep.Tasks)
		}
	}
}

func TestRunNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "agent.sock")
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: sock, ListenerMetadata: "hako-test-metadata",
		Flags:    []specs.LinuxSeccompFlag{FlagWaitKillableRecv},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"getppid", "getpgid"}, Action: specs.ActNotify}}}
	p := mustCompile(t, s)
	if !p.Notify() || p.Flags&unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV == 0 {
		t.Fatalf("flags %#x", p.Flags)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	type agentResult struct {
		state specs.ContainerProcessState
		reqs  []string
		err   error
	}
	agent := make(chan agentResult, 1)
	go func() {
		var res agentResult
		defer func() { agent <- res }()
		_ = ln.SetDeadline(time.Now().Add(20 * time.Second))
		conn, err := ln.AcceptUnix()
		if err != nil {
			res.err = err
			return
		}
		defer conn.Close()
		buf, oob := make([]byte, 64<<10), make([]byte, unix.CmsgSpace(4*4))
		n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			res.err = err
			return
		}
		if err := json.Unmarshal(buf[:n], &res.state); err != nil {
			res.err = fmt.Errorf("state %q: %w", buf[:n], err)
			return
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			res.err = fmt.Errorf("control messages: %d, %v", len(msgs), err)
			return
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			res.err = fmt.Errorf("rights: %v, %v", fds, err)
			return
		}
		listener := libseccomp.ScmpFd(fds[0])
		defer unix.Close(fds[0])
		// Answer getppid with a made-up value and getpgid with an error.
		for i := 0; i < 2; i++ {
			req, err := libseccomp.NotifReceive(listener)
			if errors.Is(err, unix.ENOENT) {
				// A signal (the Go runtime's preemption, here)
				// interrupted the call before we received it; the
				// kernel restarts it with a new notification.
				i--
				continue
			}
			if err != nil {
				res.err = fmt.Errorf("receive notification: %w", err)
				return
			}
			name, _ := req.Data.Syscall.GetName()
			// req.Pid is the calling thread: the Go child may make
			// the call from any of its threads. Its process is the
			// thread group, read while the thread waits for us.
			res.reqs = append(res.reqs, fmt.Sprintf("%s from %d", name, threadGroup(req.Pid)))
			resp := &libseccomp.ScmpNotifResp{ID: req.ID, Val: 4242}
			if name == "getpgid" {
				resp = &libseccomp.ScmpNotifResp{ID: req.ID, Error: int32(unix.EXDEV)}
			}
			if err := libseccomp.NotifRespond(listener, resp); err != nil {
				res.err = fmt.Errorf("respond: %w", err)
				return
			}
		}
	}()

	res := runFiltered(t, p, childRequest{ListenerPath: sock, Metadata: s.ListenerMetadata,
		Probes: []probe{call(unix.SYS_GETPPID), call(unix.SYS_GETPGID, 0), call(unix.SYS_GETPID)}})
	a := <-agent
	if a.err != nil {
		t.Fatalf("agent: %v (child %v, stderr %s)", a.err, res.state, res.stderr)
	}
	if !res.state.Success() || res.report.Err != "" {
		t.Fatalf("child %v: %s %s", res.state, res.report.Err, res.stderr)
	}
	childPid := res.state.Pid()
	if a.state.Metadata != "hako-test-metadata" || len(a.state.Fds) != 1 || a.state.Fds[0] != specs.SeccompFdName ||
		a.state.Pid != childPid || a.state.Version != specs.Version || a.state.State.ID != "hako-test" {
		t.Errorf("agent got state %+v", a.state)
	}
	want := []string{fmt.Sprintf("getppid from %d", childPid), fmt.Sprintf("getpgid from %d", childPid)}
	if strings.Join(a.reqs, ",") != strings.Join(want, ",") {
		t.Errorf("agent saw %q, want %q", a.reqs, want)
	}
	r := res.report.Results
	if r[0].Errno != 0 || r[0].R1 != 4242 {
		t.Errorf("getppid answered by the agent: %+v, want 4242", r[0])
	}
	if r[1].Errno != unix.EXDEV {
		t.Errorf("getpgid answered by the agent: %+v, want EXDEV", r[1])
	}
	if r[2].Errno != 0 || int(r[2].R1) != childPid {
		t.Errorf("getpid: %+v", r[2])
	}
}

func TestSendListenerErrors(t *testing.T) {
	st := specs.ContainerProcessState{}
	if err := SendListener("relative.sock", 0, st); err == nil || !strings.Contains(err.Error(), "must be an absolute path") {
		t.Errorf("relative path: %v", err)
	}
	dir := t.TempDir()
	if err := SendListener(filepath.Join(dir, "nobody.sock"), 0, st); err == nil || !strings.Contains(err.Error(), "connect to") {
		t.Errorf("no listener: %v", err)
	}
	if err := SendListener(filepath.Join(dir, "x.sock"), -1, st); err == nil || !strings.Contains(err.Error(), "invalid fd") {
		t.Errorf("bad fd: %v", err)
	}
	st.Fds = []string{"a", "b"}
	if err := SendListener(filepath.Join(dir, "x.sock"), 0, st); err == nil || !strings.Contains(err.Error(), "one is sent") {
		t.Errorf("two fd names: %v", err)
	}
}

func TestRunDockerDefault(t *testing.T) {
	p := mustCompile(t, dockerDefault(t))
	dir := t.TempDir()
	probes := []probe{
		call(unix.SYS_KEYCTL, 0 /* KEYCTL_GET_KEYRING_ID */, ^uintptr(2) /* KEY_SPEC_SESSION_KEYRING */),
		call(unix.SYS_UNSHARE, unix.CLONE_NEWUSER),
		call(unix.SYS_PERSONALITY, 0x0040000 /* ADDR_NO_RANDOMIZE */),
		callPath(unix.SYS_MOUNT, "none", 0, 0, 0, 0),
		call(unix.SYS_CLONE3, 0, 0),
		call(unix.SYS_GETPID),
		callPath(unix.SYS_OPENAT, "/proc/self/status", 1, atFdcwd, 0, unix.O_RDONLY),
		callPath(unix.SYS_MKDIRAT, filepath.Join(dir, "made"), 1, atFdcwd, 0, 0o755),
		call(unix.SYS_PERSONALITY, 0xffffffff),
		call(457 /* statmount, newer than libseccomp 2.5 */, 0, 0, 0, 0),
	}
	r := mustRun(t, p, childRequest{Probes: probes}).Results
	for i, what := range []string{"keyctl", "unshare(CLONE_NEWUSER)", "personality(ADDR_NO_RANDOMIZE)", "mount"} {
		if r[i].Errno != unix.EPERM {
			t.Errorf("%s under docker's profile: errno %v, want EPERM", what, r[i].Errno)
		}
	}
	if r[4].Errno != unix.ENOSYS {
		t.Errorf("clone3: %v, want ENOSYS (docker answers it so, for glibc to fall back to clone)", r[4].Errno)
	}
	for i, what := range map[int]string{5: "getpid", 6: "openat", 7: "mkdirat", 8: "personality(query)"} {
		if r[i].Errno != 0 {
			t.Errorf("%s under docker's profile: errno %v, want success", what, r[i].Errno)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "made")); err != nil {
		t.Errorf("mkdir under docker's profile did not create the directory: %v", err)
	}
	// statmount is skipped by libseccomp 2.5 and must then fall back with
	// ENOSYS; a libseccomp that knows it lets docker's allow through, and
	// the kernel itself rejects the NULL request.
	if r[9].Errno == unix.EPERM {
		t.Error("statmount got EPERM: a new syscall must not look forbidden")
	}
	for _, name := range p.Skipped {
		if name == "statmount" && r[9].Errno != unix.ENOSYS {
			t.Errorf("statmount (unknown to libseccomp): %v, want ENOSYS", r[9].Errno)
		}
	}
}

// threadGroup is the process (thread group) of thread tid, or tid itself
// when /proc says nothing.
func threadGroup(tid uint32) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", tid))
	if err != nil {
		return int(tid)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Tgid:"); ok {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				return n
			}
		}
	}
	return int(tid)
}
