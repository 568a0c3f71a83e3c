// Package timerslack gives hako's own processes (hakod, hako-shim,
// hako-runtime) a coarse timer slack, and the processes they start for
// containers the slack they were started with.
//
// Why: Go's sysmon thread checks on the scheduler every 20 µs while a
// process is busy, backing off only after 1 ms of finding nothing to do,
// and starts over at every burst of work. Each check is a timer, a wake-up
// and two context switches, which a virtual machine charges dearly for. A
// container start is short bursts in several Go processes (hakod, a shim,
// the runtime, the CNI plugins), so those checks add up: a process under
// `perf stat` with a 2 ms slack made ~35 context switches where it made
// ~130 (`hako create`). The kernel may fire a timer up to its thread's
// slack late so that it can fire several together; with 2 ms, sysmon's
// 20 µs naps become ~2 ms ones. Its duties (preempting a goroutine after
// 10 ms, taking a P back from a blocking syscall) keep their meaning, and
// the few finer waits here (retry loops, the cgroup freezer's poll) only
// wait up to 2 ms longer.
//
// Timer slack is a per-thread value that a new thread or process copies
// from the thread that creates it and keeps across execve. A container's
// processes must get the slack hakod or the runtime was given (what runc's
// would get), not ours, so every process these programs start that is not
// theirs is started with Fork, on a thread whose slack is, for that
// moment, the original. Their own programs are started coarse from birth,
// so that sysmon, made before main, is coarse too: hakod starts a shim
// without Fork and hands it the original in $_HAKO_TIMERSLACK (Env), and
// hako-runtime's C constructor coarsens the slack before Go starts and
// keeps the original for CoarsenFrom. The CNI plugins (Go programs, a few
// milliseconds each) are started without Fork, on purpose: they gain as
// much, and they start no container process.
package timerslack

import (
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// Coarse is the slack in nanoseconds that Coarsen gives a process's
// threads. runtime/nsexec/proto.h has it too, for hako-runtime's C
// constructor.
const Coarse = 2_000_000

// EnvOriginal names the variable in which hakod tells a shim, which it
// starts with the coarse slack from birth (see Env), the original. From
// birth counts: sysmon starts before main, with whatever slack the main
// thread has then.
const EnvOriginal = "_HAKO_TIMERSLACK"

// original is the slack the process started with (the kernel's default is
// 50000 ns), 0 while Coarsen has changed nothing.
var original uint64

// Coarsen records the process's original slack and gives every thread of
// the process the coarse one. Call it first thing in main, before the
// process starts anything: threads made later copy the slack of the thread
// that makes them, which is then coarse.
//
// The original is $_HAKO_TIMERSLACK when the process already has the coarse
// slack (its starter gave it, see Env), otherwise the calling thread's.
// The variable is removed either way, so that it reaches no child.
func Coarsen() {
	given, ok := os.LookupEnv(EnvOriginal)
	if ok {
		_ = os.Unsetenv(EnvOriginal)
	}
	v, err := strconv.ParseUint(given, 10, 64)
	if !ok || err != nil {
		v = 0
	}
	CoarsenFrom(v)
}

// CoarsenFrom is Coarsen for a process that was given the coarse slack
// before Go started, by something that knew the original, given here (0:
// nobody did). hako-runtime's C constructor is one
// (nsexec.OriginalTimerSlack).
//
// When the slack was not given from birth, the other threads (sysmon among
// them) are set through /proc/TID/timerslack_ns, which needs CAP_SYS_NICE;
// without it they keep the original slack, which is only slower.
func CoarsenFrom(given uint64) {
	cur, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err != nil || cur <= 0 {
		return
	}
	if cur == Coarse && given > 0 && given < Coarse {
		original = given // every thread was born coarse
		return
	}
	if cur >= Coarse {
		// Started with a slack at least as coarse (by a caller that wanted
		// it so, or a given original we cannot trust): nothing to gain,
		// and nothing to restore.
		return
	}
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, Coarse, 0, 0, 0); err != nil {
		return
	}
	original = uint64(cur)
	self := unix.Gettid()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return
	}
	val := []byte(strconv.Itoa(Coarse))
	for _, t := range tasks {
		if tid, err := strconv.Atoi(t.Name()); err != nil || tid == self {
			continue
		}
		// /proc/TID, not /proc/self/task/TID: the file is only in a
		// process's directory, and a thread's id names one too.
		if f, err := os.OpenFile("/proc/"+t.Name()+"/timerslack_ns", os.O_WRONLY, 0); err == nil {
			_, _ = f.Write(val)
			f.Close()
		}
	}
}

// Env is the variable to give a program of ours (one that calls Coarsen)
// that is started without Fork, so with the coarse slack from birth: it
// tells the program the original. Empty when Coarsen changed nothing.
func Env() string {
	if original == 0 {
		return ""
	}
	return EnvOriginal + "=" + strconv.FormatUint(original, 10)
}

// Fork calls start, which starts one process (exec.Cmd.Start,
// syscall.ForkExec), on a thread whose slack is the original, so that the
// process and everything it starts get that slack and not the coarse one.
// A locked thread starts no other thread (Go makes new threads for a locked
// one from its template thread), so nothing else copies the original.
func Fork(start func() error) error {
	if original == 0 {
		return start()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// A thread may always set its own slack (unless it runs a realtime
	// policy, where slack is 0 and both calls do nothing).
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(original), 0, 0, 0)
	defer func() { _ = unix.Prctl(unix.PR_SET_TIMERSLACK, Coarse, 0, 0, 0) }()
	return start()
}
