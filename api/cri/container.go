package cri

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/hako-project/hako/engine"
	"github.com/hako-project/hako/errdefs"
)

// CreateContainer creates a container in a ready pod sandbox from an image
// that is already there (kubelet pulls first): the engine prepares its
// filesystem and keeps the spec built from the CRI config.
func (s *Server) CreateContainer(ctx context.Context, req *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error) {
	cfg := req.GetConfig()
	md := cfg.GetMetadata()
	if md.GetName() == "" {
		return nil, errdefs.Invalidf("container metadata needs a name")
	}
	sb, err := s.e.GetSandbox(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	sbRec := sb.Snapshot()
	if sbRec.State != engine.SandboxReady {
		return nil, errdefs.Conflictf("pod sandbox %s is not ready", sbRec.ID)
	}
	pod := req.GetSandboxConfig()
	if pod == nil {
		if pod, err = s.podConfig(sbRec); err != nil {
			return nil, err
		}
	}
	c, err := s.createContainer(ctx, sb, pod, cfg)
	if err != nil {
		return nil, err
	}
	s.events.emit(c.ID, sbRec.ID, runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT)
	return &runtimeapi.CreateContainerResponse{ContainerId: c.ID}, nil
}

func (s *Server) createContainer(ctx context.Context, sb *engine.Sandbox, pod *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) (*engine.Container, error) {
	sbRec := sb.Snapshot()
	ref := cfg.GetImage().GetImage()
	if ref == "" {
		return nil, errdefs.Invalidf("container %s: no image", cfg.GetMetadata().GetName())
	}
	if _, err := s.images.Resolve(ctx, ref); err != nil {
		if errdefs.IsNotFound(err) {
			return nil, errdefs.NotFoundf("image %q not found: pull it first", ref)
		}
		return nil, err
	}
	encoded, err := encodeProto(cfg)
	if err != nil {
		return nil, err
	}
	extra := map[string]string{keyKind: kindContainer, keyConfig: encoded, keyImage: ref}
	if logPath := cfg.GetLogPath(); logPath != "" && pod.GetLogDirectory() != "" {
		p := filepath.Join(pod.GetLogDirectory(), logPath)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, fmt.Errorf("container log directory: %w", err)
		}
		extra[keyLogPath] = p
	}
	env := make([]string, 0, len(cfg.GetEnvs()))
	for _, kv := range cfg.GetEnvs() {
		env = append(env, kv.GetKey()+"="+string(kv.GetValue()))
	}
	dcfg := &container.Config{
		Image: ref, Env: env, WorkingDir: cfg.GetWorkingDir(), Labels: cfg.GetLabels(),
		Tty: cfg.GetTty(), OpenStdin: cfg.GetStdin(), StdinOnce: cfg.GetStdinOnce(), AttachStdin: cfg.GetStdin(),
		AttachStdout: true, AttachStderr: true,
	}
	if user, err := userSpec(cfg.GetLinux().GetSecurityContext(), ""); err == nil && user != "0" {
		dcfg.User = user
	} else if err != nil {
		return nil, err
	}
	if len(cfg.GetCommand()) > 0 {
		dcfg.Entrypoint = cfg.GetCommand()
		dcfg.Cmd = cfg.GetArgs()
	} else if len(cfg.GetArgs()) > 0 {
		dcfg.Cmd = cfg.GetArgs()
	}
	runtimeName := sbRec.Extra[keyRuntime]
	if runtimeName == "" {
		runtimeName = s.cfg.Runtime
	}
	hc := &container.HostConfig{NetworkMode: "none", Runtime: runtimeName}
	name := containerName(cfg.GetMetadata(), pod.GetMetadata())
	if _, err := s.e.Get(name); err == nil {
		return nil, alreadyExistsf("container name %q is already in use in pod sandbox %s", name, sbRec.ID)
	}
	var volumesOf string // the container whose image volumes are mounted
	c, err := s.e.CreateWithSpec(ctx, engine.CreateRequest{Name: name, Config: dcfg, HostConfig: hc, Sandbox: sbRec.ID, Extra: extra},
		func(rec engine.Record) (*engine.ContainerSpec, error) {
			vols, err := s.mountImageVolumes(ctx, rec.ID, cfg.GetMounts())
			if err != nil {
				return nil, err
			}
			volumesOf = rec.ID
			return buildSpec(specInput{rec: rec, cfg: cfg, pod: pod, sandbox: sbRec, files: s.e.SandboxFiles(sbRec.ID), volumes: vols})
		})
	if err != nil {
		if volumesOf != "" {
			s.unmountImageVolumes(context.WithoutCancel(ctx), volumesOf, cfg.GetMounts())
		}
		if errdefs.IsConflict(err) && strings.Contains(err.Error(), "already in use") {
			return nil, alreadyExistsf("%s", err.Error())
		}
		return nil, err
	}
	return c, nil
}

