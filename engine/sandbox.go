package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/trace"
)

// A sandbox is the environment a Kubernetes pod's containers share: one
// network, IPC and UTS namespace (each the host's or a pinned new one, see
// nspin.go), a /dev/shm, and the pod's hostname, /etc/hosts and
// /etc/resolv.conf. Containers join it through Record.Sandbox and a
// ContainerSpec (containerspec.go). The CRI server (api/cri) drives it;
// networking (CNI) is attached to its network namespace by the caller.

// SandboxState is a sandbox's state as the CRI names it.
type SandboxState string

// Sandbox states.
const (
	SandboxReady    SandboxState = "ready"
	SandboxNotReady SandboxState = "notready"
)

// SandboxConfig is what a new sandbox needs.
type SandboxConfig struct {
	// Name is unique among sandboxes (the CRI's name_namespace_uid_attempt).
	Name     string
	Hostname string
	// HostNetwork shares the host's network and UTS namespaces; HostIPC the
	// host's IPC namespace (and /dev/shm).
	HostNetwork, HostIPC bool
	// ExternalNetwork: the caller makes the pod's network namespace (the
	// network package pins it when it attaches the pod) and records it
	// with UpdateSandbox; the sandbox pins only its UTS and IPC ones.
	ExternalNetwork bool
	// DNS: without servers, searches and options the host's resolv.conf
	// is copied.
	DNSServers, DNSSearches, DNSOptions []string
	// ShmSize of the pod's /dev/shm (64 MiB if 0).
	ShmSize int64
	// SharePID gives the pod a PID namespace its containers share, whose
	// init is a pause process (pause.go).
	SharePID bool
	// UserNS, when set, gives the pod a user namespace with these ID
	// mappings, which then owns all its namespaces (userns.go). The pod's
	// network namespace is then the sandbox's own, with loopback only:
	// package network attaches only namespaces it makes itself.
	UserNS *IDMappings
	// Extra holds the client's metadata.
	Extra map[string]string
}

// SandboxRecord is what is persisted of a sandbox.
type SandboxRecord struct {
	ID          string       `json:"id"`
	Name        string       `json:"name"`
	Created     time.Time    `json:"created"`
	State       SandboxState `json:"state"`
	Hostname    string       `json:"hostname,omitempty"`
	HostNetwork bool         `json:"host_network,omitempty"`
	HostIPC     bool         `json:"host_ipc,omitempty"`
	NetNS       string       `json:"netns,omitempty"` // pinned; "" = the host's
	IPCNS       string       `json:"ipcns,omitempty"`
	UTSNS       string       `json:"utsns,omitempty"`
	UserNS      string       `json:"userns,omitempty"`
	// UserNSRoot is the host uid and gid of the user namespace's root.
	UserNSRoot [2]uint32 `json:"userns_root,omitzero"`
	Shm        string    `json:"shm,omitempty"` // the pod's /dev/shm; "" = the host's
	// PausePid and PauseStart (its start time in clock ticks, to tell it
	// from a later process with the same pid) name the init of the pod's
	// shared PID namespace.
	PausePid   int               `json:"pause_pid,omitempty"`
	PauseStart uint64            `json:"pause_start,omitempty"`
	Extra      map[string]string `json:"extra,omitempty"`
}

// Sandbox is one pod sandbox.
type Sandbox struct {
	mu  sync.Mutex
	rec SandboxRecord
	// op serialises stop and remove of one sandbox.
	op sync.Mutex
}

// Snapshot returns a copy of the sandbox's record.
func (s *Sandbox) Snapshot() SandboxRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rec
	r.Extra = make(map[string]string, len(s.rec.Extra))
	for k, v := range s.rec.Extra {
		r.Extra[k] = v
	}
	return r
}

// ID is the sandbox's ID.
func (s *Sandbox) ID() string { return s.rec.ID }

// sandboxSet is the engine's sandboxes, loaded on first use.
type sandboxSet struct {
	once sync.Once
	err  error
	mu   sync.Mutex
	byID map[string]*Sandbox
	name map[string]string
}

var bucketSandboxes = []byte("sandboxes")

func (e *Engine) sandboxDir(id string) string {
	return filepath.Join(e.cfg.DataRoot, "sandboxes", id)
}

func (e *Engine) sandboxRunDir(id string) string {
	return filepath.Join(e.cfg.ExecRoot, "sandboxes", id)
}

