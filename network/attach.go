package network

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/trace"
)

// AttachRequest asks for a container's network namespace and its endpoints.
type AttachRequest struct {
	ContainerID string
	Name        string
	Hostname    string
	// HostsPath is the container's hosts file on the host, rewritten with
	// its addresses and peers; ExtraHosts are its --add-host entries.
	HostsPath  string
	ExtraHosts []string
	// Networks are the endpoints, the first one on eth0; published ports
	// go through the first.
	Networks []EndpointRequest
	Ports    []PortSpec
	// CNIArgs are handed to the plugins of every endpoint as CNI_ARGS, on
	// ADD and on DEL (the CRI's K8S_POD_NAME and others).
	CNIArgs [][2]string
	// NetNS, when set, is the path of an existing network namespace to
	// attach (a pod's, made inside its own user namespace) instead of one
	// the manager makes: the endpoints are made in it, but the namespace
	// is the caller's to make, pin and remove (Detach leaves it).
	NetNS string
}

// EndpointRequest is one network a container joins: one of the manager's
// networks, or a CNI configuration list of the caller's.
type EndpointRequest struct {
	Network string // name or ID
	Aliases []string
	// IPv4 asks for this address (docker's --ip); zero: any free one.
	IPv4 netip.Addr
	// ConfList, when set, is the CNI configuration list (see
	// FirstConfList) the endpoint is made with, instead of Network's: the
	// endpoint then has no NetworkID, published ports go to its plugins
	// only if one has the portMappings capability, and DEL runs these
	// bytes whatever becomes of the file they came from.
	ConfList []byte
}

// Attach creates the container's network namespace and its endpoints:
// Prepare, then Complete.
func (m *Manager) Attach(ctx context.Context, req AttachRequest) (Attachment, error) {
	p, err := m.Prepare(ctx, req)
	if err != nil {
		return Attachment{}, err
	}
	return p.Complete(ctx)
}

// Pending is an attachment whose namespace exists and whose endpoints
// Complete makes. Until Complete returns, the container's other network
// operations wait.
type Pending struct {
	m      *Manager
	att    *Attachment
	ips    []netip.Addr
	unlock func()
	// made: the endpoints exist (a spare endpoint taken, spare.go).
	made bool
}

// NetNS is the path of the pending attachment's namespace.
func (p *Pending) NetNS() string { return p.att.NetNS }

// Made reports whether the endpoints exist already (a spare namespace was
// taken, spare.go): Complete then only records the attachment, in well
// under a millisecond, and there is nothing to wait for.
func (p *Pending) Made() bool { return p.made }

