package monitor

import (
	"context"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/shim/internal/proto"
	"github.com/hako-project/hako/shim/runtime"
)

// delete removes the container with the runtime's delete and then
// everything of the shim; the shim exits once it has answered. A running
// or paused container is deleted only with force, which kills it first.
func (m *Monitor) delete(ctx context.Context, req *proto.Request) (*proto.Response, error) {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	if m.init != nil && m.init.io != nil {
		m.init.io.release() // held output (Config.Run) must not delay the exit
	}
	switch st := m.getStatus(); st {
	case StatusRunning, StatusPaused:
		if !req.Force {
			return nil, conflictf("container %s is %s: stop it first, or delete with force", m.cfg.ID, st)
		}
		if err := m.rt.Kill(ctx, unix.SIGKILL, true); err != nil {
			m.log.Warn("kill before delete", "err", err)
			if cg := m.cgroup(); cg != nil {
				_ = cg.Kill(unix.SIGKILL)
			}
		}
		if st == StatusPaused {
			// SIGKILL reaches frozen processes only once they thaw.
			_ = m.rt.Resume(ctx)
		}
		if m.waitInit(killTimeout) == nil {
			return nil, fmt.Errorf("container %s did not exit within %v of SIGKILL", m.cfg.ID, killTimeout)
		}
	}
	if err := m.rt.Delete(ctx, req.Force); err != nil && !runtime.IsNotExist(err) {
		if !req.Force {
			return nil, err
		}
		m.log.Warn("runtime delete", "err", err)
	}
	// A created container's init dies with the runtime's delete.
	exit := m.waitInit(killTimeout)
	m.mu.Lock()
	m.deleted = true
	m.mu.Unlock()
	m.teardown()
	return &proto.Response{Exit: exit}, nil
}
