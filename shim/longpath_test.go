package shim_test

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hako-project/hako/shim"
)

// TestLongStateDir: a state directory whose socket paths exceed what a
// sockaddr_un holds (107 bytes) still works, for the shim's own socket and
// for the console sockets the runtime dials (a deep --exec-root once made
// every container fail to start).
func TestLongStateDir(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r rt) {
		ctx := testCtx(t)
		id := newID("long")
		base, err := os.MkdirTemp("", "hs")
		must(t, err)
		t.Cleanup(func() { os.RemoveAll(base) })
		cfg := r.config(t, id, newBundle(t, id, []string{"sh", "-c", "tty; read x"}, func(s *specs.Spec) {
			s.Process.Terminal = true
		}))
		cfg.StateDir = filepath.Join(base, strings.Repeat("x", 80), id)
		must(t, os.MkdirAll(filepath.Dir(cfg.StateDir), 0o700))
		t.Cleanup(func() { forceRemove(cfg) })
		if n := len(filepath.Join(cfg.StateDir, "shim.sock")); n <= 107 {
			t.Fatalf("socket path is only %d bytes", n)
		}
		cfg.Terminal, cfg.Stdin = true, true
		c, err := shim.Start(ctx, cfg)
		if err != nil {
			t.Fatalf("Start with a long state directory: %v", err)
		}
		var out syncBuffer
		in, inW := io.Pipe()
		stream, err := c.Attach(ctx, shim.AttachOptions{Stdin: in, Stdout: &out})
		must(t, err)
		must(t, c.Start(ctx))
		eventually(t, "the terminal", func() bool { return strings.Contains(out.String(), "/dev/") })

		// A second client (as hakod after a restart) and a tty exec, whose
		// console socket is in the same long directory.
		c2, err := shim.Connect(ctx, cfg.StateDir)
		must(t, err)
		p := execProcess("tty")
		p.Terminal = true
		var eout syncBuffer
		e, err := c2.Exec(ctx, shim.ExecConfig{ID: "tty", Process: p, Stdout: &eout})
		must(t, err)
		if st, err := e.Wait(ctx); err != nil || st.Code != 0 || !strings.Contains(eout.String(), "/dev/pts/") {
			t.Errorf("tty exec: %+v %v, output %q", st, err, eout.String())
		}
		c2.Close()

		_, _ = inW.Write([]byte("\n"))
		if st, err := c.Wait(ctx); err != nil || st.Code != 0 {
			t.Errorf("exit %+v %v", st, err)
		}
		must(t, stream.Wait())
		inW.Close()
		deleteAndCheck(t, r, c, false)
	})
}