// StartContainer runs a created container.
func (s *Server) StartContainer(ctx context.Context, req *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	rec, err := s.getContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if rec.State.Status != container.StateCreated {
		return nil, errdefs.Conflictf("container %s is %s, not created", rec.ID, rec.State.Status)
	}
	sb, err := s.e.GetSandbox(rec.Sandbox)
	if err != nil {
		return nil, err
	}
	if sb.Snapshot().State != engine.SandboxReady {
		return nil, errdefs.Conflictf("pod sandbox %s is not ready", rec.Sandbox)
	}
	if err := s.e.Start(ctx, rec.ID); err != nil {
		return nil, err
	}
	s.events.emit(rec.ID, rec.Sandbox, runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT)
	return &runtimeapi.StartContainerResponse{}, nil
}

// getContainer finds a CRI container (not a docker one) by ID or unique
// prefix.
func (s *Server) getContainer(id string) (engine.Record, error) {
	if id == "" {
		return engine.Record{}, errdefs.Invalidf("container ID is empty")
	}
	c, err := s.e.Get(id)
	if err != nil {
		return engine.Record{}, errdefs.NotFoundf("container %q not found", id)
	}
	rec := c.Snapshot()
	if rec.Extra[keyKind] != kindContainer {
		return engine.Record{}, errdefs.NotFoundf("container %q not found", id)
	}
	return rec, nil
}

// StopContainer stops a container: its stop signal, then SIGKILL after
// the timeout. A container that is gone or stopped is not an error.
func (s *Server) StopContainer(ctx context.Context, req *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	rec, err := s.getContainer(req.GetContainerId())
	if errdefs.IsNotFound(err) {
		return &runtimeapi.StopContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.stopContainer(ctx, rec.ID, req.GetTimeout()); err != nil {
		return nil, err
	}
	return &runtimeapi.StopContainerResponse{}, nil
}

// stopContainer stops a container and waits until it is down. With no
// timeout it is killed at once, as containerd does. A container that
// exits by itself meanwhile (the engine then reports a conflict) is
// stopped too.
func (s *Server) stopContainer(ctx context.Context, id string, timeout int64) error {
	var err error
	if timeout <= 0 {
		err = s.e.Kill(ctx, id, "SIGKILL")
	} else {
		t := int(timeout)
		err = s.e.Stop(ctx, id, "", &t)
	}
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		// The signal may have failed only because the container exited
		// meanwhile: stopped is what was asked.
		if s.settled(ctx, id) {
			return nil
		}
		return err
	}
	ch, werr := s.e.Wait(ctx, id, container.WaitConditionNotRunning)
	if werr != nil {
		if errdefs.IsNotFound(werr) {
			return nil
		}
		return werr
	}
	if r := <-ch; r.Err != nil {
		return fmt.Errorf("stop container %s: %w", id, r.Err)
	}
	return nil
}

