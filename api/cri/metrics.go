package cri

import (
	"context"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/container"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/hako-project/hako/engine"
	"github.com/hako-project/hako/runtime/cgroups"
)

// CRI metrics (kubelet's PodAndContainerStatsFromCRI): cadvisor's
// container_* metrics, read from each running container's cgroup. Every
// metric has the same labels as its descriptor; a value hakod cannot read
// (network and file system counters of this kind, PSI on cgroup v1) is
// reported as 0 rather than left out, so a scrape always has the series.

type metricDef struct {
	name, help string
	typ        runtimeapi.MetricType
	extra      []string // labels after the common ones
	value      func(cs *cgroups.Stats, rec engine.Record) float64
}

var metricLabels = []string{"container", "id", "image", "name", "namespace", "pod"}

func counter(name, help string, extra []string, f func(*cgroups.Stats, engine.Record) float64) metricDef {
	return metricDef{name: name, help: help, typ: runtimeapi.MetricType_COUNTER, extra: extra, value: f}
}

func gauge(name, help string, extra []string, f func(*cgroups.Stats, engine.Record) float64) metricDef {
	return metricDef{name: name, help: help, typ: runtimeapi.MetricType_GAUGE, extra: extra, value: f}
}

func zero(*cgroups.Stats, engine.Record) float64 { return 0 }

var (
	netLabels  = []string{"interface"}
	devLabels  = []string{"device"}
	blkLabels  = []string{"device", "major", "minor", "operation"}
	failLabels = []string{"failure_type", "scope"}
	ulimLabels = []string{"ulimit"}
)

