package cri

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/hako-project/hako/engine"
	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/trace"
)

// RunPodSandbox makes a pod's sandbox: pinned network, IPC and UTS
// namespaces (or the host's), the pod's /dev/shm and /etc files, its
// network attached, and a pause process only when its containers share a
// PID namespace. On error nothing is left.
func (s *Server) RunPodSandbox(ctx context.Context, req *runtimeapi.RunPodSandboxRequest) (_ *runtimeapi.RunPodSandboxResponse, err error) {
	cfg := req.GetConfig()
	md := cfg.GetMetadata()
	if md.GetName() == "" || md.GetNamespace() == "" || md.GetUid() == "" {
		return nil, errdefs.Invalidf("pod sandbox metadata needs a name, a namespace and a uid")
	}
	handler := req.GetRuntimeHandler()
	if handler != "" {
		if runtimes, _ := s.e.Runtimes(); runtimes[handler] == "" {
			return nil, errdefs.Invalidf("unknown runtime handler %q", handler)
		}
	}
	nsOpts := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	if err := checkPodNamespaces(nsOpts); err != nil {
		return nil, err
	}
	hostNet := nsOpts.GetNetwork() == runtimeapi.NamespaceMode_NODE
	encoded, err := encodeProto(cfg)
	if err != nil {
		return nil, err
	}
	// The port check and the record that makes the ports taken are one
	// step; the network's set-up, the slow part, runs unlocked.
	s.podMu.Lock()
	if err := s.checkPorts(cfg); err != nil {
		s.podMu.Unlock()
		return nil, err
	}
	dns := cfg.GetDnsConfig()
	sb, err := s.e.CreateSandbox(ctx, engine.SandboxConfig{
		Name: sandboxName(md), Hostname: cfg.GetHostname(), HostNetwork: hostNet,
		HostIPC:         nsOpts.GetIpc() == runtimeapi.NamespaceMode_NODE,
		SharePID:        nsOpts.GetPid() == runtimeapi.NamespaceMode_POD,
		UserNS:          usernsMappings(nsOpts.GetUsernsOptions()),
		ExternalNetwork: !hostNet && s.cfg.Network != nil && usernsMappings(nsOpts.GetUsernsOptions()) == nil,
		DNSServers:      dns.GetServers(), DNSSearches: dns.GetSearches(), DNSOptions: dns.GetOptions(),
		Extra: map[string]string{keyKind: kindPod, keyConfig: encoded, keyRuntime: handler},
	})
	s.podMu.Unlock()
	if err != nil {
		if errdefs.IsConflict(err) {
			return nil, alreadyExistsf("%s", err.Error())
		}
		return nil, err
	}
	defer func() {
		if err != nil {
			s.teardownPod(context.WithoutCancel(ctx), sb, true)
		}
	}()
	if !hostNet && s.cfg.Network != nil {
		// A pod with a user namespace has the network namespace its pause
		// made, pinned by the engine: the network connects that one.
		rec := sb.Snapshot()
		pod := s.podNetwork(rec, cfg)
		if rec.UserNS != "" {
			pod.NetNS = rec.NetNS
		}
		nctx, span := trace.Start(ctx, "api.cri.network.attach")
		netns, ips, err := s.cfg.Network.Attach(nctx, pod)
		span.End(err)
		if err != nil {
			return nil, fmt.Errorf("attach pod %s to the network: %w", md.GetName(), err)
		}
		if err := s.e.UpdateSandbox(sb, func(r *engine.SandboxRecord) {
			r.NetNS = netns
			r.Extra[keyIPs] = strings.Join(ips, ",")
		}); err != nil {
			return nil, err
		}
	}
	s.events.emit(sb.ID(), sb.ID(), runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT)
	s.events.emit(sb.ID(), sb.ID(), runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT)
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: sb.ID()}, nil
}

// checkPodNamespaces refuses namespace options a pod cannot have.
func checkPodNamespaces(o *runtimeapi.NamespaceOption) error {
	switch o.GetPid() {
	case runtimeapi.NamespaceMode_TARGET:
		return errdefs.Invalidf("a pod sandbox cannot target another container's PID namespace")
	}
	if o.GetNetwork() == runtimeapi.NamespaceMode_CONTAINER || o.GetNetwork() == runtimeapi.NamespaceMode_TARGET ||
		o.GetIpc() == runtimeapi.NamespaceMode_CONTAINER || o.GetIpc() == runtimeapi.NamespaceMode_TARGET {
		return errdefs.Invalidf("network and IPC namespaces of a pod are the pod's or the node's")
	}
	return checkUserns(o.GetUsernsOptions())
}

