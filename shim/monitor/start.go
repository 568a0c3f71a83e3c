package monitor

import "context"

// start runs the runtime's start: the init execs the container's program.
// For a container made with Config.Run, whose program runs already, it lets
// the held output go to the log and the attached clients.
func (m *Monitor) start(ctx context.Context) error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	if m.cfg.Run && !m.runStarted {
		m.runStarted = true
		m.init.io.release()
		return nil
	}
	if st := m.getStatus(); st != StatusCreated {
		return conflictf("container %s is %s, not created", m.cfg.ID, st)
	}
	if err := m.rt.Start(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	// The program may have run and exited already.
	if m.status == StatusCreated {
		m.status = StatusRunning
	}
	m.mu.Unlock()
	return nil
}
