package shim_test

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hako-project/hako/shim"
)

func execProcess(args ...string) specs.Process {
	return specs.Process{Args: args, Cwd: "/", Env: []string{"PATH=/bin"}}
}

// TestExec: processes with and without a terminal, their exit codes and
// output, stdin, several at once, resize and kill of an exec.
func TestExec(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r rt) {
		ctx := testCtx(t)
		logPath := t.TempDir() + "/c.log"
		c, _ := startContainer(t, r, []string{"sleep", "1000"}, nil, func(cfg *shim.Config) { cfg.Log = shim.LogConfig{Path: logPath} })
		must(t, c.Start(ctx))

		// Several at once, without a terminal.
		var wg sync.WaitGroup
		for i := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var out, errs syncBuffer
				e, err := c.Exec(ctx, shim.ExecConfig{ID: fmt.Sprintf("e%d", i), Stdout: &out, Stderr: &errs,
					Process: execProcess("sh", "-c", fmt.Sprintf("echo out%d; echo err%d >&2; exit %d", i, i, 5+i))})
				if err != nil {
					t.Errorf("exec %d: %v", i, err)
					return
				}
				st, err := e.Wait(ctx)
				if err != nil || st.Code != 5+i || st.Pid != e.Pid() {
					t.Errorf("exec %d: %+v, %v", i, st, err)
				}
				if out.String() != fmt.Sprintf("out%d\n", i) || errs.String() != fmt.Sprintf("err%d\n", i) {
					t.Errorf("exec %d: stdout %q stderr %q", i, out.String(), errs.String())
				}
				if again, err := e.Wait(ctx); err != nil || again.Code != st.Code {
					t.Errorf("exec %d: second Wait %+v %v", i, again, err)
				}
			}()
		}
		wg.Wait()

		// stdin, closed at its end.
		var out syncBuffer
		e, err := c.Exec(ctx, shim.ExecConfig{ID: "cat", Process: execProcess("cat"), Stdin: strings.NewReader("to cat\n"), Stdout: &out})
		must(t, err)
		if st, err := e.Wait(ctx); err != nil || st.Code != 0 || out.String() != "to cat\n" {
			t.Errorf("cat exec: %+v %v, output %q", st, err, out.String())
		}

		// A terminal with a first size, then a resize.
		p := execProcess("sh", "-c", "tty; stty size; read x; stty size")
		p.Terminal = true
		p.ConsoleSize = &specs.Box{Height: 24, Width: 80}
		var tout syncBuffer
		in, inW := io.Pipe()
		e, err = c.Exec(ctx, shim.ExecConfig{ID: "tty", Process: p, Stdin: in, Stdout: &tout})
		must(t, err)
		eventually(t, "the exec's terminal size", func() bool { return strings.Contains(tout.String(), "24 80") })
		must(t, e.Resize(ctx, 33, 99))
		_, _ = inW.Write([]byte("\n"))
		st, err := e.Wait(ctx)
		must(t, err)
		if st.Code != 0 || !strings.Contains(tout.String(), "33 99") || !regexp.MustCompile(`/dev/pts/\d+`).MatchString(tout.String()) {
			t.Errorf("tty exec: %+v, output %q", st, tout.String())
		}
		inW.Close()

		// Kill an exec; the container runs on.
		e, err = c.Exec(ctx, shim.ExecConfig{ID: "sleeper", Process: execProcess("sleep", "1000")})
		must(t, err)
		if _, err := c.Exec(ctx, shim.ExecConfig{ID: "sleeper", Process: execProcess("true")}); !errors.Is(err, shim.ErrConflict) {
			t.Errorf("second exec with a running exec's ID: %v, want ErrConflict", err)
		}
		must(t, e.Kill(ctx, syscall.SIGKILL))
		if st, err := e.Wait(ctx); err != nil || st.Code != 137 {
			t.Errorf("killed exec: %+v %v", st, err)
		}
		if s, err := c.State(ctx); err != nil || s.Status != shim.Running {
			t.Errorf("container after exec kill: %+v %v", s, err)
		}

		// A bad exec: the runtime's error comes back, nothing is kept.
		if _, err := c.Exec(ctx, shim.ExecConfig{ID: "bad", Process: execProcess("/no/such/binary")}); err == nil {
			t.Error("exec of a missing binary succeeded")
		} else if !errors.Is(err, shim.ErrRuntime) {
			t.Errorf("exec of a missing binary: %v, want ErrRuntime", err)
		}
		if _, err := c.Exec(ctx, shim.ExecConfig{ID: "", Process: execProcess("true")}); !errors.Is(err, shim.ErrInvalid) {
			t.Errorf("exec without ID: %v, want ErrInvalid", err)
		}
		// exec output is not logged.
		time.Sleep(100 * time.Millisecond)
		if b := readFile(logPath); b != "" {
			t.Errorf("exec output reached the container log: %q", b)
		}
		deleteAndCheck(t, r, c, true)
	})
}

// TestExecStopped: no exec in a stopped container.
func TestExecStopped(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r rt) {
		ctx := testCtx(t)
		c, _ := startContainer(t, r, []string{"true"}, nil, nil)
		must(t, c.Start(ctx))
		_, err := c.Wait(ctx)
		must(t, err)
		if _, err := c.Exec(ctx, shim.ExecConfig{ID: "x", Process: execProcess("true")}); !errors.Is(err, shim.ErrConflict) {
			t.Errorf("exec in a stopped container: %v, want ErrConflict", err)
		}
		deleteAndCheck(t, r, c, false)
	})
}