// sandboxSet loads the sandboxes from the database the first time.
func (e *Engine) sandboxSet() (*sandboxSet, error) {
	s := &e.sandboxes
	s.once.Do(func() {
		s.byID, s.name = map[string]*Sandbox{}, map[string]string{}
		s.err = e.db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists(bucketSandboxes)
			if err != nil {
				return err
			}
			return b.ForEach(func(k, v []byte) error {
				sb := &Sandbox{}
				if err := json.Unmarshal(v, &sb.rec); err != nil {
					e.log.Warn("skipping unreadable sandbox record", "id", string(k), "err", err)
					return nil
				}
				s.byID[sb.rec.ID] = sb
				s.name[sb.rec.Name] = sb.rec.ID
				return nil
			})
		})
		if s.err != nil {
			s.err = fmt.Errorf("load sandboxes: %w", s.err)
		}
	})
	return s, s.err
}

func (e *Engine) saveSandbox(sb *Sandbox) error {
	sb.mu.Lock()
	b, err := json.Marshal(sb.rec)
	id := sb.rec.ID
	sb.mu.Unlock()
	if err != nil {
		return err
	}
	return e.db.Update(func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(bucketSandboxes)
		if err != nil {
			return err
		}
		return bk.Put([]byte(id), b)
	})
}

// CreateSandbox makes a ready sandbox: its namespaces pinned, its /dev/shm
// mounted, its hostname, hosts and resolv.conf written, its record saved.
// A name in use is a conflict. On error nothing is left behind.
func (e *Engine) CreateSandbox(ctx context.Context, cfg SandboxConfig) (_ *Sandbox, err error) {
	ctx, span := trace.Start(ctx, "engine.sandbox.create", "name", cfg.Name)
	defer func() { span.End(err) }()
	set, err := e.sandboxSet()
	if err != nil {
		return nil, err
	}
	if cfg.Name == "" {
		return nil, errdefs.Invalidf("sandbox name is empty")
	}
	id := newID()
	set.mu.Lock()
	if other, ok := set.name[cfg.Name]; ok {
		set.mu.Unlock()
		return nil, errdefs.Conflictf("sandbox name %q is already in use by sandbox %s", cfg.Name, other)
	}
	set.name[cfg.Name] = id // reserved while it is made
	set.mu.Unlock()
	rec := SandboxRecord{ID: id, Name: cfg.Name, Created: time.Now().UTC(), State: SandboxReady,
		Hostname: cfg.Hostname, HostNetwork: cfg.HostNetwork, HostIPC: cfg.HostIPC, Extra: cfg.Extra}
	dir, run := e.sandboxDir(id), e.sandboxRunDir(id)
	defer func() {
		if err != nil {
			e.releaseSandbox(rec)
			set.mu.Lock()
			delete(set.name, cfg.Name)
			set.mu.Unlock()
		}
	}()
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, fmt.Errorf("sandbox directory: %w", err)
	}
	if cfg.UserNS != nil {
		if cfg.HostNetwork || cfg.HostIPC {
			return nil, errdefs.Invalidf("a pod with its own user namespace cannot use the host's network or IPC namespace")
		}
		cfg.ExternalNetwork, cfg.SharePID = false, true
	}
	flags := 0
	if cfg.UserNS != nil {
		// The pause process makes them, inside the user namespace.
	} else if !cfg.HostNetwork {
		flags |= unix.CLONE_NEWUTS
		if !cfg.ExternalNetwork {
			flags |= unix.CLONE_NEWNET
		}
	}
	if !cfg.HostIPC && cfg.UserNS == nil {
		flags |= unix.CLONE_NEWIPC
	}
	_, pspan := trace.Start(ctx, "engine.sandbox.pin_namespaces")
	paths, err := pinNamespaces(filepath.Join(run, "ns"), flags, cfg.Hostname)
	pspan.End(err)
	if err != nil {
		return nil, err
	}
	rec.NetNS, rec.IPCNS, rec.UTSNS = paths["net"], paths["ipc"], paths["uts"]
	if !cfg.HostIPC {
		shm := filepath.Join(run, "shm")
		size := cfg.ShmSize
		if size <= 0 {
			size = 64 << 20
		}
		if err := os.MkdirAll(shm, 0o755); err != nil {
			return nil, fmt.Errorf("pod shm: %w", err)
		}
		if err := unix.Mount("shm", shm, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, fmt.Sprintf("mode=1777,size=%d", size)); err != nil {
			return nil, fmt.Errorf("mount pod shm: %w", err)
		}
		rec.Shm = shm
	}
	if err := writeSandboxFiles(dir, cfg); err != nil {
		return nil, err
	}
	if cfg.SharePID {
		_, pspan := trace.Start(ctx, "engine.sandbox.pause")
		rec.PausePid, rec.PauseStart, err = e.startPause(run, cfg.UserNS)
		pspan.End(err)
		if err != nil {
			return nil, err
		}
	}
	if cfg.UserNS != nil {
		rec.UserNSRoot = [2]uint32{cfg.UserNS.UIDs[0].HostID, cfg.UserNS.GIDs[0].HostID}
		_, uspan := trace.Start(ctx, "engine.sandbox.userns")
		err = pinUserNamespaces(&rec, filepath.Join(run, "ns"), cfg.Hostname)
		uspan.End(err)
		if err != nil {
			return nil, err
		}
	}
	sb := &Sandbox{rec: rec}
	if err := e.saveSandbox(sb); err != nil {
		return nil, fmt.Errorf("save sandbox: %w", err)
	}
	set.mu.Lock()
	set.byID[id] = sb
	set.mu.Unlock()
	return sb, nil
}

