package monitor

// reopenLog reopens the container's log file after the caller renamed it
// (kubelet's ReopenContainerLog).
func (m *Monitor) reopenLog() error {
	if m.ctlog == nil {
		return invalidf("container %s has no log", m.cfg.ID)
	}
	return m.ctlog.Reopen()
}