var metricDefs = []metricDef{
	counter("container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", nil, func(cs *cgroups.Stats, _ engine.Record) float64 { return float64(cs.CPU.Usage.Total) / 1e9 }),
	counter("container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", nil, func(cs *cgroups.Stats, _ engine.Record) float64 { return float64(cs.CPU.Usage.User) / 1e9 }),
	counter("container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.", nil, func(cs *cgroups.Stats, _ engine.Record) float64 { return float64(cs.CPU.Usage.Kernel) / 1e9 }),
	counter("container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", nil, func(cs *cgroups.Stats, _ engine.Record) float64 { return float64(cs.CPU.Throttling.Periods) }),
	counter("container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", nil, func(cs *cgroups.Stats, _ engine.Record) float64 { return float64(cs.CPU.Throttling.ThrottledPeriods) }),
	counter("container_cpu_cfs_throttled_seconds_total", "Total time duration the container has been throttled.", nil, func(cs *cgroups.Stats, _ engine.Record) float64 {
		return float64(cs.CPU.Throttling.ThrottledTime) / 1e9
	}),
	gauge("container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed.", nil, func(cs *cgroups.Stats, _ engine.Record) float64 { return float64(cs.Memory.Usage.Usage) }),
	gauge("container_memory_working_set_bytes", "Current working set in bytes.", nil, func(cs *cgroups.Stats, _ engine.Record) float64 { return float64(workingSet(cs)) }),
	gauge("container_memory_rss", "Size of RSS in bytes.", nil, func(cs *cgroups.Stats, _ engine.Record) float64 {
		return float64(cs.Memory.Raw["total_rss"] + cs.Memory.Raw["anon"])
	}),
	gauge("container_memory_cache", "Number of bytes of page cache memory.", nil, func(cs *cgroups.Stats, _ engine.Record) float64 { return float64(cs.Memory.Cache) }),
	gauge("container_memory_swap", "Container swap usage in bytes.", nil, func(cs *cgroups.Stats, _ engine.Record) float64 {
		return float64(cs.Memory.Raw["total_swap"] + cs.Memory.Raw["swap"])
	}),
	gauge("container_memory_mapped_file", "Size of memory mapped files in bytes.", nil, func(cs *cgroups.Stats, _ engine.Record) float64 {
		return float64(cs.Memory.Raw["total_mapped_file"] + cs.Memory.Raw["file_mapped"])
	}),
	gauge("container_memory_kernel_usage", "Size of kernel memory allocated in bytes.", nil, func(cs *cgroups.Stats, _ engine.Record) float64 { return float64(cs.Memory.Kernel.Usage) }),
	gauge("container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes.", nil, func(cs *cgroups.Stats, _ engine.Record) float64 { return float64(cs.Memory.Usage.Max) }),
	counter("container_memory_failcnt", "Number of memory usage hits limits.", nil, func(cs *cgroups.Stats, _ engine.Record) float64 { return float64(cs.Memory.Usage.Failcnt) }),
	counter("container_memory_failures_total", "Cumulative count of memory allocation failures.", failLabels, func(cs *cgroups.Stats, _ engine.Record) float64 {
		return float64(cs.Memory.Raw["total_pgfault"] + cs.Memory.Raw["pgfault"])
	}),
	counter("container_oom_events_total", "Count of out of memory events observed for the container.", nil, func(_ *cgroups.Stats, rec engine.Record) float64 {
		if rec.State.OOMKilled {
			return 1
		}
		return 0
	}),
	gauge("container_processes", "Number of processes running inside the container.", nil, func(cs *cgroups.Stats, _ engine.Record) float64 { return float64(cs.Pids.Current) }),
	gauge("container_threads", "Number of threads running inside the container.", nil, func(cs *cgroups.Stats, _ engine.Record) float64 { return float64(cs.Pids.Current) }),
	gauge("container_threads_max", "Maximum number of threads allowed inside the container, 0 when unlimited.", nil, func(cs *cgroups.Stats, _ engine.Record) float64 { return float64(cs.Pids.Limit) }),
	gauge("container_file_descriptors", "Number of open file descriptors for the container.", nil, zero),
	gauge("container_sockets", "Number of open sockets for the container.", nil, zero),
	gauge("container_last_seen", "Last time a container was seen by the exporter.", nil, func(*cgroups.Stats, engine.Record) float64 { return float64(time.Now().Unix()) }),
	gauge("container_start_time_seconds", "Start time of the container since unix epoch in seconds.", nil, func(_ *cgroups.Stats, rec engine.Record) float64 { return float64(rec.State.StartedAt.Unix()) }),
	gauge("container_spec_cpu_period", "CPU period of the container.", nil, zero),
	gauge("container_spec_cpu_shares", "CPU share of the container.", nil, zero),
	gauge("container_spec_memory_limit_bytes", "Memory limit for the container.", nil, func(cs *cgroups.Stats, _ engine.Record) float64 { return float64(cs.Memory.Usage.Limit) }),
	gauge("container_spec_memory_swap_limit_bytes", "Memory swap limit for the container.", nil, func(cs *cgroups.Stats, _ engine.Record) float64 { return float64(cs.Memory.Swap.Limit) }),
	gauge("container_fs_inodes_free", "Number of available Inodes.", devLabels, zero),
	gauge("container_fs_inodes_total", "Number of Inodes.", devLabels, zero),
	gauge("container_fs_limit_bytes", "Number of bytes that can be consumed by the container on this filesystem.", devLabels, zero),
	gauge("container_fs_usage_bytes", "Number of bytes that are consumed by the container on this filesystem.", devLabels, zero),
	counter("container_fs_reads_bytes_total", "Cumulative count of bytes read.", devLabels, blkio("Read", true)),
	counter("container_fs_reads_total", "Cumulative count of reads completed.", devLabels, blkio("Read", false)),
	counter("container_fs_writes_bytes_total", "Cumulative count of bytes written.", devLabels, blkio("Write", true)),
	counter("container_fs_writes_total", "Cumulative count of writes completed.", devLabels, blkio("Write", false)),
	counter("container_blkio_device_usage_total", "Blkio device bytes usage.", blkLabels, blkio("Total", true)),
	counter("container_network_receive_bytes_total", "Cumulative count of bytes received.", netLabels, zero),
	counter("container_network_receive_errors_total", "Cumulative count of errors encountered while receiving.", netLabels, zero),
	counter("container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving.", netLabels, zero),
	counter("container_network_receive_packets_total", "Cumulative count of packets received.", netLabels, zero),
	counter("container_network_transmit_bytes_total", "Cumulative count of bytes transmitted.", netLabels, zero),
	counter("container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting.", netLabels, zero),
	counter("container_network_transmit_packets_dropped_total", "Cumulative count of packets dropped while transmitting.", netLabels, zero),
	counter("container_network_transmit_packets_total", "Cumulative count of packets transmitted.", netLabels, zero),
	gauge("container_ulimits_soft", "Soft ulimit values for the container root process.", ulimLabels, zero),
}

