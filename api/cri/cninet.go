package cri

import (
	"context"
	"fmt"

	"github.com/hako-project/hako/network"
)

// CNINetwork attaches pods to a network of package network: a CNI bridge
// network (docker's default bridge, or the one named), whose plugins give
// the pod its eth0 and address and, through portmap, its hostPorts. The
// network package creates and pins the pod's network namespace.
type CNINetwork struct {
	Manager *network.Manager
	// Network is the network's name or ID ("" = docker's default bridge).
	Network string
}

func (n CNINetwork) name() string {
	if n.Network == "" {
		return network.DefaultName
	}
	return n.Network
}

// Attach connects the pod and returns its addresses.
func (n CNINetwork) Attach(ctx context.Context, pod PodNetwork) (string, []string, error) {
	var ports []network.PortSpec
	for _, p := range pod.Ports {
		ports = append(ports, network.PortSpec{HostIP: p.HostIP, HostPortStart: int(p.HostPort), HostPortEnd: int(p.HostPort),
			ContainerPort: int(p.ContainerPort), Protocol: p.Protocol})
	}
	att, err := n.Manager.Attach(ctx, network.AttachRequest{
		ContainerID: pod.ID, Name: pod.Name, Hostname: pod.Hostname, HostsPath: pod.HostsPath,
		Networks: []network.EndpointRequest{{Network: n.name()}}, Ports: ports,
	})
	if err != nil {
		return "", nil, err
	}
	var ips []string
	for _, ep := range att.Endpoints {
		if ep.Address.IsValid() {
			ips = append(ips, ep.Address.Addr().String())
		}
	}
	return att.NetNS, ips, nil
}

// Detach disconnects the pod and removes its network namespace.
func (n CNINetwork) Detach(ctx context.Context, pod PodNetwork) error {
	return n.Manager.Detach(ctx, pod.ID)
}

// Ready reports whether the network exists.
func (n CNINetwork) Ready() error {
	if _, err := n.Manager.Get(n.name()); err != nil {
		return fmt.Errorf("pod network %q: %w", n.name(), err)
	}
	return nil
}

func (n CNINetwork) String() string { return "CNI network " + n.name() }
