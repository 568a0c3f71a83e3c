package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newSpawner(t *testing.T) *Spawner {
	t.Helper()
	sp, err := NewSpawner(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sp.Close)
	return sp
}

func TestRunReportsFailureWithStderr(t *testing.T) {
	sp := newSpawner(t)
	var u Usage
	err := sp.Run([]string{"/bin/sh", "-c", "echo first >&2; exit 0"}, &u)
	if err != nil {
		t.Fatal(err)
	}
	err = sp.Run([]string{"/bin/sh", "-c", "echo 'no such container' >&2; exit 3"}, &u)
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "no such container") {
		t.Fatalf("error = %v", err)
	}
	if strings.Contains(err.Error(), "first") {
		t.Errorf("stderr of an earlier command leaked into the error: %v", err)
	}
	if u.Procs != 2 {
		t.Errorf("reaped %d processes, want 2", u.Procs)
	}
	if err := sp.Run([]string{"/nonexistent/runtime"}, &u); err == nil {
		t.Error("starting a missing binary succeeded")
	}
}

// burn is a shell loop that costs some tens of milliseconds of CPU.
const burn = `i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done`

func TestWaitCountsChildCPUAndRSS(t *testing.T) {
	sp := newSpawner(t)
	var u Usage
	if err := sp.Run([]string{"/bin/sh", "-c", burn}, &u); err != nil {
		t.Fatal(err)
	}
	if u.CPU < 5*time.Millisecond || u.MaxRSSKB <= 0 {
		t.Errorf("usage %+v: CPU or RSS not measured", u)
	}
}

// The create workload relies on adopting the container's init after the
// runtime's create has exited; this checks the adoption and that the
// orphan's CPU time is counted.
func TestSubreaperAdoptsOrphans(t *testing.T) {
	if err := becomeSubreaper(); err != nil {
		t.Fatal(err)
	}
	sp := newSpawner(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	var u Usage
	script := `(` + burn + `) </dev/null >/dev/null 2>&1 & echo $! > ` + pidFile
	if err := sp.Run([]string{"/bin/sh", "-c", script}, &u); err != nil {
		t.Fatal(err)
	}
	before := u.CPU
	pid, err := readPid(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := Wait(pid, &u)
	if err != nil {
		t.Fatalf("orphan %d was not adopted: %v", pid, err)
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		t.Errorf("orphan ended with %v", ws)
	}
	if u.CPU-before < 5*time.Millisecond {
		t.Errorf("orphan's CPU time not counted: %s", u.CPU-before)
	}
}

func TestReadPidRejectsGarbage(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"empty": "", "text": "abc", "init": "1", "negative": "-5"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := readPid(p); err == nil {
			t.Errorf("readPid accepted %q", content)
		}
	}
	if _, err := readPid(filepath.Join(dir, "missing")); err == nil {
		t.Error("readPid accepted a missing file")
	}
}
