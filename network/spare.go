package network

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/trace"
)

// Spare namespaces: network namespaces made ahead of need, which the next
// container that fits takes over. Two kinds:
//
//   - the spare endpoint: a namespace attached to the default bridge (CNI
//     ADD run, address leased, lo up), for a container on the default
//     network with nothing of its own to ask of the plugins. The bridge
//     plugin's ADD is the longest step of a start on the default bridge
//     (~15 ms of CPU here, two plugin processes, the veth pair, the lease),
//     and it runs beside the runtime's create, competing with it for the
//     CPUs;
//   - the bare namespace: lo up and nothing else, for a container of
//     --network none (or of the default network when there is no default
//     bridge). Making a network namespace is ~1 ms of the kernel's time
//     (copy_net_ns), which the runtime's init spent on the start's path.
//
// With a spare, the start only pins the namespace under the container's
// name. A spare is an ordinary attachment: its ID is "spare-" and a random
// ID, which the container that takes it keeps as the plugins' container ID
// (Attachment.CNIContainerID), so that its DEL releases what the ADD made.
// Its record is written before anything is made, as every attachment's, so
// that what a hakod that dies leaves, the next one's clean-up undoes
// (reconcile: a record without a container).
//
// A spare of a kind is made once a container has taken or been given a
// namespace of that kind, after spareDelay without another attach (so that
// it does not compete with a start under way either), and again after each
// take. hakod's stop detaches them. Config.NoSpares turns them off.

// spareDelay is how long attaches must pause before a spare is made.
const spareDelay = 50 * time.Millisecond

// spareIDPrefix begins the ID of a spare.
const spareIDPrefix = "spare-"

// IsSpare reports whether id is the ID of a spare namespace (an attachment
// record, a lease, a pin of that name belongs to hakod, not to a
// container).
func IsSpare(id string) bool { return strings.HasPrefix(id, spareIDPrefix) }

// spareKind is the kind of a spare namespace.
type spareKind int

const (
	spareEndpoint spareKind = iota // attached to the default bridge
	spareBare                      // lo only
	spareKinds
)

func (k spareKind) String() string { return [...]string{"endpoint", "bare"}[k] }

// spareSlot holds the spare of one kind.
type spareSlot struct {
	att    *Attachment // ready; nil: none
	making bool
	timer  *time.Timer
}

// cniID is the container ID the CNI plugins know the attachment by.
func (a *Attachment) cniID() string {
	if a.CNIContainerID != "" {
		return a.CNIContainerID
	}
	return a.ContainerID
}

