// Package snapshot manages overlayfs snapshots: committed read-only layers
// keyed by name (hako uses the layer chain ID) and active writable layers on
// top of them (one per container, or one per layer being unpacked).
//
// A snapshot's files live in <root>/snapshots/<id>/fs (the overlay upper or
// lower dir) with <id>/work as the overlay work dir; names, parents and
// kinds live in <root>/metadata.db (bbolt), every change in one
// transaction. The package never reads layer tars or images; that is
// package image's job.
package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/moby/sys/mountinfo"

	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/trace"
	bolt "go.etcd.io/bbolt"
)

// Kind tells what a snapshot can be used for.
type Kind string

const (
	// Active snapshots are writable: an upper dir over their parent chain.
	Active Kind = "active"
	// View snapshots are read-only mounts of a parent chain.
	View Kind = "view"
	// Committed snapshots are immutable layers other snapshots build on.
	Committed Kind = "committed"
)

// Info is what the store records about a snapshot.
type Info struct {
	Name    string            `json:"name"`
	ID      uint64            `json:"id"`
	Kind    Kind              `json:"kind"`
	Parent  string            `json:"parent,omitempty"`
	Created time.Time         `json:"created"`
	Labels  map[string]string `json:"labels,omitempty"`
}

var bucketSnapshots = []byte("snapshots")

// Snapshotter is an overlayfs snapshot store. It is safe for concurrent use;
// bbolt serializes the metadata changes.
type Snapshotter struct {
	root string
	db   *bolt.DB
	log  *slog.Logger
	bg   sync.WaitGroup // the trash's emptying (discard)
}

// Open opens or creates the snapshot store at root. It removes directories
// that no record names (left by a crash between a metadata change and the
// matching directory operation).
func Open(root string, log *slog.Logger) (*Snapshotter, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(filepath.Join(root, "snapshots"), 0o700); err != nil {
		return nil, fmt.Errorf("create snapshot root %s: %w", root, err)
	}
	db, err := bolt.Open(filepath.Join(root, "metadata.db"), 0o600, &bolt.Options{Timeout: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open snapshot metadata in %s: %w", root, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketSnapshots)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("init snapshot metadata: %w", err)
	}
	s := &Snapshotter{root: root, db: db, log: log}
	if err := s.removeOrphanDirs(); err != nil {
		db.Close()
		return nil, err
	}
	if err := os.RemoveAll(s.trashDir()); err != nil { // a crash's
		db.Close()
		return nil, fmt.Errorf("empty the snapshots' trash: %w", err)
	}
	if err := os.Mkdir(s.trashDir(), 0o700); err != nil {
		db.Close()
		return nil, fmt.Errorf("create the snapshots' trash: %w", err)
	}
	return s, nil
}

// Close waits for the removals under way and releases the metadata
// database.
func (s *Snapshotter) Close() error {
	s.bg.Wait()
	return s.db.Close()
}

// Root is the directory the snapshots live in.
func (s *Snapshotter) Root() string { return s.root }

func (s *Snapshotter) dir(id uint64) string {
	return filepath.Join(s.root, "snapshots", strconv.FormatUint(id, 10))
}

// removeOrphanDirs deletes snapshot dirs without a record.
func (s *Snapshotter) removeOrphanDirs() error {
	ids := map[string]bool{}
	if err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSnapshots).ForEach(func(k, v []byte) error {
			var in Info
			if err := json.Unmarshal(v, &in); err != nil {
				return fmt.Errorf("decode snapshot %q: %w", k, err)
			}
			ids[strconv.FormatUint(in.ID, 10)] = true
			return nil
		})
	}); err != nil {
		return err
	}
	entries, err := os.ReadDir(filepath.Join(s.root, "snapshots"))
	if err != nil {
		return fmt.Errorf("list snapshot dirs: %w", err)
	}
	for _, e := range entries {
		if ids[e.Name()] {
			continue
		}
		p := filepath.Join(s.root, "snapshots", e.Name())
		s.log.Info("removing orphaned snapshot dir", "dir", p)
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("remove orphaned snapshot dir %s: %w", p, err)
		}
	}
	return nil
}

func getInfo(b *bolt.Bucket, name string) (Info, error) {
	v := b.Get([]byte(name))
	if v == nil {
		return Info{}, fmt.Errorf("snapshot %s: %w", name, errdefs.ErrNotFound)
	}
	var in Info
	if err := json.Unmarshal(v, &in); err != nil {
		return Info{}, fmt.Errorf("decode snapshot %s: %w", name, err)
	}
	return in, nil
}