// RemoveContainer removes a container, killing it if it runs. A container
// that is gone is not an error.
func (s *Server) RemoveContainer(ctx context.Context, req *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
	rec, err := s.getContainer(req.GetContainerId())
	if errdefs.IsNotFound(err) {
		return &runtimeapi.RemoveContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.remove(ctx, rec.ID); err != nil {
		return nil, err
	}
	if cfg, err := s.containerConfig(rec); err == nil {
		s.unmountImageVolumes(ctx, rec.ID, cfg.GetMounts())
	}
	s.cache.forget(rec.ID)
	s.events.emit(rec.ID, rec.Sandbox, runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT)
	return &runtimeapi.RemoveContainerResponse{}, nil
}

// ContainerStatus reports a container's state, exit, image and mounts.
func (s *Server) ContainerStatus(ctx context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	rec, err := s.getContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	st, err := s.containerStatus(rec)
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.ContainerStatusResponse{Status: st}
	if req.GetVerbose() {
		resp.Info = map[string]string{"info": fmt.Sprintf(`{"pid":%d,"sandboxID":%q,"runtime":%q}`, rec.State.Pid, rec.Sandbox, rec.Runtime)}
	}
	return resp, nil
}

func (s *Server) containerStatus(rec engine.Record) (*runtimeapi.ContainerStatus, error) {
	cfg, err := s.containerConfig(rec)
	if err != nil {
		return nil, err
	}
	st := &runtimeapi.ContainerStatus{
		Id: rec.ID, Metadata: cfg.GetMetadata(), State: containerState(rec.State),
		CreatedAt: rec.Created.UnixNano(), Labels: cfg.GetLabels(), Annotations: cfg.GetAnnotations(),
		Image:   &runtimeapi.ImageSpec{Image: rec.Extra[keyImage], Annotations: cfg.GetImage().GetAnnotations(), UserSpecifiedImage: cfg.GetImage().GetUserSpecifiedImage()},
		ImageId: rec.ImageID, ImageRef: rec.ImageID, LogPath: rec.Extra[keyLogPath],
		Resources: &runtimeapi.ContainerResources{Linux: cfg.GetLinux().GetResources()},
	}
	if img, err := s.images.Resolve(context.Background(), rec.ImageID); err == nil && len(img.RepoDigests) > 0 {
		st.ImageRef = img.RepoDigests[0]
	}
	if rec.State.HasBeenStarted || rec.State.Status == container.StateRunning {
		st.StartedAt = rec.State.StartedAt.UnixNano()
	}
	if st.State == runtimeapi.ContainerState_CONTAINER_EXITED {
		st.FinishedAt = rec.State.FinishedAt.UnixNano()
		st.ExitCode = int32(rec.State.ExitCode)
		switch {
		case rec.State.OOMKilled:
			st.Reason = "OOMKilled"
		case rec.State.ExitCode == 0:
			st.Reason = "Completed"
		case rec.State.Error != "":
			st.Reason, st.Message = "StartError", rec.State.Error
		default:
			st.Reason = "Error"
		}
	}
	for _, m := range cfg.GetMounts() {
		sm := &runtimeapi.Mount{ContainerPath: m.GetContainerPath(), HostPath: m.GetHostPath(),
			Readonly: m.GetReadonly(), RecursiveReadOnly: m.GetRecursiveReadOnly(), SelinuxRelabel: m.GetSelinuxRelabel(),
			Propagation: m.GetPropagation(), ImageSubPath: m.GetImageSubPath()}
		if ref := m.GetImage().GetImage(); ref != "" {
			sm.Image = &runtimeapi.ImageSpec{Image: ref, UserSpecifiedImage: m.GetImage().GetUserSpecifiedImage()}
			if img, err := s.images.Resolve(context.Background(), ref); err == nil {
				sm.Image.ImageRef = img.ID.String()
			}
		}
		st.Mounts = append(st.Mounts, sm)
	}
	if rec.State.HasBeenStarted {
		st.User = s.containerUser(rec)
	}
	if st.StartedAt == 0 && !rec.State.StartedAt.IsZero() && rec.State.StartedAt.After(time.Unix(0, 0)) {
		st.StartedAt = rec.State.StartedAt.UnixNano()
	}
	return st, nil
}

func containerState(st engine.State) runtimeapi.ContainerState {
	switch st.Status {
	case container.StateCreated:
		if st.Error != "" {
			return runtimeapi.ContainerState_CONTAINER_EXITED
		}
		return runtimeapi.ContainerState_CONTAINER_CREATED
	case container.StateRunning, container.StatePaused:
		return runtimeapi.ContainerState_CONTAINER_RUNNING
	case container.StateExited:
		return runtimeapi.ContainerState_CONTAINER_EXITED
	}
	return runtimeapi.ContainerState_CONTAINER_UNKNOWN
}

// ListContainers lists the CRI containers matching the filter.
func (s *Server) ListContainers(ctx context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	return &runtimeapi.ListContainersResponse{Containers: s.listContainers(req.GetFilter())}, nil
}

func (s *Server) listContainers(f *runtimeapi.ContainerFilter) []*runtimeapi.Container {
	out := []*runtimeapi.Container{}
	for _, m := range s.containersMatching(f.GetId(), f.GetPodSandboxId(), f.GetLabelSelector()) {
		rec, cfg := m.rec, m.cfg
		state := containerState(rec.State)
		if f.GetState() != nil && f.GetState().GetState() != state {
			continue
		}
		out = append(out, &runtimeapi.Container{Id: rec.ID, PodSandboxId: rec.Sandbox, Metadata: cfg.GetMetadata(),
			Image:    &runtimeapi.ImageSpec{Image: rec.Extra[keyImage], UserSpecifiedImage: cfg.GetImage().GetUserSpecifiedImage()},
			ImageRef: rec.ImageID, ImageId: rec.ImageID, State: state, CreatedAt: rec.Created.UnixNano(),
			Labels: cfg.GetLabels(), Annotations: cfg.GetAnnotations()})
	}
	return out
}

// matchedContainer is a CRI container with the config it was created with.
type matchedContainer struct {
	rec engine.Record
	cfg *runtimeapi.ContainerConfig
}

// containersMatching is the CRI containers (not sandboxes, not docker's)
// whose ID and sandbox ID start with the given prefixes and whose labels
// match the selector: the filter ListContainers and ListContainerStats
// share.
func (s *Server) containersMatching(id, sandbox string, selector map[string]string) []matchedContainer {
	var out []matchedContainer
	for _, c := range s.e.List() {
		rec := c.Snapshot()
		if rec.Extra[keyKind] != kindContainer {
			continue
		}
		if !strings.HasPrefix(rec.ID, id) || !strings.HasPrefix(rec.Sandbox, sandbox) {
			continue
		}
		cfg, err := s.containerConfig(rec)
		if err != nil || !matchLabels(cfg.GetLabels(), selector) {
			continue
		}
		out = append(out, matchedContainer{rec: rec, cfg: cfg})
	}
	return out
}

// StreamContainers sends the list in one message.
func (s *Server) StreamContainers(req *runtimeapi.StreamContainersRequest, stream runtimeapi.RuntimeService_StreamContainersServer) error {
	return stream.Send(&runtimeapi.StreamContainersResponse{Containers: s.listContainers(req.GetFilter())})
}

// UpdateContainerResources changes a container's cgroup limits.
func (s *Server) UpdateContainerResources(ctx context.Context, req *runtimeapi.UpdateContainerResourcesRequest) (*runtimeapi.UpdateContainerResourcesResponse, error) {
	rec, err := s.getContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if req.GetLinux() == nil {
		return &runtimeapi.UpdateContainerResourcesResponse{}, nil
	}
	if err := s.e.UpdateResources(ctx, rec.ID, resourcesSpec(req.GetLinux())); err != nil {
		return nil, err
	}
	return &runtimeapi.UpdateContainerResourcesResponse{}, nil
}

// ReopenContainerLog makes the shim write to a new log file: kubelet has
// renamed the old one to rotate it.
func (s *Server) ReopenContainerLog(ctx context.Context, req *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error) {
	rec, err := s.getContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if rec.State.Status != container.StateRunning {
		return nil, errdefs.Conflictf("container %s is not running", rec.ID)
	}
	if err := s.e.ReopenLog(ctx, rec.ID); err != nil {
		return nil, err
	}
	return &runtimeapi.ReopenContainerLogResponse{}, nil
}

// settled waits (a little) for the engine to see a container's exit: a
// signal or kill that fails because the process has just exited races
// with the engine's monitor, which records the exit a moment later.
func (s *Server) settled(ctx context.Context, id string) bool {
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ch, err := s.e.Wait(wctx, id, container.WaitConditionNotRunning)
	if err != nil {
		return errdefs.IsNotFound(err)
	}
	return (<-ch).Err == nil
}

// remove removes a container, killing it if it runs; a kill that loses
// the race with the container's own exit is retried once it has settled.
func (s *Server) remove(ctx context.Context, id string) error {
	err := s.e.Remove(ctx, id, true)
	if err != nil && !errdefs.IsNotFound(err) && s.settled(ctx, id) {
		err = s.e.Remove(ctx, id, true)
	}
	if errdefs.IsNotFound(err) {
		return nil
	}
	return err
}
