// Package state keeps what hako-runtime knows about each container between
// commands: one directory per container under the runtime root
// (default /run/hako-runtime/<id>), holding state.json, the config the
// container was created with, and the exec fifo while it waits to start.
// Status is never stored; it is derived from the init process each time, so
// a container whose init died while nobody watched reads as stopped.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/runtime/cgroups"
)

// DefaultRoot is where runc-compatible callers expect our state by default.
const DefaultRoot = "/run/hako-runtime"

// Files in a container's state directory.
const (
	File       = "state.json"
	ConfigFile = "config.json"
	FifoFile   = "exec.fifo"
	// DeletePlanFile is what delete does once the init has exited, for
	// the runtime's C side (runtime/container/deleteplan.go).
	DeletePlanFile = "delete.plan"
	// StartPlanFile says start may be done by the runtime's C side: no
	// poststart hook is to run (runtime/container/deleteplan.go).
	StartPlanFile = "start.plan"
	// SeccompFile is the compiled seccomp filter the container's
	// processes run under (seccomp.Keep), for exec.
	SeccompFile = "seccomp.json"
)

// ErrNotExist is returned for an unknown container ID.
var ErrNotExist = errors.New("container does not exist")

// ErrExist is returned when creating a container whose ID is taken.
var ErrExist = errors.New("container already exists")

// State is the persistent record of one container.
type State struct {
	ID          string            `json:"id"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// InitPid and InitStart identify the init; the start time (in clock
	// ticks since boot) tells a recycled pid from ours.
	InitPid   int    `json:"init_pid"`
	InitStart uint64 `json:"init_start"`
	// Namespaces maps each namespace type to a path exec can join.
	Namespaces map[specs.LinuxNamespaceType]string `json:"namespaces,omitempty"`
	Cgroup     *cgroups.State                      `json:"cgroup,omitempty"`
	// HostMounts: the container has no mount namespace of its own, so its
	// mounts are in the runtime's and delete must unmount them.
	HostMounts bool `json:"host_mounts,omitempty"`
	// Creating is true until create has finished.
	Creating bool `json:"creating,omitempty"`
}

// Dir is one container's state directory.
type Dir struct {
	Root string
	ID   string
}

// Path returns the directory's path, or a file in it.
func (d Dir) Path(name ...string) string {
	return filepath.Join(append([]string{d.Root, d.ID}, name...)...)
}

// Make creates the directory for a new container, failing with ErrExist if
// the ID is taken (mkdir is the atomic claim on the ID).
func (d Dir) Make() error {
	if err := os.MkdirAll(d.Root, 0o711); err != nil {
		return fmt.Errorf("create runtime root %s: %w", d.Root, err)
	}
	if err := os.Mkdir(d.Path(), 0o711); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("container %q: %w", d.ID, ErrExist)
		}
		return fmt.Errorf("create state directory: %w", err)
	}
	return nil
}

// Remove deletes the state directory and everything in it.
func (d Dir) Remove() error {
	return os.RemoveAll(d.Path())
}

// Save writes s atomically (temporary file, then rename).
func (d Dir) Save(s *State) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return WriteFileAtomic(d.Path(File), b, 0o600)
}

// Load reads the container's state.
func (d Dir) Load() (*State, error) {
	b, err := os.ReadFile(d.Path(File))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			if _, serr := os.Stat(d.Path()); serr == nil {
				// The directory is claimed but create has not written yet.
				return &State{ID: d.ID, Creating: true}, nil
			}
			return nil, fmt.Errorf("container %q: %w", d.ID, ErrNotExist)
		}
		return nil, fmt.Errorf("read state of %q: %w", d.ID, err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("state of %q is corrupt: %w", d.ID, err)
	}
	return &s, nil
}

// SaveConfig keeps the spec the container was created with (hooks and exec
// need it after the bundle may have changed).
func (d Dir) SaveConfig(s *specs.Spec) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return WriteFileAtomic(d.Path(ConfigFile), b, 0o600)
}

// LoadConfig reads the saved spec.
func (d Dir) LoadConfig() (*specs.Spec, error) {
	b, err := os.ReadFile(d.Path(ConfigFile))
	if err != nil {
		return nil, fmt.Errorf("read saved config of %q: %w", d.ID, err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("saved config of %q is corrupt: %w", d.ID, err)
	}
	return &s, nil
}

// ExecConfig is what exec needs of the saved spec. Decoding only these
// fields, and the seccomp profile as raw bytes, spares exec building
// encoding/json's decoders for the whole specs.Spec type tree (about a
// millisecond per exec, perf record).
type ExecConfig struct {
	Linux *struct {
		MountLabel  string                 `json:"mountLabel,omitempty"`
		GIDMappings []specs.LinuxIDMapping `json:"gidMappings,omitempty"`
		Seccomp     json.RawMessage        `json:"seccomp,omitempty"`
	} `json:"linux,omitempty"`
}

// LoadExecConfig reads the part of the saved spec exec needs.
func (d Dir) LoadExecConfig() (*ExecConfig, error) {
	b, err := os.ReadFile(d.Path(ConfigFile))
	if err != nil {
		return nil, fmt.Errorf("read saved config of %q: %w", d.ID, err)
	}
	var c ExecConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("saved config of %q is corrupt: %w", d.ID, err)
	}
	return &c, nil
}

// LoadHooks reads only the hooks of the saved spec: start and delete need
// nothing else, and decoding the whole spec costs them more than the rest
// of their work.
func (d Dir) LoadHooks() (*specs.Hooks, error) {
	b, err := os.ReadFile(d.Path(ConfigFile))
	if err != nil {
		return nil, fmt.Errorf("read saved config of %q: %w", d.ID, err)
	}
	var s struct {
		Hooks *specs.Hooks `json:"hooks"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("saved config of %q is corrupt: %w", d.ID, err)
	}
	return s.Hooks, nil
}

// Lock takes an exclusive lock on the state directory for the life of the
// returned file, so that two commands do not change one container at once.
func (d Dir) Lock() (*os.File, error) {
	f, err := os.Open(d.Path())
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("container %q: %w", d.ID, ErrNotExist)
		}
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock state of %q: %w", d.ID, err)
	}
	return f, nil
}

// CacheDir is the directory under the state root that keeps compiled
// seccomp filters; its '@' can be in no container ID.
const CacheDir = "@seccomp"

// List returns the IDs of all containers under root, sorted.
func List(root string) ([]string, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var ids []string
	for _, e := range ents {
		// Names with '@' are the runtime's own (the seccomp cache), never
		// container IDs.
		if e.IsDir() && !strings.Contains(e.Name(), "@") {
			ids = append(ids, e.Name())
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// WriteFileAtomic writes data to a temporary file next to name and renames
// it into place, so readers never see a half-written file.
func WriteFileAtomic(name string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), name)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// ProcStart returns the start time of pid in clock ticks since boot and
// whether it is a zombie, from /proc/<pid>/stat.
func ProcStart(pid int) (start uint64, zombie bool, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false, err
	}
	// The command name may contain spaces and parentheses: fields start
	// after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, false, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	return start, f[0] == "Z" || f[0] == "X", err
}

// Alive reports whether the init recorded in s is still running (not a
// zombie and not a recycled pid).
func (s *State) Alive() bool {
	if s.InitPid <= 0 {
		return false
	}
	start, zombie, err := ProcStart(s.InitPid)
	return err == nil && !zombie && start == s.InitStart
}
