// Package volume is hako's "local" volume driver, laid out as docker's:
// each volume is a directory <data-root>/volumes/NAME whose _data is what
// containers see, beside a JSON file of its metadata (name, driver, labels,
// options, creation time). A volume with docker's local-driver options
// (type, device, o: a tmpfs, a bind of a host directory, an NFS export) has
// that file system mounted on its _data while some container uses it. The
// package counts which containers use each volume (the caller names them by
// opaque references: the engine passes container IDs), refuses to remove a
// volume in use, prunes unused ones, and copies image content into a new,
// empty volume (copy-up).
//
// It knows nothing of containers, images or the Docker API: the engine
// decides which volumes a container gets and when they are mounted, and
// api/docker turns them into docker's JSON.
package volume

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hako-project/hako/errdefs"
)

// DriverName is the only driver hako has: docker's default.
const DriverName = "local"

// AnonymousLabel marks a volume created without a name (an image's VOLUME,
// `-v /path`, `--mount type=volume` without a source), as docker marks it.
const AnonymousLabel = "com.docker.volume.anonymous"

const (
	dataDir  = "_data"       // what containers see, docker's name for it
	metaFile = "volume.json" // the volume's metadata, beside _data
	// Directories being created or removed carry these prefixes, which no
	// volume name can have (names start with a letter or digit), so a
	// crash leaves nothing a listing would show; Open removes them.
	stagingPrefix = ".tmp-"
	removalPrefix = ".rm-"
)