// writeSandboxFiles writes the pod's hostname, hosts and resolv.conf,
// which its containers bind-mount (SandboxFiles).
func writeSandboxFiles(dir string, cfg SandboxConfig) error {
	var hosts bytes.Buffer
	if cfg.HostNetwork {
		if b, err := os.ReadFile("/etc/hosts"); err == nil {
			hosts.Write(b)
		}
	} else {
		hosts.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
		if cfg.Hostname != "" {
			fmt.Fprintf(&hosts, "127.0.1.1\t%s\n", cfg.Hostname)
		}
	}
	var resolv []byte
	if len(cfg.DNSServers)+len(cfg.DNSSearches)+len(cfg.DNSOptions) == 0 {
		b, err := os.ReadFile("/etc/resolv.conf")
		if err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("read the host's resolv.conf: %w", err)
		}
		resolv = b
	} else {
		var r bytes.Buffer
		if len(cfg.DNSSearches) > 0 {
			fmt.Fprintf(&r, "search %s\n", strings.Join(cfg.DNSSearches, " "))
		}
		for _, s := range cfg.DNSServers {
			fmt.Fprintf(&r, "nameserver %s\n", s)
		}
		if len(cfg.DNSOptions) > 0 {
			fmt.Fprintf(&r, "options %s\n", strings.Join(cfg.DNSOptions, " "))
		}
		resolv = r.Bytes()
	}
	hostname := cfg.Hostname
	if cfg.HostNetwork {
		if h, err := os.Hostname(); err == nil {
			hostname = h
		}
	}
	for name, data := range map[string][]byte{"hostname": []byte(hostname + "\n"), "hosts": hosts.Bytes(), "resolv.conf": resolv} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return fmt.Errorf("write the pod's %s: %w", name, err)
		}
	}
	return nil
}

// SandboxFiles are the pod's /etc/hostname, /etc/hosts and
// /etc/resolv.conf on the host, by their path in a container.
func (e *Engine) SandboxFiles(id string) map[string]string {
	dir := e.sandboxDir(id)
	return map[string]string{
		"/etc/hostname":    filepath.Join(dir, "hostname"),
		"/etc/hosts":       filepath.Join(dir, "hosts"),
		"/etc/resolv.conf": filepath.Join(dir, "resolv.conf"),
	}
}

// GetSandbox finds a sandbox by ID or unique ID prefix.
func (e *Engine) GetSandbox(ref string) (*Sandbox, error) {
	set, err := e.sandboxSet()
	if err != nil {
		return nil, err
	}
	set.mu.Lock()
	defer set.mu.Unlock()
	if sb, ok := set.byID[ref]; ok {
		return sb, nil
	}
	if ref != "" && isHex(ref) {
		var found *Sandbox
		for id, sb := range set.byID {
			if strings.HasPrefix(id, ref) {
				if found != nil {
					return nil, errdefs.Invalidf("multiple sandbox IDs found with prefix %s", ref)
				}
				found = sb
			}
		}
		if found != nil {
			return found, nil
		}
	}
	return nil, errdefs.NotFoundf("no such sandbox: %s", ref)
}