// Prepare does the quick part of attaching a container, which decides
// whether it can be attached at all: the networks are resolved and checked
// as docker checks them, the published ports reserved (a port already in
// use fails here, with docker's message), the attachment recorded, and the
// namespace created and pinned at NetNSPath(ID), with lo up (or, with
// req.NetNS, the caller's namespace at that path used as it is). The runtime
// can join the namespace from then on; Complete, which runs the CNI
// plugins, can run meanwhile, as long as it ends before the container's
// program starts. On failure nothing is left.
//
// The attachment is recorded before the namespace and the endpoints exist,
// so that a hakod that dies halfway finds at its next start what to clean
// up.
func (m *Manager) Prepare(ctx context.Context, req AttachRequest) (p *Pending, err error) {
	ctx, span := trace.Start(ctx, "network.prepare", "id", req.ContainerID)
	defer func() { span.End(err) }()
	unlock := m.lockContainer(req.ContainerID)
	defer func() {
		if err != nil {
			unlock()
		}
	}()
	m.mu.Lock()
	old := m.attachments[req.ContainerID]
	m.mu.Unlock()
	if old != nil {
		// Left by a start that did not finish or a stop not seen: start
		// afresh.
		if err := m.teardown(ctx, old); err != nil {
			return nil, fmt.Errorf("clean up the previous network attachment: %w", err)
		}
	}
	if sp := m.takeSpare(ctx, req); sp != nil {
		span.SetAttr("spare", "true")
		return &Pending{m: m, att: sp, ips: []netip.Addr{{}}, unlock: unlock, made: true}, nil
	}
	if len(req.Ports) > 0 {
		m.waitDetaching(func(a *Attachment) bool { return len(a.Ports) > 0 })
	}
	// An address asked for by name (--ip) may still be held by a container
	// whose detach runs in the background: back-to-back `run --rm --ip X`
	// find it free, as with docker, which releases it before the removal.
	for _, r := range req.Networks {
		if !r.IPv4.IsValid() {
			continue
		}
		m.waitDetaching(func(a *Attachment) bool {
			return slices.ContainsFunc(a.Endpoints, func(ep Endpoint) bool { return ep.Address.Addr() == r.IPv4 })
		})
	}
	att := &Attachment{
		ContainerID: req.ContainerID, Name: req.Name, Hostname: req.Hostname, NetNS: m.NetNSPath(req.ContainerID),
		HostsPath: req.HostsPath, ExtraHosts: req.ExtraHosts, CNIArgs: slices.Clone(req.CNIArgs),
	}
	if req.NetNS != "" {
		if !isNetNS(req.NetNS) {
			return nil, errdefs.Invalidf("%s is not a network namespace", req.NetNS)
		}
		att.NetNS, att.CallersNetNS = req.NetNS, true
	}
	var ips []netip.Addr
	ports := req.Ports
	m.mu.Lock()
	_, att.Plain = m.spareKindOf(req) // spare.go
	for i, r := range req.Networks {
		ifname := fmt.Sprintf("eth%d", i)
		if r.ConfList != nil {
			ep, withPorts, err := confListEndpoint(r.ConfList, ifname)
			if err != nil {
				m.mu.Unlock()
				return nil, err
			}
			if i == 0 && len(ports) > 0 && !withPorts {
				m.log.WarnContext(ctx, "ports not published: no plugin of the CNI configuration has the portMappings capability",
					"container", req.ContainerID, "network", ep.NetworkName)
				ports = nil
			}
			att.Endpoints = append(att.Endpoints, ep)
			ips = append(ips, r.IPv4)
			continue
		}
		n, err := m.getLocked(r.Network)
		if err != nil {
			m.mu.Unlock()
			return nil, err
		}
		if att.endpoint(n.ID) != nil {
			m.mu.Unlock()
			return nil, errdefs.Forbiddenf("endpoint with name %s already exists in network %s", req.Name, n.Name)
		}
		ep, err := m.newEndpoint(n, r, ifname, i == 0 && len(ports) > 0)
		if err != nil {
			m.mu.Unlock()
			return nil, err
		}
		att.Endpoints = append(att.Endpoints, ep)
		ips = append(ips, r.IPv4)
	}
	if len(ports) > 0 {
		if len(att.Endpoints) == 0 {
			m.mu.Unlock()
			return nil, errdefs.Invalidf("published ports need a network: the container has none")
		}
		mappings, res, err := reservePorts(ports, m.portInUseLocked, req.Name, att.Endpoints[0].EndpointID)
		if err != nil {
			m.mu.Unlock()
			return nil, err
		}
		att.Ports = mappings
		att.Endpoints[0].PortMappings = mappings
		m.reservations[att.ContainerID] = res
	}
	m.attachments[att.ContainerID] = att
	if err := m.store.saveAttachment(att); err != nil {
		m.reservations[att.ContainerID].release()
		delete(m.reservations, att.ContainerID)
		delete(m.attachments, att.ContainerID)
		m.mu.Unlock()
		return nil, fmt.Errorf("record the network attachment: %w", err)
	}
	m.mu.Unlock()

	if att.CallersNetNS {
		return &Pending{m: m, att: att, ips: ips, unlock: unlock}, nil
	}
	_, nspan := trace.Start(ctx, "network.netns.create")
	if fileExists(att.NetNS) {
		_ = removeNetNS(att.NetNS) // a crash's leftover, without a record
	}
	err = createNetNS(att.NetNS, ownNetworksOnly(att))
	nspan.End(err)
	if err != nil {
		if terr := m.teardown(context.WithoutCancel(ctx), att); terr != nil {
			m.log.Warn("clean up after a failed network attachment", "container", att.ContainerID, "err", terr)
		}
		return nil, err
	}
	return &Pending{m: m, att: att, ips: ips, unlock: unlock}, nil
}

