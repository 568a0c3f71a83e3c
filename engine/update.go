package engine

import (
	"context"
	"fmt"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/trace"
)

// UpdateContainer is POST /containers/{id}/update (docker update): the
// resources the request sets (non-zero fields) and the restart policy
// replace the container's, in its record for the next start and, when it
// runs, in its cgroup at once through the shim and the runtime's update.
func (e *Engine) UpdateContainer(ctx context.Context, ref string, u container.UpdateConfig) (warnings []string, err error) {
	c, err := e.Get(ref)
	if err != nil {
		return nil, err
	}
	ctx, span := trace.Start(ctx, "engine.update", "id", c.ID)
	defer func() { span.End(err) }()
	// After a start under way, which made the cgroups from the old
	// configuration: the new one then reaches them (start.go).
	c.waitStart()
	c.mu.Lock()
	hc := *c.HostConfig
	c.mu.Unlock()
	if err := updateHostConfig(&hc, u); err != nil {
		return nil, err
	}
	warnings, err = e.validateHostConfig(&hc)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	switch c.State.Status {
	case container.StateRemoving, container.StateDead, "removed":
		c.mu.Unlock()
		return nil, errdefs.Conflictf("Cannot update container %s: container is marked for removal and cannot be \"update\"", c.ID)
	}
	old := c.HostConfig
	c.HostConfig = &hc
	task := c.task
	c.mu.Unlock()
	if task != nil {
		s := &specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{Resources: &specs.LinuxResources{}}}
		applyResources(s, &hc)
		r := s.Linux.Resources
		r.Devices = nil // devices are not updated (the runtime cannot either)
		if err := task.Update(ctx, r); err != nil {
			c.mu.Lock()
			c.HostConfig = old
			c.mu.Unlock()
			//lint:ignore ST1005 docker's words, which clients show
			return nil, fmt.Errorf("Cannot update container %s: %w", c.ID, err)
		}
	}
	if err := e.save(c); err != nil {
		return nil, err
	}
	e.events.emitContainer(c, "update", nil)
	return warnings, nil
}

// updateHostConfig applies docker's update rules to hc.
func updateHostConfig(hc *container.HostConfig, u container.UpdateConfig) error {
	r, cur := u.Resources, &hc.Resources
	switch {
	case r.NanoCPUs > 0 && cur.CPUPeriod > 0:
		return errdefs.Invalidf("Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set")
	case r.NanoCPUs > 0 && cur.CPUQuota > 0:
		return errdefs.Invalidf("Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set")
	case r.CPUPeriod > 0 && cur.NanoCPUs > 0:
		return errdefs.Invalidf("Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set")
	case r.CPUQuota > 0 && cur.NanoCPUs > 0:
		return errdefs.Invalidf("Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set")
	}
	if r.BlkioWeight != 0 {
		cur.BlkioWeight = r.BlkioWeight
	}
	if r.CPUShares != 0 {
		cur.CPUShares = r.CPUShares
	}
	if r.NanoCPUs != 0 {
		cur.NanoCPUs = r.NanoCPUs
	}
	if r.CPUPeriod != 0 {
		cur.CPUPeriod = r.CPUPeriod
	}
	if r.CPUQuota != 0 {
		cur.CPUQuota = r.CPUQuota
	}
	if r.CpusetCpus != "" {
		cur.CpusetCpus = r.CpusetCpus
	}
	if r.CpusetMems != "" {
		cur.CpusetMems = r.CpusetMems
	}
	if r.Memory != 0 {
		if cur.MemorySwap > 0 && r.Memory > cur.MemorySwap && r.MemorySwap == 0 {
			return errdefs.Invalidf("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time")
		}
		cur.Memory = r.Memory
	}
	if r.MemorySwap != 0 {
		cur.MemorySwap = r.MemorySwap
	}
	if r.MemoryReservation != 0 {
		cur.MemoryReservation = r.MemoryReservation
	}
	if r.PidsLimit != nil {
		cur.PidsLimit = r.PidsLimit
	}
	if u.RestartPolicy.Name != "" {
		if hc.AutoRemove && u.RestartPolicy.Name != container.RestartPolicyDisabled {
			return errdefs.Invalidf("Restart policy cannot be updated because AutoRemove is enabled for the container")
		}
		hc.RestartPolicy = u.RestartPolicy
	}
	return nil
}
