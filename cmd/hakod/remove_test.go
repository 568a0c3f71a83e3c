package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/test/hakodtest"
)

// TestRemoveLayerLeftDead: a container whose layer cannot be removed (a
// mount left inside it) goes dead with an error naming its filesystem and
// keeps its directory, so its logs still show (as with docker). Once the
// mount is gone, rm removes it all: the directory, the layer's files,
// nothing left in the trash.
func TestRemoveLayerLeftDead(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	if out := d.MustDocker("run", "--name", "deadone", img, "sh", "-c", "echo hello; touch /marker-deadone"); out != "hello" {
		t.Fatalf("run: %q", out)
	}
	id := d.MustDocker("inspect", "-f", "{{.Id}}", "deadone")
	marks, _ := filepath.Glob(filepath.Join(d.DataRoot, "snapshots", "snapshots", "*", "fs", "marker-deadone"))
	if len(marks) != 1 {
		t.Fatalf("the container's layer: found %v", marks)
	}
	layer := filepath.Dir(filepath.Dir(marks[0]))
	busy := filepath.Join(filepath.Dir(marks[0]), "busy")
	must(t, os.Mkdir(busy, 0o755))
	must(t, unix.Mount("tmpfs", busy, "tmpfs", 0, ""))
	mounted := true
	defer func() {
		if mounted {
			_ = unix.Unmount(busy, unix.MNT_DETACH)
		}
	}()

	if _, errs, code := d.Docker("rm", "deadone"); code == 0 || !strings.Contains(errs, "remove the container's filesystem") {
		t.Fatalf("rm with a mount inside the layer: exit %d, %s", code, errs)
	}
	if st := d.MustDocker("inspect", "-f", "{{.State.Status}}", "deadone"); st != "dead" {
		t.Errorf("status after the failed removal: %s, want dead", st)
	}
	if logs := d.MustDocker("logs", "deadone"); logs != "hello" {
		t.Errorf("logs of the dead container: %q, want hello", logs)
	}
	if _, err := os.Stat(filepath.Join(d.DataRoot, "containers", id)); err != nil {
		t.Errorf("the dead container's directory: %v", err)
	}

	must(t, unix.Unmount(busy, 0))
	mounted = false
	d.MustDocker("rm", "deadone")
	untilTrue(t, "the removed container's directory and layer gone", func() bool {
		_, derr := os.Stat(filepath.Join(d.DataRoot, "containers", id))
		_, lerr := os.Stat(layer)
		trash, _ := os.ReadDir(filepath.Join(d.DataRoot, "trash"))
		return os.IsNotExist(derr) && os.IsNotExist(lerr) && len(trash) == 0
	})
	assertClean(t, d)
}

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
