package cgroups

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Mode is the host's cgroup layout.
type Mode int

const (
	// ModeV1 has only v1 hierarchies.
	ModeV1 Mode = iota + 1
	// ModeHybrid has v1 hierarchies plus a cgroup2 mount (usually
	// /sys/fs/cgroup/unified) carrying the controllers v1 does not.
	ModeHybrid
	// ModeUnified is pure cgroup v2 mounted at the root.
	ModeUnified
)

func (m Mode) String() string {
	switch m {
	case ModeV1:
		return "v1"
	case ModeHybrid:
		return "hybrid"
	case ModeUnified:
		return "v2"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// MarshalText makes Mode readable in state.json.
func (m Mode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText parses what MarshalText wrote.
func (m *Mode) UnmarshalText(b []byte) error {
	switch string(b) {
	case "v1":
		*m = ModeV1
	case "hybrid":
		*m = ModeHybrid
	case "v2":
		*m = ModeUnified
	default:
		return fmt.Errorf("unknown cgroup mode %q", b)
	}
	return nil
}

// DefaultRoot is where the host's cgroup hierarchies are mounted.
const DefaultRoot = "/sys/fs/cgroup"

// Config says which cgroup a container gets.
type Config struct {
	// Path is linux.cgroupsPath as given: "" (DefaultParent/ID), absolute
	// "/a/b" (from each hierarchy's root), relative "a/b" (from the
	// runtime's own cgroup, as runc does) or "slice:prefix:name" (systemd).
	Path string
	// ID is the container id, used for the default path.
	ID string
	// Systemd is --systemd-cgroup.
	Systemd bool
	// Rootless: use only hierarchies the caller can write (delegated);
	// fail only when resources need one it cannot.
	Rootless bool
	// Root is the cgroup mount root; "" means DefaultRoot. If Root is
	// itself a cgroup2 mount the manager runs in v2 mode on it.
	Root string
	// Logger receives warnings about ignored fields; nil means
	// slog.Default().
	Logger *slog.Logger
}

// State is what the runtime persists (in its state.json) to get the
// manager back with Load in a later invocation.
type State struct {
	Mode        Mode        `json:"mode"`
	Root        string      `json:"root"`
	Rootless    bool        `json:"rootless,omitempty"`
	Hierarchies []Hierarchy `json:"hierarchies"`
	// Skipped are hierarchies a rootless container could not use.
	Skipped []string `json:"skipped,omitempty"`
	// Parents are ancestors of the cgroup that Create made (outermost
	// first); Destroy removes those that are empty by then, so a
	// cgroupsPath such as "a/b/c" leaves no "a/b" behind.
	Parents []string `json:"parents,omitempty"`
}

// Mount describes a "cgroup" mount as the container must see it.
type Mount struct {
	// Dir is the name under the container's /sys/fs/cgroup
	// ("cpu,cpuacct", "memory", "unified"); "" for a pure v2 host, whose
	// cgroup2 is mounted at /sys/fs/cgroup itself.
	Dir string
	// Type is "cgroup" or "cgroup2".
	Type string
	// Options are the super options the mount needs to join the same
	// hierarchy ("cpu","cpuacct" or "name=systemd"); may be empty.
	Options []string
	// Source is the container's cgroup directory on the host, for a bind
	// mount when the container has no cgroup namespace.
	Source string
	// Symlinks are extra names to create in /sys/fs/cgroup pointing at
	// Dir, one per controller of a co-mounted hierarchy ("cpu" and
	// "cpuacct" for "cpu,cpuacct").
	Symlinks []string
}

// Manager controls one container's cgroup.
type Manager interface {
	// Mode reports the host layout the manager works with.
	Mode() Mode
	// Create makes the cgroup on every hierarchy and applies r (which may
	// be nil). Everything is validated before the first mkdir; on any later
	// error exactly what Create made is removed again.
	Create(r *specs.LinuxResources) error
	// Add moves a process into the cgroup on every hierarchy.
	Add(pid int) error
	// UnifiedFD opens the cgroup2 directory for clone3(CLONE_INTO_CGROUP)
	// (SysProcAttr.UseCgroupFD). It returns nil, nil unless the host is
	// pure v2: on v1 and hybrid hosts the process must also join v1
	// hierarchies, which clone3 cannot do, so Add is the way there.
	UnifiedFD() (*os.File, error)
	// Set updates resources. Devices are never changed by Set (runc's
	// update cannot change them either): rewriting a v1 list or swapping
	// the v2 program on a running container would open a window where
	// allowed devices fail.
	Set(r *specs.LinuxResources) error
	// Freeze stops every process and returns once the kernel reports the
	// cgroup frozen.
	Freeze() error
	// Thaw resumes a frozen cgroup.
	Thaw() error
	// Frozen reports whether the cgroup is frozen.
	Frozen() (bool, error)
	// Pids lists every process in the cgroup and its descendants.
	Pids() ([]int, error)
	// Kill sends sig to every process in the cgroup.
	Kill(sig syscall.Signal) error
	// Stats reads runc-compatible statistics from the cgroup files.
	Stats() (*Stats, error)
	// OOMEvents delivers one value per OOM kill in the cgroup; the channel
	// is closed when ctx ends or the cgroup is removed.
	OOMEvents(ctx context.Context) (<-chan struct{}, error)
	// Destroy removes the cgroup (and any sub-cgroups the container made)
	// everywhere. It is idempotent.
	Destroy() error
	// State returns what Load needs.
	State() State
	// Mounts describes the cgroup mounts the container's /sys/fs/cgroup
	// needs.
	Mounts() []Mount
}

// manager implements Manager for v1, hybrid and v2 alike: each controller
// is looked up in the hierarchy the host has it in.
type manager struct {
	mode     Mode
	root     string
	rootless bool
	hier     []Hierarchy
	skipped  []string
	log      *slog.Logger

	// unifiedCtrls caches the cgroup2 root's cgroup.controllers, read on
	// first need (never on the Create(nil)/Add/Destroy path of v1/hybrid).
	unifiedCtrls []string
	// created are the directories Create made, deepest last, for rollback.
	created []string
	// parents are the ancestors among created, kept for Destroy.
	parents []string
}

// New reads the host layout and resolves the container's directories. It
// changes nothing on the host.
func New(c Config) (Manager, error) {
	root := c.Root
	if root == "" {
		root = DefaultRoot
	}
	root = filepath.Clean(root)
	spec, err := parsePath(c)
	if err != nil {
		return nil, err
	}
	mi, err := readAll("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return newFrom(c, root, spec, mi, readSelfCgroup)
}

// newFrom is New with the host's files passed in, so tests can describe a
// host that is not this one (a fake tree under t.TempDir()).
func newFrom(c Config, root string, spec pathSpec, mountinfo []byte, selfCgroup func() ([]byte, error)) (*manager, error) {
	l, err := parseMountinfo(mountinfo, root)
	if err != nil {
		return nil, err
	}
	m := &manager{mode: l.mode, root: root, rootless: c.Rootless, hier: l.hier, log: c.Logger}
	if m.log == nil {
		m.log = slog.Default()
	}
	var own map[string]string
	if spec.relative {
		b, err := selfCgroup()
		if err != nil {
			return nil, err
		}
		if own, err = ownCgroups(b); err != nil {
			return nil, err
		}
	}
	for i := range m.hier {
		h := &m.hier[i]
		base := "/"
		if spec.relative {
			if base, err = ownPath(own, h); err != nil {
				return nil, fmt.Errorf("linux.cgroupsPath %q is relative: %w", c.Path, err)
			}
		}
		rel, err := spec.resolve(base, c.Path)
		if err != nil {
			return nil, err
		}
		h.Path = filepath.Join(h.Mountpoint, rel)
	}
	if c.Rootless {
		m.hier = slices.DeleteFunc(m.hier, func(h Hierarchy) bool {
			if writableAncestor(h.Path, h.Mountpoint) {
				return false
			}
			m.skipped = append(m.skipped, h.Mountpoint)
			return true
		})
	}
	return m, nil
}

// writableAncestor reports whether the caller could create (or already
// owns) dir: the deepest existing directory on the way must be writable.
func writableAncestor(dir, stop string) bool {
	for d := dir; ; d = filepath.Dir(d) {
		var st unix.Stat_t
		if err := unix.Stat(d, &st); err == nil {
			if d == dir {
				return unix.Access(filepath.Join(d, "cgroup.procs"), unix.W_OK) == nil
			}
			return unix.Access(d, unix.W_OK) == nil
		}
		if d == stop || d == "/" {
			return false
		}
	}
}

// Load returns the manager described by a State that State() returned,
// without reading the host layout again.
func Load(s State) (Manager, error) {
	if s.Mode < ModeV1 || s.Mode > ModeUnified {
		return nil, fmt.Errorf("cgroup state: unknown mode %d", s.Mode)
	}
	for _, h := range s.Hierarchies {
		if !strings.HasPrefix(h.Path, h.Mountpoint+"/") {
			return nil, fmt.Errorf("cgroup state: path %q is not below mountpoint %q", h.Path, h.Mountpoint)
		}
	}
	for _, p := range s.Parents {
		below := false
		for _, h := range s.Hierarchies {
			below = below || strings.HasPrefix(h.Path, p+"/") && strings.HasPrefix(p, h.Mountpoint+"/")
		}
		if !below {
			return nil, fmt.Errorf("cgroup state: parent %q is not an ancestor of the container's cgroup", p)
		}
	}
	return &manager{
		mode: s.Mode, root: s.Root, rootless: s.Rootless,
		hier: slices.Clone(s.Hierarchies), skipped: slices.Clone(s.Skipped), parents: slices.Clone(s.Parents),
		log: slog.Default(),
	}, nil
}

func (m *manager) Mode() Mode { return m.mode }

func (m *manager) State() State {
	return State{Mode: m.mode, Root: m.root, Rootless: m.rootless, Hierarchies: slices.Clone(m.hier), Skipped: slices.Clone(m.skipped),
		Parents: slices.Clone(m.parents)}
}

// MarshalJSON lets a Manager be persisted directly.
func (m *manager) MarshalJSON() ([]byte, error) { return json.Marshal(m.State()) }

// unified returns the cgroup2 hierarchy, or nil.
func (m *manager) unified() *Hierarchy {
	for i := range m.hier {
		if m.hier[i].Unified {
			return &m.hier[i]
		}
	}
	return nil
}

// v1 returns the v1 hierarchy carrying ctrl, or nil.
func (m *manager) v1(ctrl string) *Hierarchy {
	for i := range m.hier {
		if !m.hier[i].Unified && m.hier[i].has(ctrl) {
			return &m.hier[i]
		}
	}
	return nil
}

// unifiedControllers reads (once) which controllers the cgroup2 root offers.
func (m *manager) unifiedControllers() ([]string, error) {
	if m.unifiedCtrls != nil {
		return m.unifiedCtrls, nil
	}
	u := m.unified()
	if u == nil {
		return nil, nil
	}
	s, err := readFile(u.Mountpoint, "cgroup.controllers")
	if err != nil {
		return nil, err
	}
	m.unifiedCtrls = strings.Fields(s)
	if m.unifiedCtrls == nil {
		m.unifiedCtrls = []string{}
	}
	return m.unifiedCtrls, nil
}

// v2Name maps a v1 controller name to its cgroup2 name.
func v2Name(ctrl string) string {
	if ctrl == "blkio" {
		return "io"
	}
	return ctrl
}

// place finds the hierarchy carrying ctrl (v1 name): the v1 one if the host
// mounts it there, else the cgroup2 one if its root offers it.
func (m *manager) place(ctrl string) (*Hierarchy, error) {
	if m.mode != ModeUnified {
		if h := m.v1(ctrl); h != nil {
			return h, nil
		}
	}
	if u := m.unified(); u != nil {
		ctrls, err := m.unifiedControllers()
		if err != nil {
			return nil, err
		}
		if slices.Contains(ctrls, v2Name(ctrl)) {
			return u, nil
		}
	}
	if m.rootless && len(m.skipped) > 0 {
		return nil, fmt.Errorf("no writable hierarchy with the %s controller (rootless; not delegated: %s)", ctrl, strings.Join(m.skipped, ", "))
	}
	where := "no v1 hierarchy carries it"
	if u := m.unified(); u != nil {
		where += fmt.Sprintf(" and %s/cgroup.controllers does not list %q", u.Mountpoint, v2Name(ctrl))
	}
	return nil, fmt.Errorf("the host has no %s controller (%s)", ctrl, where)
}

// Create makes the cgroup and applies r.
func (m *manager) Create(r *specs.LinuxResources) error {
	if r != nil {
		if err := Validate(r, m.mode); err != nil {
			return err
		}
		if err := m.check(r, true); err != nil {
			return err
		}
	}
	if err := m.mkdirs(); err != nil {
		m.rollback()
		return err
	}
	if r != nil {
		if err := m.apply(r, true); err != nil {
			m.rollback()
			return err
		}
	}
	leaves := map[string]bool{}
	for _, h := range m.hier {
		leaves[h.Path] = true
	}
	for _, d := range m.created {
		if !leaves[d] {
			m.parents = append(m.parents, d)
		}
	}
	m.created = nil
	return nil
}

// mkdirs creates the leaf on every hierarchy, recording what it made.
func (m *manager) mkdirs() error {
	for i := range m.hier {
		h := &m.hier[i]
		made, err := mkdirAll(h.Path, h.Mountpoint)
		m.created = append(m.created, made...)
		if err != nil {
			return err
		}
		if !h.Unified && h.has("cpuset") && len(made) > 0 {
			if err := initCpusets(made, h.Path); err != nil {
				return err
			}
		}
		if h.Unified && m.mode == ModeUnified {
			if err := m.enableAll(h); err != nil {
				return err
			}
		}
	}
	return nil
}

// mkdirAll creates dir and any missing parents below stop and returns the
// directories it created, outermost first. The common case (parent exists)
// costs one mkdir.
func mkdirAll(dir, stop string) ([]string, error) {
	err := unix.Mkdir(dir, 0o755)
	switch {
	case err == nil:
		return []string{dir}, nil
	case errors.Is(err, unix.EEXIST):
		return nil, nil
	case !errors.Is(err, unix.ENOENT):
		return nil, fmt.Errorf("create cgroup %s: %w", dir, err)
	}
	if dir == stop || filepath.Dir(dir) == dir {
		return nil, fmt.Errorf("create cgroup %s: hierarchy root missing", dir)
	}
	var made []string
	for attempt := 0; ; attempt++ {
		m, err := mkdirAll(filepath.Dir(dir), stop)
		made = append(made, m...)
		if err != nil {
			return made, err
		}
		err = unix.Mkdir(dir, 0o755)
		if err == nil || errors.Is(err, unix.EEXIST) {
			break
		}
		// Another container's Destroy may have removed the empty parent
		// between our two mkdirs: make it again.
		if !errors.Is(err, unix.ENOENT) || attempt == 3 {
			return made, fmt.Errorf("create cgroup %s: %w", dir, err)
		}
	}
	return append(made, dir), nil
}

// initCpusets fills new v1 cpuset directories' cpus and mems from their
// parents: v1 creates them empty and refuses tasks until both are set.
// Parents hako creates also get cgroup.clone_children=1, so the kernel
// fills every later leaf under them at mkdir and the usual Create costs one
// read here instead of two reads and two writes.
func initCpusets(made []string, leaf string) error {
	for _, d := range made {
		if d == leaf {
			cpus, err := readFile(d, "cpuset.cpus")
			if err != nil {
				return err
			}
			if strings.TrimSpace(cpus) != "" {
				continue // filled by the parent's clone_children
			}
		}
		parent := filepath.Dir(d)
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			v, err := readFile(parent, f)
			if err != nil {
				return err
			}
			if err := writeFile(d, f, v); err != nil {
				return fmt.Errorf("initialise %s from parent: %w", f, err)
			}
		}
		if d != leaf {
			if err := writeFile(d, "cgroup.clone_children", "1"); err != nil {
				return err
			}
		}
	}
	return nil
}

// enableAll turns on, in every ancestor of the leaf, all controllers the
// cgroup2 root offers, so the leaf gets their files (as runc does on v2).
func (m *manager) enableAll(h *Hierarchy) error {
	ctrls, err := m.unifiedControllers()
	if err != nil {
		return err
	}
	return enableControllers(h, ctrls)
}

// enableControllers writes "+ctrl" into cgroup.subtree_control from the
// hierarchy root down to the leaf's parent.
func enableControllers(h *Hierarchy, ctrls []string) error {
	if len(ctrls) == 0 {
		return nil
	}
	var b strings.Builder
	for i, c := range ctrls {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("+" + c)
	}
	all := b.String()
	rel := strings.TrimPrefix(h.Path, h.Mountpoint)
	dir := h.Mountpoint
	elems := strings.Split(strings.Trim(rel, "/"), "/")
	for _, e := range elems {
		if err := writeFile(dir, "cgroup.subtree_control", all); err != nil {
			// Some controller cannot be enabled here (e.g. a threaded
			// subtree, or not offered by this level): enable what can be.
			for _, c := range ctrls {
				_ = writeFile(dir, "cgroup.subtree_control", "+"+c)
			}
		}
		dir = filepath.Join(dir, e)
	}
	return nil
}

// rollback removes what Create made, deepest first.
func (m *manager) rollback() {
	for i := len(m.created) - 1; i >= 0; i-- {
		if err := unix.Rmdir(m.created[i]); err != nil && !errors.Is(err, unix.ENOENT) {
			m.log.Warn("cgroup rollback: cannot remove directory", "dir", m.created[i], "err", err)
		}
	}
	m.created = nil
}

// Add writes pid into cgroup.procs everywhere.
func (m *manager) Add(pid int) error {
	s := fmt.Sprint(pid)
	for i := range m.hier {
		if err := writeFile(m.hier[i].Path, "cgroup.procs", s); err != nil {
			return fmt.Errorf("add pid %d to cgroup: %w", pid, err)
		}
	}
	return nil
}

func (m *manager) UnifiedFD() (*os.File, error) {
	u := m.unified()
	if m.mode != ModeUnified || u == nil { // nil: rootless, not delegated
		return nil, nil
	}
	fd, err := unix.Open(u.Path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open cgroup %s for CLONE_INTO_CGROUP: %w", u.Path, err)
	}
	return os.NewFile(uintptr(fd), u.Path), nil
}

// Set applies updated resources (devices excluded).
func (m *manager) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if err := Validate(r, m.mode); err != nil {
		return err
	}
	if err := m.check(r, false); err != nil {
		return err
	}
	return m.apply(r, false)
}

// Destroy removes the cgroup everywhere. Sub-cgroups are removed deepest
// first; EBUSY (processes still exiting) is retried for up to ~1 s.
func (m *manager) Destroy() error {
	var errs []error
	for i := range m.hier {
		if err := removeTree(m.hier[i].Path); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		// Innermost first; a parent another container still uses is not
		// empty and stays.
		for i := len(m.parents) - 1; i >= 0; i-- {
			_ = unix.Rmdir(m.parents[i])
		}
	}
	return errors.Join(errs...)
}

func removeTree(dir string) error {
	// Fast path: a leaf without sub-cgroups, already empty.
	err := unix.Rmdir(dir)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("remove cgroup %s: %w", dir, err)
	}
	ents, rerr := os.ReadDir(dir)
	if rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		return fmt.Errorf("remove cgroup %s: %w", dir, rerr)
	}
	for _, e := range ents {
		if e.IsDir() {
			if err := removeTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	delay := time.Millisecond
	for deadline := time.Now().Add(time.Second); ; {
		err = unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("remove cgroup %s: %w", dir, err)
		}
		time.Sleep(delay)
		delay = min(delay*2, 100*time.Millisecond)
	}
}

func (m *manager) Mounts() []Mount {
	out := make([]Mount, 0, len(m.hier))
	for _, h := range m.hier {
		mt := Mount{Dir: filepath.Base(h.Mountpoint), Type: "cgroup", Options: slices.Clone(h.Options), Source: h.Path}
		if h.Unified {
			mt.Type = "cgroup2"
			if h.Mountpoint == m.root {
				mt.Dir = ""
			}
		} else if len(h.Controllers) > 1 {
			for _, c := range h.Controllers {
				if c != mt.Dir && !strings.HasPrefix(c, "name=") {
					mt.Symlinks = append(mt.Symlinks, c)
				}
			}
		}
		out = append(out, mt)
	}
	return out
}
