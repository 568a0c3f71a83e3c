package network

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/trace"
)

// The spare endpoint: a network namespace attached to the default bridge
// ahead of need (CNI ADD run, address leased, lo up), which the next
// container started on the default network with nothing of its own to ask
// of the plugins takes over. The bridge plugin's ADD is the longest step
// of a start on the default bridge (~15 ms of CPU here, two plugin
// processes, the veth pair, the lease), and it runs beside the runtime's
// create, competing with it for the CPUs; with a spare, the start only
// pins the namespace under the container's name.
//
// A spare is an ordinary attachment for the CNI plugins: its CNI container
// ID is "spare-" and a random ID, which the container that takes it keeps
// for the plugins (Attachment.CNIContainerID), so that its DEL releases
// what the ADD made. Its record is written before anything is made, as
// every attachment's, so that a hakod that dies leaves nothing the next
// one's clean-up (reconcile: a record without a container) does not undo.
//
// A spare is made once a container has attached to the default network,
// after spareDelay without another attach (so that it does not compete
// with a start under way either), and again after each take. hakod's stop
// detaches it. Config.NoSpareEndpoint turns it off.

// spareDelay is how long attaches must pause before a spare is made.
const spareDelay = 50 * time.Millisecond

// spareIDPrefix begins the CNI container ID of a spare.
const spareIDPrefix = "spare-"

// IsSpare reports whether id is the CNI container ID of a spare endpoint
// (an attachment record, a lease, a pin of that name belongs to hakod, not
// to a container).
func IsSpare(id string) bool { return strings.HasPrefix(id, spareIDPrefix) }

// cniID is the container ID the CNI plugins know the attachment by.
func (a *Attachment) cniID() string {
	if a.CNIContainerID != "" {
		return a.CNIContainerID
	}
	return a.ContainerID
}

// spareFits reports whether req can take a spare: one endpoint, on the
// default network, with nothing of the container's own for the plugins
// (an address, aliases, published ports, CNI arguments) and a namespace
// the manager makes.
func (m *Manager) spareFits(req AttachRequest, def *Network) bool {
	if len(req.Networks) != 1 || len(req.Ports) > 0 || len(req.CNIArgs) > 0 || req.NetNS != "" {
		return false
	}
	r := req.Networks[0]
	if r.ConfList != nil || r.IPv4.IsValid() || len(r.Aliases) > 0 {
		return false
	}
	n, err := m.getLocked(r.Network)
	return err == nil && n == def
}

// defaultLocked is the default network, nil without one (--bridge none)
// or while it is unavailable.
func (m *Manager) defaultLocked() *Network {
	for _, n := range m.networks {
		if n.Default && n.Driver == "bridge" && m.unavailable[n.ID] == nil {
			return n
		}
	}
	return nil
}

// takeSpare gives req the spare endpoint, if there is one and req fits:
// the namespace is pinned at the container's path (and unpinned at the
// spare's), the attachment recorded under the container's ID. nil: req
// is attached the usual way. Called with req's container lock held.
func (m *Manager) takeSpare(ctx context.Context, req AttachRequest) *Attachment {
	m.mu.Lock()
	def := m.defaultLocked()
	sp := m.spare
	if sp == nil || def == nil || !m.spareFits(req, def) || sp.Endpoints[0].NetworkID != def.ID {
		m.postponeSpareLocked()
		m.mu.Unlock()
		return nil
	}
	m.spare = nil
	m.mu.Unlock()
	_, span := trace.Start(ctx, "network.spare.take", "spare", sp.ContainerID)
	path := m.NetNSPath(req.ContainerID)
	err := repin(sp.NetNS, path)
	span.End(err)
	if err != nil {
		m.log.Warn("take the spare network endpoint", "err", err)
		m.discardSpare(sp)
		return nil
	}
	spareID := sp.ContainerID
	sp.CNIContainerID, sp.ContainerID, sp.NetNS = spareID, req.ContainerID, path
	sp.Name, sp.Hostname, sp.HostsPath = req.Name, req.Hostname, req.HostsPath
	sp.ExtraHosts = append([]string(nil), req.ExtraHosts...)
	sp.Endpoints[0].Aliases = nil
	m.mu.Lock()
	m.attachments[req.ContainerID] = sp
	err = m.store.saveAttachment(sp)
	if err == nil {
		err = m.store.deleteAttachment(spareID)
	}
	m.scheduleSpareLocked()
	m.mu.Unlock()
	if err != nil {
		// The attachment is the container's now; a record not
		// written is made good by Complete's.
		m.log.Warn("record the spare network endpoint's new owner", "container", req.ContainerID, "err", err)
	}
	return sp
}

