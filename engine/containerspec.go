package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hako-project/hako/engine/specgen"
	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/runtime/cgroups"
	"github.com/hako-project/hako/trace"
)

// ContainerSpec is an OCI spec a client built itself (the CRI server,
// whose security context, mounts and namespaces have no docker run
// equivalent), kept beside the container and completed at every start
// with what is only known then: the root filesystem's path, the user
// resolved against its /etc/passwd, and the sandbox's namespaces.
type ContainerSpec struct {
	Spec *specs.Spec `json:"spec"`
	// User is resolved at start (docker's forms: "uid", "name:group"...);
	// "" keeps Spec.Process.User. AdditionalGids of the spec are kept on
	// top of the user's groups from the image, unless StrictGroups.
	User         string `json:"user,omitempty"`
	StrictGroups bool   `json:"strict_groups,omitempty"`
	// SetHome sets HOME from the resolved user's passwd entry.
	SetHome bool `json:"set_home,omitempty"`
	// SandboxNamespaces are joined from the container's sandbox
	// (Record.Sandbox): network, IPC and UTS from its pinned namespaces,
	// PID from its pause process.
	SandboxNamespaces []specs.LinuxNamespaceType `json:"sandbox_namespaces,omitempty"`
}

const containerSpecFile = "container-spec.json"

// CreateWithSpec creates a container as Create does and keeps the spec
// that build makes from its record (merged command, environment, user):
// that spec, not one generated from the docker options, runs it. If build
// fails the container is removed again.
func (e *Engine) CreateWithSpec(ctx context.Context, req CreateRequest, build func(Record) (*ContainerSpec, error)) (*Container, error) {
	c, _, err := e.Create(ctx, req)
	if err != nil {
		return nil, err
	}
	cs, err := build(c.Snapshot())
	if err == nil {
		var data []byte
		if data, err = json.Marshal(cs); err == nil {
			err = os.WriteFile(filepath.Join(e.containerDir(c.ID), containerSpecFile), data, 0o600)
		}
	}
	if err != nil {
		if rerr := e.remove(context.WithoutCancel(ctx), c, true); rerr != nil {
			e.log.Warn("remove a container whose spec failed", "id", c.ID, "err", rerr)
		}
		return nil, err
	}
	return c, nil
}

