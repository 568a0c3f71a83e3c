package shim_test

import (
	"errors"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hako-project/hako/shim"
)

// TestStdinOnce: cat echoes an attached client's stdin, a second client
// sees the output too, and the end of the first client's stdin closes the
// container's (StdinOnce), so cat exits.
func TestStdinOnce(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r rt) {
		ctx := testCtx(t)
		c, _ := startContainer(t, r, []string{"cat"}, nil, func(cfg *shim.Config) {
			cfg.Stdin, cfg.StdinOnce = true, true
		})
		var out1, out2 syncBuffer
		in, inW := io.Pipe()
		s1, err := c.Attach(ctx, shim.AttachOptions{Stdin: in, Stdout: &out1})
		must(t, err)
		s2, err := c.Attach(ctx, shim.AttachOptions{Stdout: &out2})
		must(t, err)
		must(t, c.Start(ctx))
		_, _ = inW.Write([]byte("hello\n"))
		eventually(t, "the echo of the first line", func() bool { return out1.String() == "hello\n" })
		if st, _ := c.State(ctx); st.Status != shim.Running {
			t.Fatalf("cat stopped before its stdin ended: %+v", st)
		}
		_, _ = inW.Write([]byte("world\n"))
		inW.Close()
		exit, err := c.Wait(ctx)
		must(t, err)
		if exit.Code != 0 {
			t.Errorf("cat exit %+v, want 0 after its stdin closed", exit)
		}
		must(t, s1.Wait())
		must(t, s2.Wait())
		if out1.String() != "hello\nworld\n" || out2.String() != "hello\nworld\n" {
			t.Errorf("clients got %q and %q", out1.String(), out2.String())
		}
		deleteAndCheck(t, r, c, false)
	})
}

// TestStdinStaysOpen: without StdinOnce a client's stdin ending or its
// detaching leaves the container's stdin open for the next client.
func TestStdinStaysOpen(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r rt) {
		ctx := testCtx(t)
		c, _ := startContainer(t, r, []string{"cat"}, nil, func(cfg *shim.Config) { cfg.Stdin = true })
		must(t, c.Start(ctx))
		var out syncBuffer
		s1, err := c.Attach(ctx, shim.AttachOptions{Stdin: strings.NewReader("one\n"), Stdout: &out})
		must(t, err)
		eventually(t, "the first client's line", func() bool { return out.String() == "one\n" })
		must(t, s1.Close())
		var out2 syncBuffer
		in, inW := io.Pipe()
		s2, err := c.Attach(ctx, shim.AttachOptions{Stdin: in, Stdout: &out2})
		must(t, err)
		_, _ = inW.Write([]byte("two\n"))
		eventually(t, "the second client's line", func() bool { return out2.String() == "two\n" })
		if st, _ := c.State(ctx); st.Status != shim.Running {
			t.Errorf("cat stopped: %+v", st)
		}
		inW.Close()
		s2.Close()
		deleteAndCheck(t, r, c, true)
	})
}

// TestAttachStdinWithoutStdin is refused.
func TestAttachStdinWithoutStdin(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r rt) {
		ctx := testCtx(t)
		c, _ := startContainer(t, r, []string{"sleep", "1000"}, nil, nil)
		if _, err := c.Attach(ctx, shim.AttachOptions{Stdin: strings.NewReader("x")}); !errors.Is(err, shim.ErrInvalid) {
			t.Errorf("attach stdin to a container without stdin: %v, want ErrInvalid", err)
		}
		deleteAndCheck(t, r, c, false)
	})
}

// TestTerminal: a tty container sees a terminal of the size set before
// start and after a resize; its output reaches the client and the log.
func TestTerminal(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r rt) {
		ctx := testCtx(t)
		logPath := t.TempDir() + "/tty.log"
		c, _ := startContainer(t, r, []string{"sh", "-c", "tty; stty size; read x; stty size"}, func(s *specs.Spec) {
			s.Process.Terminal = true
		}, func(cfg *shim.Config) {
			cfg.Terminal, cfg.Stdin = true, true
			cfg.Log = shim.LogConfig{Path: logPath}
		})
		must(t, c.Resize(ctx, 40, 100))
		var out syncBuffer
		in, inW := io.Pipe()
		stream, err := c.Attach(ctx, shim.AttachOptions{Stdin: in, Stdout: &out, Stderr: &out})
		must(t, err)
		must(t, c.Start(ctx))
		eventually(t, "the first size", func() bool { return strings.Contains(out.String(), "40 100") })
		must(t, c.Resize(ctx, 50, 120))
		_, _ = inW.Write([]byte("\n"))
		eventually(t, "the second size", func() bool { return strings.Contains(out.String(), "50 120") })
		exit, err := c.Wait(ctx)
		must(t, err)
		if exit.Code != 0 {
			t.Errorf("exit %+v", exit)
		}
		must(t, stream.Wait())
		if !regexp.MustCompile(`/dev/(pts/\d+|console)`).MatchString(out.String()) {
			t.Errorf("tty printed %q", out.String())
		}
		b, _ := os.ReadFile(logPath)
		if !strings.Contains(string(b), "40 100") || !strings.Contains(string(b), "50 120") {
			t.Errorf("log %s", b)
		}
		inW.Close()
		deleteAndCheck(t, r, c, false)
	})
}

