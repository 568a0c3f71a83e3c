package cri

import (
	"context"
	"fmt"

	"github.com/hako-project/hako/network"
)

// CNINetwork attaches pods to a network of package network: a CNI bridge
// network (docker's default bridge, or the one named), whose plugins give
// the pod its eth0 and address and, through portmap, its hostPorts. The
// network package creates and pins the pod's network namespace, unless the
// pod has its own (PodNetwork.NetNS).
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
	return attachPod(ctx, n.Manager, pod, network.EndpointRequest{Network: n.name()}, nil)
}

// Detach disconnects the pod and removes its network namespace (not the
// pod's own).
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

// ConfDirNetwork attaches pods with the first CNI network configuration
// in a directory, kubelet's and containerd's convention (--cni-conf-dir,
// /etc/cni/net.d): whatever the cluster's network add-on wrote there. The
// directory is read at each RunPodSandbox and each Status, so a
// configuration written later is taken up; until there is one the
// network is not ready. Package network makes and pins the namespace
// (unless the pod has its own, PodNetwork.NetNS),
// records the configuration ADD ran with (DEL replays it, whatever became
// of the file) and hands hostPorts to a plugin with the portMappings
// capability.
type ConfDirNetwork struct {
	Manager *network.Manager
	Dir     string
}

// Attach runs the directory's first configuration for the pod, with the
// CNI_ARGS containerd passes.
func (n ConfDirNetwork) Attach(ctx context.Context, pod PodNetwork) (string, []string, error) {
	conf, err := network.FirstConfList(n.Dir)
	if err != nil {
		return "", nil, err
	}
	args := [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", pod.Namespace}, {"K8S_POD_NAME", pod.PodName},
		{"K8S_POD_INFRA_CONTAINER_ID", pod.ID}, {"K8S_POD_UID", pod.UID}}
	return attachPod(ctx, n.Manager, pod, network.EndpointRequest{ConfList: conf.Bytes}, args)
}

// Detach runs DEL with the configuration the pod was attached with and
// removes its network namespace (not the pod's own).
func (n ConfDirNetwork) Detach(ctx context.Context, pod PodNetwork) error {
	return n.Manager.Detach(ctx, pod.ID)
}

// Ready reports whether the directory has a configuration, and a sound
// one.
func (n ConfDirNetwork) Ready() error {
	_, err := network.FirstConfList(n.Dir)
	return err
}

func (n ConfDirNetwork) String() string { return "first CNI configuration in " + n.Dir }

// attachPod attaches pod with one endpoint, in the pod's own namespace if
// it has one, and returns its namespace and addresses.
func attachPod(ctx context.Context, m *network.Manager, pod PodNetwork, ep network.EndpointRequest, args [][2]string) (string, []string, error) {
	var ports []network.PortSpec
	for _, p := range pod.Ports {
		ports = append(ports, network.PortSpec{HostIP: p.HostIP, HostPortStart: int(p.HostPort), HostPortEnd: int(p.HostPort),
			ContainerPort: int(p.ContainerPort), Protocol: p.Protocol})
	}
	att, err := m.Attach(ctx, network.AttachRequest{
		ContainerID: pod.ID, Name: pod.Name, Hostname: pod.Hostname, HostsPath: pod.HostsPath,
		Networks: []network.EndpointRequest{ep}, Ports: ports, CNIArgs: args, NetNS: pod.NetNS,
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
