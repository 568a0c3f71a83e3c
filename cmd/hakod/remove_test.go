package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/snapshot"
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
	unmount := busyMount(t, filepath.Dir(marks[0]))

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

	unmount()
	d.MustDocker("rm", "deadone")
	untilTrue(t, "the removed container's directory and layer gone", func() bool {
		_, derr := os.Stat(filepath.Join(d.DataRoot, "containers", id))
		_, lerr := os.Stat(layer)
		trash, _ := os.ReadDir(filepath.Join(d.DataRoot, "trash"))
		return os.IsNotExist(derr) && os.IsNotExist(lerr) && len(trash) == 0
	})
	assertClean(t, d)
}

// busyMount mounts a tmpfs on a new directory in dir (a container's layer),
// as a volume left mounted there would be, so that the layer cannot be
// removed; unmount takes it away (the test's clean-up does, if it fails
// first).
func busyMount(t *testing.T, dir string) (unmount func()) {
	t.Helper()
	busy := filepath.Join(dir, "busy")
	must(t, os.Mkdir(busy, 0o755))
	must(t, unix.Mount("tmpfs", busy, "tmpfs", 0, ""))
	mounted := true
	t.Cleanup(func() {
		if mounted {
			_ = unix.Unmount(busy, unix.MNT_DETACH)
		}
	})
	return func() {
		must(t, unix.Unmount(busy, 0))
		mounted = false
	}
}

