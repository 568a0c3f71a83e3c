package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/hako-project/hako/shim/internal/proto"
)

// update changes the container's resources with the runtime's
// `update --resources`.
func (m *Monitor) update(ctx context.Context, req *proto.Request) error {
	if req.Resources == nil {
		return invalidf("update: no resources given")
	}
	if st := m.getStatus(); st == StatusStopped {
		return conflictf("container %s is not running", m.cfg.ID)
	}
	b, err := json.Marshal(req.Resources)
	if err != nil {
		return invalidf("update: resources: %v", err)
	}
	file := m.nextFile("r", ".json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		return fmt.Errorf("update: %w", err)
	}
	defer os.Remove(file)
	return m.rt.Update(ctx, file)
}
