package container

import (
	"errors"
	"fmt"
)

// Pause freezes every process of a running container.
func (c *Container) Pause() error {
	lock, err := c.dir.Lock()
	if err != nil {
		return err
	}
	defer lock.Close()
	if st := c.Status(); st != Running {
		return fmt.Errorf("cannot pause container %q: it is %s, not running", c.ID(), st)
	}
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	if cg == nil {
		return errors.New("container has no cgroup to freeze")
	}
	return cg.Freeze()
}

// Resume thaws a paused container.
func (c *Container) Resume() error {
	lock, err := c.dir.Lock()
	if err != nil {
		return err
	}
	defer lock.Close()
	if st := c.Status(); st != Paused {
		return fmt.Errorf("cannot resume container %q: it is %s, not paused", c.ID(), st)
	}
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	if cg == nil {
		return errors.New("container has no cgroup to thaw")
	}
	return cg.Thaw()
}

// Processes lists the pids of every process in the container.
func (c *Container) Processes() ([]int, error) {
	cg, err := c.cgroup()
	if err != nil {
		return nil, err
	}
	if cg == nil {
		if c.State.Alive() {
			return []int{c.State.InitPid}, nil
		}
		return nil, nil
	}
	return cg.Pids()
}
