package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hako-project/hako/runtime/state"
)

// createdContainer creates b (not started) and returns its ID.
func (r *rt) createdContainer(b *bundle) string {
	r.t.Helper()
	b.save()
	id := uniqueID(r.t)
	r.must("create", "--bundle", b.dir, id)
	r.t.Cleanup(func() { r.run("delete", "--force", id) })
	return id
}

// TestStartBeforeGo: start of a created container with a start plan is done
// by the C side of the runtime (the span says before_go=true), with the Go
// command's result: the program runs, the fifo is gone, and a second start is
// refused (by Go, which knows why).
func TestStartBeforeGo(t *testing.T) {
	r := newRT(t)
	b := newBundle(t, "sh", "-c", "echo started > /ran; exec sleep 60")
	id := r.createdContainer(b)
	plan, err := os.ReadFile(filepath.Join(r.root, id, state.StartPlanFile))
	pid := int(r.state(id)["pid"].(float64))
	if want := "hako-start-plan 1\ninit " + strconv.Itoa(pid) + " "; err != nil || !strings.HasPrefix(string(plan), want) || !strings.HasSuffix(string(plan), "\nend\n") {
		t.Fatalf("start plan: %q, %v; want %q...end", plan, err, want)
	}
	spans := r.traced("start", id)
	if spans["hako-runtime.start"].Attrs["before_go"] != "true" {
		t.Errorf("start of a created container ran in Go: %+v", spans["hako-runtime.start"])
	}
	waitFile(t, filepath.Join(b.dir, "rootfs", "ran"), "started\n")
	if st := r.state(id); st["status"] != "running" || int(st["pid"].(float64)) != pid {
		t.Errorf("after start: %v, want running with pid %d", st, pid)
	}
	if _, err := os.Lstat(filepath.Join(r.root, id, state.FifoFile)); !os.IsNotExist(err) {
		t.Errorf("exec fifo left after start (%v)", err)
	}
	if _, errs, code := r.run("start", id); code == 0 || !strings.Contains(errs, "running, not created") {
		t.Errorf("second start: exit %d, %q", code, errs)
	}
	r.must("kill", id, "KILL")
	r.waitStatus(id, "stopped")
	r.must("delete", id)
	r.assertGone(id, b)
}

// TestStartLeftToGo: whenever the container is not plainly created, or the
// command line not plainly `start ID`, the C side changes nothing and the Go
// command runs, with its own result or message.
func TestStartLeftToGo(t *testing.T) {
	r := newRT(t)

	t.Run("poststart hook", func(t *testing.T) {
		r := &rt{t: t, root: r.root}
		b := newBundle(t, "sleep", "60")
		mark := filepath.Join(t.TempDir(), "poststart")
		b.spec.Hooks = &specs.Hooks{Poststart: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo ran > " + mark}}}}
		id := r.createdContainer(b)
		if _, err := os.Stat(filepath.Join(r.root, id, state.StartPlanFile)); !os.IsNotExist(err) {
			t.Errorf("a container with poststart hooks has a start plan (%v)", err)
		}
		spans := r.traced("start", id)
		if spans["hako-runtime.start"].Attrs["before_go"] != "" {
			t.Error("the C side started a container with poststart hooks")
		}
		if data, err := os.ReadFile(mark); err != nil || string(data) != "ran\n" {
			t.Errorf("poststart hook: %q, %v", data, err)
		}
		r.waitStatus(id, "running")
	})

	t.Run("init gone", func(t *testing.T) {
		r := &rt{t: t, root: r.root}
		id := r.createdContainer(newBundle(t, "sleep", "60"))
		must(t, syscall.Kill(int(r.state(id)["pid"].(float64)), syscall.SIGKILL))
		r.waitStatus(id, "stopped")
		if _, errs, code := r.run("start", id); code == 0 || !strings.Contains(errs, "it has stopped") {
			t.Errorf("start of a stopped container: exit %d, %q", code, errs)
		}
	})

	// Plans the C side must not carry out: Go starts the container.
	for _, tc := range []struct {
		name, why string
		spoil     func(t *testing.T, planFile string, pid int) []byte
	}{
		{"plan cut short", "a start plan without its end line", func(t *testing.T, planFile string, _ int) []byte {
			plan, err := os.ReadFile(planFile)
			must(t, err)
			return []byte(strings.TrimSuffix(string(plan), "end\n"))
		}},
		// A start time that is not the init's: the pid was reused.
		{"plan of another init", "a container whose plan names another process", func(_ *testing.T, _ string, pid int) []byte {
			return []byte("hako-start-plan 1\ninit " + strconv.Itoa(pid) + " 1\nend\n")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &rt{t: t, root: r.root}
			id := r.createdContainer(newBundle(t, "sleep", "60"))
			planFile := filepath.Join(r.root, id, state.StartPlanFile)
			must(t, os.WriteFile(planFile, tc.spoil(t, planFile, int(r.state(id)["pid"].(float64))), 0o600))
			if spans := r.traced("start", id); spans["hako-runtime.start"].Attrs["before_go"] != "" {
				t.Error("the C side started " + tc.why)
			}
			r.waitStatus(id, "running")
		})
	}

	t.Run("unknown flag", func(t *testing.T) {
		r := &rt{t: t, root: r.root}
		id := r.createdContainer(newBundle(t, "sleep", "60"))
		if _, errs, code := r.run("start", "--no-such-flag", id); code != 2 || !strings.Contains(errs, "no-such-flag") {
			t.Errorf("unknown flag: exit %d, %q", code, errs)
		}
		if r.state(id)["status"] != "created" {
			t.Error("a refused start started the container")
		}
		if spans := r.traced("start", id); spans["hako-runtime.start"].Attrs["before_go"] != "true" {
			t.Error("start of a created container ran in Go")
		}
	})
}
