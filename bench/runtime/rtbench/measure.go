package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER from <linux/prctl.h>; the
// syscall package does not define it.
const prSetChildSubreaper = 36

// becomeSubreaper makes this process adopt orphaned descendants. A
// runtime's "create" exits and leaves the container's init process behind;
// as subreaper we inherit it, so we can wait for it to exit without
// polling "state" and collect its resource usage like any other child's.
func becomeSubreaper() error {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		return fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", errno)
	}
	return nil
}

// Usage is what one iteration cost: wall time, CPU time (user+system) of
// every process reaped during it, and the largest peak RSS among them.
type Usage struct {
	Wall     time.Duration
	CPU      time.Duration
	MaxRSSKB int64
	Procs    int // processes reaped
}

func (u *Usage) add(ru *syscall.Rusage) {
	u.CPU += time.Duration(ru.Utime.Nano()) + time.Duration(ru.Stime.Nano())
	if ru.Maxrss > u.MaxRSSKB {
		u.MaxRSSKB = ru.Maxrss // Linux reports kilobytes
	}
	u.Procs++
}

// Spawner starts runtime commands with fixed stdio: stdin and stdout on
// /dev/null and stderr in a file kept for error messages, identical for
// every runtime.
type Spawner struct {
	null   *os.File
	stderr *os.File
}

// NewSpawner opens /dev/null and creates the stderr capture file.
func NewSpawner(stderrPath string) (*Spawner, error) {
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", os.DevNull, err)
	}
	se, err := os.OpenFile(stderrPath, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		null.Close()
		return nil, fmt.Errorf("stderr capture %s: %w", stderrPath, err)
	}
	return &Spawner{null: null, stderr: se}, nil
}

// Close releases the spawner's files.
func (s *Spawner) Close() {
	s.null.Close()
	s.stderr.Close()
}

// Start forks and execs argv and returns the child's pid. The stderr file
// is truncated first so that it holds only this command's complaints.
func (s *Spawner) Start(argv []string) (int, error) {
	if err := s.stderr.Truncate(0); err != nil {
		return 0, fmt.Errorf("truncate stderr capture: %w", err)
	}
	if _, err := s.stderr.Seek(0, 0); err != nil {
		return 0, fmt.Errorf("rewind stderr capture: %w", err)
	}
	pid, err := syscall.ForkExec(argv[0], argv, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{s.null.Fd(), s.null.Fd(), s.stderr.Fd()},
	})
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", argv[0], err)
	}
	return pid, nil
}

// Stderr returns what the last command wrote to stderr (at most 2 KiB).
func (s *Spawner) Stderr() string {
	buf := make([]byte, 2048)
	n, _ := s.stderr.ReadAt(buf, 0)
	return string(buf[:n])
}

// Wait reaps pid, adds its rusage (which includes every descendant it
// reaped itself) to u and returns its wait status.
func Wait(pid int, u *Usage) (syscall.WaitStatus, error) {
	var ws syscall.WaitStatus
	var ru syscall.Rusage
	for {
		_, err := syscall.Wait4(pid, &ws, 0, &ru)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return ws, fmt.Errorf("wait4 pid %d: %w", pid, err)
		}
		u.add(&ru)
		return ws, nil
	}
}

// ReapStragglers collects children that have already exited without being
// waited for (helpers a runtime left behind and that we adopted as
// subreaper) so their cost counts in the iteration that caused it.
func ReapStragglers(u *Usage) {
	for {
		var ws syscall.WaitStatus
		var ru syscall.Rusage
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, &ru)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		u.add(&ru)
	}
}

// Run starts argv, waits for it and fails unless it exits 0.
func (s *Spawner) Run(argv []string, u *Usage) error {
	pid, err := s.Start(argv)
	if err != nil {
		return err
	}
	ws, err := Wait(pid, u)
	if err != nil {
		return err
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return fmt.Errorf("%q: %s: %s", argv, describe(ws), s.Stderr())
	}
	return nil
}

func describe(ws syscall.WaitStatus) string {
	if ws.Signaled() {
		return "killed by " + ws.Signal().String()
	}
	return fmt.Sprintf("exit status %d", ws.ExitStatus())
}
