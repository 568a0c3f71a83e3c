package monitor

import (
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/shim/internal/proto"
	"github.com/hako-project/hako/shim/reaper"
)

// process is the container's init or one exec: its stdio, and its exit
// once the reaper has seen it and its output has drained.
type process struct {
	id  string // "" for the init
	pid int
	io  *stdio

	mu     sync.Mutex
	reaped bool // the pid is gone: never signal it again
	exit   *proto.Exit
	done   chan struct{} // closed when exit is set
	// waiters are Wait connections to answer at the exit.
	waiters map[*net.UnixConn]struct{}
}

func newProcess(id string) *process {
	return &process{id: id, done: make(chan struct{}), waiters: map[*net.UnixConn]struct{}{}}
}

// exitFrom converts a reaped exit.
func exitFrom(e reaper.Exit) proto.Exit {
	return proto.Exit{Pid: e.Pid, Code: e.Code(), Signal: int(e.Signal()), At: e.At.UTC()}
}

func (p *process) exitStatus() *proto.Exit {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exit == nil {
		return nil
	}
	e := *p.exit
	return &e
}

// endedExit returns the exit of a process that has been reaped, waiting up
// to d for its output to drain (the exit is recorded after that); nil for
// one still running, or still draining after d.
func (p *process) endedExit(d time.Duration) *proto.Exit {
	p.mu.Lock()
	reaped := p.reaped
	p.mu.Unlock()
	if !reaped {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return p.exitStatus()
	case <-t.C:
		return nil
	}
}

// markReaped is called from the reaper's goroutine as soon as the process
// is reaped, before the output drains: from then on the pid may belong to
// someone else.
func (p *process) markReaped() {
	p.mu.Lock()
	p.reaped = true
	p.mu.Unlock()
}

// signal sends sig to the process unless it has been reaped.
func (p *process) signal(sig unix.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reaped || p.pid <= 1 {
		return conflictf("exec %s is not running", p.id)
	}
	return unix.Kill(p.pid, sig)
}

// finish records the exit and answers everyone waiting for it.
func (p *process) finish(e proto.Exit) {
	p.mu.Lock()
	p.exit = &e
	close(p.done)
	waiters := p.waiters
	p.waiters = nil
	p.mu.Unlock()
	for c := range waiters {
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		_ = proto.WriteMsg(c, &proto.Response{Exit: &e})
		c.Close()
	}
}

// wait answers conn with the exit, now or when it comes. Until then the
// connection is read so that a client that gives up is forgotten at once.
func (p *process) wait(conn *net.UnixConn) {
	p.mu.Lock()
	if p.exit != nil {
		e := *p.exit
		p.mu.Unlock()
		_ = proto.WriteMsg(conn, &proto.Response{Exit: &e})
		return
	}
	p.waiters[conn] = struct{}{}
	p.mu.Unlock()
	var b [1]byte
	_, _ = conn.Read(b[:]) // returns when the client leaves or finish closes conn
	p.mu.Lock()
	if p.waiters != nil {
		delete(p.waiters, conn)
	}
	p.mu.Unlock()
}
