package engine

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hako-project/hako/internal/timerslack"
)

// A pod whose containers share a PID namespace needs a process to hold it:
// a PID namespace dies with its init and cannot be pinned as the network,
// IPC and UTS namespaces are. hakod starts hako-init (the reaper of
// `docker run --init`) as that init, in a new PID namespace and its own
// session, running `sleep infinity` (named pause): it reaps the orphans the pod's
// processes leave and shows in the pod as PID 1. It is a plain process,
// not a container: it needs no image, no rootfs, no shim and no runtime,
// so a pod costs a fork and two execs instead of a pause container. It is
// not hakod's child after a restart; the pid and its start time name it.

// startPause starts the pause process and returns its pid and start time.
func (e *Engine) startPause(runDir string, userns *IDMappings) (int, uint64, error) {
	initPath, err := initBinary()
	if err != nil {
		return 0, 0, fmt.Errorf("pod PID namespace: %w", err)
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		return 0, 0, fmt.Errorf("pod PID namespace: %w", err)
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, 0, err
	}
	defer devnull.Close()
	// The pod sees the sleeper as "pause" (its comm is the name it was
	// executed by), not as a "sleep" its own `pgrep sleep` would find.
	if err := os.MkdirAll(runDir, 0o711); err != nil {
		return 0, 0, fmt.Errorf("pod pause process: %w", err)
	}
	link := filepath.Join(runDir, "pause")
	_ = os.Remove(link)
	if err := os.Symlink(sleep, link); err != nil {
		return 0, 0, fmt.Errorf("pod pause process: %w", err)
	}
	cmd := exec.Command(initPath, "--", link, "infinity")
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID, Setsid: true}
	if userns != nil {
		// A pod with a user namespace: the pause makes it, and every other
		// namespace of the pod inside it, so that they belong to it.
		cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS
		cmd.SysProcAttr.UidMappings = sysMaps(userns.UIDs)
		cmd.SysProcAttr.GidMappings = sysMaps(userns.GIDs)
		// Containers that join it set supplementary groups.
		cmd.SysProcAttr.GidMappingsEnableSetgroups = true
	}
	if err := timerslack.Fork(cmd.Start); err != nil {
		return 0, 0, fmt.Errorf("start the pod's pause process: %w", err)
	}
	pid := cmd.Process.Pid
	go func() { _ = cmd.Wait() }() // reaped here while hakod runs; by init after
	start, err := procStart(pid)
	if err != nil {
		_ = cmd.Process.Kill()
		return 0, 0, fmt.Errorf("pod pause process: %w", err)
	}
	_ = os.WriteFile(filepath.Join(runDir, "pause.pid"), []byte(strconv.Itoa(pid)), 0o644)
	return pid, start, nil
}

// procStart reads a process's start time (field 22 of /proc/PID/stat).
func procStart(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("unreadable /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, fmt.Errorf("unreadable /proc/%d/stat", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// pauseAlive reports whether pid is still the pause process started at
// start.
func pauseAlive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	st, err := procStart(pid)
	return err == nil && st == start
}

// stopPause kills the pause process, which ends every process of the PID
// namespace, and waits a little for it to be gone.
func stopPause(pid int, start uint64) {
	if !pauseAlive(pid, start) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 100 && pauseAlive(pid, start); i++ {
		time.Sleep(2 * time.Millisecond)
	}
}
