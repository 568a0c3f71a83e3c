package monitor

import (
	"fmt"

	"github.com/hako-project/hako/shim/internal/proto"
)

// stats reads the container's cgroup statistics (runc's `events --stats`
// format) straight from the cgroup: cheaper than a runtime process per
// sample, and the same for every runtime.
func (m *Monitor) stats() (*proto.Response, error) {
	cg := m.cgroup()
	if cg == nil {
		return nil, conflictf("container %s: its cgroup was not found", m.cfg.ID)
	}
	st, err := cg.Stats()
	if err != nil {
		return nil, fmt.Errorf("stats of container %s: %w", m.cfg.ID, err)
	}
	return &proto.Response{Stats: st}, nil
}
