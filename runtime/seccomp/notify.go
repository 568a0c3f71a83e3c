package seccomp

import (
	"encoding/json"
	"fmt"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ProcessState returns the state the runtime-spec says to send to the
// seccomp agent for this program: one fd named "seccompFd" and the
// profile's listenerMetadata.
func (p *Program) ProcessState(pid int, state specs.State) specs.ContainerProcessState {
	return specs.ContainerProcessState{
		Version:  specs.Version,
		Fds:      []string{specs.SeccompFdName},
		Pid:      pid,
		Metadata: p.ListenerMetadata,
		State:    state,
	}
}

// SendListener hands a seccomp notify listener to the agent listening on
// the unix socket at listenerPath, as the runtime-spec's
// linux.seccomp.listenerPath describes: one message carrying the JSON of
// state, with fd attached as SCM_RIGHTS. The fd stays open in the caller,
// which closes it when it no longer needs it.
//
// An empty state.Version becomes the spec version this package was built
// with, and empty state.Fds becomes ["seccompFd"]; state.Fds must name
// exactly the one descriptor sent.
func SendListener(listenerPath string, fd int, state specs.ContainerProcessState) error {
	if err := checkListenerPath(listenerPath); err != nil {
		return err
	}
	if fd < 0 {
		return fmt.Errorf("send seccomp listener to %s: invalid fd %d", listenerPath, fd)
	}
	if state.Version == "" {
		state.Version = specs.Version
	}
	switch len(state.Fds) {
	case 0:
		state.Fds = []string{specs.SeccompFdName}
	case 1:
	default:
		return fmt.Errorf("send seccomp listener to %s: state names %d fds %q, but one is sent", listenerPath, len(state.Fds), state.Fds)
	}
	msg, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("send seccomp listener to %s: encode state: %w", listenerPath, err)
	}

	sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("send seccomp listener to %s: socket: %w", listenerPath, err)
	}
	defer unix.Close(sock)
	if err := unix.Connect(sock, &unix.SockaddrUnix{Name: listenerPath}); err != nil {
		return fmt.Errorf("send seccomp listener: connect to %s: %w", listenerPath, err)
	}
	// The descriptor travels with the first byte; a stream socket may take
	// the rest in more than one write.
	n, err := unix.SendmsgN(sock, msg, unix.UnixRights(fd), nil, 0)
	for err == nil && n < len(msg) {
		msg = msg[n:]
		n, err = unix.Write(sock, msg)
	}
	if err != nil {
		return fmt.Errorf("send seccomp listener to %s: %w", listenerPath, err)
	}
	return nil
}
