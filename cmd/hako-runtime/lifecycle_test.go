package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestRunExitCodeAndCleanup(t *testing.T) {
	r := newRT(t)
	b := newBundle(t, "sh", "-c", "echo out; echo err >&2; exit 7")
	id := uniqueID(t)
	out, errs, code := r.runBundle(b, id)
	if code != 7 {
		t.Fatalf("exit code %d, want 7 (stderr %q)", code, errs)
	}
	if out != "out\n" || !strings.Contains(errs, "err") {
		t.Errorf("stdout %q stderr %q", out, errs)
	}
	r.assertGone(id, b)
}

func TestRunKilledBySignalReportsShellCode(t *testing.T) {
	r := newRT(t)
	// Without a PID namespace the shell is not an init, so its own SIGKILL
	// lands; run reports it as a shell does, 128+9.
	b := newBundle(t, "sh", "-c", "kill -KILL $$")
	var nss []specs.LinuxNamespace
	for _, ns := range b.spec.Linux.Namespaces {
		if ns.Type != specs.PIDNamespace {
			nss = append(nss, ns)
		}
	}
	b.spec.Linux.Namespaces = nss
	id := uniqueID(t)
	if _, errs, code := r.runBundle(b, id); code != 128+9 {
		t.Fatalf("killed by SIGKILL: exit code %d, want 137 (stderr %q)", code, errs)
	}
	r.assertGone(id, b)
}

func TestLifecycle(t *testing.T) {
	r := newRT(t)
	b := newBundle(t, "sh", "-c", "echo started > /tmp/mark; exec sleep 60")
	b.save()
	id := uniqueID(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	r.must("create", "--bundle", b.dir, "--pid-file", pidFile, id)

	st := r.state(id)
	if st["status"] != "created" {
		t.Fatalf("after create: status %v", st["status"])
	}
	pid := int(st["pid"].(float64))
	data, err := os.ReadFile(pidFile)
	must(t, err)
	if string(data) != strconv.Itoa(pid) {
		t.Errorf("pid file %q, state pid %d", data, pid)
	}
	if st["bundle"] != b.dir || st["ociVersion"] == "" || st["id"] != id {
		t.Errorf("state %v", st)
	}
	// The init waits: the user's program has not run.
	if _, err := os.Stat(filepath.Join(b.dir, "rootfs/tmp/mark")); err == nil {
		t.Fatal("program ran before start")
	}
	var list []map[string]any
	must(t, json.Unmarshal([]byte(r.must("list", "--format", "json")), &list))
	if len(list) != 1 || list[0]["id"] != id || list[0]["status"] != "created" {
		t.Errorf("list: %v", list)
	}
	if out := r.must("list", "-q"); strings.TrimSpace(out) != id {
		t.Errorf("list -q: %q", out)
	}

	r.must("start", id)
	r.waitStatus(id, "running")
	if _, _, code := r.run("start", id); code == 0 {
		t.Error("second start succeeded")
	}
	if _, _, code := r.run("delete", id); code == 0 {
		t.Error("delete of a running container without --force succeeded")
	}
	r.must("kill", id, "KILL")
	r.waitStatus(id, "stopped")
	if st := r.state(id); st["pid"].(float64) != 0 {
		t.Errorf("stopped container reports pid %v", st["pid"])
	}
	r.must("delete", id)
	if _, _, code := r.run("state", id); code == 0 {
		t.Error("state after delete succeeded")
	}
	r.assertGone(id, b)
}

func TestDeleteCreatedAndForce(t *testing.T) {
	r := newRT(t)
	b := newBundle(t, "sleep", "60")
	b.save()
	id := uniqueID(t)
	r.must("create", "--bundle", b.dir, id)
	pid := int(r.state(id)["pid"].(float64))
	r.must("delete", id) // a created container needs no --force
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
		if st, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); !strings.Contains(string(st), ") Z") {
			t.Errorf("init %d still alive after delete", pid)
		}
	}
	r.assertGone(id, b)

	id2 := uniqueID(t)
	r.must("run", "--detach", "--bundle", b.dir, id2)
	r.waitStatus(id2, "running")
	r.must("delete", "--force", id2)
	r.assertGone(id2, b)
	// runc's semantics: deleting a missing container with --force is not an error.
	r.must("delete", "--force", "no-such-container")
}

