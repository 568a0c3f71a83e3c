// Package image is hako's image store: it ties the content store (blobs by
// digest), the metadata database (images, names, leases) and the overlay
// snapshotter together, and offers what the engine needs: resolve a name to
// an image, list, tag, untag and remove images, fetch an image's blobs while
// unpacking its layers into snapshots, prepare and commit container
// snapshots, import a rootfs tarball, garbage-collect and check.
//
// Talking to registries is package image/registry's job and moving images
// through archives is image/archive's; both feed this Store through Fetch
// and Register. A Store is safe for concurrent use by many goroutines.
package image

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/hako-project/hako/image/content"
	"github.com/hako-project/hako/image/metadata"
	"github.com/hako-project/hako/snapshot"
	"github.com/opencontainers/go-digest"
)

// DefaultRoot is hako's state root, as dockerd's /var/lib/docker.
const DefaultRoot = "/var/lib/hako"

// Labels hako puts on snapshots.
const (
	// LabelExtract marks a snapshot a layer is being unpacked into; one left
	// by a killed process is removed at Open.
	LabelExtract = "hako.io/extract"
	// LabelImage records which image a container snapshot was made from.
	LabelImage = "hako.io/image"
	// LabelUnpackedSize is, on a layer's snapshot, the bytes of regular
	// files its unpack wrote: docker's size of a layer (UnpackedSizes).
	LabelUnpackedSize = "hako.io/unpacked-size"
)

// Options configure a Store.
type Options struct {
	// Root is the state root (DefaultRoot if empty). The store uses
	// Root/image and Root/snapshots.
	Root string
	// Logger receives operational messages (slog.Default if nil).
	Logger *slog.Logger
	// Jobs is how many layers are fetched and unpacked at once (3, docker's
	// max-concurrent-downloads, if 0).
	Jobs int
}

// Store is the image store. Create it with Open and Close it when done.
type Store struct {
	root    string
	log     *slog.Logger
	jobs    int
	content *content.Store
	db      *metadata.DB
	snaps   *snapshot.Snapshotter

	// gcMu orders GC against operations that make resources referenced:
	// an operation holds it shared while it moves a blob or snapshot under
	// a lease; GC holds it exclusively while it marks and sweeps.
	gcMu sync.RWMutex
	// initMu makes one init layer at a time (initlayer.go).
	initMu sync.Mutex
}

