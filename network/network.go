// Package network gives hakod's containers their networks: docker's
// networks (the default bridge, host, none, and user-defined bridge
// networks) made with CNI's standard plugins, the containers' network
// namespaces, their endpoints on those networks, published ports, and the
// /etc/hosts entries by which containers of a user-defined network find
// each other. It also attaches containers to CNI configurations that are
// not its networks (a CNI configuration directory's, for the CRI).
//
// It knows nothing of containers beyond an ID, a name and the paths it is
// given, and imports nothing of the engine: the engine (and the CRI through
// it) attaches a container before its runtime starts and detaches it when
// it stops. Networks persist under DATA-ROOT/network; namespaces
// (EXEC-ROOT/netns), endpoints, leases and CNI's cache are runtime state
// under EXEC-ROOT/network. See docs/networking.md.
package network

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hako-project/hako/errdefs"
)

// Docker's names of the predefined networks and their drivers.
const (
	DefaultName = "bridge"
	HostName    = "host"
	NoneName    = "none"
)

// Docker's bridge driver options that hakod reads.
const (
	optBridgeName  = "com.docker.network.bridge.name"
	optMTU         = "com.docker.network.driver.mtu"
	optMasquerade  = "com.docker.network.bridge.enable_ip_masquerade"
	optDefault     = "com.docker.network.bridge.default_bridge"
	optICC         = "com.docker.network.bridge.enable_icc"
	optHostBinding = "com.docker.network.bridge.host_binding_ipv4"
)

// DefaultExecRoot is hakod's default exec root, whose default bridge is
// called hako0; a daemon with another exec root (tests, a second hakod)
// names its default bridge after the network's ID instead, so that several
// daemons never share a bridge.
const DefaultExecRoot = "/run/hako"

// Config is what the manager needs from hakod.
type Config struct {
	DataRoot string
	ExecRoot string
	// PluginDirs are searched for CNI plugins (default /usr/lib/cni, where
	// Debian's containernetworking-plugins puts them, then /opt/cni/bin).
	PluginDirs []string
	// DefaultBridge is the Linux bridge of the default network (dockerd's
	// --bridge): "" for hako0 (or hk-ID under another exec root), "none"
	// for no default bridge network: containers of the default network
	// then get a namespace with loopback only.
	DefaultBridge string
	// DefaultBIP is the default bridge's gateway address and prefix
	// (dockerd's --bip, 172.17.0.1/16); zero: the first free default pool.
	DefaultBIP netip.Prefix
	// NoSpares: make every container's namespace when it starts, without
	// the spares made ahead (spare.go).
	NoSpares bool
	Log      *slog.Logger
}

// Manager keeps the networks and the containers' attachments. It is safe
// for concurrent use.
type Manager struct {
	cfg      Config
	log      *slog.Logger
	store    store
	cni      *cni
	ipamDir  string
	netnsDir string

	mu           sync.Mutex
	networks     map[string]*Network     // by ID
	attachments  map[string]*Attachment  // by container ID
	reservations map[string]*reservation // by container ID
	ctrLocks     map[string]*ctrLock     // serializes operations per container
	unavailable  map[string]error        // networks whose bridge could not be made, by ID
	bg           sync.WaitGroup          // Detach's background work, the spare's making

	// The spare namespaces (spare.go): made ahead, taken by the next
	// container that fits; kept out of attachments until then.
	spares [spareKinds]spareSlot
	closed bool
}

// Open loads the networks, creates the predefined ones on first start,
// makes sure every bridge network's bridge and rules exist (after a
// reboot they do not), and loads the attachments of containers that ran
// when hakod stopped, reserving their ports again.
func Open(ctx context.Context, cfg Config) (*Manager, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if len(cfg.PluginDirs) == 0 {
		cfg.PluginDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}
	}
	m := newManager(cfg)
	if err := ensureDirs(m.store.networksDir, m.store.attachmentsDir, m.ipamDir, m.cacheDir()); err != nil {
		return nil, err
	}
	if err := prepareNetNSDir(m.netnsDir); err != nil {
		return nil, err
	}
	nets, err := m.store.loadNetworks()
	if err != nil {
		return nil, fmt.Errorf("load networks: %w", err)
	}
	for _, n := range nets {
		m.networks[n.ID] = n
	}
	if err := m.ensurePredefined(ctx); err != nil {
		return nil, err
	}
	if err := pluginsPresent(cfg.PluginDirs); err != nil {
		// host and none still work; containers of bridge networks fail
		// to start with the reason.
		m.log.WarnContext(ctx, "bridge networks unavailable", "err", err)
		for _, n := range m.networks {
			if n.Driver == "bridge" {
				m.unavailable[n.ID] = err
			}
		}
	}
	atts, err := m.store.loadAttachments()
	if err != nil {
		return nil, fmt.Errorf("load network attachments: %w", err)
	}
	for _, a := range atts {
		m.attachments[a.ContainerID] = a
		if len(a.Ports) > 0 {
			res, errs := rebind(a.Ports)
			for _, err := range errs {
				m.log.Warn("published port not reserved again", "container", a.ContainerID, "err", err)
			}
			m.reservations[a.ContainerID] = res
		}
	}
	return m, nil
}

