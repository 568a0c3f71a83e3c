package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	nettypes "github.com/moby/moby/api/types/network"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/network"
	"github.com/hako-project/hako/trace"
)

// A container's networks are the keys of its Networking.EndpointsConfig,
// which Create fills from its network mode (docker's "default" is the
// network "bridge") and network connect/disconnect change. A container of
// a bridge network gets, at every start, a network namespace of hakod's
// (package network) which its spec joins by path; it is detached when the
// container stops or is removed. Modes host, none and container: are the
// runtime's business, as before. Containers of a CRI sandbox and
// containers with a client's spec are networked by their client.

// Networks is the network manager (nil when hakod runs without one).
func (e *Engine) Networks() *network.Manager { return e.cfg.Networks }

// primaryNetwork is the network a network mode names: "bridge" for the
// default, the name itself for host, none and user networks, "" for
// container: modes.
func primaryNetwork(mode container.NetworkMode) string {
	m := string(mode)
	switch {
	case m == "" || m == "default":
		return network.DefaultName
	case strings.HasPrefix(m, "container:"):
		return ""
	}
	return m
}

// planNetworking checks a create request's endpoints as docker does and
// returns the container's endpoints: one for the network its mode names,
// with the settings the request gave it (aliases, --ip).
func (e *Engine) planNetworking(hc *container.HostConfig, nc *nettypes.NetworkingConfig) (*nettypes.NetworkingConfig, error) {
	mode := string(hc.NetworkMode)
	var given map[string]*nettypes.EndpointSettings
	if nc != nil {
		given = nc.EndpointsConfig
	}
	if len(given) > 1 {
		var names []string
		for k := range given {
			names = append(names, k)
		}
		sort.Strings(names)
		return nil, errdefs.Invalidf("Container cannot be connected to network endpoints: %s", strings.Join(names, ", "))
	}
	primary := primaryNetwork(hc.NetworkMode)
	if primary == "" {
		return &nettypes.NetworkingConfig{EndpointsConfig: map[string]*nettypes.EndpointSettings{}}, nil
	}
	ep := &nettypes.EndpointSettings{}
	for k, v := range given {
		if v != nil && (k == mode || k == primary || (k == "default" && primary == network.DefaultName)) {
			ep = v.Copy()
		}
	}
	if ep.IPAMConfig != nil && ep.IPAMConfig.IPv4Address.IsValid() {
		if primary == network.DefaultName || primary == network.HostName || primary == network.NoneName {
			return nil, errdefs.Invalidf("user specified IP address is supported on user defined networks only")
		}
		if n, err := e.cfg.Networks.Get(primary); err == nil && !n.UserSubnet {
			return nil, errdefs.Invalidf("user specified IP address is supported only when connecting to networks with user configured subnets")
		}
	}
	if len(ep.Aliases) > 0 && (primary == network.DefaultName || primary == network.HostName || primary == network.NoneName) {
		return nil, errdefs.Invalidf("network-scoped alias is supported only for containers in user defined networks")
	}
	for p, bs := range hc.PortBindings {
		for _, b := range bs {
			if _, _, err := network.ParseHostPort(b.HostPort); err != nil {
				return nil, errdefs.Invalidf("%s", err.Error())
			}
		}
		if p.Num() == 0 {
			return nil, errdefs.Invalidf("invalid port specification: %q", p.Port())
		}
	}
	return &nettypes.NetworkingConfig{EndpointsConfig: map[string]*nettypes.EndpointSettings{primary: ep}}, nil
}