func putInfo(b *bolt.Bucket, in Info) error {
	v, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode snapshot %s: %w", in.Name, err)
	}
	return b.Put([]byte(in.Name), v)
}

// Stat returns the record of snapshot name.
func (s *Snapshotter) Stat(ctx context.Context, name string) (Info, error) {
	var in Info
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		in, err = getInfo(tx.Bucket(bucketSnapshots), name)
		return err
	})
	return in, err
}

// List returns every snapshot.
func (s *Snapshotter) List(ctx context.Context) ([]Info, error) {
	var out []Info
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSnapshots).ForEach(func(k, v []byte) error {
			var in Info
			if err := json.Unmarshal(v, &in); err != nil {
				return fmt.Errorf("decode snapshot %q: %w", k, err)
			}
			out = append(out, in)
			return nil
		})
	})
	return out, err
}

// Prepare creates an active (writable) snapshot named key on top of the
// committed snapshot parent ("" for an empty base) and returns its mounts.
func (s *Snapshotter) Prepare(ctx context.Context, key, parent string, labels map[string]string) ([]Mount, error) {
	return s.create(ctx, Active, key, parent, labels)
}

// View creates a read-only snapshot of parent and returns its mounts.
func (s *Snapshotter) View(ctx context.Context, key, parent string, labels map[string]string) ([]Mount, error) {
	if parent == "" {
		return nil, fmt.Errorf("view %s: %w: a view needs a parent", key, errdefs.ErrInvalid)
	}
	return s.create(ctx, View, key, parent, labels)
}

func (s *Snapshotter) create(ctx context.Context, kind Kind, key, parent string, labels map[string]string) ([]Mount, error) {
	if key == "" {
		return nil, fmt.Errorf("prepare snapshot: %w: empty key", errdefs.ErrInvalid)
	}
	var in Info
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSnapshots)
		if b.Get([]byte(key)) != nil {
			return fmt.Errorf("snapshot %s: %w", key, errdefs.ErrAlreadyExists)
		}
		if parent != "" {
			p, err := getInfo(b, parent)
			if err != nil {
				return fmt.Errorf("parent of %s: %w", key, err)
			}
			if p.Kind != Committed {
				return fmt.Errorf("parent %s of %s: %w: it is %s, not committed", parent, key, errdefs.ErrInvalid, p.Kind)
			}
		}
		id, err := b.NextSequence()
		if err != nil {
			return err
		}
		in = Info{Name: key, ID: id, Kind: kind, Parent: parent, Created: time.Now().UTC(), Labels: labels}
		// The directories are made inside the transaction so that a failure
		// rolls the record back; a crash leaves only an orphan dir, which
		// Open removes.
		dir := s.dir(id)
		if err := os.MkdirAll(filepath.Join(dir, "fs"), 0o755); err != nil {
			return fmt.Errorf("create snapshot dir: %w", err)
		}
		if err := os.Mkdir(filepath.Join(dir, "work"), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			os.RemoveAll(dir)
			return fmt.Errorf("create snapshot work dir: %w", err)
		}
		if err := putInfo(b, in); err != nil {
			os.RemoveAll(dir)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("prepare snapshot %s: %w", key, err)
	}
	return s.Mounts(ctx, key)
}

// UpperDir is the directory holding the files of snapshot name: the overlay
// upper dir of an active snapshot or the layer of a committed one. Layers
// are unpacked straight into it, without mounting.
func (s *Snapshotter) UpperDir(ctx context.Context, name string) (string, error) {
	in, err := s.Stat(ctx, name)
	if err != nil {
		return "", err
	}
	return filepath.Join(s.dir(in.ID), "fs"), nil
}

// chain returns the fs dirs of name's committed ancestors, nearest first.
func (s *Snapshotter) chain(b *bolt.Bucket, parent string) ([]string, error) {
	var dirs []string
	for p := parent; p != ""; {
		in, err := getInfo(b, p)
		if err != nil {
			return nil, fmt.Errorf("parent chain: %w", err)
		}
		dirs = append(dirs, filepath.Join(s.dir(in.ID), "fs"))
		p = in.Parent
		if len(dirs) > 500 {
			return nil, fmt.Errorf("parent chain of %s: %w: longer than 500 (a cycle?)", parent, errdefs.ErrInvalid)
		}
	}
	return dirs, nil
}

