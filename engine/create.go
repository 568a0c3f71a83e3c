package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/hako-project/hako/engine/specgen"
	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/trace"
)

// CreateRequest is what `docker create` sends.
type CreateRequest struct {
	Name       string
	Config     *container.Config
	HostConfig *container.HostConfig
	Networking *network.NetworkingConfig
	// Sandbox, Extra: see Container (used by the CRI).
	Sandbox string
	Extra   map[string]string
}

// Create makes a container from an image: validates the request, merges the
// image's config with it as docker does, prepares the writable snapshot and
// records the container as created. Nothing runs yet.
func (e *Engine) Create(ctx context.Context, req CreateRequest) (c *Container, warnings []string, err error) {
	ctx, span := trace.Start(ctx, "engine.create", "name", req.Name)
	defer func() { span.End(err) }()
	if req.Config == nil {
		return nil, nil, errdefs.Invalidf("config cannot be empty in order to create a container")
	}
	if req.Config.Image == "" {
		return nil, nil, errdefs.Invalidf("No image was specified")
	}
	hc := req.HostConfig
	if hc == nil {
		hc = &container.HostConfig{}
	}
	warnings, err = e.validateHostConfig(hc)
	if err != nil {
		return nil, nil, err
	}
	if req.Sandbox == "" {
		if req.Networking, err = e.planNetworking(hc, req.Networking); err != nil { // network.go
			return nil, nil, err
		}
	}
	_, ispan := trace.Start(ctx, "engine.image.resolve", "image", req.Config.Image)
	img, err := e.images.Resolve(ctx, req.Config.Image)
	ispan.End(err)
	if err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil, nil, errdefs.NotFoundf("No such image: %s", req.Config.Image)
		}
		return nil, nil, err
	}
	imgCfg, rawImgCfg, err := e.images.ReadConfig(ctx, img)
	if err != nil {
		return nil, nil, err
	}
	id := newID()
	merged, err := specgen.Merge(imgCfg.Config, runOptions(id, req.Config, hc))
	if err != nil {
		return nil, nil, errdefs.Invalidf("%s", err.Error())
	}
	cfg := *req.Config
	mergeConfig(&cfg, imgCfg.Config, merged)
	cfg.Healthcheck = imageHealthcheck(cfg.Healthcheck, rawImgCfg) // health.go
	args := merged.Args()
	vplan, err := e.planVolumes(req.Sandbox, hc, cfg.Volumes) // volumes.go
	if err != nil {
		return nil, nil, err
	}

	e.mu.Lock()
	name := strings.TrimPrefix(req.Name, "/")
	if name == "" {
		name = e.generateName()
	}
	if err := e.reserveName(name, id); err != nil {
		e.mu.Unlock()
		return nil, nil, err
	}
	e.mu.Unlock()
	undo := func() {
		e.mu.Lock()
		delete(e.names, name)
		e.mu.Unlock()
	}
	runtimeName := hc.Runtime
	if runtimeName == "" {
		runtimeName = e.cfg.DefaultRuntime
	}
	hcCopy := *hc
	hcCopy.Runtime = runtimeName
	if hcCopy.NetworkMode == "" {
		hcCopy.NetworkMode = "default"
	}
	c = &Container{Record: Record{
		ID: id, Name: name, Created: time.Now().UTC(), Image: req.Config.Image, ImageID: img.ID.String(),
		Config: &cfg, HostConfig: &hcCopy, Networking: req.Networking, Path: args[0], Args: args[1:],
		StopSignal: merged.StopSignal, Runtime: runtimeName, Sandbox: req.Sandbox, Extra: req.Extra,
		State: State{Status: container.StateCreated},
	}, changed: make(chan struct{}),
	}
	if err := os.MkdirAll(e.containerDir(id), 0o710); err != nil {
		undo()
		return nil, nil, fmt.Errorf("create container directory: %w", err)
	}
	// Without volumes to make, the record is complete now: it is written
	// while the layer is prepared, each a database commit of its own
	// (fsyncs), one beside the other rather than one after the other. A
	// crash between the two leaves either a layer without a record, which
	// the next start removes (removeOrphanSnapshots), or a created
	// container without its layer, whose start then fails with the cause
	// and whose removal works.
	var saved chan error
	if len(vplan) == 0 {
		c.Mounts = mountPoints(&hcCopy)
		saved = make(chan error, 1)
		go func() { saved <- e.save(c) }()
	}
	unsave := func() {
		if saved != nil && <-saved == nil {
			_ = e.deleteRecord(c)
		}
	}
	_, sspan := trace.Start(ctx, "engine.snapshot.prepare", "image", img.ID.String())
	_, _, err = e.images.PrepareContainer(ctx, id, img.ID.String())
	sspan.End(err)
	if err != nil {
		unsave()
		os.RemoveAll(e.containerDir(id))
		undo()
		return nil, nil, fmt.Errorf("prepare the container's filesystem: %w", err)
	}
	vmounts, err := e.createVolumes(ctx, id, vplan) // volumes.go
	if err != nil {
		_ = e.images.RemoveSnapshot(ctx, id)
		os.RemoveAll(e.containerDir(id))
		undo()
		return nil, nil, err
	}
	if saved != nil {
		err = <-saved
	} else {
		c.Mounts = append(mountPoints(&hcCopy), vmounts...)
		err = e.save(c)
	}
	if err != nil {
		e.releaseCreated(id, vmounts)
		_ = e.images.RemoveSnapshot(ctx, id)
		os.RemoveAll(e.containerDir(id))
		undo()
		return nil, nil, err
	}
	e.mu.Lock()
	e.containers[id] = c
	e.mu.Unlock()
	e.events.emitContainer(c, "create", nil)
	return c, warnings, nil
}

