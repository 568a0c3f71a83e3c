package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"

	"github.com/hako-project/hako/shim/internal/proto"
	"github.com/hako-project/hako/shim/reaper"
	"github.com/hako-project/hako/shim/runtime"
)

// exec starts another process in the container with the runtime's
// `exec --detach`. The request's connection becomes the process's streams
// (its output is not logged, as in docker); it is answered with the pid
// once the process runs.
func (m *Monitor) exec(ctx context.Context, conn *net.UnixConn, req *proto.Request) error {
	id := req.Exec
	if id == "" || len(id) > 256 {
		return invalidf("exec ID %q: want 1 to 256 characters", id)
	}
	if req.Process == nil {
		return invalidf("exec %s: no process given", id)
	}
	m.mu.Lock()
	if m.status == StatusStopped || m.deleted {
		m.mu.Unlock()
		return conflictf("exec %s: container %s is not running", id, m.cfg.ID)
	}
	if _, taken := m.execs[id]; taken {
		m.mu.Unlock()
		return conflictf("exec %s already exists in container %s", id, m.cfg.ID)
	}
	m.execs[id] = nil // reserved while it starts
	m.mu.Unlock()

	p, err := m.startExec(ctx, req)
	m.mu.Lock()
	if err != nil {
		delete(m.execs, id)
	} else {
		m.execs[id] = p
	}
	m.mu.Unlock()
	if err != nil {
		return err
	}
	a := &attachment{conn: conn, stdout: req.Stdout, stderr: req.Stderr}
	attached := proto.WriteMsg(conn, &proto.Response{Pid: p.pid}) == nil && p.io.add(a)
	p.io.start(nil)
	if attached {
		p.io.serveInput(a, req.Stdin)
	}
	return nil
}

func (m *Monitor) startExec(ctx context.Context, req *proto.Request) (*process, error) {
	b, err := json.Marshal(req.Process)
	if err != nil {
		return nil, invalidf("exec %s: process: %v", req.Exec, err)
	}
	procFile := m.nextFile("p", ".json")
	if err := os.WriteFile(procFile, b, 0o600); err != nil {
		return nil, fmt.Errorf("exec %s: %w", req.Exec, err)
	}
	defer os.Remove(procFile)
	pidFile := m.nextFile("p", ".pid")
	defer os.Remove(pidFile)

	p := newProcess(req.Exec)
	started := m.reaper.Expect()
	defer started()
	err = startProcess(ctx, m, p, startSpec{terminal: req.Process.Terminal, stdin: req.Stdin, stdout: req.Stdout,
		stderr: req.Stderr, once: true, pidFile: pidFile}, func(ctx context.Context, consoleSocket string, io runtime.IO) error {
		return m.rt.Exec(ctx, runtime.ExecOptions{ProcessFile: procFile, PidFile: pidFile, ConsoleSocket: consoleSocket, IO: io})
	})
	if err != nil {
		return nil, err
	}
	m.reaper.Watch(p.pid, func(e reaper.Exit) {
		p.markReaped()
		go m.execExited(p, e)
	})
	return p, nil
}

// execExited records an exec's exit once its output has drained, and
// keeps it for Wait, dropping the oldest unwaited ones beyond a bound.
func (m *Monitor) execExited(p *process, e reaper.Exit) {
	p.io.drain(drainTimeout)
	p.io.endClients()
	p.finish(exitFrom(e))
	p.io.close()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.execs[p.id] != p {
		return
	}
	m.finished = append(m.finished, p.id)
	for len(m.finished) > maxFinishedExecs {
		delete(m.execs, m.finished[0])
		m.finished = m.finished[1:]
	}
}
