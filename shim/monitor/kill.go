package monitor

import (
	"context"

	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/shim/internal/proto"
)

// kill signals the init (through the runtime, which knows the container's
// processes; all: every one of them) or an exec (directly: the shim is its
// parent, so its pid cannot be reused before the shim reaps it).
func (m *Monitor) kill(ctx context.Context, req *proto.Request) error {
	sig := unix.Signal(req.Signal)
	if sig <= 0 || sig > 64 {
		return invalidf("signal %d is out of range", req.Signal)
	}
	if req.Exec != "" {
		p, err := m.process(req.Exec)
		if err != nil {
			return err
		}
		return p.signal(sig)
	}
	if st := m.getStatus(); st == StatusStopped {
		return conflictf("container %s is not running", m.cfg.ID)
	}
	return m.rt.Kill(ctx, sig, req.All)
}