func newManager(cfg Config) *Manager {
	root := filepath.Join(cfg.ExecRoot, "network")
	m := &Manager{
		cfg: cfg, log: cfg.Log,
		store: store{
			networksDir:    filepath.Join(cfg.DataRoot, "network", "networks"),
			attachmentsDir: filepath.Join(root, "attachments"),
		},
		ipamDir: filepath.Join(root, "ipam"), netnsDir: netnsDir(cfg.ExecRoot),
		networks: map[string]*Network{}, attachments: map[string]*Attachment{},
		reservations: map[string]*reservation{}, ctrLocks: map[string]*ctrLock{}, unavailable: map[string]error{},
	}
	m.cni = newCNI(cfg.PluginDirs, m.cacheDir())
	return m
}

func (m *Manager) cacheDir() string { return filepath.Join(m.cfg.ExecRoot, "network", "cni-cache") }

// Close waits for detaches under way and releases the port reservations.
// Attachments stay: their containers keep running, and the next Open takes
// them up again. The bridges (and rules) of networks without containers
// go: a stopped hakod with nothing running leaves the host's links and
// firewall as it found them, and the next Open makes them again.
func (m *Manager) Close() error {
	var errs []error
	if err := m.closeSpares(); err != nil { // spare.go; waits for the background work
		errs = append(errs, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, r := range m.reservations {
		r.release()
		delete(m.reservations, id)
	}
	for _, n := range m.networks {
		if n.Driver == "bridge" && len(m.endpointsLocked(n.ID)) == 0 {
			if err := m.tearDownBridge(n); err != nil {
				errs = append(errs, fmt.Errorf("network %s: %w", n.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// NetNSPath is where the network namespace of container id is pinned.
func (m *Manager) NetNSPath(id string) string { return filepath.Join(m.netnsDir, id) }

// ensurePredefined creates host, none and the default bridge network when
// they are missing, and re-creates every bridge network's bridge and rules.
func (m *Manager) ensurePredefined(ctx context.Context) error {
	var host, none, def *Network
	for _, n := range m.networks {
		switch {
		case n.Driver == "host":
			host = n
		case n.Driver == "null":
			none = n
		case n.Default:
			def = n
		}
	}
	now := time.Now().UTC()
	for _, p := range []struct {
		n            **Network
		name, driver string
	}{{&host, HostName, "host"}, {&none, NoneName, "null"}} {
		if *p.n != nil {
			continue
		}
		n := &Network{ID: newID(), Name: p.name, Driver: p.driver, Created: now, IPAMDriver: "default"}
		if err := m.store.saveNetwork(n); err != nil {
			return fmt.Errorf("save network %s: %w", p.name, err)
		}
		m.networks[n.ID] = n
	}
	if m.cfg.DefaultBridge == "none" {
		if def != nil {
			// Kept on disk, not served: dockerd --bridge none has no
			// "bridge" network either.
			delete(m.networks, def.ID)
		}
	} else if err := m.ensureDefault(def, now); err != nil {
		return err
	}
	for _, n := range m.sortedNetworks() {
		if n.Driver != "bridge" || n.Default {
			continue
		}
		// A broken user network should not keep hakod from starting; its
		// containers will fail to start with the reason.
		var err error
		if host, herr := hostPrefixes(map[string]bool{n.Bridge: true}); herr == nil && overlapsAny(n.Subnet, host) {
			err = fmt.Errorf("its subnet %s is in use on the host", n.Subnet)
		} else {
			err = m.setUpBridge(n)
		}
		if err != nil {
			m.log.WarnContext(ctx, "network unavailable", "network", n.Name, "err", err)
			m.unavailable[n.ID] = err
		}
	}
	return nil
}

// ensureDefault makes the default bridge network usable: created on first
// start (172.17.0.0/16 unless that clashes with the host, then the next
// free default pool, as docker picks), and on later starts checked again,
// since what a host uses can change while hakod is down: a subnet that now
// clashes with a route that is not ours is replaced by a free one, unless
// the user chose it (--bip).
func (m *Manager) ensureDefault(def *Network, now time.Time) error {
	unlock, err := hostLock()
	if err != nil {
		return err
	}
	defer unlock()
	if def == nil {
		def = &Network{ID: newID(), Name: DefaultName, Driver: "bridge", Created: now, Default: true, IPAMDriver: "default"}
	}
	def.Bridge = m.cfg.DefaultBridge
	if def.Bridge == "" {
		def.Bridge = "hako0"
		if filepath.Clean(m.cfg.ExecRoot) != DefaultExecRoot {
			def.Bridge = "hk-" + def.ID[:12]
		}
	}
	def.Options = map[string]string{
		optDefault: "true", optICC: "true", optMasquerade: "true", optHostBinding: "0.0.0.0",
		optBridgeName: def.Bridge, optMTU: "1500",
	}
	switch {
	case m.cfg.DefaultBIP.IsValid():
		def.Subnet = m.cfg.DefaultBIP.Masked()
		def.Gateway = m.cfg.DefaultBIP.Addr()
		def.UserSubnet = false
	default:
		ok := def.Subnet.IsValid()
		if ok {
			// Still ours? Our bridge holding the gateway is; a host route
			// or address elsewhere in the subnet is a clash.
			host, err := hostPrefixes(map[string]bool{def.Bridge: true})
			if err != nil {
				return err
			}
			ok = !overlapsAny(def.Subnet, host) && !overlapsAny(def.Subnet, m.subnetsExcept(def.ID))
		}
		if !ok {
			// A stale address of the previous subnet goes with the bridge.
			if len(bridgeAddrs(def.Bridge)) > 0 {
				if err := deleteBridge(def.Bridge); err != nil {
					return err
				}
			}
			p, err := pickSubnet(m.subnetsExcept(def.ID), map[string]bool{})
			if err != nil {
				return fmt.Errorf("default bridge network: %w", err)
			}
			def.Subnet, def.Gateway = p, gatewayOf(p)
		}
	}
	if err := m.setUpBridge(def); err != nil {
		return fmt.Errorf("default bridge network: %w", err)
	}
	if err := m.store.saveNetwork(def); err != nil {
		return fmt.Errorf("save the default bridge network: %w", err)
	}
	m.networks[def.ID] = def
	return nil
}

// setUpBridge creates n's bridge (with the gateway address, unless n is
// internal) and installs its rules.
func (m *Manager) setUpBridge(n *Network) error {
	mtu, _ := strconv.Atoi(n.Options[optMTU])
	gw := n.Gateway
	if n.Internal {
		gw = netip.Addr{}
	}
	if err := ensureBridge(n.Bridge, gw, n.Subnet.Bits(), mtu); err != nil {
		return err
	}
	return installRules(n)
}

// subnetsExcept lists the subnets of our bridge networks but id's.
func (m *Manager) subnetsExcept(id string) []netip.Prefix {
	var out []netip.Prefix
	for _, n := range m.networks {
		if n.ID != id && n.Subnet.IsValid() {
			out = append(out, n.Subnet)
		}
	}
	return out
}

// sortedNetworks is every network, by creation time.
func (m *Manager) sortedNetworks() []*Network {
	out := make([]*Network, 0, len(m.networks))
	for _, n := range m.networks {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// List returns a copy of every network.
func (m *Manager) List() []Network {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Network
	for _, n := range m.sortedNetworks() {
		out = append(out, *n)
	}
	return out
}

// Get finds a network as docker does: by full ID, then by name, then by
// unique ID prefix.
func (m *Manager) Get(ref string) (Network, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.getLocked(ref)
	if err != nil {
		return Network{}, err
	}
	return *n, nil
}

func (m *Manager) getLocked(ref string) (*Network, error) {
	if n, ok := m.networks[ref]; ok {
		return n, nil
	}
	var byName []*Network
	for _, n := range m.networks {
		if n.Name == ref {
			byName = append(byName, n)
		}
	}
	if len(byName) == 1 {
		return byName[0], nil
	}
	if len(byName) > 1 {
		return nil, errdefs.Invalidf("network %s is ambiguous (%d matches found based on name)", ref, len(byName))
	}
	var byPrefix []*Network
	if ref != "" {
		for id, n := range m.networks {
			if strings.HasPrefix(id, ref) {
				byPrefix = append(byPrefix, n)
			}
		}
	}
	if len(byPrefix) == 1 {
		return byPrefix[0], nil
	}
	if len(byPrefix) > 1 {
		return nil, errdefs.Invalidf("network %s is ambiguous (%d matches found based on ID prefix)", ref, len(byPrefix))
	}
	return nil, errdefs.NotFoundf("network %s not found", ref)
}

// Default returns the default bridge network, if hakod has one.
func (m *Manager) Default() (Network, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, n := range m.networks {
		if n.Default {
			return *n, true
		}
	}
	return Network{}, false
}

func newID() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

// ctrLock serializes the operations on one container's attachment
// (attach, connect, disconnect, detach), which run CNI plugins outside
// the manager's lock.
type ctrLock struct {
	mu   sync.Mutex
	refs int
}

func (m *Manager) lockContainer(id string) func() {
	m.mu.Lock()
	l := m.ctrLocks[id]
	if l == nil {
		l = &ctrLock{}
		m.ctrLocks[id] = l
	}
	l.refs++
	m.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		m.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(m.ctrLocks, id)
		}
		m.mu.Unlock()
	}
}

// fileExists reports whether path exists.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// discardLogger is a logger that drops everything.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
