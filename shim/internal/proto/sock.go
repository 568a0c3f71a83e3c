package proto

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// SocketPath returns a name for the socket file at path that fits a
// sockaddr_un. A path that does not (a deep exec root: .../shims/<64 hex
// digits>/shim.sock easily passes 107 bytes) is named through an O_PATH
// descriptor of its directory, /proc/PID/fd/N/NAME, which the kernel
// resolves like any path, for this process and for its children (the
// runtime dials the console socket this way). release closes the
// descriptor: call it once the socket is bound or connected.
func SocketPath(path string) (name string, release func(), err error) {
	if len(path) <= MaxSocketPath {
		return path, func() {}, nil
	}
	dir, base := filepath.Split(path)
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	name = fmt.Sprintf("/proc/%d/fd/%d/%s", os.Getpid(), fd, base)
	if len(name) > MaxSocketPath {
		unix.Close(fd)
		return "", nil, fmt.Errorf("socket %s: its name %q is too long for a socket address", path, base)
	}
	return name, func() { unix.Close(fd) }, nil
}

// Listen listens on the socket file at path, however long the path. The
// listener does not remove the file when closed: its name may have been a
// /proc/PID/fd one that no longer resolves. Callers remove path.
func Listen(path string) (*net.UnixListener, error) {
	name, release, err := SocketPath(path)
	if err != nil {
		return nil, err
	}
	defer release()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: name, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false)
	return ln, nil
}

// Dial connects to the socket file at path, however long the path.
func Dial(ctx context.Context, path string) (*net.UnixConn, error) {
	name, release, err := SocketPath(path)
	if err != nil {
		return nil, err
	}
	defer release()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", name)
	if err != nil {
		return nil, err
	}
	return c.(*net.UnixConn), nil
}