// validateHostConfig applies docker's checks, with docker's messages.
func (e *Engine) validateHostConfig(hc *container.HostConfig) ([]string, error) {
	var warnings []string
	rp := hc.RestartPolicy
	switch rp.Name {
	case "", container.RestartPolicyDisabled, container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		if rp.MaximumRetryCount != 0 {
			return nil, errdefs.Invalidf("invalid restart policy: maximum retry count can only be used with 'on-failure'")
		}
	case container.RestartPolicyOnFailure:
		if rp.MaximumRetryCount < 0 {
			return nil, errdefs.Invalidf("invalid restart policy: maximum retry count cannot be negative")
		}
	default:
		return nil, errdefs.Invalidf("invalid restart policy: unknown policy '%s'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'", rp.Name)
	}
	if hc.AutoRemove && rp.Name != "" && rp.Name != container.RestartPolicyDisabled {
		return nil, errdefs.Invalidf("can't create 'AutoRemove' container with restart policy")
	}
	if hc.Memory > 0 && hc.Memory < 6*1024*1024 {
		return nil, errdefs.Invalidf("Minimum memory limit allowed is 6MB")
	}
	if hc.MemorySwap > 0 && hc.Memory > 0 && hc.MemorySwap < hc.Memory {
		return nil, errdefs.Invalidf("Minimum memoryswap limit should be larger than memory limit, see usage")
	}
	if hc.NanoCPUs != 0 {
		n := int64(runtime.NumCPU())
		if hc.NanoCPUs < 1e7 || hc.NanoCPUs > n*1e9 {
			return nil, errdefs.Invalidf("Range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", n, n)
		}
		if hc.CPUQuota > 0 || hc.CPUPeriod > 0 {
			return nil, errdefs.Invalidf("Conflicting options: Nano CPUs and CPU Period cannot both be set")
		}
	}
	if hc.PidsLimit != nil && *hc.PidsLimit < -1 {
		return nil, errdefs.Invalidf("invalid PIDs limit: %d", *hc.PidsLimit)
	}
	if hc.Runtime != "" {
		if _, ok := e.cfg.Runtimes[hc.Runtime]; !ok {
			return nil, errdefs.Invalidf("unknown or invalid runtime name: %s", hc.Runtime)
		}
	}
	nm := string(hc.NetworkMode)
	switch {
	case nm == "" || nm == "default" || nm == "bridge" || nm == "none" || nm == "host":
	case strings.HasPrefix(nm, "container:"):
		if _, err := e.Get(strings.TrimPrefix(nm, "container:")); err != nil {
			return nil, err
		}
	default:
		// A network name: docker checks that it exists at start, not here.
	}
	for _, b := range hc.Binds {
		if _, err := parseBind(b); err != nil {
			return nil, err
		}
	}
	for _, m := range hc.Mounts {
		if err := validateMount(m); err != nil {
			return nil, err
		}
	}
	if hc.ShmSize < 0 {
		return nil, errdefs.Invalidf("SHM size can not be less than 0")
	}
	if err := validateLogOpts(hc); err != nil { // runchecks.go
		return nil, err
	}
	return warnings, nil
}

