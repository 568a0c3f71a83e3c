package nsexec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/internal/timerslack"
)

// Config says how to start a container process and how to answer it while it
// sets itself up.
type Config struct {
	// Program is what the process carries out; Start prepends the fd table.
	Program *Program
	// Stdio becomes fds 0, 1 and 2 (a nil entry is closed).
	Stdio [3]*os.File
	// Preserve become fds 3.. in the container (--preserve-fds, LISTEN_FDS).
	Preserve []*os.File
	// Fifo is the exec fifo (O_PATH) for create/start; nil: Start waits for
	// (*Process).Release instead.
	Fifo *os.File
	// ExecAtOnce: the program (process.Options.ExecAtOnce) executes the
	// user's program right after reporting ready; Release does nothing.
	ExecAtOnce bool
	// ConsoleSocket is a connected socket to send the pty master to.
	ConsoleSocket *os.File
	// Log receives the init's errors once the parent has gone (--log).
	Log     *os.File
	LogJSON bool
	// Trace receives the init's spans as JSON lines; TraceID and ParentSpan
	// place them in the caller's trace.
	Trace      *os.File
	TraceID    string
	ParentSpan string
	// CgroupFD, if set, starts the process directly in that cgroup v2
	// (clone3 CLONE_INTO_CGROUP).
	CgroupFD *os.File

	// Started is called with the pid of the first process before it receives
	// its program, to put it in the container's cgroups, unless it was
	// started in CgroupFD (a kernel without clone3 falls back to Started).
	Started func(pid int) error
	// Userns writes the uid and gid maps of pid.
	Userns func(pid int) error
	// Hooks runs the prestart and createRuntime hooks for the init pid and
	// returns the state JSON the init hands to its createContainer hooks.
	Hooks func(pid int) ([]byte, error)
	// SeccompFD hands a seccomp listener fd on (it is closed afterwards).
	SeccompFD func(pid int, fd *os.File) error
}

// Process is a container process that has set itself up and waits to be
// released (run) or started through the exec fifo (create/start).
type Process struct {
	// Pid is the process that will exec the user's program.
	Pid int
	// first is the process started, our child: the init itself, or the
	// door into a PID namespace that exits once it has forked the init.
	first       int
	firstReaped bool
	sock        *os.File
	// execAtOnce: not waiting for Release (Config.ExecAtOnce).
	execAtOnce bool
}

// InitError is an error the container process reported while setting up.
type InitError struct{ Msg string }

func (e *InitError) Error() string { return e.Msg }