// blkio sums one operation's bytes or count over the devices.
func blkio(op string, bytes bool) func(*cgroups.Stats, engine.Record) float64 {
	return func(cs *cgroups.Stats, _ engine.Record) float64 {
		list := cs.Blkio.IoServicedRecursive
		if bytes {
			list = cs.Blkio.IoServiceBytesRecursive
		}
		var sum uint64
		for _, e := range list {
			if e.Op == op {
				sum += e.Value
			}
		}
		return float64(sum)
	}
}

// ListMetricDescriptors describes every metric ListPodSandboxMetrics
// reports.
func (s *Server) ListMetricDescriptors(ctx context.Context, req *runtimeapi.ListMetricDescriptorsRequest) (*runtimeapi.ListMetricDescriptorsResponse, error) {
	out := make([]*runtimeapi.MetricDescriptor, 0, len(metricDefs))
	for _, d := range metricDefs {
		out = append(out, &runtimeapi.MetricDescriptor{Name: d.name, Help: d.help, LabelKeys: append(append([]string{}, metricLabels...), d.extra...)})
	}
	return &runtimeapi.ListMetricDescriptorsResponse{Descriptors: out}, nil
}

// ListPodSandboxMetrics reports the metrics of every running container,
// by pod.
func (s *Server) ListPodSandboxMetrics(ctx context.Context, req *runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error) {
	sbs, err := s.e.Sandboxes()
	if err != nil {
		return nil, err
	}
	now := time.Now().UnixNano()
	var out []*runtimeapi.PodSandboxMetrics
	for _, sb := range sbs {
		rec := sb.Snapshot()
		if rec.Extra[keyKind] != kindPod {
			continue
		}
		pod, _ := s.podConfig(rec)
		pm := &runtimeapi.PodSandboxMetrics{PodSandboxId: rec.ID}
		for _, c := range s.podContainers(rec.ID) {
			if c.State.Status != container.StateRunning {
				continue
			}
			cs, err := s.e.CgroupStats(ctx, c.ID)
			if err != nil || cs == nil {
				continue
			}
			cfg, _ := s.containerConfig(c)
			common := []string{cfg.GetMetadata().GetName(), c.ID, c.Extra[keyImage], c.Name, pod.GetMetadata().GetNamespace(), pod.GetMetadata().GetName()}
			cm := &runtimeapi.ContainerMetrics{ContainerId: c.ID}
			for _, d := range metricDefs {
				labels := append([]string{}, common...)
				for _, l := range d.extra {
					switch l {
					case "interface":
						labels = append(labels, "eth0")
					case "major", "minor":
						labels = append(labels, strconv.Itoa(0))
					case "operation":
						labels = append(labels, "Total")
					case "failure_type":
						labels = append(labels, "pgfault")
					case "scope":
						labels = append(labels, "container")
					case "ulimit":
						labels = append(labels, "max_open_files")
					default:
						labels = append(labels, s.e.DataRoot())
					}
				}
				cm.Metrics = append(cm.Metrics, &runtimeapi.Metric{Name: d.name, Timestamp: now, MetricType: d.typ,
					LabelValues: labels, Value: &runtimeapi.UInt64Value{Value: uint64(d.value(cs, c))}})
			}
			pm.ContainerMetrics = append(pm.ContainerMetrics, cm)
		}
		out = append(out, pm)
	}
	return &runtimeapi.ListPodSandboxMetricsResponse{PodMetrics: out}, nil
}
