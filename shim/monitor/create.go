package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/shim/internal/proto"
	"github.com/hako-project/hako/shim/logs"
	"github.com/hako-project/hako/shim/reaper"
	"github.com/hako-project/hako/shim/runtime"
)

// consoleTimeout bounds waiting for the runtime to hand over the pty
// master after a successful create or exec (it sends it before exiting).
const consoleTimeout = 10 * time.Second

// bundleInfo is what the shim reads from the bundle's config.json.
type bundleInfo struct {
	terminal bool
	ownPidNS bool
}

func readBundle(dir string) (bundleInfo, error) {
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return bundleInfo{}, invalidf("bundle %s: %v", dir, err)
	}
	info, err := parseBundle(b)
	if err != nil {
		return bundleInfo{}, invalidf("bundle %s: config.json: %v", dir, err)
	}
	return info, nil
}

// parseBundle reads what the shim needs from a bundle's config.json.
func parseBundle(b []byte) (bundleInfo, error) {
	var spec struct {
		Process *struct {
			Terminal bool `json:"terminal"`
		} `json:"process"`
		Linux *struct {
			Namespaces []struct {
				Type string `json:"type"`
				Path string `json:"path"`
			} `json:"namespaces"`
		} `json:"linux"`
	}
	if err := json.Unmarshal(b, &spec); err != nil {
		return bundleInfo{}, err
	}
	var info bundleInfo
	if spec.Process != nil {
		info.terminal = spec.Process.Terminal
	}
	if spec.Linux != nil {
		for _, ns := range spec.Linux.Namespaces {
			if ns.Type == "pid" && ns.Path == "" {
				info.ownPidNS = true
			}
		}
	}
	return info, nil
}

// create runs the runtime's create: afterwards the init exists, holds its
// stdio, and waits for start. With Config.Run it runs the runtime's `run
// --detach` instead: the program runs, and its output is held until start.
func (m *Monitor) create() (err error) {
	ctx := context.Background()
	if m.cfg.Traceparent != "" && m.cfg.TraceFile != "" {
		var end func(error)
		ctx, end = m.startTrace(ctx, m.cfg.Traceparent, m.cfg.TraceFile, "shim.monitor.create")
		defer func() { end(err) }()
	}
	info, err := readBundle(m.cfg.Bundle)
	if err != nil {
		return err
	}
	if info.terminal != m.cfg.Terminal {
		return invalidf("bundle %s: process.terminal is %v but the shim was configured with terminal %v", m.cfg.Bundle, info.terminal, m.cfg.Terminal)
	}
	m.ownPidNS = info.ownPidNS
	if m.cfg.Log.Path != "" {
		if m.ctlog, err = logs.Open(logs.Config{Path: m.cfg.Log.Path, Format: logs.Format(m.cfg.Log.Format),
			MaxSize: m.cfg.Log.MaxSize, MaxFiles: m.cfg.Log.MaxFiles, Attrs: m.cfg.Log.Attrs}); err != nil {
			return invalidf("container log: %v", err)
		}
	}
	p := newProcess("")
	m.init = p
	pidFile := filepath.Join(m.dir, proto.InitPidFile)
	started := m.reaper.Expect()
	defer started()
	if err := startProcess(ctx, m, p, startSpec{terminal: m.cfg.Terminal, stdin: m.cfg.Stdin, stdout: true, stderr: true,
		once: m.cfg.StdinOnce, pidFile: pidFile}, func(ctx context.Context, consoleSocket string, io runtime.IO) error {
		o := runtime.CreateOptions{Bundle: m.cfg.Bundle, PidFile: pidFile, ConsoleSocket: consoleSocket, IO: io}
		if m.cfg.Run {
			return m.rt.Run(ctx, o)
		}
		return m.rt.Create(ctx, o)
	}); err != nil {
		// A failed create can leave a half-made container behind.
		if derr := m.rt.Delete(context.Background(), true); derr != nil && !runtime.IsNotExist(derr) {
			m.log.Warn("remove the failed container", "err", derr)
		}
		return err
	}
	m.reaper.Watch(p.pid, m.initReaped)
	if m.cgroupPath, err = findCgroup(p.pid); err != nil {
		m.log.Warn("no cgroup for stats and OOM reports", "err", err)
	}
	if m.cfg.Run {
		// start only lets the output go (see stdio.hold).
		p.io.hold(holdTimeout)
		m.mu.Lock()
		if m.status != StatusStopped { // it may have exited already
			m.status = StatusRunning
		}
		m.mu.Unlock()
	} else {
		m.setStatus(StatusCreated)
	}
	p.io.start(m.ctlog)
	return nil
}

// holdTimeout bounds how long the output of a container made with
// Config.Run waits for start: a client that died between its Start and
// its Client.Start must not leave the container blocked on a full pipe.
const holdTimeout = 10 * time.Second

// startSpec is how a process gets its stdio.
type startSpec struct {
	terminal, stdin, stdout, stderr, once bool
	pidFile                               string
}