// Mounts returns how to mount snapshot key: a bind mount for a base layer,
// otherwise overlay with the parent chain as lowerdirs (nearest first).
func (s *Snapshotter) Mounts(ctx context.Context, key string) ([]Mount, error) {
	var out []Mount
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSnapshots)
		in, err := getInfo(b, key)
		if err != nil {
			return err
		}
		dir := s.dir(in.ID)
		lowers, err := s.chain(b, in.Parent)
		if err != nil {
			return err
		}
		switch in.Kind {
		case Active:
			if len(lowers) == 0 {
				out = []Mount{{Type: "bind", Source: filepath.Join(dir, "fs"), Options: []string{"rbind", "rw"}}}
				return nil
			}
			out = []Mount{overlay(lowers, filepath.Join(dir, "fs"), filepath.Join(dir, "work"))}
		case View:
			if len(lowers) == 1 {
				out = []Mount{{Type: "bind", Source: lowers[0], Options: []string{"rbind", "ro"}}}
				return nil
			}
			out = []Mount{overlay(lowers, "", "")}
		case Committed:
			all := append([]string{filepath.Join(dir, "fs")}, lowers...)
			if len(all) == 1 {
				out = []Mount{{Type: "bind", Source: all[0], Options: []string{"rbind", "ro"}}}
				return nil
			}
			out = []Mount{overlay(all, "", "")}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("mounts of snapshot %s: %w", key, err)
	}
	return out, nil
}

// CommitOpt adjusts Commit.
type CommitOpt func(*commitOpts)

type commitOpts struct {
	parent *string
	labels map[string]string
}

// WithParent sets the parent of the committed snapshot. It is only allowed
// when the active snapshot was prepared without a parent: an overlay upper
// dir does not depend on its lowers, so layers can be unpacked in parallel
// and chained when each is verified.
func WithParent(parent string) CommitOpt {
	return func(o *commitOpts) { o.parent = &parent }
}

// WithLabels replaces the labels of the committed snapshot.
func WithLabels(l map[string]string) CommitOpt {
	return func(o *commitOpts) { o.labels = l }
}

// Commit turns active snapshot key into committed snapshot name. The files
// stay where they are; only the record changes, in one transaction.
func (s *Snapshotter) Commit(ctx context.Context, name, key string, opts ...CommitOpt) error {
	var o commitOpts
	for _, f := range opts {
		f(&o)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSnapshots)
		in, err := getInfo(b, key)
		if err != nil {
			return err
		}
		if in.Kind != Active {
			return fmt.Errorf("%w: %s is %s, not active", errdefs.ErrInvalid, key, in.Kind)
		}
		if b.Get([]byte(name)) != nil {
			return fmt.Errorf("snapshot %s: %w", name, errdefs.ErrAlreadyExists)
		}
		if o.parent != nil {
			if in.Parent != "" {
				return fmt.Errorf("%w: %s already has parent %s", errdefs.ErrInvalid, key, in.Parent)
			}
			if *o.parent != "" {
				p, err := getInfo(b, *o.parent)
				if err != nil {
					return fmt.Errorf("new parent: %w", err)
				}
				if p.Kind != Committed {
					return fmt.Errorf("%w: new parent %s is not committed", errdefs.ErrInvalid, *o.parent)
				}
			}
			in.Parent = *o.parent
		}
		if o.labels != nil {
			in.Labels = o.labels
		}
		if err := b.Delete([]byte(key)); err != nil {
			return err
		}
		in.Name, in.Kind, in.Created = name, Committed, time.Now().UTC()
		return putInfo(b, in)
	})
	if err != nil {
		return fmt.Errorf("commit snapshot %s as %s: %w", key, name, err)
	}
	return nil
}

