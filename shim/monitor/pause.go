package monitor

import "context"

// pause freezes the container through the runtime.
func (m *Monitor) pause(ctx context.Context) error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	if st := m.getStatus(); st != StatusRunning {
		return conflictf("container %s is %s, not running", m.cfg.ID, st)
	}
	if err := m.rt.Pause(ctx); err != nil {
		return err
	}
	m.setStatusFrom(StatusRunning, StatusPaused)
	return nil
}

// resume thaws a paused container.
func (m *Monitor) resume(ctx context.Context) error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	if st := m.getStatus(); st != StatusPaused {
		return conflictf("container %s is %s, not paused", m.cfg.ID, st)
	}
	if err := m.rt.Resume(ctx); err != nil {
		return err
	}
	m.setStatusFrom(StatusPaused, StatusRunning)
	return nil
}

// setStatusFrom changes the status unless it changed meanwhile (the
// container exited).
func (m *Monitor) setStatusFrom(from, to string) {
	m.mu.Lock()
	if m.status == from {
		m.status = to
	}
	m.mu.Unlock()
}
