package cri

import (
	"context"
	"encoding/json"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/hako-project/hako/errdefs"
)

// criAPIVersion is the CRI version this server speaks.
const criAPIVersion = "v1"

// Version names the runtime.
func (s *Server) Version(ctx context.Context, req *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{
		Version: "0.1.0", RuntimeName: "hako", RuntimeVersion: s.cfg.Version, RuntimeApiVersion: criAPIVersion,
	}, nil
}

// Status reports whether the runtime and the pod network are ready, and
// which optional CRI features hakod has.
func (s *Server) Status(ctx context.Context, req *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	netReady := &runtimeapi.RuntimeCondition{Type: runtimeapi.NetworkReady, Status: true}
	if s.cfg.Network != nil {
		if err := s.cfg.Network.Ready(); err != nil {
			netReady.Status = false
			netReady.Reason = "NetworkPluginNotReady"
			netReady.Message = err.Error()
		}
	}
	resp := &runtimeapi.StatusResponse{
		Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
			{Type: runtimeapi.RuntimeReady, Status: true}, netReady,
		}},
		RuntimeHandlers: s.runtimeHandlers(),
		Features:        &runtimeapi.RuntimeFeatures{SupplementalGroupsPolicy: true},
	}
	if req.GetVerbose() {
		runtimes, def := s.e.Runtimes()
		b, _ := json.Marshal(map[string]any{
			"runtimes": runtimes, "defaultRuntime": def, "sandboxImage": s.cfg.SandboxImage,
			"streamServer": s.stream.addr, "network": s.networkInfo(),
			"rootDir": s.e.DataRoot(), "stateDir": s.e.ExecRoot(),
		})
		resp.Info = map[string]string{"config": string(b)}
	}
	return resp, nil
}

// runtimeHandlers lists the OCI runtimes a pod can pick with
// runtime_handler ("" is the default).
func (s *Server) runtimeHandlers() []*runtimeapi.RuntimeHandler {
	runtimes, def := s.e.Runtimes()
	if s.cfg.Runtime != "" {
		def = s.cfg.Runtime
	}
	// hako-runtime applies rro with mount_setattr(AT_RECURSIVE) and joins
	// a pod's user namespace before its other namespaces; for runc and
	// crun hakod does not know their version, so it claims neither.
	features := func(name string) *runtimeapi.RuntimeHandlerFeatures {
		return &runtimeapi.RuntimeHandlerFeatures{RecursiveReadOnlyMounts: name == "hako", UserNamespaces: name == "hako"}
	}
	out := []*runtimeapi.RuntimeHandler{{Name: "", Features: features(def)}}
	for name := range runtimes {
		out = append(out, &runtimeapi.RuntimeHandler{Name: name, Features: features(name)})
	}
	return out
}

func (s *Server) networkInfo() string {
	if s.cfg.Network == nil {
		return "none (loopback only)"
	}
	return s.cfg.Network.String()
}

// RuntimeConfig tells kubelet the cgroup driver: hakod manages cgroupfs
// paths itself (no systemd units).
func (s *Server) RuntimeConfig(ctx context.Context, req *runtimeapi.RuntimeConfigRequest) (*runtimeapi.RuntimeConfigResponse, error) {
	return &runtimeapi.RuntimeConfigResponse{Linux: &runtimeapi.LinuxRuntimeConfiguration{CgroupDriver: runtimeapi.CgroupDriver_CGROUPFS}}, nil
}

// UpdateRuntimeConfig takes kubelet's pod CIDR. The CNI configuration
// decides addresses, so it is only recorded in the log.
func (s *Server) UpdateRuntimeConfig(ctx context.Context, req *runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
	if cidr := req.GetRuntimeConfig().GetNetworkConfig().GetPodCidr(); cidr != "" {
		s.log.Info("kubelet's pod CIDR (the CNI configuration decides addresses)", "cidr", cidr)
	}
	return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
}

// CheckpointContainer needs CRIU, which hako-runtime does not drive.
func (s *Server) CheckpointContainer(ctx context.Context, req *runtimeapi.CheckpointContainerRequest) (*runtimeapi.CheckpointContainerResponse, error) {
	return nil, errdefs.NotImplementedf("checkpointing containers is not supported: hako-runtime has no CRIU support")
}