// spareKindOf is the kind of spare req can take (ok false: none): nothing
// of the container's own for the plugins (an address, aliases, published
// ports, CNI arguments), a namespace the manager makes, and either no
// network or only the default one.
func (m *Manager) spareKindOf(req AttachRequest) (k spareKind, ok bool) {
	if len(req.Ports) > 0 || len(req.CNIArgs) > 0 || req.NetNS != "" {
		return 0, false
	}
	switch len(req.Networks) {
	case 0:
		return spareBare, true
	case 1:
		r := req.Networks[0]
		if r.ConfList != nil || r.IPv4.IsValid() || len(r.Aliases) > 0 {
			return 0, false
		}
		n, err := m.getLocked(r.Network)
		return spareEndpoint, err == nil && n == m.defaultLocked()
	}
	return 0, false
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

// usableLocked reports whether a spare of kind k can be made and taken
// now: spare endpoints need the default bridge.
func (m *Manager) usableLocked(k spareKind) bool {
	return k == spareBare || m.defaultLocked() != nil
}

// takeSpare gives req the spare namespace of its kind, if there is one and
// req fits: the namespace is pinned at the container's path (and unpinned
// at the spare's), the attachment recorded under the container's ID. nil:
// req is attached the usual way. Called with req's container lock held.
func (m *Manager) takeSpare(ctx context.Context, req AttachRequest) *Attachment {
	m.mu.Lock()
	k, fits := m.spareKindOf(req)
	var sp *Attachment
	if fits && m.usableLocked(k) {
		sp = m.spares[k].att
		if k == spareEndpoint && sp != nil && sp.Endpoints[0].NetworkID != m.defaultLocked().ID {
			sp = nil
		}
	}
	if sp == nil {
		for k := range m.spares {
			m.postponeSpareLocked(spareKind(k))
		}
		m.mu.Unlock()
		return nil
	}
	m.spares[k].att = nil
	m.mu.Unlock()
	_, span := trace.Start(ctx, "network.spare.take", "spare", sp.ContainerID, "kind", k.String())
	path := m.NetNSPath(req.ContainerID)
	err := repin(sp.NetNS, path)
	span.End(err)
	if err != nil {
		m.log.Warn("take a spare network namespace", "kind", k, "err", err)
		m.discardSpare(sp)
		return nil
	}
	spareID := sp.ContainerID
	sp.CNIContainerID, sp.ContainerID, sp.NetNS = spareID, req.ContainerID, path
	sp.Name, sp.Hostname, sp.HostsPath = req.Name, req.Hostname, req.HostsPath
	sp.ExtraHosts = append([]string(nil), req.ExtraHosts...)
	m.mu.Lock()
	m.attachments[req.ContainerID] = sp
	err = m.store.saveAttachment(sp)
	if err == nil {
		err = m.store.deleteAttachment(spareID)
	}
	m.scheduleSpareLocked(k)
	m.mu.Unlock()
	if err != nil {
		// The attachment is the container's now; a record not
		// written is made good by Complete's.
		m.log.Warn("record the spare network namespace's new owner", "container", req.ContainerID, "err", err)
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

// scheduleSpareLocked arranges for a spare of kind k to be made after
// spareDelay, unless one exists, is being made, or cannot be (no default
// bridge for an endpoint, spares turned off, the manager closing). Under
// m.mu.
func (m *Manager) scheduleSpareLocked(k spareKind) {
	s := &m.spares[k]
	if m.cfg.NoSpares || m.closed || s.att != nil || s.making || !m.usableLocked(k) {
		return
	}
	if s.timer == nil {
		s.timer = time.AfterFunc(spareDelay, func() { m.makeSpare(k) })
		return
	}
	s.timer.Reset(spareDelay)
}

// postponeSpareLocked moves the pending making of a spare of kind k
// spareDelay past now: an attach is under way. Under m.mu.
func (m *Manager) postponeSpareLocked(k spareKind) {
	s := &m.spares[k]
	if s.timer != nil && !s.making && s.att == nil && !m.closed && s.timer.Stop() {
		s.timer.Reset(spareDelay)
	}
}

// makeSpare makes the spare of kind k (its timer's function).
func (m *Manager) makeSpare(k spareKind) {
	m.mu.Lock()
	s := &m.spares[k]
	if m.closed || s.att != nil || s.making || !m.usableLocked(k) {
		m.mu.Unlock()
		return
	}
	s.making = true
	m.bg.Add(1)
	defer m.bg.Done()
	id := spareIDPrefix + newID()[:32]
	att := &Attachment{ContainerID: id, NetNS: m.NetNSPath(id), Plain: true}
	var err error
	if k == spareEndpoint {
		var ep Endpoint
		ep, err = m.newEndpoint(m.defaultLocked(), EndpointRequest{Network: DefaultName}, "eth0", false)
		att.Endpoints = []Endpoint{ep}
	}
	if err == nil {
		err = m.store.saveAttachment(att) // first: see the package's doc
	}
	m.mu.Unlock()
	ctx := context.Background()
	if err == nil {
		// Both kinds are IPv4 only, as what Prepare makes for them.
		if err = createNetNS(att.NetNS, true); err == nil && k == spareEndpoint {
			err = m.addEndpoint(ctx, att, 0, netip.Addr{})
		}
	}
	m.mu.Lock()
	s.making = false
	if err == nil && k == spareEndpoint {
		err = m.store.saveAttachment(att) // with the address
	}
	if err != nil || m.closed {
		m.mu.Unlock()
		if err != nil {
			m.log.Warn("make a spare network namespace", "kind", k, "err", err)
		}
		if terr := m.teardown(ctx, att); terr != nil {
			m.log.Warn("undo a spare network namespace", "kind", k, "err", terr)
		}
		return
	}
	s.att = att
	m.mu.Unlock()
}

// recycle makes the namespace of att, a container's that is being
// detached, the spare of its kind, if att is plain and that spare is
// missing; false: att is to be undone as usual. Called by the detach,
// with the container's lock held, once the caller vouched for the
// namespace (DetachInBackground's reuse).
//
// Back-to-back `run --rm` on the default bridge otherwise pay, in the
// background but on two CPUs, for the bridge plugin's DEL of each
// container and its ADD of the next spare (the plugins are two processes
// each, ~15 ms of CPU per ADD here), and a none container for a network
// namespace's making and its teardown in the kernel. The namespace keeps
// its interfaces, address and lease (under the spare's ID, which the
// plugins' ADD named and their DEL will); the container's names leave the
// hosts files. An endpoint the container's own ADD made is not reused (its
// plugins' ID is the container's).
//
// A namespace with sockets is not reused: a TCP connection in time-wait
// would refuse the next container a bind to its port, and a socket whose
// descriptor a container passed out (a packet socket) would see the next
// one's traffic. Sockets just closed are counted until the kernel frees
// them, after an RCU grace period for some kinds (netlink, UDP): those of
// the plugins' ADD when the container ran for a few milliseconds, of a
// DNS lookup at its end. So a count of sockets without time-wait is read
// again once, after recheckDelay.
func (m *Manager) recycle(ctx context.Context, att *Attachment) bool {
	if !att.Plain || att.CallersNetNS || len(att.Ports) > 0 || len(att.CNIArgs) > 0 || len(att.Endpoints) > 1 {
		return false
	}
	k := spareBare
	if len(att.Endpoints) == 1 {
		// Only a spare's: a spare is known to the plugins by its own ID.
		if !IsSpare(att.cniID()) {
			return false
		}
		k = spareEndpoint
	}
	m.mu.Lock()
	missing := m.spareMissingLocked(k, att)
	m.mu.Unlock()
	if !missing {
		return false
	}
	rctx, span := trace.Start(ctx, "network.spare.recycle", "kind", k.String())
	err := quietNetNS(rctx, att.NetNS)
	var sp *Attachment
	if err == nil {
		m.mu.Lock()
		claimed := m.spareMissingLocked(k, att)
		if claimed {
			m.spares[k].making = true // no other spare of the kind meanwhile
		}
		m.mu.Unlock()
		if !claimed {
			err = errSpareMade
		} else {
			sp, err = m.recycleAs(rctx, att)
			m.mu.Lock()
			m.spares[k].making = false
			m.mu.Unlock()
		}
	}
	span.End(err)
	if err != nil {
		if !errors.Is(err, errNotQuiet) && !errors.Is(err, errSpareMade) {
			m.log.Warn("make a detached container's network namespace the spare", "container", att.ContainerID, "err", err)
		}
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.spares[k].att = sp
	m.reservations[att.ContainerID].release()
	delete(m.reservations, att.ContainerID)
	if m.attachments[att.ContainerID] == att {
		delete(m.attachments, att.ContainerID)
	}
	m.refreshHostsLocked(nil, networkIDs(att))
	return true
}

// spareMissingLocked reports whether the spare of kind k is missing, not
// being made, and can be att's namespace. Under m.mu.
func (m *Manager) spareMissingLocked(k spareKind, att *Attachment) bool {
	s := &m.spares[k]
	if m.cfg.NoSpares || m.closed || s.att != nil || s.making || !m.usableLocked(k) {
		return false
	}
	return k == spareBare || (att.Endpoints[0].NetworkID == m.defaultLocked().ID && len(att.Endpoints[0].Aliases) == 0)
}

// recheckDelay is how long recycle waits before it counts a namespace's
// sockets again.
const recheckDelay = 20 * time.Millisecond

var (
	// errNotQuiet: the namespace has sockets.
	errNotQuiet = errors.New("the network namespace has sockets")
	// errSpareMade: a spare of the kind appeared meanwhile.
	errSpareMade = errors.New("a spare exists")
)

// quietNetNS returns nil when the namespace at path has no sockets and no
// TCP connection in time-wait (see recycle), errNotQuiet when it has.
func quietNetNS(ctx context.Context, path string) error {
	for try := 0; ; try++ {
		_, span := trace.Start(ctx, "network.netns.sockets")
		used, tw, err := socketCounts(path)
		span.SetAttr("used", strconv.Itoa(used), "time_wait", strconv.Itoa(tw))
		span.End(err)
		switch {
		case err != nil:
			return err
		case used == 0 && tw == 0:
			return nil
		case tw > 0 || try > 0:
			return errNotQuiet
		}
		time.Sleep(recheckDelay)
	}
}

// recycleAs records att's namespace as a spare and moves it there: the
// spare's record first, as every attachment's, then the pin, then the
// container's record goes. The spare gets back the ID of the spare it was
// (an endpoint's pin, record and lease then agree again), or a new one (a
// namespace with lo only that a container made).
func (m *Manager) recycleAs(ctx context.Context, att *Attachment) (*Attachment, error) {
	id := att.cniID()
	if !IsSpare(id) {
		id = spareIDPrefix + newID()[:32]
	}
	sp := &Attachment{ContainerID: id, NetNS: m.NetNSPath(id), Plain: true}
	if len(att.Endpoints) > 0 {
		sp.Endpoints = att.Endpoints
	}
	if err := m.store.saveAttachment(sp); err != nil {
		return nil, err
	}
	_, span := trace.Start(ctx, "network.netns.repin")
	err := repin(att.NetNS, sp.NetNS)
	span.End(err)
	if err != nil {
		_ = m.store.deleteAttachment(id)
		return nil, err
	}
	if err := m.store.deleteAttachment(att.ContainerID); err != nil {
		// Its record must go: left, the next start's clean-up would
		// run the DEL it names, the spare's, under whoever took the
		// spare by then. So back as it was, and detached as usual.
		if rerr := repin(sp.NetNS, att.NetNS); rerr != nil {
			m.log.Warn("put a network namespace back", "container", att.ContainerID, "err", rerr)
			return sp, nil // the spare holds it; the record left is the lesser harm
		}
		_ = m.store.deleteAttachment(id)
		return nil, err
	}
	return sp, nil
}

// discardSpare detaches a spare in the background.
func (m *Manager) discardSpare(sp *Attachment) {
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		if err := m.teardown(context.Background(), sp); err != nil {
			m.log.Warn("detach a spare network namespace", "err", err)
		}
	}()
}

// closeSpares stops making spares and detaches those there are (hakod's
// stop: a stopped hakod leaves no veth or namespace of its own).
func (m *Manager) closeSpares() error {
	m.mu.Lock()
	m.closed = true
	for k := range m.spares {
		if t := m.spares[k].timer; t != nil {
			t.Stop()
		}
	}
	m.mu.Unlock()
	m.bg.Wait() // spares being made
	var errs []error
	for k := range m.spares {
		m.mu.Lock()
		sp := m.spares[k].att
		m.spares[k].att = nil
		m.mu.Unlock()
		if sp == nil {
			continue
		}
		if err := m.teardown(context.Background(), sp); err != nil {
			errs = append(errs, fmt.Errorf("detach the spare network namespace (%s): %w", spareKind(k), err))
		}
	}
	return errors.Join(errs...)
}