// repin pins the namespace pinned at from at to (a bind mount of the pin)
// and unpins from.
func repin(from, to string) (err error) {
	if fileExists(to) {
		_ = removeNetNS(to) // a crash's leftover, without a record
	}
	f, err := os.OpenFile(to, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("create netns file: %w", err)
	}
	f.Close()
	if err := unix.Mount(from, to, "none", unix.MS_BIND, ""); err != nil {
		os.Remove(to)
		return fmt.Errorf("pin the network namespace at %s: %w", to, err)
	}
	if err := removeNetNS(from); err != nil {
		_ = removeNetNS(to)
		return err
	}
	return nil
}

// scheduleSpareLocked arranges for a spare to be made after spareDelay,
// unless one exists, is being made, or cannot be (no default bridge, the
// spare turned off, the manager closing). Under m.mu.
func (m *Manager) scheduleSpareLocked() {
	if m.cfg.NoSpareEndpoint || m.closed || m.spare != nil || m.spareMaking || m.defaultLocked() == nil {
		return
	}
	if m.spareTimer == nil {
		m.spareTimer = time.AfterFunc(spareDelay, m.makeSpare)
		return
	}
	m.spareTimer.Reset(spareDelay)
}

// postponeSpareLocked moves a pending spare's making spareDelay past now:
// an attach is under way. Under m.mu.
func (m *Manager) postponeSpareLocked() {
	if m.spareTimer != nil && !m.spareMaking && m.spare == nil && !m.closed && m.spareTimer.Stop() {
		m.spareTimer.Reset(spareDelay)
	}
}

// makeSpare makes the spare endpoint (spareTimer's function).
func (m *Manager) makeSpare() {
	m.mu.Lock()
	def := m.defaultLocked()
	if m.closed || m.spare != nil || m.spareMaking || def == nil {
		m.mu.Unlock()
		return
	}
	m.spareMaking = true
	m.bg.Add(1)
	defer m.bg.Done()
	id := spareIDPrefix + newID()[:32]
	ep, err := m.newEndpoint(def, EndpointRequest{Network: def.ID}, "eth0", false)
	att := &Attachment{ContainerID: id, NetNS: m.NetNSPath(id), Endpoints: []Endpoint{ep}}
	if err == nil {
		err = m.store.saveAttachment(att) // first: see the package's doc
	}
	m.mu.Unlock()
	ctx := context.Background()
	if err == nil {
		if err = createNetNS(att.NetNS, true); err == nil {
			err = m.addEndpoint(ctx, att, 0, netip.Addr{})
		}
	}
	m.mu.Lock()
	m.spareMaking = false
	if err == nil {
		err = m.store.saveAttachment(att) // with the address
	}
	if err != nil || m.closed {
		m.mu.Unlock()
		if err != nil {
			m.log.Warn("make a spare network endpoint", "err", err)
		}
		if terr := m.teardown(ctx, att); terr != nil {
			m.log.Warn("undo a spare network endpoint", "err", terr)
		}
		return
	}
	m.spare = att
	m.mu.Unlock()
}

// discardSpare detaches a spare in the background.
func (m *Manager) discardSpare(sp *Attachment) {
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		if err := m.teardown(context.Background(), sp); err != nil {
			m.log.Warn("detach the spare network endpoint", "err", err)
		}
	}()
}

// closeSpare stops making spares and detaches the one there is (hakod's
// stop: a stopped hakod leaves no veth of its own on the bridge).
func (m *Manager) closeSpare() error {
	m.mu.Lock()
	m.closed = true
	if m.spareTimer != nil {
		m.spareTimer.Stop()
	}
	m.mu.Unlock()
	m.bg.Wait() // a spare being made
	m.mu.Lock()
	sp := m.spare
	m.spare = nil
	m.mu.Unlock()
	if sp == nil {
		return nil
	}
	if err := m.teardown(context.Background(), sp); err != nil {
		return fmt.Errorf("detach the spare network endpoint: %w", err)
	}
	return nil
}
