package engine

import (
	"context"
	"errors"
	"io"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hako-project/hako/runtime/cgroups"
)

// Task is a container's processes as the engine drives them: in hakod, a
// hako-shim (see taskshim.go). The interface keeps the engine's logic
// testable and names exactly what the engine needs from a monitor.
type Task interface {
	// Pid is the container init's pid on the host.
	Pid() int
	// Start lets the created container run its program.
	Start(ctx context.Context) error
	// Attach connects streams to the container's stdio. It returns once the
	// streams are connected; done delivers the end of the attach.
	Attach(ctx context.Context, s Streams) (done <-chan error, err error)
	Resize(ctx context.Context, height, width uint16) error
	Kill(ctx context.Context, sig syscall.Signal, all bool) error
	// Wait blocks until the container's init exits.
	Wait(ctx context.Context) (ExitStatus, error)
	Pause(ctx context.Context) error
	Resume(ctx context.Context) error
	Update(ctx context.Context, r *specs.LinuxResources) error
	Stats(ctx context.Context) (*cgroups.Stats, error)
	// Exec adds a process to the running container.
	Exec(ctx context.Context, cfg ExecTaskConfig) (ExecTask, error)
	// ReopenLog makes the container log start a new file (kubelet rotates).
	ReopenLog(ctx context.Context) error
	// Delete removes the runtime's container and ends the shim; it may
	// return while the shim process is still exiting.
	Delete(ctx context.Context, force bool) (ExitStatus, error)
	// Close drops the connection without touching the container.
	Close() error
}

// ErrDetach, returned by an attach's stdin, ends the attach without ending
// the container's stdin (docker's detach keys).
var ErrDetach = errors.New("detached")

// Streams are the ends an attach or exec connects to; nil ones are not
// connected.
type Streams struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// ExitStatus is how a container or exec process ended.
type ExitStatus struct {
	Code      int // 128+n when killed by signal n
	OOMKilled bool
	ExitedAt  time.Time
}

// ExecTaskConfig describes a process to add to a running container.
type ExecTaskConfig struct {
	ID      string
	Process specs.Process
	Streams Streams
}

// ExecTask is a process added with Exec.
type ExecTask interface {
	Pid() int
	Resize(ctx context.Context, height, width uint16) error
	Kill(ctx context.Context, sig syscall.Signal) error
	// Wait blocks until the process exits and its output has been copied.
	Wait(ctx context.Context) (ExitStatus, error)
}
