package shim_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hako-project/hako/shim"
)

// TestRuntimeRejectsBundle: the runtime's own error, naming the field,
// comes back from Start, and nothing is left.
func TestRuntimeRejectsBundle(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r rt) {
		id := newID("bad")
		cfg := r.config(t, id, newBundle(t, id, []string{"true"}, func(s *specs.Spec) { s.Process.Cwd = "relative/dir" }))
		_, err := shim.Start(testCtx(t), cfg)
		if !errors.Is(err, shim.ErrRuntime) || !strings.Contains(strings.ToLower(err.Error()), "cwd") {
			t.Fatalf("Start with a relative cwd: %v, want the runtime's error about cwd", err)
		}
		t.Logf("%s says: %v", r.name, err)
		assertGone(t, r, id, cfg.StateDir)
	})
}

// TestRuntimeNotARuntime: a binary that fails every command.
func TestRuntimeNotARuntime(t *testing.T) {
	needRoot(t)
	r := rt{name: "false", path: "/bin/false", root: t.TempDir()}
	id := newID("false")
	cfg := r.config(t, id, newBundle(t, id, []string{"true"}, nil))
	_, err := shim.Start(testCtx(t), cfg)
	if !errors.Is(err, shim.ErrRuntime) || !strings.Contains(err.Error(), "false create "+id) {
		t.Fatalf("Start with /bin/false as runtime: %v", err)
	}
	assertGone(t, r, id, cfg.StateDir)
}

// TestBadConfig: configurations refused before or by the shim, each
// leaving nothing behind.
func TestBadConfig(t *testing.T) {
	needRoot(t)
	r := rt{name: "hako-runtime", path: runtimeBin, root: t.TempDir()}
	id := newID("cfg")
	bundle := newBundle(t, id, []string{"true"}, nil)
	cases := []struct {
		name   string
		adjust func(*shim.Config)
		want   error
		text   string
	}{
		{"unknown runtime", func(c *shim.Config) { c.Runtime = "/nonexistent/runc" }, shim.ErrInvalid, "/nonexistent/runc"},
		{"runtime not in PATH", func(c *shim.Config) { c.Runtime = "no-such-runtime-xyz" }, shim.ErrInvalid, "no-such-runtime-xyz"},
		{"bad ID", func(c *shim.Config) { c.ID = "a/b" }, shim.ErrInvalid, "ID"},
		{"relative bundle", func(c *shim.Config) { c.Bundle = "bundle" }, shim.ErrInvalid, "Bundle"},
		{"missing bundle", func(c *shim.Config) { c.Bundle = "/nonexistent/bundle" }, shim.ErrInvalid, "config.json"},
		{"StdinOnce without Stdin", func(c *shim.Config) { c.StdinOnce = true }, shim.ErrInvalid, "StdinOnce"},
		{"bad log format", func(c *shim.Config) { c.Log = shim.LogConfig{Path: "/tmp/x.log", Format: "syslog"} }, shim.ErrInvalid, "syslog"},
		{"relative log", func(c *shim.Config) { c.Log = shim.LogConfig{Path: "x.log"} }, shim.ErrInvalid, "Log.Path"},
		{"bad traceparent", func(c *shim.Config) { c.Traceparent = "00-zz" }, shim.ErrInvalid, "traceparent"},
		{"missing shim binary", func(c *shim.Config) { c.Binary = "/nonexistent/hako-shim" }, shim.ErrInvalid, "hako-shim"},
		// Found by the shim itself, after it started.
		{"terminal mismatch", func(c *shim.Config) { c.Terminal = true }, shim.ErrInvalid, "process.terminal"},
		{"unwritable log", func(c *shim.Config) { c.Log = shim.LogConfig{Path: "/proc/hako-log/x.log"} }, shim.ErrInvalid, "log"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := r.config(t, id, bundle)
			tc.adjust(&cfg)
			_, err := shim.Start(testCtx(t), cfg)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("Start: %v, want %v mentioning %q", err, tc.want, tc.text)
			}
			assertGone(t, r, id, cfg.StateDir)
		})
	}
}

// TestStateDirTaken: Start never touches an existing state directory.
func TestStateDirTaken(t *testing.T) {
	needRoot(t)
	r := rt{name: "hako-runtime", path: runtimeBin, root: t.TempDir()}
	id := newID("taken")
	cfg := r.config(t, id, newBundle(t, id, []string{"true"}, nil))
	must(t, os.MkdirAll(cfg.StateDir, 0o700))
	marker := filepath.Join(cfg.StateDir, "keep")
	must(t, os.WriteFile(marker, nil, 0o600))
	if _, err := shim.Start(testCtx(t), cfg); !errors.Is(err, shim.ErrConflict) {
		t.Fatalf("Start into an existing state directory: %v, want ErrConflict", err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("Start touched the existing state directory: %v", err)
	}
}

// TestStartCancelled: a caller that gives up while the runtime creates
// the container (hakod killed mid-way) leaves nothing: the shim notices
// that nobody will adopt the container and removes it.
func TestStartCancelled(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r rt) {
		slow := filepath.Join(t.TempDir(), "slow-runtime")
		script := "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = create ] && sleep 1; done\nexec " + r.path + " \"$@\"\n"
		must(t, os.WriteFile(slow, []byte(script), 0o755))
		id := newID("cancel")
		cfg := r.config(t, id, newBundle(t, id, []string{"sleep", "1000"}, nil))
		cfg.Runtime = slow
		ctx, cancel := context.WithTimeout(testCtx(t), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := shim.Start(ctx, cfg)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Start: %v, want the context's error", err)
		}
		if d := time.Since(start); d > 900*time.Millisecond {
			t.Errorf("Start returned %v after its context ended", d)
		}
		eventually(t, "the shim to remove the unadopted container", func() bool {
			_, err := os.Stat(cfg.StateDir)
			return os.IsNotExist(err)
		})
		assertGone(t, r, id, cfg.StateDir)
	})
}