// validName is docker's rule for local volume names.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// Volume is what is known of one volume.
type Volume struct {
	Name      string            `json:"name"`
	Driver    string            `json:"driver"`
	Labels    map[string]string `json:"labels,omitempty"`
	Options   map[string]string `json:"options,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	// Mountpoint is the volume's _data directory (not stored: it follows
	// the data root).
	Mountpoint string `json:"-"`
}

// Anonymous reports whether the volume was created without a name.
func (v Volume) Anonymous() bool {
	_, ok := v.Labels[AnonymousLabel]
	return ok
}

// NeedsMount reports whether the volume's _data is a file system of its own
// (local-driver options), mounted while containers use it.
func (v Volume) NeedsMount() bool {
	return v.Options["type"] != "" || v.Options["device"] != ""
}

// CreateOptions are a volume create request.
type CreateOptions struct {
	// Name is the volume's name; empty makes an anonymous volume with a
	// random 64-hex name.
	Name string
	// Anonymous marks the volume with AnonymousLabel (implied by an empty
	// Name): the engine names anonymous volumes before it creates them.
	Anonymous bool
	// Driver must be "" or "local".
	Driver  string
	Options map[string]string
	Labels  map[string]string
	// Ref, if set, is recorded as a user of the volume in the same step,
	// so a concurrent remove or prune cannot take it from under a
	// container being created.
	Ref string
}

// Store keeps the volumes of one data root. It is safe for concurrent use.
type Store struct {
	root string // <data-root>/volumes
	log  *slog.Logger

	mu   sync.Mutex
	vols map[string]*entry
}

// entry is a volume and who uses it. refs are the containers that have the
// volume in their configuration (from create until removal); active are the
// references that have it mounted right now (running containers, a copy-up).
type entry struct {
	Volume
	refs   map[string]struct{}
	active map[string]struct{}
	// mountMu serializes mounting and unmounting of this volume, so a slow
	// mount (NFS) holds up only its own volume.
	mountMu sync.Mutex
}

// Open loads the volumes under root (created if missing) and removes what
// an interrupted create or remove left.
func Open(root string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(root, 0o701); err != nil {
		return nil, fmt.Errorf("create volumes directory: %w", err)
	}
	s := &Store{root: root, log: log, vols: map[string]*entry{}}
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("read volumes directory: %w", err)
	}
	for _, de := range ents {
		name := de.Name()
		if strings.HasPrefix(name, stagingPrefix) || strings.HasPrefix(name, removalPrefix) {
			if err := s.removeDir(filepath.Join(root, name)); err != nil {
				log.Warn("remove what an interrupted volume create or remove left", "dir", name, "err", err)
			}
			continue
		}
		if !de.IsDir() || !validName.MatchString(name) {
			continue
		}
		v, err := s.readMeta(name)
		if err != nil {
			log.Warn("skipping unreadable volume", "name", name, "err", err)
			continue
		}
		s.vols[name] = &entry{Volume: v, refs: map[string]struct{}{}, active: map[string]struct{}{}}
	}
	return s, nil
}

// Root is the directory holding the volumes.
func (s *Store) Root() string { return s.root }

func (s *Store) dir(name string) string      { return filepath.Join(s.root, name) }
func (s *Store) dataPath(name string) string { return filepath.Join(s.root, name, dataDir) }

// readMeta reads a volume's metadata. A directory without one (a volume
// moved in by hand, as docker's own layout allows) is a plain local volume
// created when its directory was.
func (s *Store) readMeta(name string) (Volume, error) {
	b, err := os.ReadFile(filepath.Join(s.dir(name), metaFile))
	if errors.Is(err, fs.ErrNotExist) {
		st, err := os.Stat(s.dir(name))
		if err != nil {
			return Volume{}, err
		}
		return Volume{Name: name, Driver: DriverName, CreatedAt: st.ModTime().UTC(), Mountpoint: s.dataPath(name)}, nil
	}
	if err != nil {
		return Volume{}, err
	}
	var v Volume
	if err := json.Unmarshal(b, &v); err != nil {
		return Volume{}, fmt.Errorf("read %s: %w", metaFile, err)
	}
	if v.Name != name {
		return Volume{}, fmt.Errorf("%s names volume %q", metaFile, v.Name)
	}
	v.Mountpoint = s.dataPath(name)
	return v, nil
}

// NewName returns a random 64-hex volume name, as docker gives anonymous
// volumes.
func NewName() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

// ValidateName applies docker's rule for local volume names, with docker's
// messages.
func ValidateName(name string) error {
	if len(name) == 1 {
		return errdefs.Invalidf("create %s: volume name is too short, names should be at least two alphanumeric characters", name)
	}
	if !validName.MatchString(name) {
		return errdefs.Invalidf("create %s: %q includes invalid characters for a local volume name, only %q are allowed. If you intended to pass a host directory, use absolute path",
			name, name, "[a-zA-Z0-9][a-zA-Z0-9_.-]")
	}
	return nil
}

// ValidateDriver accepts "" and "local", the only driver there is.
func ValidateDriver(name, driver string) error {
	if driver != "" && driver != DriverName {
		return errdefs.NotFoundf("create %s: error looking up volume plugin %s: plugin %q not found", name, driver, driver)
	}
	return nil
}

// Create makes a volume, or returns the existing one of that name (as
// docker does: `docker run -v name:/p` creates it on first use; options of
// a later request are ignored). created tells which. Nothing is left on
// disk when it fails: the volume's directory appears whole, by a rename.
func (s *Store) Create(o CreateOptions) (v Volume, created bool, err error) {
	anonymous := o.Name == "" || o.Anonymous
	if o.Name == "" {
		o.Name = NewName()
	}
	if err := ValidateDriver(o.Name, o.Driver); err != nil {
		return Volume{}, false, err
	}
	if err := ValidateName(o.Name); err != nil {
		return Volume{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.vols[o.Name]; ok {
		if o.Ref != "" {
			e.refs[o.Ref] = struct{}{}
		}
		return e.Volume, false, nil
	}
	if err := ValidateOptions(o.Name, o.Options); err != nil {
		return Volume{}, false, err
	}
	v = Volume{Name: o.Name, Driver: DriverName, Labels: copyMap(o.Labels), Options: copyMap(o.Options),
		CreatedAt: time.Now().UTC().Truncate(time.Second)}
	if anonymous {
		if v.Labels == nil {
			v.Labels = map[string]string{}
		}
		v.Labels[AnonymousLabel] = ""
	}
	if err := s.writeNew(v); err != nil {
		return Volume{}, false, fmt.Errorf("create %s: %w", o.Name, err)
	}
	v.Mountpoint = s.dataPath(v.Name)
	e := &entry{Volume: v, refs: map[string]struct{}{}, active: map[string]struct{}{}}
	if o.Ref != "" {
		e.refs[o.Ref] = struct{}{}
	}
	s.vols[v.Name] = e
	s.log.Debug("volume created", "name", v.Name, "anonymous", anonymous)
	return v, true, nil
}

// writeNew builds the volume's directory under a staging name (its _data
// and metadata) and renames it into place.
func (s *Store) writeNew(v Volume) error {
	stage, err := os.MkdirTemp(s.root, stagingPrefix)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(stage)
		}
	}()
	if err := os.Chmod(stage, 0o701); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(stage, dataDir), 0o755); err != nil {
		return err
	}
	// Mkdir's mode is cut by the umask; docker's _data is 0755.
	if err := os.Chmod(filepath.Join(stage, dataDir), 0o755); err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(stage, metaFile), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, werr := f.Write(b)
	serr := f.Sync()
	if err := errors.Join(werr, serr, f.Close()); err != nil {
		return fmt.Errorf("write %s: %w", metaFile, err)
	}
	// rename(2) replaces an empty directory: a stray empty NAME directory
	// would be taken over, anything else is refused.
	if err := os.Rename(stage, s.dir(v.Name)); err != nil {
		return fmt.Errorf("volume already exists under %s: %w", s.root, err)
	}
	ok = true
	return nil
}

// Get returns the named volume.
func (s *Store) Get(name string) (Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.vols[name]
	if !ok {
		return Volume{}, notFound(name)
	}
	return e.Volume, nil
}

func notFound(name string) error { return errdefs.NotFoundf("get %s: no such volume", name) }

// List returns every volume, sorted by name.
func (s *Store) List() []Volume {
	s.mu.Lock()
	out := make([]Volume, 0, len(s.vols))
	for _, e := range s.vols {
		out = append(out, e.Volume)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Refs returns the references (container IDs) that use the volume, sorted.
func (s *Store) Refs(name string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.vols[name]
	if !ok {
		return nil
	}
	return sortedKeys(e.refs)
}

// Acquire records ref as a user of the volume (a container that names it).
func (s *Store) Acquire(name, ref string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.vols[name]
	if !ok {
		return notFound(name)
	}
	e.refs[ref] = struct{}{}
	return nil
}

// Release forgets ref as a user of the volume; an unknown volume or
// reference is no error (release is idempotent).
func (s *Store) Release(name, ref string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.vols[name]; ok {
		delete(e.refs, ref)
	}
}

// Remove deletes a volume and its data. A volume some reference uses is
// refused with docker's conflict; force makes a missing volume no error
// (docker's `volume rm -f`), not an in-use one removable.
func (s *Store) Remove(name string, force bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.vols[name]
	if !ok {
		if force {
			return nil
		}
		return notFound(name)
	}
	if len(e.refs) > 0 {
		return errdefs.Conflictf("remove %s: volume is in use - [%s]", name, strings.Join(sortedKeys(e.refs), ", "))
	}
	if err := s.removeLocked(e); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	return nil
}

// removeLocked unmounts the volume if it is mounted, moves its directory
// out of the listing in one rename, then deletes it.
func (s *Store) removeLocked(e *entry) error {
	// Mount and Unmount take mountMu before s.mu: waiting for it here,
	// under s.mu, could deadlock. A volume being mounted is in use.
	if !e.mountMu.TryLock() {
		return errdefs.Conflictf("volume is being mounted")
	}
	defer e.mountMu.Unlock()
	if len(e.active) > 0 {
		return errdefs.Conflictf("volume is mounted")
	}
	if err := unmountData(e.Mountpoint); err != nil {
		return err
	}
	gone, err := os.MkdirTemp(s.root, removalPrefix)
	if err != nil {
		return err
	}
	if err := os.Remove(gone); err != nil {
		return err
	}
	if err := os.Rename(s.dir(e.Name), gone); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	delete(s.vols, e.Name)
	if err := s.removeDir(gone); err != nil {
		s.log.Warn("volume removed, but not all of its data", "name", e.Name, "err", err)
	}
	return nil
}

// removeDir deletes dir unless something is mounted below it: RemoveAll
// would descend into the mount and delete what it shows (for a volume with
// o=bind, the host's directory).
func (s *Store) removeDir(dir string) error {
	if m := mountsUnder(dir); len(m) > 0 {
		return fmt.Errorf("%s still has mounts: %s", dir, strings.Join(m, ", "))
	}
	return os.RemoveAll(dir)
}

// PruneResult is what Prune removed.
type PruneResult struct {
	Deleted        []string // names, sorted
	SpaceReclaimed uint64
}

// Prune removes the volumes no reference uses and match says to, as
// docker's prune does: only volumes without options (a volume with a
// device has no space of its own to reclaim). The space is counted before
// each removal.
func (s *Store) Prune(match func(Volume) bool) (PruneResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for name, e := range s.vols {
		if len(e.refs) == 0 && len(e.Options) == 0 && match(e.Volume) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var res PruneResult
	var errs []error
	for _, name := range names {
		e := s.vols[name]
		size, err := DirSize(e.Mountpoint)
		if err != nil {
			s.log.Warn("could not determine size of volume", "name", name, "err", err)
		}
		if err := s.removeLocked(e); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", name, err))
			continue
		}
		res.Deleted = append(res.Deleted, name)
		res.SpaceReclaimed += uint64(size)
	}
	return res, errors.Join(errs...)
}

// Size is the volume's disk usage, as docker's system df counts it.
func (s *Store) Size(name string) (int64, error) {
	v, err := s.Get(name)
	if err != nil {
		return 0, err
	}
	return DirSize(v.Mountpoint)
}

// DirSize adds up the sizes of everything below dir except directories,
// each hard-linked inode once (docker's directory.Size).
func DirSize(dir string) (int64, error) {
	seen := map[uint64]struct{}{}
	var size int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we walked
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			if _, dup := seen[st.Ino]; dup {
				return nil
			}
			seen[st.Ino] = struct{}{}
		}
		size += fi.Size()
		return nil
	})
	return size, err
}

func copyMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func sortedKeys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
