package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// standbyProc is a `hako-runtime standby` started by the test, with the
// test's end of its socket.
type standbyProc struct {
	cmd  *exec.Cmd
	sock int
	out  *os.File // what it writes to its own stdout and stderr before the command
}

func startStandby(t *testing.T, env []string) *standbyProc {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	must(t, err)
	theirs := os.NewFile(uintptr(fds[1]), "standby")
	defer theirs.Close()
	out, err := os.CreateTemp(t.TempDir(), "standby-out")
	must(t, err)
	t.Cleanup(func() { out.Close() })
	cmd := exec.Command(runtimeBin, "standby")
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.ExtraFiles = []*os.File{theirs}
	must(t, cmd.Start())
	t.Cleanup(func() {
		unix.Close(fds[0])
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return &standbyProc{cmd: cmd, sock: fds[0], out: out}
}

// hand sends args and env with stdin, stdout and stderr.
func (s *standbyProc) hand(t *testing.T, args, env []string, stdio ...*os.File) {
	t.Helper()
	b, err := json.Marshal(map[string][]string{"args": args, "env": env})
	must(t, err)
	var fds []int
	for _, f := range stdio {
		fds = append(fds, int(f.Fd()))
	}
	must(t, unix.Sendmsg(s.sock, b, unix.UnixRights(fds...), nil, 0))
}

// exitCode waits for the standby's exit.
func (s *standbyProc) exitCode(t *testing.T) int {
	t.Helper()
	err := s.cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	must(t, err)
	return 0
}

// TestStandby: `hako-runtime standby` runs the command line that arrives
// on fd 3 as if started with it: a container runs to its exit code, also
// reported on the socket, with the stdio handed over, the environment given (a trace file) applies,
// and neither the socket nor the standby's own stdio reaches the
// container. End-of-file before a command ends it quietly with 0; a
// standby started without the socket, or sent a message without its
// three descriptors, refuses with a clear error.
func TestStandby(t *testing.T) {
	r := newRT(t)
	b := newBundle(t, "sh", "-c", `echo out; echo err >&2; read line; echo "in=$line"; ls -l /proc/self/fd/ | grep -c socket; exit 3`)
	b.save()
	id := uniqueID(t)
	traceFile := filepath.Join(t.TempDir(), "trace.jsonl")

	s := startStandby(t, []string{"PATH=/usr/bin:/bin", "GOMAXPROCS=1"})
	stdin, err := os.CreateTemp(t.TempDir(), "stdin")
	must(t, err)
	_, err = stdin.WriteString("hello\n")
	must(t, err)
	_, err = stdin.Seek(0, 0)
	must(t, err)
	stdout, err := os.CreateTemp(t.TempDir(), "stdout")
	must(t, err)
	stderr, err := os.CreateTemp(t.TempDir(), "stderr")
	must(t, err)
	s.hand(t, []string{"--root", r.root, "run", "--bundle", b.dir, id},
		[]string{"PATH=/usr/bin:/bin", "HAKO_TRACE_FILE=" + traceFile, "HAKO_TRACEPARENT=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		stdin, stdout, stderr)
	if code := s.exitCode(t); code != 3 {
		errs, _ := os.ReadFile(stderr.Name())
		t.Fatalf("standby run: exit %d, want the container's 3; stderr: %s", code, errs)
	}
	var report [16]byte
	if n, err := unix.Read(s.sock, report[:]); err != nil || string(report[:max(n, 0)]) != "3" {
		t.Errorf("the exit code reported on the socket: %q (%v), want 3", report[:max(n, 0)], err)
	}
	out, _ := os.ReadFile(stdout.Name())
	errs, _ := os.ReadFile(stderr.Name())
	if string(out) != "out\nin=hello\n0\n" {
		t.Errorf("container's stdout %q, want out, in=hello and no socket among its descriptors (0)", out)
	}
	if !strings.Contains(string(errs), "err") {
		t.Errorf("container's stderr %q, want err", errs)
	}
	if own, _ := os.ReadFile(s.out.Name()); len(own) != 0 {
		t.Errorf("the standby's own stdout/stderr got %q", own)
	}
	tr, err := os.ReadFile(traceFile)
	must(t, err)
	if !strings.Contains(string(tr), `"name":"hako-runtime.run"`) || !strings.Contains(string(tr), `"standby":"true"`) ||
		!strings.Contains(string(tr), `"trace_id":"0af7651916cd43dd8448eb211c80319c"`) {
		t.Errorf("trace file lacks hako-runtime.run with standby=true in the caller's trace:\n%s", tr)
	}
	r.assertGone(id, b) // run without --detach deletes it

	// Let go: end-of-file, exit 0, nothing said.
	s = startStandby(t, nil)
	unix.Close(s.sock)
	if code := s.exitCode(t); code != 0 {
		t.Errorf("standby let go: exit %d, want 0", code)
	}
	if own, _ := os.ReadFile(s.out.Name()); len(own) != 0 {
		t.Errorf("standby let go said %q", own)
	}

	// A message without descriptors.
	s = startStandby(t, nil)
	must(t, unix.Sendmsg(s.sock, []byte(`{"args":["state","x"],"env":[]}`), nil, nil, 0))
	if code := s.exitCode(t); code != 2 {
		t.Errorf("standby sent no descriptors: exit %d, want 2", code)
	}
	if own, _ := os.ReadFile(s.out.Name()); !strings.Contains(string(own), "want stdin, stdout and stderr") {
		t.Errorf("standby sent no descriptors said %q", own)
	}

	// Started by hand, without the socket.
	cmd := exec.Command(runtimeBin, "standby")
	got, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(string(got), "fd 3 is not a socket") {
		t.Errorf("standby without a socket: exit %d (%v), output %q", code, err, got)
	}
	// With flags it is a usage error, not a standby.
	if _, errs, code := r.run("standby"); code != 2 || !strings.Contains(errs, "takes no flags") {
		t.Errorf("standby after global flags: exit %d, stderr %q", code, errs)
	}
}
