package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hako-project/hako/test/hakodtest"
)

// TestRemoveDuringStart: `rm -f` while `run -d` starts the container waits
// for the start, as docker's does, and then kills and removes what it
// started: the run either succeeds or is refused for the removal, never
// fails half-way in the runtime (its files taken from under it), and
// nothing is left behind.
func TestRemoveDuringStart(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	for i := 0; i < 12; i++ {
		name := fmt.Sprintf("racer%d", i)
		run := make(chan string, 1)
		go func() {
			_, errs, code := d.Docker("run", "-d", "--name", name, img, "sleep", "100")
			if code != 0 {
				run <- errs
				return
			}
			run <- ""
		}()
		// rm -f at staggered moments of the start, until it finds the
		// container (it may come before the create).
		time.Sleep(time.Duration(i) * 2 * time.Millisecond)
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			// (The docker CLI's rm -f exits 0 for a missing container
			// too, saying so.)
			_, errs, code := d.Docker("rm", "-f", name)
			missing := strings.Contains(errs, "No such container")
			if code == 0 && !missing {
				break
			}
			if !missing {
				t.Fatalf("rm -f %s: exit %d: %s", name, code, errs)
			}
			if time.Now().After(deadline) {
				t.Fatalf("rm -f %s never found the container", name)
			}
		}
		if errs := <-run; errs != "" && !strings.Contains(errs, "marked for removal") && !strings.Contains(errs, "No such container") {
			t.Errorf("run -d %s while rm -f: %s", name, errs)
		}
	}
	if out := d.MustDocker("ps", "-aq"); out != "" {
		t.Errorf("containers left: %s", out)
	}
	assertClean(t, d)
}

// TestConcurrentStarts: two `docker start` of one created container at
// once both succeed and one container runs, as with docker (the second
// used to fail on the shim's state directory and mark the running
// container exited); rm -f then leaves nothing.
func TestConcurrentStarts(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	for i := 0; i < 3; i++ {
		name := fmt.Sprintf("twice%d", i)
		d.MustDocker("create", "--name", name, img, "sleep", "100")
		var wg sync.WaitGroup
		errs := make([]string, 2)
		for j := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, e, code := d.Docker("start", name); code != 0 {
					errs[j] = e
				}
			}()
		}
		wg.Wait()
		for j, e := range errs {
			if e != "" {
				t.Errorf("start %d of %s: %s", j, name, e)
			}
		}
		if st := d.MustDocker("inspect", "-f", "{{.State.Status}}", name); st != "running" {
			t.Errorf("%s after two starts: %s, want running", name, st)
		}
		d.MustDocker("rm", "-f", name)
	}
	assertClean(t, d)
}

// startUnderWay starts name (ID id) in the background and returns once the
// start has begun the container's shim (its state directory exists),
// before the start has returned; the channel gives the start's error
// output, "" if it succeeded.
func startUnderWay(t *testing.T, d *hakodtest.Daemon, name, id string) <-chan string {
	t.Helper()
	started := make(chan string, 1)
	go func() {
		_, e, _ := d.Docker("start", name)
		started <- e
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Microsecond) {
		if _, err := os.Stat(filepath.Join(d.ExecRoot, "shims", id)); err == nil {
			return started
		}
		if time.Now().After(deadline) {
			t.Fatalf("the start of %s never began its shim", name)
		}
	}
}

// TestStopDuringStart: `stop` (and `kill`) while a start is under way wait
// for it and then stop what it started, as docker's do: the container ends
// up exited, not running (the stop used to find nothing to stop, and the
// start then ran the container). They are sent once the start has begun
// the container's shim (its state directory exists), before the start has
// returned.
func TestStopDuringStart(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	for i := 0; i < 6; i++ {
		name := fmt.Sprintf("halt%d", i)
		id := d.MustDocker("create", "--name", name, img, "sleep", "100")
		started := startUnderWay(t, d, name, id)
		verb := []string{"stop", "-t", "1", name}
		if i%2 == 1 {
			verb = []string{"kill", name}
		}
		if _, kerr, code := d.Docker(verb...); code != 0 {
			t.Errorf("%s %s: %s", verb[0], name, kerr)
		}
		if e := <-started; e != "" {
			t.Errorf("start %s: %s", name, e)
		}
		if st := d.MustDocker("inspect", "-f", "{{.State.Status}}", name); st != "exited" {
			t.Errorf("%s after %s during its start: %s, want exited", name, verb[0], st)
		}
		d.MustDocker("rm", "-f", name)
	}
	assertClean(t, d)
}

// TestRemoveWithoutForceDuringStart: `rm` without -f while a start is under
// way waits for it and then refuses, the container running by then, as
// docker's does; it never kills what the start started.
func TestRemoveWithoutForceDuringStart(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	for i := 0; i < 3; i++ {
		name := fmt.Sprintf("keep%d", i)
		id := d.MustDocker("create", "--name", name, img, "sleep", "100")
		started := startUnderWay(t, d, name, id)
		if _, e, code := d.Docker("rm", name); code == 0 || !strings.Contains(e, "container is running") {
			t.Errorf("rm %s during its start: exit %d, %s; want refused, running", name, code, e)
		}
		if e := <-started; e != "" {
			t.Errorf("start %s: %s", name, e)
		}
		if st := d.MustDocker("inspect", "-f", "{{.State.Status}}", name); st != "running" {
			t.Errorf("%s after rm during its start: %s, want running", name, st)
		}
		d.MustDocker("rm", "-f", name)
	}
	assertClean(t, d)
}

// TestOperationsDuringStart: pause, exec, top and update sent while a
// start is under way wait for it and then act on the running container,
// as docker's do (they used to answer "is not running", or, for update,
// change only the record, the container running with its old limits).
func TestOperationsDuringStart(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	for i, op := range [][]string{
		{"pause"}, {"exec", "", "true"}, {"top"}, {"update", "--memory", "64m", "--memory-swap", "128m"},
	} {
		name := fmt.Sprintf("during%d", i)
		id := d.MustDocker("create", "--name", name, img, "sleep", "100")
		started := startUnderWay(t, d, name, id)
		args := append([]string{op[0]}, op[1:]...)
		if op[0] == "exec" {
			args[1] = name
		} else {
			args = append(args, name)
		}
		if out, errs, code := d.Docker(args...); code != 0 {
			t.Errorf("%s during the start: %d %s %s", op[0], code, out, errs)
		}
		if e := <-started; e != "" {
			t.Errorf("start %s: %s", name, e)
		}
		want := "running"
		if op[0] == "pause" {
			want = "paused"
		}
		if st := d.MustDocker("inspect", "-f", "{{.State.Status}}", name); st != want {
			t.Errorf("%s after %s during its start: %s, want %s", name, op[0], st, want)
		}
		if op[0] == "update" {
			// The running container's cgroup has the new limit.
			if got := d.MustDocker("exec", name, "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max"); got != "67108864" {
				t.Errorf("memory limit after an update during the start: %q", got)
			}
		}
		d.MustDocker("rm", "-f", name)
	}
	assertClean(t, d)
}
