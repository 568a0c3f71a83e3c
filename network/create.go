package network

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/trace"
)

// CreateRequest is `docker network create`, its IPv4 IPAM configuration
// as the user wrote it.
type CreateRequest struct {
	Name        string
	Driver      string
	Internal    bool
	Labels      map[string]string
	Options     map[string]string
	IPAMDriver  string
	IPAMOptions map[string]string
	Subnet      string
	IPRange     string
	Gateway     string
}

// Create makes a bridge network: validated as docker does, a subnet chosen
// unless given, its bridge and rules installed, then recorded. A failure
// leaves nothing behind.
func (m *Manager) Create(ctx context.Context, req CreateRequest) (n Network, err error) {
	_, span := trace.Start(ctx, "network.create", "name", req.Name)
	defer func() { span.End(err) }()
	if req.Name == "" {
		return n, errdefs.Invalidf("invalid name: %s", req.Name)
	}
	switch req.Driver {
	case "", "bridge":
	case "host", "null":
		return n, errdefs.Forbiddenf("only one instance of %q network is allowed", req.Driver)
	default:
		return n, errdefs.NotFoundf("plugin %q not found", req.Driver)
	}
	switch req.IPAMDriver {
	case "", "default":
	default:
		return n, errdefs.NotFoundf("plugin %q not found", req.IPAMDriver)
	}
	nw := &Network{
		ID: newID(), Name: req.Name, Driver: "bridge", Created: time.Now().UTC(), Internal: req.Internal,
		Labels: maps.Clone(req.Labels), Options: maps.Clone(req.Options), IPAMDriver: "default",
		IPAMOptions: maps.Clone(req.IPAMOptions),
	}
	if nw.Options == nil {
		nw.Options = map[string]string{}
	}
	if nw.Labels == nil {
		nw.Labels = map[string]string{}
	}
	if req.Subnet != "" {
		p, err := netip.ParsePrefix(req.Subnet)
		if err != nil {
			return n, errdefs.Invalidf("Invalid subnet %s : invalid CIDR address: %s", req.Subnet, req.Subnet)
		}
		if !p.Addr().Is4() {
			return n, errdefs.NotImplementedf("IPv6 networks are not supported by hakod: %s", req.Subnet)
		}
		if p.Bits() > 30 {
			return n, errdefs.Invalidf("Invalid subnet %s : the subnet has no room for containers", req.Subnet)
		}
		nw.Subnet, nw.UserSubnet = p.Masked(), true
	} else if req.IPRange != "" || req.Gateway != "" {
		return n, errdefs.Invalidf("every ip-range or gateway must have a corresponding subnet")
	}
	if req.IPRange != "" {
		p, err := netip.ParsePrefix(req.IPRange)
		if err != nil {
			return n, errdefs.Invalidf("Invalid range %s : invalid CIDR address: %s", req.IPRange, req.IPRange)
		}
		if p.Bits() < nw.Subnet.Bits() || !nw.Subnet.Contains(p.Addr()) {
			return n, errdefs.Invalidf("no matching subnet for range %s", req.IPRange)
		}
		nw.IPRange = p.Masked()
	}
	if req.Gateway != "" {
		gw, err := netip.ParseAddr(req.Gateway)
		if err != nil {
			return n, errdefs.Invalidf("Invalid gateway %s : ParseAddr(%q): unable to parse IP", req.Gateway, req.Gateway)
		}
		if !nw.Subnet.Contains(gw) {
			return n, errdefs.Forbiddenf("failed to allocate gateway (%s): Requested address is out of range", req.Gateway)
		}
		nw.Gateway = gw
		nw.UserGateway = true
	}
	m.mu.Lock()
	for _, o := range m.networks {
		if o.Name == req.Name {
			m.mu.Unlock()
			return n, errdefs.Conflictf("network with name %s already exists", req.Name)
		}
	}
	m.mu.Unlock()
	nw.Bridge = nw.Options[optBridgeName]
	if nw.Bridge == "" {
		nw.Bridge = "hk-" + nw.ID[:12]
	} else if len(nw.Bridge) > 15 {
		return n, errdefs.Invalidf("bridge name %s is longer than 15 characters", nw.Bridge)
	}

	unlock, err := hostLock()
	if err != nil {
		return n, err
	}
	defer unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range m.networks {
		if o.Name == req.Name {
			return n, errdefs.Conflictf("network with name %s already exists", req.Name)
		}
		if o.Bridge != "" && o.Bridge == nw.Bridge {
			return n, errdefs.Conflictf("bridge name %s is already used by network %s", nw.Bridge, o.Name)
		}
	}
	if nw.UserSubnet {
		if overlapsAny(nw.Subnet, m.subnetsExcept("")) {
			return n, errdefs.Forbiddenf("Pool overlaps with other one on this address space")
		}
	} else {
		p, err := pickSubnet(m.subnetsExcept(""), nil)
		if err != nil {
			return n, err
		}
		nw.Subnet = p
	}
	if !nw.Gateway.IsValid() {
		nw.Gateway = gatewayOf(nw.Subnet)
	}
	if err := m.setUpBridge(nw); err != nil {
		m.tearDownBridge(nw)
		return n, err
	}
	if err := m.store.saveNetwork(nw); err != nil {
		m.tearDownBridge(nw)
		return n, fmt.Errorf("save network %s: %w", nw.Name, err)
	}
	m.networks[nw.ID] = nw
	return *nw, nil
}

