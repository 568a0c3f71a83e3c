// Package container is the OCI runtime's lifecycle: create, start, run,
// state, kill, delete, exec, pause, resume, update and events, each working
// from the container's state directory. It composes the planning packages
// (bundle, rootfs, process, cgroups, seccomp) into a program for the init
// and starts it with runtime/nsexec.
package container

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/runtime/bundle"
	"github.com/hako-project/hako/runtime/cgroups"
	"github.com/hako-project/hako/runtime/state"
)

// Runtime holds the global options every command shares.
type Runtime struct {
	Root     string   // state root (--root)
	Log      *os.File // --log, for the init's late errors; nil: stderr only
	LogJSON  bool     // --log-format json
	Systemd  bool     // --systemd-cgroup
	Rootless bool
}

// Status of a container, as the runtime spec names them.
type Status string

// The runtime-spec statuses, plus paused (runc's extension).
const (
	Creating Status = "creating"
	Created  Status = "created"
	Running  Status = "running"
	Paused   Status = "paused"
	Stopped  Status = "stopped"
)

// Container is a container known to the runtime.
type Container struct {
	rt    *Runtime
	dir   state.Dir
	State *state.State
}

// Load finds the container id.
func (r *Runtime) Load(id string) (*Container, error) {
	if err := bundle.ValidateID(id); err != nil {
		return nil, err
	}
	d := state.Dir{Root: r.Root, ID: id}
	st, err := d.Load()
	if err != nil {
		return nil, err
	}
	return &Container{rt: r, dir: d, State: st}, nil
}

// List loads every container under the root.
func (r *Runtime) List() ([]*Container, error) {
	ids, err := state.List(r.Root)
	if err != nil {
		return nil, err
	}
	var out []*Container
	for _, id := range ids {
		c, err := r.Load(id)
		if err != nil {
			if errors.Is(err, state.ErrNotExist) {
				continue // deleted meanwhile
			}
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// ID is the container's ID.
func (c *Container) ID() string { return c.dir.ID }

// Status derives the container's status from its init process.
func (c *Container) Status() Status {
	if c.State.Creating {
		return Creating
	}
	if !c.State.Alive() {
		return Stopped
	}
	if _, err := os.Lstat(c.dir.Path(state.FifoFile)); err == nil {
		return Created
	}
	if c.State.Cgroup != nil {
		if m, err := cgroups.Load(*c.State.Cgroup); err == nil {
			if frozen, err := m.Frozen(); err == nil && frozen {
				return Paused
			}
		}
	}
	return Running
}

// Pid is the init's pid while it lives, else 0.
func (c *Container) Pid() int {
	switch c.Status() {
	case Created, Running, Paused:
		return c.State.InitPid
	}
	return 0
}

// OCIState is the state the runtime spec defines, as `state` prints it and
// hooks receive it.
func (c *Container) OCIState() specs.State {
	return specs.State{
		Version:     specs.Version,
		ID:          c.ID(),
		Status:      specs.ContainerState(c.Status()),
		Pid:         c.Pid(),
		Bundle:      c.State.Bundle,
		Annotations: c.State.Annotations,
	}
}

// Info is what `state` and `list --format json` print: the spec's state plus
// the fields runc adds and callers such as containerd read.
type Info struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Owner       string            `json:"owner"`
}

// Info describes the container.
func (c *Container) Info() Info {
	return Info{
		OCIVersion:  specs.Version,
		ID:          c.ID(),
		Pid:         c.Pid(),
		Status:      string(c.Status()),
		Bundle:      c.State.Bundle,
		Rootfs:      c.State.Rootfs,
		Created:     c.State.Created,
		Annotations: c.State.Annotations,
		Owner:       c.State.Owner,
	}
}

// Config is the spec the container was created with.
func (c *Container) Config() (*specs.Spec, error) { return c.dir.LoadConfig() }

func (c *Container) cgroup() (cgroups.Manager, error) {
	if c.State.Cgroup == nil {
		return nil, nil
	}
	return cgroups.Load(*c.State.Cgroup)
}

func ownerName() string {
	uid := os.Getuid()
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return "#" + strconv.Itoa(uid)
}

// signalInit signals the init through a pidfd, so a recycled pid can never
// receive it.
func (c *Container) signalInit(sig unix.Signal) error {
	if c.State.InitPid <= 0 || !c.State.Alive() {
		return fmt.Errorf("container %q is not running", c.ID())
	}
	fd, err := unix.PidfdOpen(c.State.InitPid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("container %q is not running", c.ID())
		}
		return unix.Kill(c.State.InitPid, sig)
	}
	defer unix.Close(fd)
	// The pid was checked alive by start time before the pidfd was opened.
	if start, _, err := state.ProcStart(c.State.InitPid); err != nil || start != c.State.InitStart {
		return fmt.Errorf("container %q is not running", c.ID())
	}
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil {
		return fmt.Errorf("signal %d to init of %q: %w", sig, c.ID(), err)
	}
	return nil
}
