package container

import (
	"context"
	"errors"
	"fmt"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hako-project/hako/runtime/cgroups"
)

// Update changes a running container's resources: upd is merged onto what
// the container runs with (as runc's update does), applied to its cgroup,
// and kept in its saved config so later updates start from it.
func (c *Container) Update(upd *specs.LinuxResources) error {
	lock, err := c.dir.Lock()
	if err != nil {
		return err
	}
	defer lock.Close()
	switch st := c.Status(); st {
	case Created, Running, Paused:
	default:
		return fmt.Errorf("cannot update container %q: it is %s", c.ID(), st)
	}
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	if cg == nil {
		return errors.New("container has no cgroup to update")
	}
	cfg, err := c.Config()
	if err != nil {
		return err
	}
	merged := cgroups.MergeUpdate(cfg.Linux.Resources, upd)
	if err := cg.Set(merged); err != nil {
		return err
	}
	cfg.Linux.Resources = merged
	return c.dir.SaveConfig(cfg)
}

// Stats reads the container's cgroup statistics.
func (c *Container) Stats() (*cgroups.Stats, error) {
	cg, err := c.cgroup()
	if err != nil {
		return nil, err
	}
	if cg == nil {
		return nil, errors.New("container has no cgroup")
	}
	return cg.Stats()
}

// Events sends the container's events to emit until it stops or ctx ends:
// an "oom" event for each OOM kill and, with interval > 0, a "stats" event
// every interval. With stats only (once), a single stats event.
func (c *Container) Events(ctx context.Context, interval time.Duration, once bool, emit func(cgroups.Event) error) error {
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	if cg == nil {
		return errors.New("container has no cgroup")
	}
	if st := c.Status(); st == Stopped {
		return fmt.Errorf("container %q is stopped", c.ID())
	}
	stats := func() error {
		s, err := cg.Stats()
		if err != nil {
			return err
		}
		return emit(cgroups.Event{Type: "stats", ID: c.ID(), Data: s})
	}
	if once {
		return stats()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	oom, err := cg.OOMEvents(ctx)
	if err != nil {
		return err
	}
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	alive := time.NewTicker(100 * time.Millisecond)
	defer alive.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-oom:
			if !ok {
				return nil
			}
			if err := emit(cgroups.Event{Type: "oom", ID: c.ID()}); err != nil {
				return err
			}
		case <-tick:
			if err := stats(); err != nil {
				return err
			}
		case <-alive.C:
			if !c.State.Alive() {
				return nil
			}
		}
	}
}
