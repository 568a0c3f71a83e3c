package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	bolt "go.etcd.io/bbolt"

	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/snapshot"
)

// Status is a container's state as docker names it.
type Status = container.ContainerState

// live says whether a container in status st has a process, or is about
// to have one again: running, paused or restarting. dockerd counts these
// three alike wherever "is it running?" decides (rm without -f, prune, a
// network or volume in use), and restore re-adopts only these.
func live(st Status) bool {
	switch st {
	case container.StateRunning, container.StatePaused, container.StateRestarting:
		return true
	}
	return false
}

// State is what changes over a container's life; it is persisted with the
// container.
type State struct {
	Status       Status    `json:"status"`
	Pid          int       `json:"pid,omitempty"`
	ExitCode     int       `json:"exit_code"`
	Error        string    `json:"error,omitempty"`
	OOMKilled    bool      `json:"oom_killed,omitempty"`
	StartedAt    time.Time `json:"started_at"`
	FinishedAt   time.Time `json:"finished_at"`
	RestartCount int       `json:"restart_count,omitempty"`
	// HasBeenStarted tells "created" from "exited" and drives restart
	// policies after a daemon restart.
	HasBeenStarted bool `json:"has_been_started,omitempty"`
	// ManuallyStopped: stop/kill by a user; "unless-stopped" and "always"
	// then do not restart it when hakod starts again.
	ManuallyStopped bool `json:"manually_stopped,omitempty"`
	Health          *container.Health
}

// Record is what is persisted of a container: its configuration as
// created and its state.
type Record struct {
	ID         string                    `json:"id"`
	Name       string                    `json:"name"` // without the leading "/"
	Created    time.Time                 `json:"created"`
	Image      string                    `json:"image"` // as the user named it
	ImageID    string                    `json:"image_id"`
	Config     *container.Config         `json:"config"`
	HostConfig *container.HostConfig     `json:"host_config"`
	Networking *network.NetworkingConfig `json:"networking,omitempty"`
	Path       string                    `json:"path"` // the program: merged Entrypoint and Cmd
	Args       []string                  `json:"args"`
	StopSignal string                    `json:"stop_signal,omitempty"`
	Runtime    string                    `json:"runtime"`
	Mounts     []container.MountPoint    `json:"mounts,omitempty"`
	State      State                     `json:"state"`
	// Sandbox names a container whose network, IPC and UTS namespaces this
	// one joins (docker's --network container:X; a Kubernetes pod's
	// sandbox).
	Sandbox string `json:"sandbox,omitempty"`
	// Extra holds labels of the engine's clients (the CRI keeps its pod and
	// container metadata here).
	Extra map[string]string `json:"extra,omitempty"`
}

// Container is one container: its record and (while it runs) the shim that
// holds it.
type Container struct {
	Record

	mu      sync.Mutex
	task    Task             // the shim's handle while a shim exists
	waiters []*waiter        // wait requests
	changed chan struct{}    // closed and replaced on every state change
	monitor chan struct{}    // closed when the monitor ends
	attach  []*pendingAttach // attaches waiting for the start
	// removing is set (under mu) by the removal under way, from before it
	// kills the program; another removal gives way (errAlreadyRemoving).
	removing bool
	// startTrace is the traceparent of the traced start (engine.start) of
	// the running program, "" if it was not traced: its exit, delete and
	// --rm removal are recorded in the same trace (see exitContext).
	startTrace string
	// fsMu is held while the container's filesystem is mounted by a start
	// or by a copy, export or archive of a stopped container (rootfs.go),
	// so its overlay upper dir is never mounted twice at once. A start
	// holds it until the container runs or its start has failed.
	fsMu sync.Mutex
	// starting is closed when the start under way has finished; nil
	// without one (waitStart, under mu).
	starting chan struct{}
	// process is the process of the bundle's spec, the base of execs
	// (exec.go: bundleProcess); nil until a start or the first exec.
	process *specs.Process
	// saveMu makes the container's saves (e.save) one at a time, each
	// writing the record as it is when its turn comes, so the last save
	// holds the latest state whatever order they were asked in; gone
	// (under saveMu) is set once the record has been deleted, after which
	// a late save (a health check's, a start's) must not write it back.
	saveMu sync.Mutex
	gone   bool
	// netnsTainted (under mu): a process that could change the network
	// namespace's configuration ran in it (a privileged exec), or hakod
	// cannot tell (re-adopted after a restart): the namespace is not
	// reused (network.go: netnsReusable).
	netnsTainted bool
}