// runOptions is the part of a docker create request that shapes the spec.
func runOptions(id string, cfg *container.Config, hc *container.HostConfig) specgen.RunOptions {
	o := specgen.RunOptions{
		ID: id, Hostname: cfg.Hostname, Cmd: cfg.Cmd, Env: cfg.Env, WorkingDir: cfg.WorkingDir,
		User: cfg.User, Tty: cfg.Tty, Labels: cfg.Labels, StopSignal: cfg.StopSignal,
		ReadonlyRootfs: hc.ReadonlyRootfs, Privileged: hc.Privileged, CapAdd: hc.CapAdd, CapDrop: hc.CapDrop,
		ShmSize: hc.ShmSize,
	}
	if cfg.Entrypoint != nil {
		o.Entrypoint = cfg.Entrypoint
	}
	for p := range cfg.ExposedPorts {
		o.ExposedPorts = append(o.ExposedPorts, p.String())
	}
	for v := range cfg.Volumes {
		o.Volumes = append(o.Volumes, v)
	}
	for _, so := range hc.SecurityOpt {
		switch {
		case so == "no-new-privileges" || so == "no-new-privileges:true" || so == "no-new-privileges=true":
			o.NoNewPrivileges = true
		case so == "seccomp=unconfined" || so == "seccomp:unconfined":
			o.SeccompUnconfined = true
		}
	}
	return o
}

// mergeConfig writes the image's defaults into the container's config, as
// docker's inspect shows them.
func mergeConfig(cfg *container.Config, img ocispec.ImageConfig, m specgen.Config) {
	if len(cfg.Cmd) == 0 && cfg.Entrypoint == nil {
		cfg.Cmd = img.Cmd
	}
	if cfg.Entrypoint == nil {
		cfg.Entrypoint = img.Entrypoint
	}
	cfg.Env = m.Env
	cfg.WorkingDir = m.WorkingDir
	if m.WorkingDir == "/" && img.WorkingDir == "" && cfg.WorkingDir == "/" {
		cfg.WorkingDir = ""
	}
	cfg.User = m.User
	cfg.Labels = m.Labels
	cfg.StopSignal = m.StopSignal
	if cfg.StopSignal == "SIGTERM" && img.StopSignal == "" {
		cfg.StopSignal = ""
	}
	if len(img.ExposedPorts) > 0 || len(cfg.ExposedPorts) > 0 {
		ports := make(map[network.Port]struct{})
		for p := range img.ExposedPorts {
			if np, err := network.ParsePort(p); err == nil {
				ports[np] = struct{}{}
			}
		}
		for p := range cfg.ExposedPorts {
			ports[p] = struct{}{}
		}
		cfg.ExposedPorts = ports
	}
	if len(img.Volumes) > 0 {
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for v := range img.Volumes {
			cfg.Volumes[v] = struct{}{}
		}
	}
}

// logPath is where the shim writes the container's json-file log.
func (e *Engine) logPath(id string) string {
	return filepath.Join(e.containerDir(id), id+"-json.log")
}