func (s *Server) podNetwork(rec engine.SandboxRecord, cfg *runtimeapi.PodSandboxConfig) PodNetwork {
	md := cfg.GetMetadata()
	return PodNetwork{ID: rec.ID, Name: sanitizeName(md.GetName() + "_" + md.GetNamespace()), PodName: md.GetName(), Namespace: md.GetNamespace(), UID: md.GetUid(),
		Hostname: cfg.GetHostname(), HostsPath: s.e.SandboxFiles(rec.ID)["/etc/hosts"],
		Ports: portMappings(cfg), CgroupParent: cfg.GetLinux().GetCgroupParent()}
}

// StopPodSandbox stops the pod's containers, detaches its network and
// releases its network namespace. A sandbox that is gone or already
// stopped is not an error.
func (s *Server) StopPodSandbox(ctx context.Context, req *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	sb, err := s.e.GetSandbox(req.GetPodSandboxId())
	if errdefs.IsNotFound(err) {
		return &runtimeapi.StopPodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.stopPod(ctx, sb); err != nil {
		return nil, err
	}
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

func (s *Server) stopPod(ctx context.Context, sb *engine.Sandbox) error {
	id := sb.ID()
	var errs []error
	for _, c := range s.podContainers(id) {
		if containerState(c.State) != runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		if err := s.stopContainer(ctx, c.ID, 0); err != nil {
			errs = append(errs, fmt.Errorf("stop container %s: %w", c.ID, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	rec := sb.Snapshot()
	if rec.State == engine.SandboxReady || rec.NetNS != "" {
		if !rec.HostNetwork && s.cfg.Network != nil && rec.NetNS != "" {
			cfg, err := s.podConfig(rec)
			if err != nil {
				return err
			}
			nctx, span := trace.Start(ctx, "api.cri.network.detach")
			err = s.cfg.Network.Detach(nctx, s.podNetwork(rec, cfg))
			span.End(err)
			if err != nil {
				return fmt.Errorf("detach pod %s from the network: %w", id, err)
			}
		}
		if err := s.e.StopSandbox(ctx, sb); err != nil {
			return err
		}
		if rec.State == engine.SandboxReady {
			s.events.emit(id, id, runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT)
		}
	}
	return nil
}

// RemovePodSandbox removes the pod's containers (running ones are killed)
// and everything the sandbox holds. A sandbox that is gone is not an
// error.
func (s *Server) RemovePodSandbox(ctx context.Context, req *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	sb, err := s.e.GetSandbox(req.GetPodSandboxId())
	if errdefs.IsNotFound(err) {
		return &runtimeapi.RemovePodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.teardownPod(ctx, sb, false); err != nil {
		return nil, err
	}
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}

// teardownPod removes a pod's containers, network and sandbox. quiet
// (undoing a failed RunPodSandbox) only logs what fails.
func (s *Server) teardownPod(ctx context.Context, sb *engine.Sandbox, quiet bool) error {
	id := sb.ID()
	var errs []error
	for _, c := range s.podContainers(id) {
		if err := s.remove(ctx, c.ID); err != nil {
			errs = append(errs, fmt.Errorf("remove container %s: %w", c.ID, err))
			continue
		}
		if cfg, err := s.containerConfig(c); err == nil {
			s.unmountImageVolumes(ctx, c.ID, cfg.GetMounts())
		}
		s.cache.forget(c.ID)
	}
	if err := errors.Join(errs...); err == nil {
		err = s.stopPod(ctx, sb)
		if err == nil {
			err = s.e.RemoveSandbox(ctx, sb)
		}
		if err == nil {
			s.cache.forget(id)
			s.events.emit(id, id, runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT)
			return nil
		}
		errs = append(errs, err)
	}
	err := errors.Join(errs...)
	if quiet {
		s.log.Warn("clean up a pod sandbox that failed to start", "id", id, "err", err)
	}
	return err
}

// podContainers lists the CRI containers of a pod.
func (s *Server) podContainers(podID string) []engine.Record {
	var out []engine.Record
	for _, c := range s.e.List() {
		r := c.Snapshot()
		if r.Sandbox != podID {
			continue
		}
		if r.Extra[keyKind] == kindContainer {
			out = append(out, r)
		}
	}
	return out
}

// PodSandboxStatus reports a sandbox's state, IPs, namespaces and config.
func (s *Server) PodSandboxStatus(ctx context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	sb, err := s.e.GetSandbox(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	rec := sb.Snapshot()
	cfg, err := s.podConfig(rec)
	if err != nil {
		return nil, err
	}
	st := &runtimeapi.PodSandboxStatus{
		Id: rec.ID, Metadata: cfg.GetMetadata(), State: sandboxState(rec), CreatedAt: rec.Created.UnixNano(),
		Labels: cfg.GetLabels(), Annotations: cfg.GetAnnotations(), RuntimeHandler: rec.Extra[keyRuntime],
		Linux: &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{
			Options: cfg.GetLinux().GetSecurityContext().GetNamespaceOptions(),
		}},
	}
	if ips := podIPs(rec); len(ips) > 0 {
		st.Network = &runtimeapi.PodSandboxNetworkStatus{Ip: ips[0]}
		for _, ip := range ips[1:] {
			st.Network.AdditionalIps = append(st.Network.AdditionalIps, &runtimeapi.PodIP{Ip: ip})
		}
	} else if !rec.HostNetwork {
		st.Network = &runtimeapi.PodSandboxNetworkStatus{}
	}
	resp := &runtimeapi.PodSandboxStatusResponse{Status: st}
	if req.GetVerbose() {
		resp.Info = map[string]string{"info": fmt.Sprintf(`{"netns":%q,"ipcns":%q,"utsns":%q,"pausePid":%d}`, rec.NetNS, rec.IPCNS, rec.UTSNS, rec.PausePid)}
	}
	for _, c := range s.podContainers(rec.ID) {
		if cs, err := s.containerStatus(c); err == nil {
			resp.ContainersStatuses = append(resp.ContainersStatuses, cs)
		}
	}
	resp.Timestamp = time.Now().UnixNano()
	return resp, nil
}

func sandboxState(rec engine.SandboxRecord) runtimeapi.PodSandboxState {
	if rec.State == engine.SandboxReady {
		return runtimeapi.PodSandboxState_SANDBOX_READY
	}
	return runtimeapi.PodSandboxState_SANDBOX_NOTREADY
}

// ListPodSandbox lists sandboxes matching the filter.
func (s *Server) ListPodSandbox(ctx context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	items, err := s.listPods(req.GetFilter())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListPodSandboxResponse{Items: items}, nil
}

func (s *Server) listPods(f *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error) {
	sbs, err := s.e.Sandboxes()
	if err != nil {
		return nil, err
	}
	out := []*runtimeapi.PodSandbox{}
	for _, sb := range sbs {
		rec := sb.Snapshot()
		if rec.Extra[keyKind] != kindPod {
			continue
		}
		if f.GetId() != "" && !strings.HasPrefix(rec.ID, f.GetId()) {
			continue
		}
		state := sandboxState(rec)
		if f.GetState() != nil && f.GetState().GetState() != state {
			continue
		}
		cfg, err := s.podConfig(rec)
		if err != nil {
			continue
		}
		if !matchLabels(cfg.GetLabels(), f.GetLabelSelector()) {
			continue
		}
		out = append(out, &runtimeapi.PodSandbox{Id: rec.ID, Metadata: cfg.GetMetadata(), State: state,
			CreatedAt: rec.Created.UnixNano(), Labels: cfg.GetLabels(), Annotations: cfg.GetAnnotations(),
			RuntimeHandler: rec.Extra[keyRuntime]})
	}
	return out, nil
}

// StreamPodSandboxes sends the list in one message.
func (s *Server) StreamPodSandboxes(req *runtimeapi.StreamPodSandboxesRequest, stream runtimeapi.RuntimeService_StreamPodSandboxesServer) error {
	items, err := s.listPods(req.GetFilter())
	if err != nil {
		return err
	}
	return stream.Send(&runtimeapi.StreamPodSandboxesResponse{PodSandboxes: items})
}

// UpdatePodSandboxResources has nothing to change: the pod's cgroup is
// its containers' parent, which kubelet manages.
func (s *Server) UpdatePodSandboxResources(ctx context.Context, req *runtimeapi.UpdatePodSandboxResourcesRequest) (*runtimeapi.UpdatePodSandboxResourcesResponse, error) {
	if _, err := s.e.GetSandbox(req.GetPodSandboxId()); err != nil {
		return nil, err
	}
	return &runtimeapi.UpdatePodSandboxResourcesResponse{}, nil
}
