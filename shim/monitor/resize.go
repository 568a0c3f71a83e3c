package monitor

import "github.com/hako-project/hako/shim/internal/proto"

// resize sets the window size of the init's or an exec's terminal.
func (m *Monitor) resize(req *proto.Request) error {
	if req.Height == 0 || req.Width == 0 {
		return invalidf("resize to %dx%d: height and width must be positive", req.Height, req.Width)
	}
	p, err := m.process(req.Exec)
	if err != nil {
		return err
	}
	return p.io.resize(req.Height, req.Width)
}