// containerDir is the container's directory under the data root: what
// outlives a reboot (its log, the CRI's container spec).
func (e *Engine) containerDir(id string) string {
	return filepath.Join(e.cfg.containersDir(), id)
}

// runDir is the container's directory under the exec root: what hakod
// writes again at each start and the container needs only while it runs,
// its OCI bundle (config.json, the rootfs mount point) and the files bind
// mounted on /etc/hostname, /etc/hosts and /etc/resolv.conf. It is on the
// exec root's tmpfs, as containerd's bundles and podman's userdata under
// its run root are, because making these seven files and directories on
// the data root's disk was ~1.5 ms of a `run --rm` on these machines,
// whose ext4 has no journal and so, to allocate an inode, skips those
// freed within the last minute, one inode table lookup each: hundreds
// after a few runs.
func (e *Engine) RunDir(id string) string {
	return filepath.Join(e.cfg.runContainersDir(), id)
}

// bundleDir is the container's OCI bundle: in its run directory, or, for
// a container started by a hakod from before the run directory (its
// bundle under the data root) and not started since, there.
func (e *Engine) bundleDir(id string) string {
	b := filepath.Join(e.RunDir(id), "bundle")
	if _, err := os.Stat(b); err != nil {
		if legacy := e.legacyBundleDir(id); fileExists(filepath.Join(legacy, "config.json")) {
			return legacy
		}
	}
	return b
}

// legacyBundleDir is where the bundle was before 2026-11-28.
func (e *Engine) legacyBundleDir(id string) string {
	return filepath.Join(e.containerDir(id), "bundle")
}