// TestStrayRunDirRemoved: hakod's start removes the run directory (the
// bundle and /etc files under the exec root) of a container it has no
// record of, as a removal cut short leaves it; those of its containers
// stay.
func TestStrayRunDirRemoved(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	id := d.MustDocker("run", "-d", img, "sleep", "60")
	stray := filepath.Join(d.ExecRoot, "containers", strings.Repeat("ab", 32))
	if err := os.MkdirAll(filepath.Join(stray, "bundle", "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	d.Kill()
	d.Restart()
	if _, err := os.Stat(stray); !os.IsNotExist(err) {
		t.Errorf("stray run directory left: %v", err)
	}
	if _, err := os.Stat(filepath.Join(d.ExecRoot, "containers", id, "bundle", "config.json")); err != nil {
		t.Errorf("the running container's bundle: %v", err)
	}
	if out := d.MustDocker("exec", id, "cat", "/etc/hostname"); out != id[:12] {
		t.Errorf("hostname after the restart: %q", out)
	}
	d.MustDocker("rm", "-f", id)
	assertClean(t, d)
}

// TestOrphanLayerRemoved: a container layer without a container record, as
// a hakod killed between create's two steps (the layer prepared, the record
// not yet saved) leaves, is removed at the next start: it used to stay for
// good, and kept its image "in use" (rmi refused). A container that has a
// record keeps its layer.
func TestOrphanLayerRemoved(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	d.MustDocker("create", "--name", "kept", img, "sh", "-c", "echo still here")
	keptID := d.MustDocker("inspect", "-f", "{{.Id}}", "kept")
	d.Stop()

	ctx := context.Background()
	snaps, err := snapshot.Open(filepath.Join(d.DataRoot, "snapshots"), nil)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := snaps.Stat(ctx, keptID)
	if err != nil {
		t.Fatalf("the kept container's layer: %v", err)
	}
	orphanID := strings.Repeat("0f", 32)
	if _, err := snaps.Prepare(ctx, orphanID, kept.Parent, kept.Labels); err != nil {
		t.Fatal(err)
	}
	orphan, err := snaps.Stat(ctx, orphanID)
	if err != nil {
		t.Fatal(err)
	}
	if err := snaps.Close(); err != nil {
		t.Fatal(err)
	}
	orphanDir := filepath.Join(d.DataRoot, "snapshots", "snapshots", strconv.FormatUint(orphan.ID, 10))
	if _, err := os.Stat(orphanDir); err != nil {
		t.Fatalf("the orphan layer's directory: %v", err)
	}

	d.Restart()
	if _, err := os.Stat(orphanDir); !os.IsNotExist(err) {
		t.Errorf("the orphan layer's directory is still there after the restart (%v)", err)
	}
	if !strings.Contains(d.Log(), orphanID) {
		t.Errorf("hakod's log does not name the orphan layer it removed:\n%s", d.Log())
	}
	if out := d.MustDocker("start", "-a", "kept"); out != "still here" {
		t.Errorf("the kept container: %q", out)
	}
	d.MustDocker("rm", "kept")
	// Nothing holds the image now: rmi removes it.
	d.MustDocker("rmi", img)
	assertClean(t, d)
}

// TestRecordWithoutLayer: what a crash in a removal can leave (the layer
// goes before the record): a container whose layer is gone is still
// listed, its start fails naming its filesystem, and rm removes it.
func TestRecordWithoutLayer(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	d.MustDocker("create", "--name", "layerless", img, "true")
	id := d.MustDocker("inspect", "-f", "{{.Id}}", "layerless")
	d.Stop()
	snaps, err := snapshot.Open(filepath.Join(d.DataRoot, "snapshots"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := snaps.Remove(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if err := snaps.Close(); err != nil {
		t.Fatal(err)
	}
	d.Restart()
	if out := d.MustDocker("ps", "-aq", "--filter", "name=layerless"); out == "" {
		t.Fatal("the container is no longer listed")
	}
	_, errOut, code := d.Docker("start", "layerless")
	if code == 0 || !strings.Contains(errOut, "filesystem") {
		t.Errorf("start of a container without its layer: exit %d, %q; want a failure naming its filesystem", code, errOut)
	}
	d.MustDocker("rm", "layerless")
	assertClean(t, d)
}

// TestRemoveLayerLeftDeadRm: a --rm container whose layer cannot be removed
// at its exit (a mount left inside) stays, dead, as with docker: a
// restarted hakod still lists it (it tries the removal again, which fails
// again), and rm removes it once the mount is gone.
func TestRemoveLayerLeftDeadRm(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	d.MustDocker("run", "-d", "--rm", "--name", "deadrm", img, "sh", "-c", "touch /marker-deadrm; sleep 100000")
	var marks []string
	untilTrue(t, "the container's marker in its layer", func() bool {
		marks, _ = filepath.Glob(filepath.Join(d.DataRoot, "snapshots", "snapshots", "*", "fs", "marker-deadrm"))
		return len(marks) == 1
	})
	unmount := busyMount(t, filepath.Dir(marks[0]))
	d.MustDocker("kill", "deadrm")
	untilTrue(t, "the container dead", func() bool {
		st, _, _ := d.Docker("inspect", "-f", "{{.State.Status}}", "deadrm")
		return strings.TrimSpace(st) == "dead"
	})
	d.Stop()
	d.Restart()
	if st, errs, code := d.Docker("inspect", "-f", "{{.State.Status}}", "deadrm"); code != 0 || strings.TrimSpace(st) != "dead" {
		t.Fatalf("after a restart: status %q (exit %d, %s), want the container still there, dead", st, code, errs)
	}
	unmount()
	d.MustDocker("rm", "deadrm")
	assertClean(t, d)
}

// TestOrphanShimEnded: a running container whose record is gone, as a crash
// in a removal between the record's delete and the shim's leaves, is ended
// at the next start with its shim, cgroup and mounts. It used to run on,
// listed nowhere, for good. A container with a record is left running.
func TestOrphanShimEnded(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	d.MustDocker("run", "-d", "--name", "kept", img, "sleep", "100000")
	id := d.MustDocker("run", "-d", "--name", "orphan", img, "sleep", "100000")
	pid, err := strconv.Atoi(d.MustDocker("inspect", "-f", "{{.State.Pid}}", id))
	if err != nil || pid <= 0 {
		t.Fatalf("the orphan's pid: %v", err)
	}
	state, shimPid := procStat(pid)
	if state == "" {
		t.Fatalf("no process %d", pid)
	}
	if comm, _ := os.ReadFile("/proc/" + strconv.Itoa(shimPid) + "/comm"); strings.TrimSpace(string(comm)) != "hako-shim" {
		t.Fatalf("the orphan's parent %d is %q, not its shim", shimPid, comm)
	}
	cg := memoryCgroup(t, pid)
	if _, err := os.Stat(cg); err != nil {
		t.Fatalf("the orphan's cgroup: %v", err)
	}
	d.Kill()

	db, err := bolt.Open(filepath.Join(d.DataRoot, "engine.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("containers")).Delete([]byte(id)) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	d.Restart()
	// The sweep runs before hakod serves: the shim has exited by now.
	for _, p := range []int{pid, shimPid} {
		if running(p) {
			t.Errorf("process %d (the orphan's or its shim) still runs after the restart", p)
		}
	}
	if _, err := os.Stat(filepath.Join(d.DataRoot, "containers", id)); !os.IsNotExist(err) {
		t.Errorf("the orphan's directory is still there (%v)", err)
	}
	if _, err := os.Stat(cg); !os.IsNotExist(err) {
		t.Errorf("the orphan's cgroup %s is still there (%v)", cg, err)
	}
	if _, err := os.Stat(filepath.Join(d.ExecRoot, "shims", id)); !os.IsNotExist(err) {
		t.Errorf("the orphan's shim directory is still there (%v)", err)
	}
	if !strings.Contains(d.Log(), "ending the shim of a container that has no record") || !strings.Contains(d.Log(), id) {
		t.Errorf("hakod's log does not name the orphan it ended:\n%s", d.Log())
	}
	if out := d.MustDocker("exec", "kept", "echo", "alive"); out != "alive" {
		t.Errorf("the kept container after the restart: %q", out)
	}
	d.MustDocker("rm", "-f", "kept")
	assertClean(t, d)
}

// memoryCgroup is the directory of pid's cgroup: the memory controller's
// on cgroup v1, the unified one on v2.
func memoryCgroup(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				return filepath.Join("/sys/fs/cgroup/memory", parts[2])
			}
		}
		if parts[0] == "0" && parts[1] == "" {
			if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
				return filepath.Join("/sys/fs/cgroup", parts[2])
			}
		}
	}
	t.Fatalf("no memory cgroup for %d in:\n%s", pid, b)
	return ""
}
