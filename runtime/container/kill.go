package container

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Signal sends sig to the container's init, or with all to every process in
// its cgroup.
func (c *Container) Signal(sig unix.Signal, all bool) error {
	switch st := c.Status(); st {
	case Created, Running, Paused:
	default:
		return fmt.Errorf("container %q is %s: nothing to signal", c.ID(), st)
	}
	if !all {
		return c.signalInit(sig)
	}
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	if cg == nil {
		return c.signalInit(sig)
	}
	if err := cg.Kill(sig); err != nil {
		return fmt.Errorf("signal every process of %q: %w", c.ID(), err)
	}
	if sig == unix.SIGKILL {
		// Frozen processes die only once thawed.
		_ = cg.Thaw()
	}
	return nil
}