// Open opens (creating if needed) the store under opts.Root. It removes
// leftovers of a killed process: temp blobs, leases and half-unpacked
// snapshots.
func Open(ctx context.Context, opts Options) (*Store, error) {
	root := opts.Root
	if root == "" {
		root = DefaultRoot
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = 3
	}
	if err := os.MkdirAll(filepath.Join(root, "image"), 0o700); err != nil {
		return nil, fmt.Errorf("create image store in %s: %w", root, err)
	}
	// The metadata DB first: its file lock keeps a second process out before
	// anything below deletes "stale" files that process might own.
	db, err := metadata.Open(filepath.Join(root, "image", "metadata.db"))
	if err != nil {
		return nil, err
	}
	cs, err := content.Open(filepath.Join(root, "image", "content"))
	if err != nil {
		db.Close()
		return nil, err
	}
	snaps, err := snapshot.Open(filepath.Join(root, "snapshots"), log)
	if err != nil {
		db.Close()
		return nil, err
	}
	s := &Store{root: root, log: log, jobs: jobs, content: cs, db: db, snaps: snaps}
	if err := s.recover(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// recover drops what an operation killed half-way left: its leases (their
// resources become GC candidates) and its unpack snapshots.
func (s *Store) recover(ctx context.Context) error {
	if err := s.db.Update(func(tx *metadata.Tx) error {
		leases, err := tx.Leases()
		if err != nil {
			return err
		}
		for _, l := range leases {
			s.log.Info("dropping lease of an interrupted operation", "lease", l.ID)
			if err := tx.DeleteLease(l.ID); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("recover leases: %w", err)
	}
	infos, err := s.snaps.List(ctx)
	if err != nil {
		return fmt.Errorf("recover snapshots: %w", err)
	}
	for _, in := range infos {
		if in.Kind == snapshot.Active && in.Labels[LabelExtract] != "" {
			s.log.Info("removing interrupted unpack", "snapshot", in.Name)
			if err := s.snaps.Remove(ctx, in.Name); err != nil {
				return fmt.Errorf("recover snapshots: %w", err)
			}
		}
	}
	return nil
}

// Close releases the databases. Operations under way must have finished.
func (s *Store) Close() error {
	return errors.Join(s.snaps.Close(), s.db.Close())
}

// Root is the state root the store lives in.
func (s *Store) Root() string { return s.root }

// Content gives read access to blobs (for export and push).
func (s *Store) Content() *content.Store { return s.content }

// Snapshots gives access to the snapshotter (for the engine's mounts).
func (s *Store) Snapshots() *snapshot.Snapshotter { return s.snaps }

// Lease protects the resources an operation creates until it records an
// image that references them (or gives up). Create with NewLease, always
// End it.
type Lease struct {
	s  *Store
	id string
	// created lists what this operation made, so a failure can remove it.
	mu           sync.Mutex
	newBlobs     []digest.Digest
	newSnapshots []string
}

// NewLease starts a lease.
func (s *Store) NewLease(ctx context.Context) (*Lease, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("lease id: %w", err)
	}
	l := &Lease{s: s, id: hex.EncodeToString(b[:])}
	err := s.db.Update(func(tx *metadata.Tx) error {
		return tx.PutLease(metadata.Lease{ID: l.id, Created: time.Now().UTC()})
	})
	if err != nil {
		return nil, fmt.Errorf("create lease: %w", err)
	}
	return l, nil
}

// add records blobs and snapshots under the lease. Callers hold gcMu
// shared, so GC cannot run between a resource's check or creation and this.
func (l *Lease) add(blobs []digest.Digest, snaps []string) error {
	return l.s.db.Update(func(tx *metadata.Tx) error {
		rec, err := tx.Lease(l.id)
		if err != nil {
			return err
		}
		rec.Blobs = append(rec.Blobs, blobs...)
		rec.Snapshots = append(rec.Snapshots, snaps...)
		return tx.PutLease(rec)
	})
}

// Protect adds an existing blob to the lease if it is present, reporting
// whether it was. Present-and-protected is atomic with respect to GC.
func (l *Lease) Protect(d digest.Digest) (bool, error) {
	l.s.gcMu.RLock()
	defer l.s.gcMu.RUnlock()
	if !l.s.content.Has(d) {
		return false, nil
	}
	if err := l.add([]digest.Digest{d}, nil); err != nil {
		return false, fmt.Errorf("protect blob %s: %w", d, err)
	}
	return true, nil
}

// CommitBlob publishes w and puts the blob under the lease.
func (l *Lease) CommitBlob(w *content.Writer) (content.Info, error) {
	l.s.gcMu.RLock()
	defer l.s.gcMu.RUnlock()
	existed := false
	if exp := w.Digest(); exp != "" {
		existed = l.s.content.Has(exp)
	}
	info, err := w.Commit()
	if err != nil {
		return info, err
	}
	if err := l.add([]digest.Digest{info.Digest}, nil); err != nil {
		return info, fmt.Errorf("protect blob %s: %w", info.Digest, err)
	}
	if !existed {
		l.mu.Lock()
		l.newBlobs = append(l.newBlobs, info.Digest)
		l.mu.Unlock()
	}
	return info, nil
}

// WriteBlob stores b (whose digest must be d if d is set) under the lease.
func (l *Lease) WriteBlob(d digest.Digest, b []byte) (digest.Digest, error) {
	if d != "" {
		if ok, err := l.Protect(d); err != nil || ok {
			return d, err
		}
	}
	w, err := l.s.content.Writer(d, int64(len(b)))
	if err != nil {
		return "", err
	}
	defer w.Close()
	if _, err := w.Write(b); err != nil {
		return "", err
	}
	info, err := l.CommitBlob(w)
	return info.Digest, err
}

// ID is the lease's identifier.
func (l *Lease) ID() string { return l.id }

// End deletes the lease. With removeUnused (a failed operation, or one that
// fetched more than it kept, like loading one platform of an index), the
// resources the operation created are removed unless something else (an
// image, another lease, a snapshot on top) now uses them, so a failed
// operation leaves the store as it was.
func (l *Lease) End(ctx context.Context, removeUnused bool) error {
	err := l.s.db.Update(func(tx *metadata.Tx) error { return tx.DeleteLease(l.id) })
	if err != nil {
		return fmt.Errorf("end lease %s: %w", l.id, err)
	}
	if !removeUnused {
		return nil
	}
	l.mu.Lock()
	blobs, snaps := slices.Clone(l.newBlobs), slices.Clone(l.newSnapshots)
	l.mu.Unlock()
	if len(blobs) == 0 && len(snaps) == 0 {
		return nil
	}
	_, err = l.s.collect(context.WithoutCancel(ctx), &candidates{blobs: blobs, snapshots: snaps})
	return err
}