// endpointNames are the container's networks, the one its mode names
// first, then the others by name.
func endpointNames(rec Record) []string {
	primary := primaryNetwork(rec.HostConfig.NetworkMode)
	var first, rest []string
	if rec.Networking != nil {
		for k := range rec.Networking.EndpointsConfig {
			name := k
			if k == "default" {
				name = network.DefaultName
			}
			if name == primary {
				first = []string{name}
			} else if !contains(rest, name) {
				rest = append(rest, name)
			}
		}
	}
	if rec.Networking == nil && primary != "" {
		first = []string{primary} // a record from before networks
	}
	sort.Strings(rest)
	return append(first, rest...)
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// endpointConfig is the container's settings for network name.
func endpointConfig(rec Record, name string) *nettypes.EndpointSettings {
	if rec.Networking == nil {
		return nil
	}
	if ep := rec.Networking.EndpointsConfig[name]; ep != nil {
		return ep
	}
	if name == network.DefaultName {
		return rec.Networking.EndpointsConfig["default"]
	}
	return nil
}

// attachRequest is what the container asks of the network manager, or nil
// when hakod does not make its namespace (host, container:, a sandbox's or
// client's container). A container of none, or of the default network
// when there is no default bridge, asks for a namespace with lo only, as
// docker makes one for it: made ahead (network/spare.go), it saves the
// runtime's init the making.
func (e *Engine) attachRequest(rec Record) (*network.AttachRequest, error) {
	m := e.cfg.Networks
	if m == nil || rec.Sandbox != "" || rec.HostConfig == nil {
		return nil, nil
	}
	if _, err := os.Stat(filepath.Join(e.containerDir(rec.ID), containerSpecFile)); err == nil {
		return nil, nil
	}
	mode := string(rec.HostConfig.NetworkMode)
	if mode == network.HostName || strings.HasPrefix(mode, "container:") {
		return nil, nil
	}
	hostname := rec.Config.Hostname
	if hostname == "" {
		hostname = rec.ID[:12]
	}
	req := &network.AttachRequest{
		ContainerID: rec.ID, Name: rec.Name, Hostname: hostname,
		HostsPath: filepath.Join(e.RunDir(rec.ID), "hosts"), ExtraHosts: rec.HostConfig.ExtraHosts,
	}
	for _, name := range endpointNames(rec) {
		if name == network.NoneName {
			continue // lo only
		}
		if name == network.DefaultName {
			if _, ok := m.Default(); !ok {
				continue // hakod --bridge none: loopback only, as dockerd's
			}
		}
		r := network.EndpointRequest{Network: name}
		if ep := endpointConfig(rec, name); ep != nil {
			r.Aliases = ep.Aliases
			if ep.IPAMConfig != nil {
				r.IPv4 = ep.IPAMConfig.IPv4Address
			}
		}
		req.Networks = append(req.Networks, r)
	}
	// No network (none, no default bridge, or disconnected from every
	// network): a namespace with lo only.
	ports, err := portSpecs(rec)
	if err != nil {
		return nil, err
	}
	if len(req.Networks) > 0 {
		req.Ports = ports
	}
	return req, nil
}

// portSpecs turns -p (PortBindings) and -P (PublishAllPorts over the
// exposed ports) into the ports to publish, sorted for stable results.
func portSpecs(rec Record) ([]network.PortSpec, error) {
	hc := rec.HostConfig
	var out []network.PortSpec
	add := func(p nettypes.Port, b nettypes.PortBinding) error {
		lo, hi, err := network.ParseHostPort(b.HostPort)
		if err != nil {
			return errdefs.Invalidf("%s", err.Error())
		}
		ip := ""
		if b.HostIP.IsValid() && !b.HostIP.IsUnspecified() {
			ip = b.HostIP.String()
		}
		out = append(out, network.PortSpec{HostIP: ip, HostPortStart: lo, HostPortEnd: hi, ContainerPort: int(p.Num()), Protocol: string(p.Proto())})
		return nil
	}
	for p, bs := range hc.PortBindings {
		for _, b := range bs {
			if err := add(p, b); err != nil {
				return nil, err
			}
		}
		if len(bs) == 0 {
			if err := add(p, nettypes.PortBinding{}); err != nil {
				return nil, err
			}
		}
	}
	if hc.PublishAllPorts && rec.Config != nil {
		for p := range rec.Config.ExposedPorts {
			if _, bound := hc.PortBindings[p]; !bound {
				if err := add(p, nettypes.PortBinding{}); err != nil {
					return nil, err
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ContainerPort != out[j].ContainerPort {
			return out[i].ContainerPort < out[j].ContainerPort
		}
		if out[i].Protocol != out[j].Protocol {
			return out[i].Protocol < out[j].Protocol
		}
		return out[i].HostIP < out[j].HostIP
	})
	return out, nil
}

// pinnedNetNS is the path of the network namespace hakod makes for the
// container, or "" when it makes none.
func (e *Engine) pinnedNetNS(rec Record) string {
	req, err := e.attachRequest(rec)
	if err != nil || req == nil {
		return ""
	}
	return e.cfg.Networks.NetNSPath(rec.ID)
}

// setNamespacePath points the spec's namespace of type t at path.
func setNamespacePath(s *specs.Spec, t specs.LinuxNamespaceType, path string) {
	for i := range s.Linux.Namespaces {
		if s.Linux.Namespaces[i].Type == t {
			s.Linux.Namespaces[i].Path = path
			return
		}
	}
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: t, Path: path})
}

// prepareNetwork attaches a starting container: the namespace is made and
// the ports reserved now (a port in use fails the start here, before any
// process exists), and the CNI plugins run in the background while the
// shim and the runtime create the container in that namespace. The
// returned ready waits for them, and must be called before the program
// starts; it may be called again. req is the container's attachRequest;
// nil: nothing to attach, nothing to wait for.
func (e *Engine) prepareNetwork(ctx context.Context, req *network.AttachRequest) (ready func() error, err error) {
	if req == nil {
		return nil, nil
	}
	ctx, span := trace.Start(ctx, "engine.network.attach")
	p, err := e.cfg.Networks.Prepare(ctx, *req)
	if err != nil {
		span.End(err)
		return nil, err
	}
	if len(req.Networks) == 0 || p.Made() {
		// lo only, or a spare namespace taken (network/spare.go):
		// nothing for the plugins, nothing to wait for.
		_, err := p.Complete(ctx)
		span.End(err)
		return nil, err
	}
	done := make(chan struct{})
	var cerr error
	go func() {
		defer close(done)
		_, cerr = p.Complete(context.WithoutCancel(ctx))
		span.End(cerr)
	}()
	var once sync.Once
	return func() error {
		once.Do(func() { <-done })
		return cerr
	}, nil
}

// abortNetwork undoes prepareNetwork after a failed start (ready is nil
// when there was nothing to wait for).
func (e *Engine) abortNetwork(ctx context.Context, c *Container, ready func() error) {
	if ready != nil {
		_ = ready()
	}
	e.detachNetwork(ctx, c, false) // a failed start: not reused
}

// detachNetwork detaches a container that stopped or is removed (a no-op
// for one hakod did not attach); mayReuse: its namespace may become a
// spare, if netnsReusable says so.
func (e *Engine) detachNetwork(ctx context.Context, c *Container, mayReuse bool) {
	if e.cfg.Networks == nil {
		return
	}
	reuse := false
	if _, attached := e.cfg.Networks.Attachment(c.ID); attached && mayReuse {
		reuse = e.netnsReusable(c)
	}
	// In the background: the container's processes are gone, and
	// `run --rm` need not wait for the CNI plugins. Its trace, though,
	// waits for their spans.
	if done := e.cfg.Networks.DetachInBackground(ctx, c.ID, reuse); done != nil {
		release := e.holdTrace(ctx) // monitor.go
		go func() {
			<-done
			release()
		}()
	}
}

// netnsReusable reports whether c's network namespace, now that its
// processes are gone, can be the next container's (network.Manager's
// recycle, which also checks the attachment was plain and the namespace
// has no TCP sockets left): nothing of c could have changed its
// configuration. That takes CAP_NET_ADMIN (or SYS_ADMIN) in it, or a
// writable /proc/sys, or sysctls set for it: a privileged container or
// exec, or one given those capabilities or sysctls, taints it. Its
// processes must all be gone: with a PID namespace of its own they end
// with its init; a shared one (--pid host or container:) is not counted
// on. And a container that joined it (--network container:) may still run
// in it: while any live container joined another's namespace, none is
// reused.
func (e *Engine) netnsReusable(c *Container) bool {
	c.mu.Lock()
	tainted, hc := c.netnsTainted, c.HostConfig
	c.mu.Unlock()
	if tainted || hc == nil || hc.Privileged || len(hc.Sysctls) > 0 || hc.PidMode != "" {
		return false
	}
	for _, cp := range hc.CapAdd {
		switch strings.TrimPrefix(strings.ToUpper(cp), "CAP_") {
		case "ALL", "NET_ADMIN", "SYS_ADMIN":
			return false
		}
	}
	e.mu.Lock()
	others := make([]*Container, 0, len(e.containers))
	for _, o := range e.containers {
		if o != c {
			others = append(others, o)
		}
	}
	e.mu.Unlock()
	for _, o := range others {
		o.mu.Lock()
		joined := o.HostConfig != nil && strings.HasPrefix(string(o.HostConfig.NetworkMode), "container:") && live(o.State.Status)
		o.mu.Unlock()
		if joined {
			return false
		}
	}
	return true
}

// reconcileNetworks detaches, after a restart of hakod, the attachments of
// containers that no longer run (they ended while hakod was away, or
// hakod died during a start or a stop) or no longer exist.
func (e *Engine) reconcileNetworks(ctx context.Context) {
	if e.cfg.Networks == nil {
		return
	}
	for _, a := range e.cfg.Networks.Attachments() {
		if c, err := e.Get(a.ContainerID); err != nil || !live(c.Snapshot().State.Status) {
			e.cfg.Networks.DetachInBackground(ctx, a.ContainerID, false)
		}
	}
}

// NetworkSettings is the container's NetworkSettings as docker's inspect
// shows it: every network with its address while the container runs, the
// published ports.
func (e *Engine) NetworkSettings(rec Record) *container.NetworkSettings {
	ns := &container.NetworkSettings{Networks: map[string]*nettypes.EndpointSettings{}, Ports: nettypes.PortMap{}}
	att, attached := network.Attachment{}, false
	if e.cfg.Networks != nil {
		att, attached = e.cfg.Networks.Attachment(rec.ID)
	}
	running := rec.State.Status == container.StateRunning || rec.State.Status == container.StatePaused
	for name, ep := range e.endpointSettings(rec, att, attached && running) {
		ns.Networks[name] = ep
	}
	if attached && running {
		ns.SandboxID = rec.ID
		ns.SandboxKey = att.NetNS
		if rec.Config != nil && len(att.Endpoints) > 0 {
			for p := range rec.Config.ExposedPorts {
				ns.Ports[p] = nil
			}
		}
		for _, pm := range att.Ports {
			p, ok := nettypes.PortFrom(uint16(pm.ContainerPort), nettypes.IPProtocol(pm.Protocol))
			if !ok {
				continue
			}
			ip := netip.IPv4Unspecified()
			if pm.HostIP != "" {
				ip, _ = netip.ParseAddr(pm.HostIP)
			}
			ns.Ports[p] = append(ns.Ports[p], nettypes.PortBinding{HostIP: ip, HostPort: strconv.Itoa(pm.HostPort)})
		}
	}
	return ns
}

// endpointSettings is the container's networks, by name, with the live
// endpoints' addresses when live.
func (e *Engine) endpointSettings(rec Record, att network.Attachment, live bool) map[string]*nettypes.EndpointSettings {
	out := map[string]*nettypes.EndpointSettings{}
	if rec.HostConfig == nil {
		return out
	}
	for _, name := range endpointNames(rec) {
		es := &nettypes.EndpointSettings{}
		if cfg := endpointConfig(rec, name); cfg != nil {
			es = cfg.Copy()
		}
		if e.cfg.Networks != nil {
			if n, err := e.cfg.Networks.Get(name); err == nil {
				es.NetworkID = n.ID
				if live && n.Driver == "bridge" && !n.Default && len(rec.ID) >= 12 && !contains(es.Aliases, rec.ID[:12]) {
					es.Aliases = append(es.Aliases, rec.ID[:12]) // docker 20.10 lists the short ID too
				}
			} else if name == network.DefaultName {
				continue // no default bridge network (hakod --bridge none)
			}
		}
		if live {
			for _, ep := range att.Endpoints {
				if ep.NetworkName == name || ep.NetworkID == es.NetworkID {
					es.EndpointID = ep.EndpointID
					es.IPAddress = ep.Address.Addr()
					es.IPPrefixLen = ep.Address.Bits()
					es.Gateway = ep.Gateway
					if hw, err := parseMAC(ep.MAC); err == nil {
						es.MacAddress = hw
					}
				}
			}
		}
		out[name] = es
	}
	return out
}

func parseMAC(s string) (nettypes.HardwareAddr, error) {
	var hw nettypes.HardwareAddr
	if s == "" {
		return hw, errors.New("no MAC address")
	}
	err := hw.UnmarshalText([]byte(s))
	return hw, err
}

// PortSummaries are the container's ports as docker ps lists them: the
// published ones with their host address and port, the exposed ones
// alone.
func (e *Engine) PortSummaries(rec Record) []container.PortSummary {
	out := []container.PortSummary{}
	ns := e.NetworkSettings(rec)
	for p, bs := range ns.Ports {
		if len(bs) == 0 {
			out = append(out, container.PortSummary{PrivatePort: p.Num(), Type: string(p.Proto())})
			continue
		}
		for _, b := range bs {
			hp, _ := strconv.Atoi(b.HostPort)
			out = append(out, container.PortSummary{IP: b.HostIP, PrivatePort: p.Num(), PublicPort: uint16(hp), Type: string(p.Proto())})
		}
	}
	return out
}

// ConnectNetwork connects a container to a network (docker network
// connect): recorded for its next starts, and attached at once when it
// runs.
func (e *Engine) ConnectNetwork(ctx context.Context, ref, netRef string, cfg *nettypes.EndpointSettings) (err error) {
	ctx, span := trace.Start(ctx, "engine.network.connect", "container", ref, "network", netRef)
	defer func() { span.End(err) }()
	m := e.cfg.Networks
	if m == nil {
		return errdefs.NotImplementedf("hakod runs without networks")
	}
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	n, err := m.Get(netRef)
	if err != nil {
		return err
	}
	rec := c.Snapshot()
	mode := string(rec.HostConfig.NetworkMode)
	switch {
	case n.Driver == "host":
		return errdefs.Invalidf("container cannot be disconnected from host network or connected to host network")
	case mode == network.HostName || strings.HasPrefix(mode, "container:"):
		return errdefs.Invalidf("container sharing network namespace with another container or host cannot be connected to any other network")
	case mode == network.NoneName || n.Driver == "null":
		return errdefs.Invalidf("container cannot be connected to multiple networks with one of the networks in private (none) mode")
	case rec.Sandbox != "":
		return errdefs.Invalidf("container %s is in a pod sandbox, whose networks are its client's", rec.ID)
	}
	for _, name := range endpointNames(rec) {
		if o, err := m.Get(name); err == nil && o.ID == n.ID {
			return errdefs.Forbiddenf("endpoint with name %s already exists in network %s", rec.Name, n.Name)
		}
	}
	ep := &nettypes.EndpointSettings{}
	if cfg != nil {
		ep = cfg.Copy()
		ep.NetworkID, ep.EndpointID = "", ""
	}
	if ep.IPAMConfig != nil && ep.IPAMConfig.IPv4Address.IsValid() {
		switch {
		case n.Default:
			return errdefs.Invalidf("user specified IP address is supported on user defined networks only")
		case !n.UserSubnet:
			return errdefs.Invalidf("user specified IP address is supported only when connecting to networks with user configured subnets")
		}
	}
	running := rec.State.Status == container.StateRunning || rec.State.Status == container.StatePaused
	if running {
		if _, attached := m.Attachment(rec.ID); attached {
			r := network.EndpointRequest{Network: n.ID, Aliases: ep.Aliases}
			if ep.IPAMConfig != nil {
				r.IPv4 = ep.IPAMConfig.IPv4Address
			}
			if _, err := m.Connect(ctx, rec.ID, r); err != nil {
				return err
			}
		}
	}
	c.mu.Lock()
	if c.Networking == nil {
		c.Networking = &nettypes.NetworkingConfig{}
	}
	if c.Networking.EndpointsConfig == nil {
		c.Networking.EndpointsConfig = map[string]*nettypes.EndpointSettings{}
	}
	c.Networking.EndpointsConfig[n.Name] = ep
	c.mu.Unlock()
	if err := e.save(c); err != nil {
		return err
	}
	e.emitNetwork(&n, "connect", rec.ID)
	return nil
}

// DisconnectNetwork disconnects a container from a network (docker network
// disconnect).
func (e *Engine) DisconnectNetwork(ctx context.Context, ref, netRef string, force bool) (err error) {
	ctx, span := trace.Start(ctx, "engine.network.disconnect", "container", ref, "network", netRef)
	defer func() { span.End(err) }()
	m := e.cfg.Networks
	if m == nil {
		return errdefs.NotImplementedf("hakod runs without networks")
	}
	c, err := e.Get(ref)
	if err != nil {
		if force && errdefs.IsNotFound(err) {
			return nil
		}
		return err
	}
	n, err := m.Get(netRef)
	if err != nil {
		return err
	}
	rec := c.Snapshot()
	if n.Driver == "host" || string(rec.HostConfig.NetworkMode) == network.HostName {
		return errdefs.Invalidf("container cannot be disconnected from host network or connected to host network")
	}
	key := ""
	for _, name := range endpointNames(rec) {
		if o, err := m.Get(name); err == nil && o.ID == n.ID {
			key = name
		}
	}
	if key == "" {
		return fmt.Errorf("container %s is not connected to network %s", rec.ID, netRef)
	}
	if att, ok := m.Attachment(rec.ID); ok {
		for _, ep := range att.Endpoints {
			if ep.NetworkID == n.ID {
				if err := m.Disconnect(ctx, rec.ID, n.ID); err != nil {
					return err
				}
			}
		}
	}
	c.mu.Lock()
	if c.Networking != nil {
		delete(c.Networking.EndpointsConfig, key)
		if key == network.DefaultName {
			delete(c.Networking.EndpointsConfig, "default")
		}
	}
	c.mu.Unlock()
	if err := e.save(c); err != nil {
		return err
	}
	e.emitNetwork(&n, "disconnect", rec.ID)
	return nil
}

// CreateNetwork creates a network (docker network create).
func (e *Engine) CreateNetwork(ctx context.Context, req network.CreateRequest) (network.Network, error) {
	m := e.cfg.Networks
	if m == nil {
		return network.Network{}, errdefs.NotImplementedf("hakod runs without networks")
	}
	n, err := m.Create(ctx, req)
	if err != nil {
		return n, err
	}
	e.emitNetwork(&n, "create", "")
	return n, nil
}

// RemoveNetwork removes a network (docker network rm).
func (e *Engine) RemoveNetwork(ctx context.Context, ref string) error {
	m := e.cfg.Networks
	if m == nil {
		return errdefs.NotFoundf("network %s not found", ref)
	}
	n, err := m.Get(ref)
	if err != nil {
		return err
	}
	if err := m.Remove(ctx, n.ID); err != nil {
		return err
	}
	e.emitNetwork(&n, "destroy", "")
	return nil
}

// PruneNetworks removes the unused user networks that keep does not keep.
func (e *Engine) PruneNetworks(ctx context.Context, keep func(network.Network) bool) ([]string, error) {
	m := e.cfg.Networks
	if m == nil {
		return nil, nil
	}
	all := map[string]network.Network{}
	for _, n := range m.List() {
		all[n.Name] = n
	}
	names, err := m.Prune(ctx, keep)
	for _, name := range names {
		n := all[name]
		e.emitNetwork(&n, "destroy", "")
	}
	return names, err
}

// emitNetwork publishes a network event as docker does.
func (e *Engine) emitNetwork(n *network.Network, action, containerID string) {
	attrs := map[string]string{"name": n.Name, "type": n.Driver}
	if containerID != "" {
		attrs["container"] = containerID
	}
	e.events.Emit(events.Message{
		Type: events.NetworkEventType, Action: events.Action(action), Scope: "local",
		Actor: events.Actor{ID: n.ID, Attributes: attrs},
	})
}