// Start starts a process from a sealed copy of this binary, runs it through
// its program up to the point where it waits to be started, and answers its
// requests on the way. On error the process is gone.
func Start(cfg *Config, self *os.File) (*Process, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	parent := os.NewFile(uintptr(fds[0]), "init-sync")
	child := os.NewFile(uintptr(fds[1]), "init-sync-child")

	files := []*os.File{cfg.Stdio[0], cfg.Stdio[1], cfg.Stdio[2]}
	files = append(files, cfg.Preserve...)
	next := len(files)
	add := func(f *os.File) int {
		if f == nil {
			return -1
		}
		files = append(files, f)
		next++
		return next - 1
	}
	exeFD := add(self)
	syncFD := add(child)
	fifoFD := add(cfg.Fifo)
	consoleFD := add(cfg.ConsoleSocket)
	logFD := add(cfg.Log)
	traceFD := add(cfg.Trace)

	var prog Program
	prog.Add(OpFDs, Step{}, fifoFD, consoleFD, logFD, traceFD, cfg.LogJSON)
	if cfg.Trace != nil && cfg.TraceID != "" {
		prog.Add(OpTrace, Step{}, cfg.TraceID, cfg.ParentSpan)
		// Everything the init does hangs under one span, closed at its execve.
		prog.Begin("runtime.init", nil)
	}
	prog.buf = append(prog.buf, cfg.Program.buf...)

	// syscall.ForkExec rather than os.StartProcess: the latter probes once
	// per process whether pidfds work by forking a throwaway child, which
	// costs a process start here; the first process is our unreaped child,
	// so its pid cannot be recycled while we use it.
	fdList := make([]uintptr, len(files))
	for i, f := range files {
		fdList[i] = f.Fd()
	}
	attr := &syscall.ProcAttr{
		Env:   []string{initEnv + "=" + strconv.Itoa(syncFD)},
		Files: fdList,
		Sys:   &syscall.SysProcAttr{},
	}
	if cfg.CgroupFD != nil {
		attr.Sys.UseCgroupFD = true
		attr.Sys.CgroupFD = int(cfg.CgroupFD.Fd())
	}
	// The init becomes the container's process: the runtime's original
	// timer slack, not its coarse one.
	var first int
	err = timerslack.Fork(func() (err error) {
		first, err = syscall.ForkExec("/proc/self/fd/"+strconv.Itoa(exeFD), []string{"hako-runtime", "init"}, attr)
		if errors.Is(err, syscall.ENOSYS) && attr.Sys.UseCgroupFD {
			// No clone3 (Linux < 5.7): an ordinary fork, then Started.
			attr.Sys.UseCgroupFD = false
			first, err = syscall.ForkExec("/proc/self/fd/"+strconv.Itoa(exeFD), []string{"hako-runtime", "init"}, attr)
		}
		return err
	})
	runtime.KeepAlive(files)
	// Only the child keeps its end: an init that dies then reads as EOF.
	child.Close()
	if err != nil {
		parent.Close()
		return nil, fmt.Errorf("start container init: %w", err)
	}
	p := &Process{first: first, sock: parent, Pid: -1}
	fail := func(err error) (*Process, error) {
		p.kill()
		return nil, err
	}
	if cfg.Started != nil && !attr.Sys.UseCgroupFD {
		if err := cfg.Started(first); err != nil {
			return fail(err)
		}
	}
	if err := p.send(msgBootstrap, prog.buf); err != nil {
		return fail(fmt.Errorf("send init program: %w", p.exitReason(err)))
	}
	for {
		typ, payload, err := p.recv()
		if err != nil {
			return fail(p.exitReason(err))
		}
		switch typ {
		case msgPid:
			if len(payload) != 4 {
				return fail(errors.New("container init sent a malformed pid"))
			}
			p.Pid = int(binary.LittleEndian.Uint32(payload))
			if p.Pid != first {
				// The first process was only the door into the PID namespace.
				wait(first)
				p.firstReaped = true
			}
		case msgUserns:
			pid := first
			if len(payload) == 4 {
				pid = int(binary.LittleEndian.Uint32(payload))
			}
			if err := answer(p, cfg.Userns, pid); err != nil {
				return fail(err)
			}
		case msgHooks:
			var state []byte
			if cfg.Hooks != nil {
				state, err = cfg.Hooks(p.Pid)
			}
			if err != nil {
				_ = p.send(msgError, []byte(err.Error()))
				return fail(err)
			}
			if err := p.send(msgAck, state); err != nil {
				return fail(p.exitReason(err))
			}
		case msgSeccompFD:
			fd, err := p.recvFD()
			if err != nil {
				return fail(fmt.Errorf("receive seccomp listener: %w", err))
			}
			if cfg.SeccompFD == nil {
				fd.Close()
				return fail(errors.New("seccomp listener fd received but no listenerPath handler"))
			}
			err = cfg.SeccompFD(p.Pid, fd)
			fd.Close()
			if err != nil {
				_ = p.send(msgError, []byte(err.Error()))
				return fail(err)
			}
			if err := p.send(msgAck, nil); err != nil {
				return fail(p.exitReason(err))
			}
		case msgReady:
			if p.Pid <= 0 {
				// Never act on an unknown pid: signalling -1 would reach every process.
				return fail(errors.New("container init reported ready before its pid"))
			}
			if cfg.Fifo != nil || cfg.ExecAtOnce {
				p.sock.Close()
				p.sock = nil
			}
			p.execAtOnce = cfg.ExecAtOnce
			return p, nil
		case msgError:
			return fail(&InitError{Msg: string(payload)})
		default:
			return fail(fmt.Errorf("container init sent unknown message %d", typ))
		}
	}
}

func answer(p *Process, fn func(int) error, pid int) error {
	if fn == nil {
		err := errors.New("container init asked for user namespace maps, but none are configured")
		_ = p.send(msgError, []byte(err.Error()))
		return err
	}
	if err := fn(pid); err != nil {
		_ = p.send(msgError, []byte(err.Error()))
		return err
	}
	if err := p.send(msgAck, nil); err != nil {
		return p.exitReason(err)
	}
	return nil
}

