package cri

import (
	"context"
	"fmt"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/hako-project/hako/engine"
	"github.com/hako-project/hako/errdefs"
)

// Network connects pod sandboxes to the pod network. hakod implements it
// with package network: CNINetwork (one of hakod's bridge networks) or
// ConfDirNetwork (the first CNI configuration of a directory); the CRI
// server only says which pod, which namespace and which ports.
type Network interface {
	// Attach makes and connects the pod's network namespace (or connects
	// pod.NetNS) and returns its path and the pod's IP addresses, the
	// primary first. On error nothing is left attached.
	Attach(ctx context.Context, pod PodNetwork) (netns string, ips []string, err error)
	// Detach undoes Attach; detaching what is not attached is not an
	// error, so StopPodSandbox can be retried.
	Detach(ctx context.Context, pod PodNetwork) error
	// Ready is nil when pods can be attached (a configuration is there).
	Ready() error
	// String describes the configuration (for Status's verbose info).
	String() string
}

// PodNetwork is what the network needs to know about a pod.
type PodNetwork struct {
	ID string // the sandbox ID (CNI's container ID)
	// Name is the pod's name and namespace as one name (for /etc/hosts);
	// PodName, Namespace and UID are the pod's metadata (CNI_ARGS).
	Name      string
	PodName   string
	Namespace string
	UID       string
	Hostname  string
	HostsPath string // the pod's /etc/hosts on the host, kept current by the network
	Ports     []PortMapping
	// CgroupParent is the pod's cgroup (for plugins that need it).
	CgroupParent string
	// NetNS, when set, is the pod's own pinned network namespace (a pod
	// with a user namespace: its pause made it, owned by that user
	// namespace), which the network connects and leaves in place; when
	// empty the network makes the namespace and removes it on Detach.
	NetNS string
}

// PortMapping is a hostPort of the pod.
type PortMapping struct {
	HostPort      int32
	ContainerPort int32
	Protocol      string // "tcp", "udp", "sctp"
	HostIP        string
}

func portMappings(cfg *runtimeapi.PodSandboxConfig) []PortMapping {
	var out []PortMapping
	for _, p := range cfg.GetPortMappings() {
		if p.GetHostPort() <= 0 {
			continue // only a hostPort needs the network to do anything
		}
		out = append(out, PortMapping{HostPort: p.GetHostPort(), ContainerPort: p.GetContainerPort(),
			Protocol: strings.ToLower(p.GetProtocol().String()), HostIP: p.GetHostIp()})
	}
	return out
}

// checkPorts refuses hostPorts another ready pod holds, or that are
// malformed, before anything is made.
func (s *Server) checkPorts(cfg *runtimeapi.PodSandboxConfig) error {
	mine := portMappings(cfg)
	for _, p := range cfg.GetPortMappings() {
		if p.GetHostPort() < 0 || p.GetHostPort() > 65535 || p.GetContainerPort() < 0 || p.GetContainerPort() > 65535 {
			return errdefs.Invalidf("port mapping %d:%d: port out of range", p.GetHostPort(), p.GetContainerPort())
		}
	}
	if len(mine) == 0 {
		return nil
	}
	seen := map[string]bool{}
	for _, p := range mine {
		k := portKey(p)
		if seen[k] {
			return errdefs.Invalidf("hostPort %d/%s is mapped twice", p.HostPort, p.Protocol)
		}
		seen[k] = true
	}
	sbs, err := s.e.Sandboxes()
	if err != nil {
		return err
	}
	for _, sb := range sbs {
		rec := sb.Snapshot()
		if rec.State != engine.SandboxReady || rec.Extra[keyKind] != kindPod {
			continue
		}
		other, err := s.podConfig(rec)
		if err != nil {
			continue
		}
		for _, p := range portMappings(other) {
			for _, q := range mine {
				if p.HostPort == q.HostPort && p.Protocol == q.Protocol && (p.HostIP == q.HostIP || p.HostIP == "" || q.HostIP == "" || p.HostIP == "0.0.0.0" || q.HostIP == "0.0.0.0") {
					return alreadyExistsf("hostPort %d/%s is already used by pod sandbox %s (%s)", q.HostPort, q.Protocol, rec.ID, rec.Name)
				}
			}
		}
	}
	return nil
}

func portKey(p PortMapping) string {
	return fmt.Sprintf("%s/%d/%s", p.HostIP, p.HostPort, p.Protocol)
}
