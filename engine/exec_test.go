package engine

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestExecProcessFromBundle: an exec starts from the process of the spec
// the container started with, read back from the bundle once when hakod
// has not kept it (after a restart), then kept; the exec's changes never
// reach the kept base, and a new start replaces it.
func TestExecProcessFromBundle(t *testing.T) {
	e := testEngine(t)
	e.cfg.DataRoot, e.cfg.ExecRoot = t.TempDir(), t.TempDir()
	c := &Container{Record: Record{ID: "c1"}}
	bundle := filepath.Join(e.RunDir(c.ID), "bundle")
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := e.execProcess(c, ExecConfig{Cmd: []string{"true"}}); err == nil {
		t.Fatal("exec without a bundle spec: no error")
	}
	spec := specs.Spec{Version: specs.Version, Root: &specs.Root{Path: "rootfs"}, Process: &specs.Process{
		Args: []string{"sleep", "1000"}, Env: []string{"PATH=/bin", "A=1"}, Cwd: "/srv",
	}}
	data, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := e.execProcess(c, ExecConfig{Cmd: []string{"sh"}, Env: []string{"A=2", "B=3"}, WorkingDir: "/tmp", Tty: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Args, []string{"sh"}) || !slices.Equal(p.Env, []string{"PATH=/bin", "A=2", "B=3"}) || p.Cwd != "/tmp" || !p.Terminal {
		t.Errorf("exec process = %+v", p)
	}
	// Kept: the bundle is no longer read.
	if err := os.Remove(filepath.Join(bundle, "config.json")); err != nil {
		t.Fatal(err)
	}
	p2, err := e.execProcess(c, ExecConfig{Cmd: []string{"id"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p2.Args, []string{"id"}) || !slices.Equal(p2.Env, []string{"PATH=/bin", "A=1"}) || p2.Cwd != "/srv" || p2.Terminal {
		t.Errorf("second exec process = %+v (the first exec's changes leaked into the base?)", p2)
	}
	// A start records its own spec's process.
	c.setBundleProcess(&specs.Process{Args: []string{"new"}, Env: []string{"N=1"}, Cwd: "/"})
	p3, err := e.execProcess(c, ExecConfig{Cmd: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p3.Env, []string{"N=1"}) {
		t.Errorf("after a new start, exec env = %q", p3.Env)
	}
}

// TestBundleDirLegacy: the bundle is in the container's run directory;
// one a hakod from before it left under the data root is read there until
// the container's next start makes it anew.
func TestBundleDirLegacy(t *testing.T) {
	e := testEngine(t)
	e.cfg.DataRoot, e.cfg.ExecRoot = t.TempDir(), t.TempDir()
	id := "c2"
	run := filepath.Join(e.RunDir(id), "bundle")
	if got := e.bundleDir(id); got != run {
		t.Errorf("no bundle anywhere: %s, want %s", got, run)
	}
	legacy := filepath.Join(e.cfg.DataRoot, "containers", id, "bundle")
	if err := os.MkdirAll(legacy, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(legacy, "config.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := e.bundleDir(id); got != legacy {
		t.Errorf("an older hakod's bundle: %s, want %s", got, legacy)
	}
	if err := os.MkdirAll(run, 0o700); err != nil {
		t.Fatal(err)
	}
	if got := e.bundleDir(id); got != run {
		t.Errorf("both: %s, want the run directory's %s", got, run)
	}
}