// containerSpec is the spec a start runs: the client's (CreateWithSpec)
// completed, or one generated from the docker options.
func (e *Engine) containerSpec(ctx context.Context, c *Container, rootfs string) (*specs.Spec, error) {
	data, err := os.ReadFile(filepath.Join(e.containerDir(c.ID), containerSpecFile))
	if errors.Is(err, os.ErrNotExist) {
		return e.generateSpec(ctx, c, rootfs)
	}
	if err != nil {
		return nil, fmt.Errorf("read the container's spec: %w", err)
	}
	var cs ContainerSpec
	if err := json.Unmarshal(data, &cs); err != nil || cs.Spec == nil || cs.Spec.Process == nil || cs.Spec.Linux == nil {
		return nil, fmt.Errorf("the container's spec is unreadable: %v", err)
	}
	s := cs.Spec
	if s.Root == nil {
		s.Root = &specs.Root{}
	}
	s.Root.Path = rootfs
	if cs.User != "" {
		u, err := specgen.ResolveUser(rootfs, cs.User)
		if err != nil {
			return nil, errdefs.Invalidf("%s", err.Error())
		}
		gids := u.AdditionalGids
		if cs.StrictGroups {
			gids = nil
		}
		seen := map[uint32]bool{u.GID: true}
		var all []uint32
		for _, g := range append(gids, s.Process.User.AdditionalGids...) {
			if !seen[g] {
				seen[g] = true
				all = append(all, g)
			}
		}
		s.Process.User = specs.User{UID: u.UID, GID: u.GID, AdditionalGids: all}
		if cs.SetHome {
			s.Process.Env = replaceEnv(s.Process.Env, "HOME", "HOME="+u.Home)
		}
	}
	if err := e.joinSandbox(s, c.Snapshot().Sandbox, cs.SandboxNamespaces); err != nil {
		return nil, err
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.UserNamespace && ns.Path != "" {
			sb, err := e.GetSandbox(c.Snapshot().Sandbox)
			if err != nil {
				return nil, err
			}
			if err := e.idmapRootfs(ctx, c.ID, rootfs, ns.Path, sb.Snapshot().UserNSRoot); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// joinSandbox points the spec's namespaces of the given kinds at the
// sandbox's.
func (e *Engine) joinSandbox(s *specs.Spec, id string, kinds []specs.LinuxNamespaceType) error {
	if len(kinds) == 0 {
		return nil
	}
	sb, err := e.GetSandbox(id)
	if err != nil {
		return errdefs.NotFoundf("the container's sandbox %s: %s", id, err.Error())
	}
	rec := sb.Snapshot()
	for _, k := range kinds {
		var path string
		switch k {
		case specs.NetworkNamespace:
			path = rec.NetNS
			if path == "" && !rec.HostNetwork {
				return errdefs.Conflictf("sandbox %s is not ready: its network namespace is gone", id)
			}
		case specs.IPCNamespace:
			path = rec.IPCNS
		case specs.UTSNamespace:
			path = rec.UTSNS
		case specs.UserNamespace:
			path = rec.UserNS
			if path == "" {
				return errdefs.Conflictf("sandbox %s has no user namespace", id)
			}
		case specs.PIDNamespace:
			if !pauseAlive(rec.PausePid, rec.PauseStart) {
				return errdefs.Conflictf("sandbox %s has no running pause process to share a PID namespace", id)
			}
			path = fmt.Sprintf("/proc/%d/ns/pid", rec.PausePid)
		}
		if path == "" {
			removeNamespace(s, k)
			continue
		}
		set := false
		for i := range s.Linux.Namespaces {
			if s.Linux.Namespaces[i].Type == k {
				s.Linux.Namespaces[i].Path = path
				set = true
			}
		}
		if !set {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: k, Path: path})
		}
	}
	return nil
}

// BundleSpec is the spec the container last started with.
func (e *Engine) BundleSpec(id string) (*specs.Spec, error) {
	data, err := os.ReadFile(filepath.Join(e.bundleDir(id), "config.json"))
	if err != nil {
		return nil, err
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("the container's bundle spec: %w", err)
	}
	return &s, nil
}

// ReopenLog makes the shim of a running container start a new log file
// (kubelet rotated the old one away).
func (e *Engine) ReopenLog(ctx context.Context, ref string) error {
	_, task, err := e.runningTask(ref)
	if err != nil {
		return err
	}
	return task.ReopenLog(ctx)
}

// CgroupStats reads a running container's cgroup statistics (the CRI's
// stats; docker's are ContainerStats).
func (e *Engine) CgroupStats(ctx context.Context, ref string) (*cgroups.Stats, error) {
	_, task, err := e.runningTask(ref)
	if err != nil {
		return nil, err
	}
	return task.Stats(ctx)
}

// UpdateResources changes a container's resources: a running container's
// cgroup at once, and the kept spec for its next start.
func (e *Engine) UpdateResources(ctx context.Context, ref string, r *specs.LinuxResources) (err error) {
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	ctx, span := trace.Start(ctx, "engine.update", "id", c.ID)
	defer func() { span.End(err) }()
	p := filepath.Join(e.containerDir(c.ID), containerSpecFile)
	if data, err := os.ReadFile(p); err == nil {
		var cs ContainerSpec
		if json.Unmarshal(data, &cs) == nil && cs.Spec != nil && cs.Spec.Linux != nil {
			cs.Spec.Linux.Resources = mergeResources(cs.Spec.Linux.Resources, r)
			if data, err := json.Marshal(cs); err == nil {
				_ = os.WriteFile(p, data, 0o600)
			}
		}
	}
	c.mu.Lock()
	task := c.task
	c.mu.Unlock()
	if task == nil {
		return nil
	}
	return task.Update(ctx, r)
}

// mergeResources sets what r sets on top of base, keeping base's device
// rules.
func mergeResources(base, r *specs.LinuxResources) *specs.LinuxResources {
	if base == nil {
		base = &specs.LinuxResources{}
	}
	if r == nil {
		return base
	}
	if r.Memory != nil {
		base.Memory = r.Memory
	}
	if r.CPU != nil {
		base.CPU = r.CPU
	}
	if r.Pids != nil {
		base.Pids = r.Pids
	}
	if r.HugepageLimits != nil {
		base.HugepageLimits = r.HugepageLimits
	}
	if r.Unified != nil {
		base.Unified = r.Unified
	}
	return base
}
