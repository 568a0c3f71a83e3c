package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// startGate holds a container's program until hakod has attached its
// networks, so that the runtime can create and start the container in one
// command while the CNI plugins run.
//
// Without it, a container on a network took two runtime commands: create
// (while CNI ADD ran beside it), then, once both were done, start, one more
// runtime process (~16 ms on the path of every `run` on a bridge, ~12 ms of
// CPU). With it, the spec carries a createRuntime hook, `hako-runtime gate
// FIFO`, which the runtime runs after it has made the container's
// namespaces and before the program can start; the hook returns when hakod
// writes its verdict to the FIFO. This is the spec's own extension point
// (docker's libnetwork uses a prestart hook the same way), so it works
// with runc and crun too: the hook is a program, whatever runtime runs it.
//
// hakod holds the FIFO open for reading and writing from the moment it
// makes it, so the hook's open never waits for a writer, and if hakod dies
// before its verdict the hook reads end-of-file and fails the start rather
// than let the program run without its networks.
type startGate struct {
	path  string
	mu    sync.Mutex // the verdict comes from the network's goroutine
	f     *os.File   // nil once closed
	given bool       // the verdict is written
}

// gateTimeout bounds the hook, in seconds: a start whose networks take
// longer fails. It matches the shim's bound on one runtime command.
const gateTimeout = 120

// newStartGate makes the FIFO in dir.
func newStartGate(dir string) (*startGate, error) {
	path := filepath.Join(dir, "start-gate")
	_ = os.Remove(path) // left by a crash
	if err := unix.Mkfifo(path, 0o600); err != nil {
		return nil, fmt.Errorf("start gate: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("start gate: %w", err)
	}
	return &startGate{path: path, f: f}, nil
}

// hook is the createRuntime hook that waits at the gate; bin is
// hako-runtime.
func (g *startGate) hook(bin string) specs.Hook {
	t := gateTimeout
	return specs.Hook{Path: bin, Args: []string{"hako-runtime", "gate", g.path}, Timeout: &t}
}

// open gives the verdict: the program may start if attached is nil.
// Only the first call counts. The FIFO stays open until close: a FIFO's
// data is dropped when its last descriptor closes, and the hook may not
// have opened it yet.
func (g *startGate) open(attached error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.given || g.f == nil {
		return
	}
	g.given = true
	v := []byte{'1'}
	if attached != nil {
		v[0] = '0'
	}
	_, _ = g.f.Write(v) // the pipe's buffer holds it until the hook reads
}

// close gives the verdict "no" if none was given, closes and removes the
// FIFO. Call it once the runtime's command has returned.
func (g *startGate) close() {
	g.open(errors.New("start abandoned"))
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.f != nil {
		g.f.Close()
		g.f = nil
		os.Remove(g.path)
	}
}

// addGateHook puts the gate's hook first among s's createRuntime hooks.
func addGateHook(s *specs.Spec, h specs.Hook) {
	if s.Hooks == nil {
		s.Hooks = &specs.Hooks{}
	}
	s.Hooks.CreateRuntime = append([]specs.Hook{h}, s.Hooks.CreateRuntime...)
}