// TestResizeWithoutTerminal is refused.
func TestResizeWithoutTerminal(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r rt) {
		c, _ := startContainer(t, r, []string{"true"}, nil, nil)
		if err := c.Resize(testCtx(t), 10, 10); !errors.Is(err, shim.ErrConflict) {
			t.Errorf("resize without a terminal: %v, want ErrConflict", err)
		}
		deleteAndCheck(t, r, c, false)
	})
}

// TestCRILogAndReopen: CRI lines, and after kubelet-style rotation
// (rename, then ReopenLog) new output goes to a new file.
func TestCRILogAndReopen(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r rt) {
		ctx := testCtx(t)
		logPath := t.TempDir() + "/0.log"
		c, _ := startContainer(t, r, []string{"sh", "-c", "read a; echo first; echo -n partial; read b; echo second >&2"}, nil, func(cfg *shim.Config) {
			cfg.Stdin = true
			cfg.Log = shim.LogConfig{Path: logPath, Format: "cri"}
		})
		in, inW := io.Pipe()
		_, err := c.Attach(ctx, shim.AttachOptions{Stdin: in})
		must(t, err)
		must(t, c.Start(ctx))
		_, _ = inW.Write([]byte("a\n"))
		eventually(t, "the first line in the log", func() bool {
			b, _ := os.ReadFile(logPath)
			return strings.Contains(string(b), "first")
		})
		must(t, os.Rename(logPath, logPath+".20240101"))
		must(t, c.ReopenLog(ctx))
		_, _ = inW.Write([]byte("b\n"))
		_, err = c.Wait(ctx)
		must(t, err)
		old, _ := os.ReadFile(logPath + ".20240101")
		cur, _ := os.ReadFile(logPath)
		line := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z (stdout|stderr) [FP] `)
		check := func(b []byte, want []string) {
			lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
			if len(lines) != len(want) {
				t.Fatalf("log lines %q, want %d ending in %q", lines, len(want), want)
			}
			for i, l := range lines {
				if !line.MatchString(l) || !strings.HasSuffix(l, want[i]) {
					t.Errorf("log line %q, want a CRI line ending in %q", l, want[i])
				}
			}
		}
		check(old, []string{"stdout F first"})
		// "partial" waited for its newline until the stream ended. The
		// two streams are two pipes, read apart: "second" and stdout's
		// end arrive together at the exit, in either order.
		if lines := strings.Split(string(cur), "\n"); len(lines) > 1 && strings.HasSuffix(lines[0], "stdout F partial") {
			lines[0], lines[1] = lines[1], lines[0]
			cur = []byte(strings.Join(lines, "\n"))
		}
		check(cur, []string{"stderr F second", "stdout F partial"})
		inW.Close()
		deleteAndCheck(t, r, c, false)
	})
}

// TestLogRotation: json-file rotation by max-size keeps max-file files
// holding the newest lines in order.
func TestLogRotation(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r rt) {
		ctx := testCtx(t)
		logPath := t.TempDir() + "/c-json.log"
		c, _ := startContainer(t, r, []string{"sh", "-c", `i=0; while [ $i -lt 300 ]; do echo "line $i of the container's output"; i=$((i+1)); done`}, nil,
			func(cfg *shim.Config) { cfg.Log = shim.LogConfig{Path: logPath, MaxSize: 4000, MaxFiles: 3} })
		must(t, c.Start(ctx))
		_, err := c.Wait(ctx)
		must(t, err)
		if _, err := os.Stat(logPath + ".3"); err == nil {
			t.Error("more than max-file files")
		}
		var all []logEntry
		for _, p := range []string{logPath + ".2", logPath + ".1", logPath} {
			st, err := os.Stat(p)
			must(t, err)
			if st.Size() > 4000+200 {
				t.Errorf("%s: %d bytes, max-size 4000", p, st.Size())
			}
			all = append(all, readJSONLog(t, p)...)
		}
		if len(all) == 0 || all[len(all)-1].Log != "line 299 of the container's output\n" {
			t.Fatalf("last entry %+v", all[len(all)-1])
		}
		first := 300 - len(all)
		for i, e := range all {
			if want := "line " + itoa(first+i) + " of the container's output\n"; e.Log != want {
				t.Fatalf("entry %d = %q, want %q", i, e.Log, want)
			}
		}
		deleteAndCheck(t, r, c, false)
	})
}

// TestStreamContextEnds: cancelling an attachment's context detaches it;
// the container runs on.
func TestStreamContextEnds(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r rt) {
		ctx := testCtx(t)
		c, _ := startContainer(t, r, []string{"sleep", "1000"}, nil, nil)
		must(t, c.Start(ctx))
		actx, cancel := contextWithCancel(ctx)
		s, err := c.Attach(actx, shim.AttachOptions{Stdout: io.Discard})
		must(t, err)
		cancel()
		select {
		case <-s.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("stream did not end with its context")
		}
		if st, err := c.State(ctx); err != nil || st.Status != shim.Running {
			t.Errorf("after detach: %+v %v", st, err)
		}
		wctx, wcancel := contextWithTimeout(ctx, 200*time.Millisecond)
		defer wcancel()
		if _, err := c.Wait(wctx); err == nil {
			t.Error("Wait returned before the container exited")
		}
		deleteAndCheck(t, r, c, true)
	})
}
