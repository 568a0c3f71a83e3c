// Package reaper makes its process a child subreaper and collects the exit
// status of every child: the OCI runtime commands it starts, and the
// container processes that the runtime leaves behind, which the kernel
// reparents to the subreaper when the runtime exits.
//
// Because it reaps with wait4(-1), nothing else in the process may wait for
// children (no exec.Cmd.Wait): Start hands out the exit through a channel
// instead. It does not decide what an exit means; the monitor does.
package reaper

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/internal/timerslack"
)

// Exit is a reaped child's end.
type Exit struct {
	Pid    int
	Status unix.WaitStatus
	At     time.Time
}

// Code is the exit code as a shell reports it: the process's own code, or
// 128 plus the signal that killed it.
func (e Exit) Code() int {
	if e.Status.Signaled() {
		return 128 + int(e.Status.Signal())
	}
	return e.Status.ExitStatus()
}

// Signal is the signal that killed the process, or 0.
func (e Exit) Signal() unix.Signal {
	if e.Status.Signaled() {
		return e.Status.Signal()
	}
	return 0
}

// Reaper reaps children. Its methods are safe for concurrent use.
type Reaper struct {
	sigs chan os.Signal

	mu sync.Mutex
	// watch maps a pid to whom to tell about its exit.
	watch map[int]func(Exit)
	// expecting counts callers between Expect and its done: while any is
	// there, exits of pids nobody watches yet are kept in unclaimed,
	// because their watcher may learn the pid only after the process has
	// already gone (a container init that dies before the runtime's create
	// returns and its pid file is read).
	expecting int
	unclaimed map[int]Exit
}

// New makes the process a child subreaper and starts reaping.
func New() (*Reaper, error) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("become child subreaper: %w", err)
	}
	r := &Reaper{sigs: make(chan os.Signal, 1), watch: map[int]func(Exit){}}
	signal.Notify(r.sigs, unix.SIGCHLD)
	go r.loop()
	// Children that ended before Notify raised no signal we saw.
	r.sigs <- unix.SIGCHLD
	return r, nil
}

func (r *Reaper) loop() {
	for range r.sigs {
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if err == unix.EINTR {
				continue
			}
			if err != nil || pid <= 0 {
				break
			}
			r.dispatch(Exit{Pid: pid, Status: ws, At: time.Now()})
		}
	}
}

// dispatch runs under mu, which Start holds across starting a child and
// registering it: a child reaped in between waits here for its watcher.
func (r *Reaper) dispatch(e Exit) {
	r.mu.Lock()
	fn := r.watch[e.Pid]
	delete(r.watch, e.Pid)
	if fn == nil && r.expecting > 0 {
		if r.unclaimed == nil {
			r.unclaimed = map[int]Exit{}
		}
		r.unclaimed[e.Pid] = e
	}
	r.mu.Unlock()
	if fn != nil {
		fn(e)
	}
}

// Start starts cmd, which must not be waited for otherwise, and returns
// its pid and a channel that receives its exit. cmd's stdio must be nil
// (/dev/null) or *os.File (a nil one: closed in the child), as its
// ExtraFiles; only its Path, Args, Env, Dir and SysProcAttr count besides.
// cmd.Process stays nil.
//
// It forks with syscall.ForkExec, not cmd.Start: os.StartProcess, the
// first time a process calls it, forks a throwaway child to find out
// whether pidfds work. In a shim that is the first runtime command of
// every container, so that extra process start (a clone, an exit and a
// wait, ~0.5 ms here) sat on the path of every container start; the exit
// comes from wait4 anyway.
func (r *Reaper) Start(cmd *exec.Cmd) (int, <-chan Exit, error) {
	if cmd.Err != nil {
		return 0, nil, cmd.Err // the lookup of a name on PATH failed
	}
	attr := &syscall.ProcAttr{Dir: cmd.Dir, Env: cmd.Env, Sys: cmd.SysProcAttr}
	if attr.Env == nil {
		attr.Env = os.Environ()
	}
	var keep []*os.File
	defer func() {
		for _, f := range keep {
			f.Close()
		}
	}()
	for i, v := range []any{cmd.Stdin, cmd.Stdout, cmd.Stderr} {
		if v == nil {
			flag := os.O_WRONLY
			if i == 0 {
				flag = os.O_RDONLY
			}
			f, err := os.OpenFile(os.DevNull, flag, 0)
			if err != nil {
				return 0, nil, err
			}
			keep = append(keep, f)
			v = f
		}
		f, ok := v.(*os.File)
		if !ok {
			return 0, nil, fmt.Errorf("start %s: stdio %d is a %T, not an *os.File", cmd.Path, i, v)
		}
		attr.Files = append(attr.Files, f.Fd()) // a nil *os.File: ^0, closed in the child
	}
	for _, f := range cmd.ExtraFiles {
		attr.Files = append(attr.Files, f.Fd())
	}
	ch := make(chan Exit, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	// What a shim starts is a runtime, which starts the container: with
	// the shim's original timer slack, not its coarse one.
	var pid int
	err := timerslack.Fork(func() (err error) {
		pid, err = syscall.ForkExec(cmd.Path, cmd.Args, attr)
		return err
	})
	runtime.KeepAlive(cmd)
	if err != nil {
		return 0, nil, &os.PathError{Op: "fork/exec", Path: cmd.Path, Err: err}
	}
	r.watch[pid] = func(e Exit) { ch <- e }
	return pid, ch, nil
}

// Expect keeps exits of not-yet-watched pids until done is called; call it
// before starting something that will leave a process to Watch.
func (r *Reaper) Expect() (done func()) {
	r.mu.Lock()
	r.expecting++
	r.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.expecting--
			if r.expecting == 0 {
				r.unclaimed = nil
			}
		})
	}
}

// Watch calls fn with pid's exit, at once if it was reaped while someone
// expected it. fn runs on the reaper's goroutine and must not block.
func (r *Reaper) Watch(pid int, fn func(Exit)) {
	r.mu.Lock()
	if e, ok := r.unclaimed[pid]; ok {
		delete(r.unclaimed, pid)
		r.mu.Unlock()
		fn(e)
		return
	}
	r.watch[pid] = fn
	r.mu.Unlock()
}

// Unwatch forgets pid; its exit, if any, is reaped and dropped.
func (r *Reaper) Unwatch(pid int) {
	r.mu.Lock()
	delete(r.watch, pid)
	r.mu.Unlock()
}
