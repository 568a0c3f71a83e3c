package container

import (
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// consolePair is the socket over which a foreground run or exec receives the
// pty master from the init, when the caller gave no --console-socket.
func consolePair() (ours, theirs *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), "console"), os.NewFile(uintptr(fds[1]), "console-init"), nil
}

// ptyProxy connects the runtime's own terminal to the container's pty
// master: raw mode on our side, copies both ways, window size on SIGWINCH.
type ptyProxy struct {
	master  *os.File
	restore *unix.Termios
	wg      sync.WaitGroup
}

func startProxy(master *os.File) *ptyProxy {
	px := &ptyProxy{master: master}
	if t, err := unix.IoctlGetTermios(0, unix.TCGETS); err == nil {
		saved := *t
		px.restore = &saved
		raw := *t
		raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		raw.Oflag &^= unix.OPOST
		raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		raw.Cflag &^= unix.CSIZE | unix.PARENB
		raw.Cflag |= unix.CS8
		raw.Cc[unix.VMIN] = 1
		raw.Cc[unix.VTIME] = 0
		_ = unix.IoctlSetTermios(0, unix.TCSETS, &raw)
		px.resize()
	}
	go func() { _, _ = io.Copy(master, os.Stdin) }()
	px.wg.Add(1)
	go func() {
		defer px.wg.Done()
		_, _ = io.Copy(os.Stdout, master)
	}()
	return px
}

// resize copies our terminal's size to the container's.
func (px *ptyProxy) resize() {
	if ws, err := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ); err == nil {
		_ = unix.IoctlSetWinsize(int(px.master.Fd()), unix.TIOCSWINSZ, ws)
	}
}

// finish waits for the output to drain and restores our terminal.
func (px *ptyProxy) finish() {
	px.wg.Wait()
	if px.restore != nil {
		_ = unix.IoctlSetTermios(0, unix.TCSETS, px.restore)
	}
	px.master.Close()
}
