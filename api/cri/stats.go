package cri

import (
	"context"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/hako-project/hako/engine"
	"github.com/hako-project/hako/runtime/cgroups"
)

// ContainerStats reports one container's CPU, memory and writable layer.
func (s *Server) ContainerStats(ctx context.Context, req *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	rec, err := s.getContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ContainerStatsResponse{Stats: s.containerStats(ctx, rec)}, nil
}

// containerStats reads the cgroup of a running container; a container
// that does not run has its attributes and zero usage.
func (s *Server) containerStats(ctx context.Context, rec engine.Record) *runtimeapi.ContainerStats {
	cfg, _ := s.containerConfig(rec)
	now := time.Now().UnixNano()
	st := &runtimeapi.ContainerStats{
		Attributes: &runtimeapi.ContainerAttributes{Id: rec.ID, Metadata: cfg.GetMetadata(), Labels: cfg.GetLabels(), Annotations: cfg.GetAnnotations()},
		Cpu:        &runtimeapi.CpuUsage{Timestamp: now, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{}},
		Memory:     &runtimeapi.MemoryUsage{Timestamp: now, WorkingSetBytes: &runtimeapi.UInt64Value{}},
		WritableLayer: &runtimeapi.FilesystemUsage{Timestamp: now, FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: s.e.DataRoot()},
			UsedBytes: &runtimeapi.UInt64Value{}, InodesUsed: &runtimeapi.UInt64Value{}},
	}
	if rec.State.Status != container.StateRunning {
		return st
	}
	cs, err := s.e.CgroupStats(ctx, rec.ID)
	if err != nil || cs == nil {
		return st
	}
	st.Cpu.UsageCoreNanoSeconds.Value = cs.CPU.Usage.Total
	ws := workingSet(cs)
	st.Memory.WorkingSetBytes.Value = ws
	st.Memory.UsageBytes = &runtimeapi.UInt64Value{Value: cs.Memory.Usage.Usage}
	st.Memory.RssBytes = &runtimeapi.UInt64Value{Value: cs.Memory.Raw["rss"] + cs.Memory.Raw["anon"]}
	st.Memory.PageFaults = &runtimeapi.UInt64Value{Value: cs.Memory.Raw["pgfault"]}
	st.Memory.MajorPageFaults = &runtimeapi.UInt64Value{Value: cs.Memory.Raw["pgmajfault"]}
	return st
}

// workingSet is usage less inactive file pages, as cadvisor and kubelet
// count it.
func workingSet(cs *cgroups.Stats) uint64 {
	inactive := cs.Memory.Raw["total_inactive_file"]
	if v, ok := cs.Memory.Raw["inactive_file"]; ok && inactive == 0 {
		inactive = v
	}
	if cs.Memory.Usage.Usage < inactive {
		return 0
	}
	return cs.Memory.Usage.Usage - inactive
}

// ListContainerStats reports the stats of the containers matching the
// filter.
func (s *Server) ListContainerStats(ctx context.Context, req *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	return &runtimeapi.ListContainerStatsResponse{Stats: s.listContainerStats(ctx, req.GetFilter())}, nil
}

func (s *Server) listContainerStats(ctx context.Context, f *runtimeapi.ContainerStatsFilter) []*runtimeapi.ContainerStats {
	out := []*runtimeapi.ContainerStats{}
	for _, m := range s.containersMatching(f.GetId(), f.GetPodSandboxId(), f.GetLabelSelector()) {
		out = append(out, s.containerStats(ctx, m.rec))
	}
	return out
}

// StreamContainerStats sends the list in one message.
func (s *Server) StreamContainerStats(req *runtimeapi.StreamContainerStatsRequest, stream runtimeapi.RuntimeService_StreamContainerStatsServer) error {
	return stream.Send(&runtimeapi.StreamContainerStatsResponse{ContainerStats: s.listContainerStats(stream.Context(), req.GetFilter())})
}

// PodSandboxStats sums the pod's containers.
func (s *Server) PodSandboxStats(ctx context.Context, req *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	sb, err := s.e.GetSandbox(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PodSandboxStatsResponse{Stats: s.podStats(ctx, sb.Snapshot())}, nil
}

func (s *Server) podStats(ctx context.Context, rec engine.SandboxRecord) *runtimeapi.PodSandboxStats {
	cfg, _ := s.podConfig(rec)
	now := time.Now().UnixNano()
	lin := &runtimeapi.LinuxPodSandboxStats{
		Cpu:     &runtimeapi.CpuUsage{Timestamp: now, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{}},
		Memory:  &runtimeapi.MemoryUsage{Timestamp: now, WorkingSetBytes: &runtimeapi.UInt64Value{}},
		Process: &runtimeapi.ProcessUsage{Timestamp: now, ProcessCount: &runtimeapi.UInt64Value{}},
	}
	for _, c := range s.podContainers(rec.ID) {
		cs := s.containerStats(ctx, c)
		lin.Containers = append(lin.Containers, cs)
		lin.Cpu.UsageCoreNanoSeconds.Value += cs.GetCpu().GetUsageCoreNanoSeconds().GetValue()
		lin.Memory.WorkingSetBytes.Value += cs.GetMemory().GetWorkingSetBytes().GetValue()
	}
	return &runtimeapi.PodSandboxStats{
		Attributes: &runtimeapi.PodSandboxAttributes{Id: rec.ID, Metadata: cfg.GetMetadata(), Labels: cfg.GetLabels(), Annotations: cfg.GetAnnotations()},
		Linux:      lin,
	}
}

// ListPodSandboxStats reports the stats of the pods matching the filter.
func (s *Server) ListPodSandboxStats(ctx context.Context, req *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	return &runtimeapi.ListPodSandboxStatsResponse{Stats: s.listPodStats(ctx, req.GetFilter())}, nil
}

func (s *Server) listPodStats(ctx context.Context, f *runtimeapi.PodSandboxStatsFilter) []*runtimeapi.PodSandboxStats {
	out := []*runtimeapi.PodSandboxStats{}
	sbs, err := s.e.Sandboxes()
	if err != nil {
		return out
	}
	for _, sb := range sbs {
		rec := sb.Snapshot()
		if rec.Extra[keyKind] != kindPod || f.GetId() != "" && !strings.HasPrefix(rec.ID, f.GetId()) {
			continue
		}
		if cfg, err := s.podConfig(rec); err != nil || !matchLabels(cfg.GetLabels(), f.GetLabelSelector()) {
			continue
		}
		out = append(out, s.podStats(ctx, rec))
	}
	return out
}

// StreamPodSandboxStats sends the list in one message.
func (s *Server) StreamPodSandboxStats(req *runtimeapi.StreamPodSandboxStatsRequest, stream runtimeapi.RuntimeService_StreamPodSandboxStatsServer) error {
	return stream.Send(&runtimeapi.StreamPodSandboxStatsResponse{PodSandboxStats: s.listPodStats(stream.Context(), req.GetFilter())})
}