// Complete makes the pending attachment's endpoints, a CNI ADD per
// network (the published ports are mapped by the first), writes the
// container's hosts file and its peers', and returns the attachment. On
// failure the attachment is undone entirely.
func (p *Pending) Complete(ctx context.Context) (out Attachment, err error) {
	m, att := p.m, p.att
	defer p.unlock()
	ctx, span := trace.Start(ctx, "network.complete", "id", att.ContainerID)
	defer func() { span.End(err) }()
	defer func() {
		if err != nil {
			if terr := m.teardown(context.WithoutCancel(ctx), att); terr != nil {
				m.log.Warn("clean up after a failed network attachment", "container", att.ContainerID, "err", terr)
			}
		}
	}()
	for i := range att.Endpoints {
		if p.made {
			continue
		}
		if err := m.addEndpoint(ctx, att, i, p.ips[i]); err != nil {
			return out, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.store.saveAttachment(att); err != nil {
		return out, fmt.Errorf("record the network attachment: %w", err)
	}
	m.refreshHostsLocked(att, networkIDs(att))
	switch def := m.defaultLocked(); {
	case att.CallersNetNS:
	case len(att.Endpoints) == 0:
		m.scheduleSpareLocked(spareBare) // spare.go
	case def != nil && att.endpoint(def.ID) != nil:
		m.scheduleSpareLocked(spareEndpoint)
	}
	return att.clone(), nil
}

// ownNetworksOnly reports whether every endpoint of att is on one of
// hakod's networks, which are IPv4 only; an endpoint made with a caller's
// CNI configuration list (the CRI's) may be given IPv6 addresses.
func ownNetworksOnly(att *Attachment) bool {
	for _, ep := range att.Endpoints {
		if ep.NetworkID == "" {
			return false
		}
	}
	return true
}

// newEndpoint prepares the endpoint of a container on n (under m.mu).
func (m *Manager) newEndpoint(n *Network, r EndpointRequest, ifname string, withPorts bool) (Endpoint, error) {
	if n.Driver != "bridge" {
		return Endpoint{}, errdefs.Invalidf("container cannot be connected to network %s: only bridge networks have endpoints", n.Name)
	}
	if err := m.unavailable[n.ID]; err != nil {
		return Endpoint{}, errdefs.Unavailablef("network %s is unavailable: %s", n.Name, err.Error())
	}
	if r.IPv4.IsValid() {
		switch {
		case n.Default:
			return Endpoint{}, errdefs.Invalidf("user specified IP address is supported on user defined networks only")
		case !n.UserSubnet:
			return Endpoint{}, errdefs.Invalidf("user specified IP address is supported only when connecting to networks with user configured subnets")
		case !n.Subnet.Contains(r.IPv4) || r.IPv4 == n.Gateway:
			return Endpoint{}, errdefs.Invalidf("no configured subnet or ip-range contain the IP address %s", r.IPv4)
		}
	}
	conf, err := confList(n, m.ipamDir, withPorts)
	if err != nil {
		return Endpoint{}, err
	}
	return Endpoint{
		NetworkID: n.ID, NetworkName: n.Name, EndpointID: newID(), IfName: ifname,
		Aliases: slices.Clone(r.Aliases), Conf: conf,
	}, nil
}

// confListEndpoint prepares an endpoint made with a CNI configuration list
// of the caller's; withPorts: a plugin of it maps ports.
func confListEndpoint(conf []byte, ifname string) (ep Endpoint, withPorts bool, err error) {
	list, err := parseConfList(conf)
	if err != nil {
		return Endpoint{}, false, errdefs.Invalidf("CNI configuration list: %v", err)
	}
	return Endpoint{NetworkName: list.Name, EndpointID: newID(), IfName: ifname, Conf: slices.Clone(conf)}, mapsPorts(list), nil
}

// addEndpoint runs CNI ADD for att's endpoint i and records its address.
func (m *Manager) addEndpoint(ctx context.Context, att *Attachment, i int, ip netip.Addr) error {
	m.mu.Lock()
	ep := att.Endpoints[i]
	m.mu.Unlock()
	addr, gw, mac, err := m.cni.add(ctx, ep.Conf, att.runtimeConf(ep, ip))
	if err != nil {
		return fmt.Errorf("attach to network %s: %w", ep.NetworkName, err)
	}
	m.mu.Lock()
	att.Endpoints[i].Address, att.Endpoints[i].Gateway, att.Endpoints[i].MAC = addr, gw, mac
	m.mu.Unlock()
	return nil
}

// Detach undoes a container's attachment and returns when it is done:
// CNI DEL of every endpoint (which releases the lease, deletes the veth
// pair and the port mappings), then the namespace's unpinning (unless it
// is the caller's, AttachRequest.NetNS, which stays as it is). It does
// nothing for a container without one. The DELs run while the namespace is
// still pinned, so the plugins delete the veths themselves rather than
// leaving them to the kernel's clean-up of dead namespaces, which under
// load can take seconds.
func (m *Manager) Detach(ctx context.Context, id string) error {
	done, errp := m.startDetach(ctx, id, false)
	<-done
	return *errp
}

// DetachInBackground is Detach without the wait, for a container whose
// processes are gone (its stop, its removal): the DELs run off the path of
// `run --rm`, and whatever needs what the attachment holds waits for them
// (a new start of the same container, a container publishing ports,
// removing a network, Detach, Settle, Close). done is closed once it is
// undone (the caller's trace waits for its spans).
//
// With a detach of id already under way it does nothing and returns nil:
// that one does the same work, and waiting for the container's lock it
// holds would put its DELs back on the path (a `run --rm` detaches at the
// exit and again at the removal).
//
// With reuse, the caller vouches that nothing of the container can have
// changed the namespace (no process of it is left, none had the means to
// change its configuration): a plain attachment's namespace then becomes
// the spare of its kind when that is missing, instead of being undone
// (recycle, spare.go).
func (m *Manager) DetachInBackground(ctx context.Context, id string, reuse bool) (done <-chan struct{}) {
	m.mu.Lock()
	att := m.attachments[id]
	busy := att != nil && att.detaching != nil
	m.mu.Unlock()
	if busy {
		return nil
	}
	done, _ = m.startDetach(ctx, id, reuse)
	return done
}

// startDetach starts undoing id's attachment; done is closed when it is
// undone, *errp then holds the outcome.
func (m *Manager) startDetach(ctx context.Context, id string, reuse bool) (done <-chan struct{}, errp *error) {
	errp = new(error)
	unlock := m.lockContainer(id)
	m.mu.Lock()
	att := m.attachments[id]
	if att == nil {
		m.mu.Unlock()
		if p := m.NetNSPath(id); fileExists(p) {
			*errp = removeNetNS(p) // a crash's leftover, without a record
		}
		unlock()
		c := make(chan struct{})
		close(c)
		return c, errp
	}
	// A detach under way holds the container's lock, so there is none
	// here: this one tries again what a failed one left.
	ch := make(chan struct{})
	att.detaching = ch
	m.bg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.bg.Done()
		defer unlock()
		if reuse && m.recycle(context.WithoutCancel(ctx), att) { // spare.go
			close(ch)
			return
		}
		if err := m.teardown(context.WithoutCancel(ctx), att); err != nil {
			m.log.Warn("detach a container from its networks", "container", id, "err", err)
			*errp = err
		}
		m.mu.Lock()
		att.detaching = nil // what failed stays recorded; the next Detach tries again
		m.mu.Unlock()
		close(ch)
	}()
	return ch, errp
}

// Settle waits for the background work of Detach to end.
func (m *Manager) Settle() { m.bg.Wait() }

// waitDetaching waits for the detaching attachments that match to be gone.
func (m *Manager) waitDetaching(match func(*Attachment) bool) {
	m.mu.Lock()
	var waits []chan struct{}
	for _, a := range m.attachments {
		if a.detaching != nil && match(a) {
			waits = append(waits, a.detaching)
		}
	}
	m.mu.Unlock()
	for _, w := range waits {
		<-w
	}
}

// teardown undoes att. The endpoints whose DEL failed stay recorded (and
// keep their networks busy), so that the next Detach, or the next start of
// hakod, tries again; the namespace goes in any case, unless it is the
// caller's.
func (m *Manager) teardown(ctx context.Context, att *Attachment) error {
	var errs []error
	var failed []Endpoint
	for i := len(att.Endpoints) - 1; i >= 0; i-- {
		ep := att.Endpoints[i]
		if err := m.cni.del(ctx, ep.Conf, att.runtimeConf(ep, netip.Addr{})); err != nil {
			errs = append(errs, fmt.Errorf("detach from network %s: %w", ep.NetworkName, err))
			failed = append(failed, ep)
		}
	}
	if !att.CallersNetNS {
		_, nspan := trace.Start(ctx, "network.netns.remove")
		err := removeNetNS(att.NetNS)
		nspan.End(err)
		if err != nil {
			errs = append(errs, err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	affected := networkIDs(att)
	if len(failed) > 0 {
		slices.Reverse(failed)
		att.Endpoints = failed
		if err := m.store.saveAttachment(att); err != nil {
			errs = append(errs, err)
		}
	} else {
		m.reservations[att.ContainerID].release()
		delete(m.reservations, att.ContainerID)
		if m.attachments[att.ContainerID] == att {
			delete(m.attachments, att.ContainerID)
		}
		if err := m.store.deleteAttachment(att.ContainerID); err != nil {
			errs = append(errs, err)
		}
	}
	m.refreshHostsLocked(nil, affected)
	return errors.Join(errs...)
}

// Connect adds an endpoint on another network to a running container's
// attachment (docker network connect).
func (m *Manager) Connect(ctx context.Context, id string, r EndpointRequest) (ep Endpoint, err error) {
	ctx, span := trace.Start(ctx, "network.connect", "id", id, "network", r.Network)
	defer func() { span.End(err) }()
	unlock := m.lockContainer(id)
	defer unlock()
	m.mu.Lock()
	att := m.attachments[id]
	if att == nil {
		m.mu.Unlock()
		return ep, errdefs.Conflictf("container %s has no network namespace", id)
	}
	n, err := m.getLocked(r.Network)
	if err != nil {
		m.mu.Unlock()
		return ep, err
	}
	if att.endpoint(n.ID) != nil {
		m.mu.Unlock()
		return ep, errdefs.Forbiddenf("endpoint with name %s already exists in network %s", att.Name, n.Name)
	}
	ifname := ""
	for i := 0; ifname == ""; i++ {
		name := fmt.Sprintf("eth%d", i)
		used := false
		for _, e := range att.Endpoints {
			used = used || e.IfName == name
		}
		if !used {
			ifname = name
		}
	}
	newEP, err := m.newEndpoint(n, r, ifname, false)
	if err != nil {
		m.mu.Unlock()
		return ep, err
	}
	att.Endpoints = append(att.Endpoints, newEP)
	att.Plain = false
	i := len(att.Endpoints) - 1
	if err := m.store.saveAttachment(att); err != nil {
		att.Endpoints = att.Endpoints[:i]
		m.mu.Unlock()
		return ep, fmt.Errorf("record the network attachment: %w", err)
	}
	m.mu.Unlock()
	if err := m.addEndpoint(ctx, att, i, r.IPv4); err != nil {
		derr := m.cni.del(context.WithoutCancel(ctx), newEP.Conf, att.runtimeConf(newEP, netip.Addr{}))
		m.mu.Lock()
		if derr == nil {
			att.Endpoints = slices.Delete(att.Endpoints, i, i+1)
		}
		_ = m.store.saveAttachment(att)
		m.mu.Unlock()
		return ep, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.store.saveAttachment(att); err != nil {
		return ep, fmt.Errorf("record the network attachment: %w", err)
	}
	m.refreshHostsLocked(att, []string{n.ID})
	return att.Endpoints[i], nil
}

// Disconnect deletes a running container's endpoint on network id (docker
// network disconnect). Ports published through it are released.
func (m *Manager) Disconnect(ctx context.Context, id, networkID string) (err error) {
	ctx, span := trace.Start(ctx, "network.disconnect", "id", id, "network", networkID)
	defer func() { span.End(err) }()
	unlock := m.lockContainer(id)
	defer unlock()
	m.mu.Lock()
	att := m.attachments[id]
	var ep *Endpoint
	if att != nil {
		ep = att.endpoint(networkID)
	}
	if ep == nil {
		m.mu.Unlock()
		return errdefs.NotFoundf("container %s is not connected to network %s", id, networkID)
	}
	e := *ep
	m.mu.Unlock()
	if err := m.cni.del(ctx, e.Conf, att.runtimeConf(e, netip.Addr{})); err != nil {
		return fmt.Errorf("detach from network %s: %w", e.NetworkName, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	att.Endpoints = slices.DeleteFunc(att.Endpoints, func(x Endpoint) bool { return x.NetworkID == networkID })
	att.Plain = false
	if len(e.PortMappings) > 0 {
		att.Ports = nil
		m.reservations[id].release()
		delete(m.reservations, id)
	}
	if err := m.store.saveAttachment(att); err != nil {
		return err
	}
	m.refreshHostsLocked(att, []string{networkID})
	return nil
}

// Attachment returns a copy of container id's attachment.
func (m *Manager) Attachment(id string) (Attachment, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.attachments[id]
	if a == nil {
		return Attachment{}, false
	}
	return a.clone(), true
}

// Attachments returns a copy of every attachment.
func (m *Manager) Attachments() []Attachment {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Attachment, 0, len(m.attachments))
	for _, a := range m.attachments {
		out = append(out, a.clone())
	}
	return out
}

// Rename records a container's new name and rewrites the hosts files that
// show it.
func (m *Manager) Rename(id, name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.attachments[id]
	if a == nil {
		return
	}
	a.Name = name
	_ = m.store.saveAttachment(a)
	m.refreshHostsLocked(a, networkIDs(a))
}

func (a *Attachment) clone() Attachment {
	c := *a
	c.Endpoints = slices.Clone(a.Endpoints)
	c.Ports = slices.Clone(a.Ports)
	c.ExtraHosts = slices.Clone(a.ExtraHosts)
	c.CNIArgs = slices.Clone(a.CNIArgs)
	return c
}

func networkIDs(a *Attachment) []string {
	var out []string
	for _, ep := range a.Endpoints {
		out = append(out, ep.NetworkID)
	}
	return out
}

// portInUseLocked reports whether another container of this daemon
// publishes port/proto on hostIP (or on all addresses, or hostIP is all).
func (m *Manager) portInUseLocked(hostIP, proto string, port int) bool {
	for _, a := range m.attachments {
		for _, p := range a.Ports {
			if p.HostPort == port && strings.EqualFold(p.Protocol, proto) && (p.HostIP == hostIP || p.HostIP == "" || hostIP == "") {
				return true
			}
		}
	}
	return false
}

// refreshHostsLocked rewrites the hosts file of self (if not nil) and of
// every container on one of the user-defined networks in ids.
func (m *Manager) refreshHostsLocked(self *Attachment, ids []string) {
	targets := map[string]*Attachment{}
	if self != nil && m.attachments[self.ContainerID] == self {
		targets[self.ContainerID] = self
	}
	for _, id := range ids {
		n := m.networks[id]
		if n == nil || n.Default {
			continue
		}
		for _, a := range m.attachments {
			if a.endpoint(id) != nil {
				targets[a.ContainerID] = a
			}
		}
	}
	for _, a := range targets {
		if a.HostsPath == "" {
			continue
		}
		peers := map[string][]peer{}
		for _, ep := range a.Endpoints {
			if n := m.networks[ep.NetworkID]; n != nil && !n.Default {
				peers[ep.NetworkID] = peersOf(ep.NetworkID, m.attachments)
			}
		}
		if err := writeInPlace(a.HostsPath, renderHosts(a, peers)); err != nil {
			m.log.Warn("update a container's hosts file", "container", a.ContainerID, "err", err)
		}
	}
}