// Release lets a process that waits on the sync socket (no exec fifo) exec
// the user's program; state is handed to its startContainer hooks.
func (p *Process) Release(state []byte) error {
	if p.execAtOnce {
		return nil // under way already
	}
	if p.sock == nil {
		return errors.New("process waits on the exec fifo, not on the runtime")
	}
	return p.send(msgStart, state)
}

// ExecAtOnce reports whether the process executes the user's program
// without waiting for Release (Config.ExecAtOnce).
func (p *Process) ExecAtOnce() bool { return p.execAtOnce }

// WaitExec, after Release, waits until the process has run its
// startContainer hooks and executed the user's program (or died): its end
// of the sync socket is close-on-exec, so that is when the socket reads
// end-of-file. The spec runs poststart hooks only after that.
func (p *Process) WaitExec() {
	if p.sock == nil {
		return
	}
	var b [64]byte
	for {
		if _, err := p.sock.Read(b[:]); err != nil {
			return
		}
	}
}

// Close drops the runtime's side of the sync socket; a process still waiting
// for Release then exits.
func (p *Process) Close() {
	if p.sock != nil {
		p.sock.Close()
		p.sock = nil
	}
}

func (p *Process) kill() {
	if p.Pid > 0 && p.Pid != p.first {
		_ = unix.Kill(p.Pid, unix.SIGKILL)
		wait(p.Pid) // CLONE_PARENT made the init our child too
	}
	if !p.firstReaped {
		// Unreaped, our child's pid cannot have been recycled.
		_ = unix.Kill(p.first, unix.SIGKILL)
		wait(p.first)
		p.firstReaped = true
	}
	p.Close()
}

// wait reaps our child pid.
func wait(pid int) {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err != unix.EINTR {
			return
		}
	}
}

// exitReason explains a broken sync socket by how the process ended.
func (p *Process) exitReason(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, unix.EPIPE) || errors.Is(err, unix.ECONNRESET) {
		return fmt.Errorf("container init exited before it was ready")
	}
	return err
}

func (p *Process) send(typ uint32, payload []byte) error {
	hdr := make([]byte, 8, 8+len(payload))
	binary.LittleEndian.PutUint32(hdr, typ)
	binary.LittleEndian.PutUint32(hdr[4:], uint32(len(payload)))
	_, err := p.sock.Write(append(hdr, payload...))
	return err
}

func (p *Process) recv() (uint32, []byte, error) {
	var hdr [8]byte
	if _, err := io.ReadFull(p.sock, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.LittleEndian.Uint32(hdr[4:])
	if n > 1<<20 {
		return 0, nil, fmt.Errorf("container init sent a message of %d bytes", n)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(p.sock, payload); err != nil {
		return 0, nil, err
	}
	return binary.LittleEndian.Uint32(hdr[:4]), payload, nil
}

func (p *Process) recvFD() (*os.File, error) {
	return RecvFD(p.sock)
}

// RecvFD receives one file descriptor sent with SCM_RIGHTS on a unix socket,
// as the init sends its pty master and seccomp listener.
func RecvFD(sock *os.File) (*os.File, error) {
	rc, err := sock.SyscallConn()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4*4))
	var n, oobn int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
		return rerr != unix.EAGAIN
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, err
	}
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, extra := range fds[1:] {
			unix.Close(extra)
		}
		if len(fds) > 0 {
			return os.NewFile(uintptr(fds[0]), string(buf[:n])), nil
		}
	}
	return nil, errors.New("no file descriptor in message")
}

// SealedSelf returns a handle on this binary through which nobody can write
// it: a detached read-only bind mount of the file, or failing that (no
// privilege for mounts) a sealed memfd copy. The container process is
// executed from it, so /proc/<pid>/exe inside the container can never be
// opened for writing (CVE-2019-5736).
func SealedSelf() (*os.File, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, "/proc/self/exe", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err == nil {
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
		if err = unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err == nil {
			return os.NewFile(uintptr(fd), "hako-runtime (read-only)"), nil
		}
		unix.Close(fd)
	}
	return sealedCopy()
}

func sealedCopy() (*os.File, error) {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil, fmt.Errorf("open own binary: %w", err)
	}
	defer src.Close()
	fd, err := unix.MemfdCreate("hako-runtime", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd for a sealed copy of the runtime: %w", err)
	}
	dst := os.NewFile(uintptr(fd), "hako-runtime (sealed)")
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return nil, fmt.Errorf("copy runtime binary: %w", err)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(dst.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		dst.Close()
		return nil, fmt.Errorf("seal runtime copy: %w", err)
	}
	return dst, nil
}