// Remove deletes snapshot key and its files. A committed snapshot that
// other snapshots build on cannot be removed (ErrConflict). The caller must
// have unmounted it.
//
// A committed snapshot's record goes first, then its files: once the
// record is gone nothing can find the directory, and a crash in between
// leaves an orphan dir that Open removes. An active snapshot or a view (a
// container's, or a build step's) can be nobody's parent, so its record
// and its files go side by side, the files while the record's commit
// waits for the disk: on the exit of a `run --rm` both are on the path
// (0.7-2.9 ms and 1.4-2.1 ms here). A crash in between may then leave a
// record without files, which the next Remove of it deletes; files that
// cannot be removed (a mount left inside) put the record back, for the
// next Remove to try them again.
func (s *Snapshotter) Remove(ctx context.Context, key string) error {
	var in Info
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		in, err = getInfo(tx.Bucket(bucketSnapshots), key)
		return err
	})
	if err != nil {
		return fmt.Errorf("remove snapshot %s: %w", key, err)
	}
	var files chan error
	if in.Kind != Committed {
		files = make(chan error, 1)
		go func() { files <- s.removeFiles(ctx, in.ID) }()
		// Let it start before the commit's fsync holds this thread: a
		// goroutine queued behind a system call waits for Go's sysmon,
		// whose naps hakod's coarse timer slack stretches to ~2 ms
		// (engine's handOff).
		runtime.Gosched()
	}
	_, rspan := trace.Start(ctx, "snapshot.remove.record")
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSnapshots)
		now, err := getInfo(b, key)
		if err != nil {
			return err
		}
		if now.ID != in.ID {
			return fmt.Errorf("snapshot %s: %w (removed and made again meanwhile)", key, errdefs.ErrNotFound)
		}
		if now.Kind == Committed {
			if err := b.ForEach(func(k, v []byte) error {
				var c Info
				if err := json.Unmarshal(v, &c); err != nil {
					return fmt.Errorf("decode snapshot %q: %w", k, err)
				}
				if c.Parent == key {
					return fmt.Errorf("%w: snapshot %s is the parent of %s", errdefs.ErrConflict, key, c.Name)
				}
				return nil
			}); err != nil {
				return err
			}
		}
		return b.Delete([]byte(key))
	})
	rspan.End(err)
	var ferr error
	switch {
	case files != nil:
		ferr = <-files
		if ferr != nil && err == nil {
			// The record goes back, so that a second Remove tries
			// the files again (a mount left inside the layer, since
			// unmounted) instead of finding nothing to remove and
			// leaving them to the next Open.
			if perr := s.db.Update(func(tx *bolt.Tx) error { return putInfo(tx.Bucket(bucketSnapshots), in) }); perr != nil {
				s.log.Warn("put back the record of a snapshot whose files remain", "snapshot", key, "err", perr)
			}
		}
	case err == nil: // committed: the files once the record is gone
		ferr = s.removeFiles(ctx, in.ID)
	}
	if err != nil {
		return fmt.Errorf("remove snapshot %s: %w", key, err)
	}
	if ferr != nil {
		return fmt.Errorf("remove files of snapshot %s: %w", key, ferr)
	}
	return nil
}

func (s *Snapshotter) removeFiles(ctx context.Context, id uint64) error {
	_, span := trace.Start(ctx, "snapshot.remove.files")
	err := s.discard(s.dir(id), strconv.FormatUint(id, 10))
	span.End(err)
	return err
}

// discard removes dir: renamed into the trash (one rename), then emptied
// in the background, so that `run --rm` does not wait for the unlinking
// of a layer's files (~2 ms for the few of `true`'s, on this machine's
// journal-less ext4 much of it in inode bookkeeping). A directory with a
// mount inside (a volume left mounted in the layer) is removed in place,
// so that the removal fails now, with EBUSY, and its record goes back:
// renamed, its failure would only come to the log. Close waits for the
// background work; what a crash leaves in the trash, Open removes.
func (s *Snapshotter) discard(dir, name string) error {
	if mnts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir)); err != nil || len(mnts) > 0 {
		return os.RemoveAll(dir)
	}
	trash := filepath.Join(s.trashDir(), name)
	if err := os.Rename(dir, trash); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return os.RemoveAll(dir)
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		if err := os.RemoveAll(trash); err != nil {
			s.log.Warn("remove a removed snapshot's files", "dir", trash, "err", err)
		}
	}()
	return nil
}

// trashDir holds the files of removed snapshots until they are deleted.
func (s *Snapshotter) trashDir() string { return filepath.Join(s.root, "trash") }

// Usage returns the bytes and inodes used by the files of snapshot name
// (its own layer only, as docker's SizeRw).
func (s *Snapshotter) Usage(ctx context.Context, name string) (size int64, inodes int64, err error) {
	dir, err := s.UpperDir(ctx, name)
	if err != nil {
		return 0, 0, err
	}
	seen := map[uint64]bool{}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		ino := inode(fi)
		if seen[ino] {
			return nil
		}
		seen[ino] = true
		inodes++
		if fi.Mode().IsRegular() {
			size += fi.Size()
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("usage of snapshot %s: %w", name, err)
	}
	return size, inodes, nil
}
