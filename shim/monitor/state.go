package monitor

import "github.com/hako-project/hako/shim/internal/proto"

// state reports the init's pid, the container's status and, once it has
// exited, how.
func (m *Monitor) state() *proto.Response {
	return &proto.Response{Pid: m.init.pid, Status: m.getStatus(), Exit: m.init.exitStatus()}
}

// process returns the init (execID "") or a started exec.
func (m *Monitor) process(execID string) (*process, error) {
	if execID == "" {
		return m.init, nil
	}
	m.mu.Lock()
	p := m.execs[execID]
	m.mu.Unlock()
	if p == nil {
		return nil, notFoundf("no exec %q in container %s", execID, m.cfg.ID)
	}
	return p, nil
}
