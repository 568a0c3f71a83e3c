package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPidfileZombie: a pid file naming a live hakod refuses the start; once
// that hakod is killed but not yet reaped (a zombie, as after `kill -9`
// under an init that reaps late), it no longer does, and the file names us.
func TestPidfileZombie(t *testing.T) {
	dir := t.TempDir()
	sleep, err := exec.LookPath("sleep")
	must(t, err)
	b, err := os.ReadFile(sleep)
	must(t, err)
	fake := filepath.Join(dir, "hakod") // its comm is "hakod"
	must(t, os.WriteFile(fake, b, 0o755))
	cmd := exec.Command(fake, "100")
	must(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	pidfile := filepath.Join(dir, "hakod.pid")
	must(t, os.WriteFile(pidfile, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644))

	if err := writePidfile(pidfile); err == nil || !strings.Contains(err.Error(), "is running") {
		t.Fatalf("pid file of a live hakod: %v", err)
	}
	must(t, cmd.Process.Signal(syscall.SIGKILL))
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		stat, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/stat")
		if s := string(stat); strings.Contains(s, ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the killed process did not become a zombie")
		}
	}
	if err := writePidfile(pidfile); err != nil {
		t.Fatalf("pid file of a killed, unreaped hakod: %v", err)
	}
	if got, _ := os.ReadFile(pidfile); string(got) != strconv.Itoa(os.Getpid()) {
		t.Errorf("pid file says %q, want our pid %d", got, os.Getpid())
	}
}