// Sandboxes lists every sandbox, newest first.
func (e *Engine) Sandboxes() ([]*Sandbox, error) {
	set, err := e.sandboxSet()
	if err != nil {
		return nil, err
	}
	set.mu.Lock()
	out := make([]*Sandbox, 0, len(set.byID))
	for _, sb := range set.byID {
		out = append(out, sb)
	}
	set.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].rec.Created.After(out[j].rec.Created) })
	return out, nil
}

// UpdateSandbox changes a sandbox's record (its pause container, its
// client's metadata) and saves it.
func (e *Engine) UpdateSandbox(sb *Sandbox, f func(r *SandboxRecord)) error {
	sb.mu.Lock()
	f(&sb.rec)
	sb.mu.Unlock()
	return e.saveSandbox(sb)
}

// StopSandbox marks the sandbox not ready and releases its network
// namespace: the caller has stopped its containers and detached its
// network. Stopping a stopped sandbox does nothing.
func (e *Engine) StopSandbox(ctx context.Context, sb *Sandbox) (err error) {
	_, span := trace.Start(ctx, "engine.sandbox.stop", "id", sb.rec.ID)
	defer func() { span.End(err) }()
	sb.op.Lock()
	defer sb.op.Unlock()
	sb.mu.Lock()
	netns := sb.rec.NetNS
	pid, start := sb.rec.PausePid, sb.rec.PauseStart
	sb.rec.State = SandboxNotReady
	sb.mu.Unlock()
	stopPause(pid, start)
	if err := e.unpinOwn(sb.rec.ID, netns); err != nil {
		return err
	}
	sb.mu.Lock()
	sb.rec.NetNS = "" // released (or, external, detached by the caller)
	sb.rec.PausePid, sb.rec.PauseStart = 0, 0
	sb.mu.Unlock()
	return e.saveSandbox(sb)
}

// RemoveSandbox releases everything the sandbox holds and forgets it. The
// caller has removed its containers. Removing a removed sandbox does
// nothing.
func (e *Engine) RemoveSandbox(ctx context.Context, sb *Sandbox) (err error) {
	_, span := trace.Start(ctx, "engine.sandbox.remove", "id", sb.rec.ID)
	defer func() { span.End(err) }()
	sb.op.Lock()
	defer sb.op.Unlock()
	set, err := e.sandboxSet()
	if err != nil {
		return err
	}
	rec := sb.Snapshot()
	if err := e.releaseSandbox(rec); err != nil {
		return err
	}
	if err := e.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketSandboxes)
		if err != nil {
			return err
		}
		return b.Delete([]byte(rec.ID))
	}); err != nil {
		return fmt.Errorf("delete sandbox record: %w", err)
	}
	set.mu.Lock()
	delete(set.byID, rec.ID)
	if set.name[rec.Name] == rec.ID {
		delete(set.name, rec.Name)
	}
	set.mu.Unlock()
	return nil
}

// releaseSandbox unpins the namespaces, unmounts /dev/shm and removes the
// sandbox's directories.
func (e *Engine) releaseSandbox(rec SandboxRecord) error {
	run := e.sandboxRunDir(rec.ID)
	stopPause(rec.PausePid, rec.PauseStart)
	for _, p := range []string{rec.NetNS, rec.IPCNS, rec.UTSNS, rec.UserNS} {
		if err := e.unpinOwn(rec.ID, p); err != nil {
			return err
		}
	}
	unpinAll(filepath.Join(run, "ns"))
	shm := filepath.Join(run, "shm")
	if err := unix.Unmount(shm, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
		return fmt.Errorf("unmount the pod's shm: %w", err)
	}
	if err := os.RemoveAll(run); err != nil {
		return fmt.Errorf("remove %s: %w", run, err)
	}
	if err := os.RemoveAll(e.sandboxDir(rec.ID)); err != nil {
		return fmt.Errorf("remove sandbox directory: %w", err)
	}
	return nil
}

// unpinOwn releases a namespace the sandbox pinned itself; one the network
// package pinned (ExternalNetwork) is its to release.
func (e *Engine) unpinOwn(id, path string) error {
	if path == "" || !strings.HasPrefix(path, e.sandboxRunDir(id)+"/") {
		return nil
	}
	return unpin(path)
}