// unmountRootfs unmounts the container's root filesystem, where this
// hakod mounts it and where an older one did.
func (e *Engine) unmountRootfs(id string) {
	_ = snapshot.UnmountAll(filepath.Join(e.RunDir(id), "bundle", "rootfs"))
	_ = snapshot.UnmountAll(filepath.Join(e.legacyBundleDir(id), "rootfs"))
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func newID() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

// validName is docker's rule for container names,
// ^[a-zA-Z0-9][a-zA-Z0-9_.-]+$: two characters at least (dockerd refuses
// "--name g" with the message reserveName gives).
func validName(n string) bool {
	if len(n) < 2 || !isAlnum(n[0]) {
		return false
	}
	for i := 1; i < len(n); i++ {
		c := n[i]
		if !isAlnum(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// save persists the container's configuration and state.
func (e *Engine) save(c *Container) error {
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	if c.gone {
		return nil
	}
	c.mu.Lock()
	b, err := json.Marshal(c.Record)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return e.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketContainers).Put([]byte(c.ID), b)
	})
}

// Get finds a container by name, full ID or unique ID prefix, as docker does.
func (e *Engine) Get(ref string) (*Container, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.getLocked(ref)
}

func (e *Engine) getLocked(ref string) (*Container, error) {
	name := strings.TrimPrefix(ref, "/")
	if c, ok := e.containers[name]; ok {
		return c, nil
	}
	if id, ok := e.names[name]; ok {
		// A name is reserved before its container is added (a create
		// under way): until then there is no such container.
		if c := e.containers[id]; c != nil {
			return c, nil
		}
	}
	if name != "" && isHex(name) {
		var found *Container
		for id, c := range e.containers {
			if strings.HasPrefix(id, name) {
				if found != nil {
					return nil, errdefs.Invalidf("multiple IDs found with provided prefix: %s", name)
				}
				found = c
			}
		}
		if found != nil {
			return found, nil
		}
	}
	return nil, errdefs.NotFoundf("No such container: %s", ref)
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// List returns every container, newest first.
func (e *Engine) List() []*Container {
	e.mu.Lock()
	out := make([]*Container, 0, len(e.containers))
	for _, c := range e.containers {
		out = append(out, c)
	}
	e.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out
}

// Snapshot returns a copy of the container's record, consistent under its
// lock, for inspect and list.
func (c *Container) Snapshot() Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Record
}

// setState changes the state under the lock and wakes whoever waits.
func (c *Container) setState(f func(s *State)) {
	c.mu.Lock()
	f(&c.State)
	c.notifyLocked()
	c.mu.Unlock()
}

func (c *Container) notifyLocked() {
	if c.changed != nil {
		close(c.changed)
	}
	c.changed = make(chan struct{})
	for _, w := range c.waiters {
		w.check(c)
	}
}

// rename records a new name in the index.
func (e *Engine) reserveName(name, id string) error {
	if name == "" {
		return nil
	}
	if !validName(name) {
		return errdefs.Invalidf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	if other, ok := e.names[name]; ok && other != id {
		return errdefs.Conflictf("Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.", name, other)
	}
	e.names[name] = id
	return nil
}

// generateName makes a docker-style adjective_surname name that is free.
func (e *Engine) generateName() string {
	for i := 0; ; i++ {
		n := randomName(i)
		if _, taken := e.names[n]; !taken {
			return n
		}
	}
}

// Rename gives a container a new name.
func (e *Engine) Rename(ref, newName string) error {
	newName = strings.TrimPrefix(newName, "/")
	e.mu.Lock()
	c, err := e.getLocked(ref)
	if err != nil {
		e.mu.Unlock()
		return err
	}
	if newName == c.Name {
		e.mu.Unlock()
		return errdefs.Invalidf("Renaming a container with the same name as its current name")
	}
	if err := e.reserveName(newName, c.ID); err != nil {
		e.mu.Unlock()
		if !validName(newName) {
			// dockerd's words here: the name as it keeps it, with "/".
			return errdefs.Invalidf("Error when allocating new name: Invalid container name (/%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", newName)
		}
		return fmt.Errorf("Error when allocating new name: %w", err) //lint:ignore ST1005 dockerd's text
	}
	old := c.Name
	delete(e.names, old)
	c.mu.Lock()
	c.Name = newName
	c.mu.Unlock()
	e.mu.Unlock()
	if err := e.save(c); err != nil {
		return err
	}
	if e.cfg.Networks != nil {
		e.cfg.Networks.Rename(c.ID, newName) // the hosts files of its network's peers
	}
	e.events.emitContainer(c, "rename", map[string]string{"oldName": "/" + old})
	return nil
}

// load reads every container from the database, re-adopting running ones.
func (e *Engine) load(ctx context.Context) error {
	var all []*Container
	// Every ID with a record, readable or not: the start-up sweeps below
	// remove what belongs to none. An unreadable record's shim, layer and
	// directories are left alone, for whoever mends the record.
	records := map[string]bool{}
	err := e.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketContainers).ForEach(func(k, v []byte) error {
			records[string(k)] = true
			c := &Container{}
			if err := json.Unmarshal(v, &c.Record); err != nil {
				e.log.Warn("skipping unreadable container record", "id", string(k), "err", err)
				return nil
			}
			all = append(all, c)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("load containers: %w", err)
	}
	for _, c := range all {
		c.changed = make(chan struct{})
		e.containers[c.ID] = c
		e.names[c.Name] = c.ID
		e.adoptVolumes(c) // volumes.go
	}
	e.removeOrphanShims(ctx, records)     // remove.go: before the mounts of their run directories go
	e.removeStrayDirs(records)            // remove.go
	e.removeOrphanSnapshots(ctx, records) // remove.go
	e.reconcileNetworks(ctx)              // network.go: before restore, which may start containers again
	for _, c := range all {
		e.restore(ctx, c)
	}
	// As dockerd does: a --rm container that is not running after the
	// restart (it ended, or was never started, while no hakod could remove
	// it) is removed now, with its anonymous volumes. One whose exit the
	// shim kept has already been removed by restore.
	for _, c := range all {
		c.mu.Lock()
		autoRemove := c.HostConfig != nil && c.HostConfig.AutoRemove
		if st := c.State.Status; live(st) || st == container.StateRemoving || st == "removed" {
			autoRemove = false
		}
		c.mu.Unlock()
		if !autoRemove {
			continue
		}
		if err := e.remove(withVolumeRemoval(ctx), c, false); err != nil && !errors.Is(err, errAlreadyRemoving) {
			e.log.Warn("remove --rm container after the restart", "id", c.ID, "err", err)
		}
	}
	return nil
}