// tearDownBridge removes what setUpBridge made for n, and n's leases.
func (m *Manager) tearDownBridge(n *Network) error {
	err := removeRules(n)
	if derr := deleteBridge(n.Bridge); derr != nil && err == nil {
		err = derr
	}
	if rerr := os.RemoveAll(filepath.Join(m.ipamDir, n.ID)); rerr != nil && err == nil {
		err = rerr
	}
	return err
}

// Remove deletes a user-defined network without containers, with its
// bridge, rules and leases.
func (m *Manager) Remove(ctx context.Context, ref string) (err error) {
	_, span := trace.Start(ctx, "network.remove", "network", ref)
	defer func() { span.End(err) }()
	n, err := m.Get(ref)
	if err != nil {
		return err
	}
	// Containers that just stopped are still being detached: wait.
	m.waitDetaching(func(a *Attachment) bool { return a.endpoint(n.ID) != nil })
	m.mu.Lock()
	defer m.mu.Unlock()
	nw := m.networks[n.ID]
	if nw == nil {
		return errdefs.NotFoundf("network %s not found", ref)
	}
	return m.removeLocked(nw)
}

func (m *Manager) removeLocked(n *Network) error {
	if n.Predefined() {
		return errdefs.Forbiddenf("%s is a pre-defined network and cannot be removed", n.Name)
	}
	if len(m.endpointsLocked(n.ID)) > 0 {
		return errdefs.Forbiddenf("error while removing network: network %s id %s has active endpoints", n.Name, n.ID)
	}
	if err := m.tearDownBridge(n); err != nil {
		return fmt.Errorf("remove network %s: %w", n.Name, err)
	}
	if err := m.store.deleteNetwork(n.ID); err != nil {
		return err
	}
	delete(m.networks, n.ID)
	return nil
}

// Prune removes the user-defined networks without containers that keep
// says to (nil: all), and returns their names.
func (m *Manager) Prune(ctx context.Context, keep func(Network) bool) ([]string, error) {
	_, span := trace.Start(ctx, "network.prune")
	m.waitDetaching(func(*Attachment) bool { return true })
	m.mu.Lock()
	defer m.mu.Unlock()
	var names []string
	var firstErr error
	for _, n := range m.sortedNetworks() {
		if n.Predefined() || len(m.endpointsLocked(n.ID)) > 0 || (keep != nil && keep(*n)) {
			continue
		}
		if err := m.removeLocked(n); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		names = append(names, n.Name)
	}
	span.End(firstErr)
	return names, firstErr
}

// EndpointInfo is a container's endpoint on a network, for network
// inspect.
type EndpointInfo struct {
	ContainerID string
	Name        string
	Endpoint
}

// Endpoints lists the endpoints on network id.
func (m *Manager) Endpoints(id string) []EndpointInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.endpointsLocked(id)
}

func (m *Manager) endpointsLocked(id string) []EndpointInfo {
	var out []EndpointInfo
	for _, a := range m.attachments {
		if ep := a.endpoint(id); ep != nil && a.detaching == nil {
			out = append(out, EndpointInfo{ContainerID: a.ContainerID, Name: a.Name, Endpoint: *ep})
		}
	}
	return out
}
