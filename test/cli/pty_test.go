package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// inPty runs `BIN ARGS` (a shell command line) under script(1), which
// gives the CLI a 40x120 pty as its stdin, stdout and stderr, as a
// terminal user would have. The output is the pty's (stdout and stderr
// merged, "\r\n" line ends).
func (s *suite) inPty(t *testing.T, bin, args string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "script", "-qec", "stty rows 40 cols 120; exec "+bin+" "+args, "/dev/null")
	cmd.Env = s.cmdEnv()
	// script's stdin stays open (and empty) until the CLI is done: at EOF
	// the CLI would half-close the container's stdin, and with StdinOnce
	// the daemon would hang up its pty under it.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	defer pr.Close()
	cmd.Stdin = pr
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	r := result{out: out.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("script %s %s: %v", bin, args, err)
	}
	return r
}

// ptyOutput collects what a process writes to its pty.
type ptyOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (p *ptyOutput) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.Write(b)
}

func (p *ptyOutput) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

// waitFor polls cond until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

// ptySession runs bin with args on a pty, types input, waits until the
// output shows marker, types keys and waits for the CLI to exit. The
// marker must be something only running input prints (say, the result of
// shell arithmetic), never a part of input itself: busybox's line editor
// redraws the typed line with escapes inside it (after its cursor-position
// query, which this pty never answers), so counting the echo of input is
// not reliable.
func (s *suite) ptySession(t *testing.T, bin string, args []string, input, marker, keys string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = s.cmdEnv()
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 120})
	if err != nil {
		t.Fatalf("start %s on a pty: %v", bin, err)
	}
	defer f.Close()
	var out ptyOutput
	go io.Copy(&out, f)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// The shell prompt shows once the session is up.
	waitFor(10*time.Second, func() bool { return strings.Contains(out.String(), "#") })
	if _, err := f.Write([]byte(input)); err != nil {
		t.Fatalf("type into %s: %v", bin, err)
	}
	if !waitFor(20*time.Second, func() bool { return strings.Contains(out.String(), marker) }) {
		cmd.Process.Kill()
		t.Fatalf("%s %v: no %q in output %q", bin, args, marker, out.String())
	}
	if _, err := f.Write([]byte(keys)); err != nil {
		t.Fatalf("type into %s: %v", bin, err)
	}
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), out.String()
		}
		if err != nil {
			t.Fatalf("%s: %v", bin, err)
		}
		return 0, out.String()
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("%s %v did not exit after the detach keys; output %q", bin, args, out.String())
	}
	return -1, ""
}

// followLogs runs `logs -f`, waits for want, interrupts the CLI and
// returns what it printed.
func followLogs(t *testing.T, s *suite, bin, name, want string) string {
	t.Helper()
	cmd := exec.Command(bin, "logs", "-f", name)
	cmd.Env = s.cmdEnv()
	var out ptyOutput
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ok := waitFor(20*time.Second, func() bool { return strings.Contains(out.String(), want) })
	// Still following: the process must not have ended by itself.
	time.Sleep(300 * time.Millisecond)
	exited := cmd.ProcessState != nil
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s logs -f ignored SIGINT", bin)
	}
	if !ok || exited {
		t.Fatalf("%s logs -f %s: output %q (ended early: %v)", bin, name, out.String(), exited)
	}
	return out.String()
}

// signalRun starts the CLI, waits for ready on its stdout, sends it each
// of sigs, waiting after each but the last for the container's "got NAME"
// line (NAME without SIG), and returns its result.
func (s *suite) signalRun(t *testing.T, bin string, args []string, ready string, sigs ...syscall.Signal) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = s.cmdEnv()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb ptyOutput
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if sc.Text() == ready {
			break
		}
	}
	for i, sig := range sigs {
		cmd.Process.Signal(sig)
		if i == len(sigs)-1 {
			break
		}
		want := "got " + strings.TrimPrefix(unix.SignalName(sig), "SIG")
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if sc.Text() == want {
				break
			}
		}
	}
	rest, _ := io.ReadAll(stdout)
	out.Write(rest)
	err = cmd.Wait()
	r := result{out: out.String(), err: errb.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	}
	return r
}
