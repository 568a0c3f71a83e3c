package monitor

import (
	"net"
	"slices"

	"github.com/hako-project/hako/shim/internal/proto"
)

// wait answers with the exit of the init or an exec once it has exited.
// An exec whose exit has been delivered is forgotten.
func (m *Monitor) wait(conn *net.UnixConn, req *proto.Request) error {
	p, err := m.process(req.Exec)
	if err != nil {
		return err
	}
	p.wait(conn)
	if req.Exec != "" && p.exitStatus() != nil {
		m.mu.Lock()
		if m.execs[req.Exec] == p {
			delete(m.execs, req.Exec)
			if i := slices.Index(m.finished, req.Exec); i >= 0 {
				m.finished = slices.Delete(m.finished, i, i+1)
			}
		}
		m.mu.Unlock()
	}
	return nil
}
