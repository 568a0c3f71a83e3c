// Package engine is hakod's container engine: what dockerd and containerd do
// between an API request and the OCI runtime. It keeps the containers (their
// configuration and state, in bbolt), turns an image and run options into a
// bundle (engine/specgen), starts each container under its own hako-shim,
// watches it exit, applies restart policies, and re-adopts running
// containers when hakod starts again. The Docker API (api/docker) and the
// CRI server sit on top of it; images come from package image.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hako-project/hako/image"
	"github.com/hako-project/hako/network"
	"github.com/hako-project/hako/shim"
	"github.com/hako-project/hako/volume"
)

// Config is what hakod tells the engine.
type Config struct {
	// DataRoot holds persistent state: images, containers, logs
	// (dockerd's --data-root; /var/lib/hako).
	DataRoot string
	// ExecRoot holds runtime state: shim sockets, the OCI runtime's root,
	// traces (dockerd's --exec-root; /run/hako).
	ExecRoot string
	// Runtimes maps a runtime name to the path of an OCI runtime with runc's
	// command line. DefaultRuntime names the one containers get unless they
	// ask (--runtime).
	Runtimes       map[string]string
	DefaultRuntime string
	// ShimPath is the hako-shim binary.
	ShimPath string
	// GatePath is the hako-runtime binary whose `gate` command, a
	// createRuntime hook, holds a container's program until its networks
	// are attached (gate.go); whatever runtime runs the container runs the
	// hook. Empty: such containers are created, and started by a second
	// runtime command once their networks are attached.
	GatePath string
	// Images is the image store the engine creates containers from.
	Images *image.Store
	// Networks gives containers their networks (network.go); nil: every
	// container of the default network gets loopback only.
	Networks *network.Manager
	// Log receives the engine's own log.
	Log *slog.Logger
}

// Engine runs containers. It is safe for concurrent use.
type Engine struct {
	cfg    Config
	log    *slog.Logger
	db     *bolt.DB
	images *image.Store
	events *Events
	traces *Traces

	mu         sync.Mutex
	containers map[string]*Container // by ID
	names      map[string]string     // name without "/" → ID
	execs      map[string]*Exec      // by exec ID
	closing    bool
	wg         sync.WaitGroup // container monitors

	sandboxes sandboxSet // pod sandboxes (sandbox.go)

	volumes *volume.Store // named and anonymous volumes (volumes.go)

	// spares keeps a shim started ahead of the next container start
	// (shim.Spares).
	spares *shim.Spares
}

var bucketContainers = []byte("containers")

// Open starts the engine: opens its database and re-adopts the containers
// that were running when hakod last stopped (live restore).
func Open(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Images == nil {
		return nil, errors.New("engine: no image store")
	}
	if cfg.DefaultRuntime == "" {
		cfg.DefaultRuntime = "hako"
	}
	if _, ok := cfg.Runtimes[cfg.DefaultRuntime]; !ok {
		return nil, fmt.Errorf("default runtime %q is not among the configured runtimes", cfg.DefaultRuntime)
	}
	for _, d := range []string{cfg.containersDir(), cfg.trashDir(), cfg.runContainersDir(), cfg.shimsDir(), cfg.runtimeRoot(), cfg.tracesDir()} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	vols, err := volume.Open(cfg.volumesDir(), cfg.Log)
	if err != nil {
		return nil, err
	}
	db, err := bolt.Open(filepath.Join(cfg.DataRoot, "engine.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open engine database: %w", err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketContainers)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("engine database: %w", err)
	}
	e := &Engine{
		cfg: cfg, log: cfg.Log, db: db, images: cfg.Images,
		events: newEvents(), traces: newTraces(cfg.tracesDir()),
		containers: map[string]*Container{}, names: map[string]string{}, execs: map[string]*Exec{},
		// The spare shim starts the default runtime ahead of need too,
		// if it can be (hako-runtime can; runc and crun cannot).
		spares: &shim.Spares{Standby: shim.StandbyRuntime(cfg.Runtimes[cfg.DefaultRuntime])},
	}
	if err := e.emptyTrash(); err != nil {
		e.log.Warn("empty the trash of removed containers", "err", err)
	}
	e.volumes = vols // before load, which counts the containers' volumes
	if err := e.load(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return e, nil
}

// Close stops watching containers and closes the database. Containers keep
// running under their shims; the next Open re-adopts them.
func (e *Engine) Close() error {
	e.mu.Lock()
	e.closing = true
	cs := make([]*Container, 0, len(e.containers))
	for _, c := range e.containers {
		cs = append(cs, c)
	}
	e.mu.Unlock()
	e.spares.Close()
	for _, c := range cs {
		c.detach()
	}
	e.wg.Wait()
	return e.db.Close()
}

// Events is the engine's event bus (docker's /events).
func (e *Engine) Events() *Events { return e.events }

// Traces gives access to recorded traces.
func (e *Engine) Traces() *Traces { return e.traces }

// Images is the image store.
func (e *Engine) Images() *image.Store { return e.images }

// Runtimes lists the configured OCI runtimes and the default.
func (e *Engine) Runtimes() (map[string]string, string) {
	return e.cfg.Runtimes, e.cfg.DefaultRuntime
}

// DataRoot and ExecRoot are the engine's directories.
func (e *Engine) DataRoot() string { return e.cfg.DataRoot }

// ExecRoot is the runtime-state directory.
func (e *Engine) ExecRoot() string { return e.cfg.ExecRoot }

func (c Config) containersDir() string { return filepath.Join(c.DataRoot, "containers") }

// runContainersDir holds the containers' run directories (Engine.RunDir).
func (c Config) runContainersDir() string { return filepath.Join(c.ExecRoot, "containers") }

// trashDir holds the directories of removed containers until their files
// are gone (removeFiles); on the same filesystem as containersDir, so
// that moving one there is a rename.
func (c Config) trashDir() string    { return filepath.Join(c.DataRoot, "trash") }
func (c Config) shimsDir() string    { return filepath.Join(c.ExecRoot, "shims") }
func (c Config) runtimeRoot() string { return filepath.Join(c.ExecRoot, "runtime") }
func (c Config) tracesDir() string   { return filepath.Join(c.ExecRoot, "traces") }