func TestKillSignalsAndAll(t *testing.T) {
	r := newRT(t)
	// A shell that reports SIGUSR1 and exits on SIGTERM; a background child
	// shows --all reaching every process.
	b := newBundle(t, "sh", "-c", "trap 'echo usr1 >> /tmp/log' USR1; trap 'exit 3' TERM; sleep 100 & while :; do sleep 0.05; done")
	b.save()
	id := uniqueID(t)
	r.must("run", "-d", "--bundle", b.dir, id)
	r.waitStatus(id, "running")
	// Signals of one kind merge while pending: wait for each to be handled.
	log := filepath.Join(b.dir, "rootfs/tmp/log")
	r.must("kill", id, "SIGUSR1")
	waitFile(t, log, "usr1\n")
	r.must("kill", id, "10") // SIGUSR1 by number
	waitFile(t, log, "usr1\nusr1\n")
	r.must("kill", id, "usr1")
	waitFile(t, log, "usr1\nusr1\nusr1\n")
	if _, errs, code := r.run("kill", id, "SIGNOPE"); code == 0 || !strings.Contains(errs, "SIGNOPE") {
		t.Errorf("unknown signal: code %d, %q", code, errs)
	}
	out := r.must("ps", "--format", "json", id)
	var pids []int
	must(t, json.Unmarshal([]byte(out), &pids))
	if len(pids) < 2 {
		t.Fatalf("ps: %v, want the shell and its children", pids)
	}
	r.must("kill", "--all", id, "KILL")
	r.waitStatus(id, "stopped")
	r.must("delete", id)
	r.assertGone(id, b)
}

// TestRunForwardsSignals: `run` without --detach passes the signals it
// receives on to the container's process: those it catches before the
// container exists (USR1, TERM) and those it catches while the container
// starts (ALRM, XCPU) alike.
func TestRunForwardsSignals(t *testing.T) {
	r := newRT(t)
	b := newBundle(t, "sh", "-c", `for s in USR1 ALRM XCPU; do trap "echo $s >> /log" $s; done
trap 'echo TERM >> /log; exit 3' TERM
touch /ready
while :; do sleep 0.05; done`)
	b.save()
	rootfs := filepath.Join(b.dir, "rootfs")
	id := uniqueID(t)
	cmd := exec.Command(runtimeBin, "--root", r.root, "run", "--bundle", b.dir, id)
	var errs strings.Builder
	cmd.Stderr = &errs
	must(t, cmd.Start())
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				t.Fatalf("timed out waiting for %s (stderr %q)", what, errs.String())
			}
		}
	}
	waitFor("the container", func() bool { _, err := os.Stat(filepath.Join(rootfs, "ready")); return err == nil })
	logged := func() string { b, _ := os.ReadFile(filepath.Join(rootfs, "log")); return string(b) }
	for _, sig := range []syscall.Signal{syscall.SIGUSR1, syscall.SIGALRM, syscall.SIGXCPU} {
		must(t, cmd.Process.Signal(sig))
		name := strings.TrimPrefix(unix.SignalName(sig), "SIG")
		waitFor(name+" in the container", func() bool { return strings.Contains(logged(), name+"\n") })
	}
	must(t, cmd.Process.Signal(syscall.SIGTERM))
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("run: %v, want exit status 3 from the container's TERM trap (stderr %q)", err, errs.String())
	}
	if got := logged(); got != "USR1\nALRM\nXCPU\nTERM\n" {
		t.Errorf("the container received %q", got)
	}
	r.assertGone(id, b)
}