// startProcess sets up p's stdio, runs the runtime command run (create or
// exec) and sets p's pid and stdio from what it left. On error nothing of
// p is left open.
func startProcess(ctx context.Context, m *Monitor, p *process, s startSpec, run func(context.Context, string, runtime.IO) error) error {
	var child runtime.IO
	var consoleLn *net.UnixListener
	var consolePath string
	if s.terminal {
		file := m.nextFile("c", ".sock")
		name, release, err := proto.SocketPath(file)
		if err != nil {
			return fmt.Errorf("console socket: %w", err)
		}
		// The runtime dials name, which may go through our descriptor of
		// the directory: keep it open until the runtime is done.
		defer release()
		if consoleLn, err = net.ListenUnix("unix", &net.UnixAddr{Name: name, Net: "unix"}); err != nil {
			return fmt.Errorf("console socket: %w", err)
		}
		consoleLn.SetUnlinkOnClose(false)
		defer os.Remove(file)
		defer consoleLn.Close()
		consolePath = name
	} else {
		var err error
		if p.io, child, err = newPipeStdio(m.bufs, m.log, s.stdin, s.stdout, s.stderr, s.once); err != nil {
			return err
		}
	}
	err := run(ctx, consolePath, child)
	closeChild(child)
	if err != nil {
		var re *runtime.Error
		if p.io != nil && errors.As(err, &re) && strings.HasPrefix(re.Msg, "exit status") {
			// Nothing in its log: what it said went to the stderr it
			// passed through to the process.
			if text := p.io.stderrText(); text != "" {
				re.Msg = text
			}
		}
		if p.io != nil {
			p.io.close()
		}
		return err
	}
	pid, err := readPidFile(s.pidFile)
	if err != nil {
		if p.io != nil {
			p.io.close()
		}
		return err
	}
	os.Remove(s.pidFile)
	if s.terminal {
		console, err := recvConsole(consoleLn)
		if err != nil {
			_ = unix.Kill(pid, unix.SIGKILL)
			return err
		}
		p.io = newConsoleStdio(m.bufs, m.log, console, s.stdin, s.once)
	}
	p.pid = pid
	return nil
}

// initReaped runs on the reaper's goroutine when the init is reaped.
func (m *Monitor) initReaped(e reaper.Exit) {
	m.init.markReaped()
	go m.initExited(e)
}

// initExited records the init's exit once its output has drained.
func (m *Monitor) initExited(e reaper.Exit) {
	if cg := m.cgroup(); !m.ownPidNS && cg != nil {
		// Without a pid namespace the init's children outlive it; they
		// would keep the container's pipes and cgroup busy.
		if err := cg.Kill(unix.SIGKILL); err != nil {
			m.log.Warn("kill the container's remaining processes", "err", err)
		}
	}
	m.init.io.drain(drainTimeout)
	exit := exitFrom(e)
	exit.OOMKilled = oomKilled(m.cgroup())
	if err := m.writeExitFile(exit); err != nil {
		m.log.Error("record exit", "err", err)
	}
	m.log.Info("container exited", "code", exit.Code, "signal", exit.Signal, "oom", exit.OOMKilled)
	m.setStatus(StatusStopped)
	m.init.io.endClients()
	m.init.finish(exit)
}

// stderrText reads what is in the stderr pipe now (the runtime's error
// text when it passed its stderr through), up to 4 KiB.
func (s *stdio) stderrText() string {
	for _, o := range s.outs {
		if o.stream != proto.Stderr {
			continue
		}
		_ = o.f.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		b := make([]byte, 4096)
		n, _ := o.f.Read(b)
		return strings.TrimSpace(string(b[:n]))
	}
	return ""
}

func readPidFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("runtime left no pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s: %q is not a pid", path, b)
	}
	return pid, nil
}

// recvConsole accepts the runtime's connection on the console socket and
// receives the pty master it sends with SCM_RIGHTS. (runtime/nsexec has a
// receiver too, but importing it would link its C constructor into the
// shim.)
func recvConsole(ln *net.UnixListener) (*os.File, error) {
	_ = ln.SetDeadline(time.Now().Add(consoleTimeout))
	conn, err := ln.AcceptUnix()
	if err != nil {
		return nil, fmt.Errorf("receive the terminal: %w", err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(consoleTimeout))
	buf := make([]byte, 1024)
	oob := make([]byte, unix.CmsgSpace(4*4))
	_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, fmt.Errorf("receive the terminal: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, fmt.Errorf("receive the terminal: %w", err)
	}
	master := -1
	for _, msg := range msgs {
		fds, err := unix.ParseUnixRights(&msg)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if master < 0 {
				master = fd
			} else {
				unix.Close(fd)
			}
		}
	}
	if master < 0 {
		return nil, errors.New("receive the terminal: the runtime sent no file descriptor")
	}
	unix.CloseOnExec(master)
	// Non-blocking, so os.NewFile registers it with the poller and reads
	// park the goroutine instead of a thread.
	if err := unix.SetNonblock(master, true); err != nil {
		unix.Close(master)
		return nil, fmt.Errorf("terminal: %w", err)
	}
	return os.NewFile(uintptr(master), "pty-master"), nil
}
