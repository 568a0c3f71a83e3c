package engine

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// readGate reads the verdict as the hook does: it opens the FIFO (which
// never waits: the gate holds it open for writing) and reads one byte in
// the background.
func readGate(t *testing.T, path string) <-chan string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan string, 1)
	go func() {
		defer f.Close()
		b := make([]byte, 1)
		n, _ := f.Read(b)
		ch <- string(b[:n])
	}()
	return ch
}

func verdict(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("no verdict")
		return ""
	}
}

// TestStartGate: the verdict reaches the hook whether it opens the FIFO
// before or after hakod writes it; only the first verdict counts; closing
// without one says no; close removes the FIFO.
func TestStartGate(t *testing.T) {
	dir := t.TempDir()
	g, err := newStartGate(dir)
	if err != nil {
		t.Fatal(err)
	}
	h := g.hook("/usr/bin/hako-runtime")
	if h.Path != "/usr/bin/hako-runtime" || len(h.Args) != 3 || h.Args[1] != "gate" || h.Args[2] != filepath.Join(dir, "start-gate") || h.Timeout == nil {
		t.Errorf("hook = %+v", h)
	}
	// Written before the hook opens the FIFO.
	g.open(nil)
	g.open(errors.New("too late"))
	if v := verdict(t, readGate(t, g.path)); v != "1" {
		t.Errorf("verdict %q, want 1", v)
	}
	g.close()
	if _, err := os.Lstat(g.path); !os.IsNotExist(err) {
		t.Errorf("FIFO left after close: %v", err)
	}

	// The hook waits first; a failed attach says no.
	g, err = newStartGate(dir)
	if err != nil {
		t.Fatal(err)
	}
	ch := readGate(t, g.path)
	g.open(errors.New("CNI ADD failed"))
	if v := verdict(t, ch); v != "0" {
		t.Errorf("verdict %q, want 0", v)
	}
	g.close()

	// Abandoned: close without a verdict says no.
	g, err = newStartGate(dir)
	if err != nil {
		t.Fatal(err)
	}
	ch = readGate(t, g.path)
	g.close()
	if v := verdict(t, ch); v != "0" {
		t.Errorf("verdict %q, want 0", v)
	}
	g.close() // twice is harmless
}

func TestAddGateHook(t *testing.T) {
	s := &specs.Spec{}
	addGateHook(s, specs.Hook{Path: "/gate"})
	s.Hooks.CreateRuntime = append(s.Hooks.CreateRuntime, specs.Hook{Path: "/other"})
	addGateHook(s, specs.Hook{Path: "/gate2"})
	if got := s.Hooks.CreateRuntime; len(got) != 3 || got[0].Path != "/gate2" || got[1].Path != "/gate" || got[2].Path != "/other" {
		t.Errorf("createRuntime hooks = %+v", got)
	}
}
