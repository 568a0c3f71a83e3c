package shim_test

import (
	"errors"
	"os/exec"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hako-project/hako/shim"
)

// TestPauseResume: the cgroup is frozen and thawed, and the status says so.
func TestPauseResume(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r rt) {
		ctx := testCtx(t)
		c, _ := startContainer(t, r, []string{"sleep", "1000"}, nil, nil)
		if err := c.Pause(ctx); !errors.Is(err, shim.ErrConflict) {
			t.Errorf("Pause of a created container: %v, want ErrConflict", err)
		}
		must(t, c.Start(ctx))
		freezer := "/sys/fs/cgroup/freezer" + cgroupParent + "/" + c.ID() + "/freezer.state"
		must(t, c.Pause(ctx))
		if st, _ := c.State(ctx); st.Status != shim.Paused {
			t.Errorf("after Pause: %+v", st)
		}
		if s := strings.TrimSpace(readFile(freezer)); s != "FROZEN" {
			t.Errorf("after Pause the freezer is %q", s)
		}
		if err := c.Pause(ctx); !errors.Is(err, shim.ErrConflict) {
			t.Errorf("second Pause: %v, want ErrConflict", err)
		}
		must(t, c.Resume(ctx))
		if st, _ := c.State(ctx); st.Status != shim.Running {
			t.Errorf("after Resume: %+v", st)
		}
		if s := strings.TrimSpace(readFile(freezer)); s != "THAWED" {
			t.Errorf("after Resume the freezer is %q", s)
		}
		// A paused container is killed by a forced Delete.
		must(t, c.Pause(ctx))
		if exit := deleteAndCheck(t, r, c, true); exit.Code != 137 {
			t.Errorf("Delete of a paused container: %+v", exit)
		}
	})
}

// TestOOM: a container killed by the OOM killer in its memory limit is
// reported as OOM-killed; one that exits normally is not.
func TestOOM(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r rt) {
		ctx := testCtx(t)
		limit := int64(16 << 20)
		c, _ := startContainer(t, r, []string{"tail", "/dev/zero"}, func(s *specs.Spec) {
			s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit, Swap: &limit}}
		}, nil)
		must(t, c.Start(ctx))
		exit, err := c.Wait(ctx)
		must(t, err)
		if !exit.OOMKilled || exit.Code != 137 {
			t.Errorf("exit %+v, want OOM-killed with 137", exit)
		}
		deleteAndCheck(t, r, c, false)
	})
}

// TestStats: cgroup statistics of a running container.
func TestStats(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r rt) {
		ctx := testCtx(t)
		c, _ := startContainer(t, r, []string{"sh", "-c", "sleep 1000 & sleep 1000"}, nil, nil)
		must(t, c.Start(ctx))
		// busybox sh execs its last command: two sleeps.
		eventually(t, "two processes in the cgroup", func() bool {
			st, err := c.Stats(ctx)
			return err == nil && st.Pids.Current == 2
		})
		st, err := c.Stats(ctx)
		must(t, err)
		if st.Memory.Usage.Usage == 0 || st.CPU.Usage.Total == 0 {
			t.Errorf("stats without memory or CPU usage: %+v", st)
		}
		deleteAndCheck(t, r, c, true)
	})
}

// TestUpdate changes the memory limit through the runtime's update.
func TestUpdate(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r rt) {
		if err := exec.Command(r.path, "update", "--help").Run(); err != nil {
			t.Skipf("%s has no update command", r.name)
		}
		ctx := testCtx(t)
		c, _ := startContainer(t, r, []string{"sleep", "1000"}, nil, nil)
		must(t, c.Start(ctx))
		limit := int64(64 << 20)
		must(t, c.Update(ctx, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}))
		got := strings.TrimSpace(readFile("/sys/fs/cgroup/memory" + cgroupParent + "/" + c.ID() + "/memory.limit_in_bytes"))
		if got != "67108864" {
			t.Errorf("memory limit after Update: %q", got)
		}
		if err := c.Update(ctx, &specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "99"}}); !errors.Is(err, shim.ErrRuntime) {
			t.Errorf("Update to a CPU the host lacks: %v, want ErrRuntime", err)
		}
		deleteAndCheck(t, r, c, true)
	})
}
