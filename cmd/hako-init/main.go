// Command hako-init is the small init that `hako run --init` puts in a
// container as PID 1 (docker's --init runs tini the same way): it starts the
// container's program, passes every signal it gets on to it, reaps every
// orphan the container leaves to PID 1, and exits with the program's status.
//
// Usage: hako-init [--] PROGRAM [ARG...]
package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

func main() {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "hako-init: usage: hako-init [--] PROGRAM [ARG...]")
		os.Exit(2)
	}
	os.Exit(run(args))
}

func run(args []string) int {
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs)
	path, err := exec.LookPath(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "hako-init: %v\n", err)
		return 127
	}
	child, err := os.StartProcess(path, args, &os.ProcAttr{
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		Sys:   &syscall.SysProcAttr{Setpgid: false},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "hako-init: start %s: %v\n", args[0], err)
		return 126
	}
	for s := range sigs {
		sig := s.(syscall.Signal)
		if sig != syscall.SIGCHLD {
			if sig != syscall.SIGURG { // the Go runtime's own preemption signal
				_ = child.Signal(sig)
			}
			continue
		}
		// Reap everything that ended; the program's end ends us.
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
			if pid == child.Pid {
				if ws.Signaled() {
					return 128 + int(ws.Signal())
				}
				return ws.ExitStatus()
			}
		}
	}
	return 0
}
