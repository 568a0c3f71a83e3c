package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hako-project/hako/internal/timerslack"
	"github.com/hako-project/hako/internal/timerslack/timerslacktest"
	"github.com/hako-project/hako/test/hakodtest"
)

// These tests drive a real hakod with the real docker CLI (the docker
// command on PATH, version 28 on our machines), as issue 5 asks.

func TestRunExitCodesAndOutput(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	out, errs, code := d.Docker("run", "--rm", img, "sh", "-c", "echo out; echo err >&2; exit 7")
	if code != 7 || out != "out\n" || !strings.Contains(errs, "err") {
		t.Fatalf("run --rm: code %d out %q err %q", code, out, errs)
	}
	if ps := d.MustDocker("ps", "-aq"); ps != "" {
		t.Errorf("--rm left containers: %s", ps)
	}
	// -i: stdin reaches the container and its end ends it.
	out, _, code = d.DockerIn([]byte("line one\nline two\n"), "run", "--rm", "-i", img, "sh", "-c", "cat; echo done")
	if code != 0 || out != "line one\nline two\ndone\n" {
		t.Errorf("run -i: code %d out %q", code, out)
	}
	// Exit codes docker gives when the program cannot run.
	if _, errs, code := d.Docker("run", "--rm", img, "no-such-program"); code != 127 {
		t.Errorf("missing program: code %d (want 127): %s", code, errs)
	}
	if _, errs, code := d.Docker("run", "--rm", img, "/etc/passwd"); code != 126 {
		t.Errorf("non-executable program: code %d (want 126): %s", code, errs)
	}
}

func TestTTY(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	script, err := exec.LookPath("script")
	if err != nil {
		t.Skip("needs script(1) to give the docker CLI a terminal")
	}
	cmd := exec.Command(script, "-qec", "stty rows 40 cols 120; docker run --rm -it "+img+" sh -c 'tty; stty size; exit 5'", "/dev/null")
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.Host)
	out, _ := cmd.Output()
	code := cmd.ProcessState.ExitCode()
	if code != 5 || !strings.Contains(string(out), "/dev/pts/0") || !strings.Contains(string(out), "40 120") {
		t.Errorf("run -it: code %d output %q", code, out)
	}
}

func TestDetachedLogsExecStopRm(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	id := d.MustDocker("run", "-d", "--name", "ticker", img, "sh", "-c", "trap 'echo bye; exit 0' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done")
	if len(id) != 64 {
		t.Fatalf("run -d printed %q, want an ID", id)
	}
	time.Sleep(500 * time.Millisecond)
	if out := d.MustDocker("logs", "--tail", "2", "ticker"); len(strings.Split(out, "\n")) != 2 {
		t.Errorf("logs --tail 2: %q", out)
	}
	// logs -f keeps streaming until the client stops.
	cmd := exec.Command("docker", "logs", "-f", "ticker")
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.Host)
	var buf strings.Builder
	cmd.Stdout = &buf
	must(t, cmd.Start())
	time.Sleep(700 * time.Millisecond)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if n := strings.Count(buf.String(), "tick"); n < 8 {
		t.Errorf("logs -f gave %d lines", n)
	}
	if out := d.MustDocker("exec", "ticker", "sh", "-c", "echo from-exec; cat /proc/1/cmdline | head -c 2"); out != "from-exec\nsh" {
		t.Errorf("exec: %q", out)
	}
	if _, _, code := d.Docker("exec", "ticker", "sh", "-c", "exit 9"); code != 9 {
		t.Errorf("exec exit code %d", code)
	}
	if st := d.MustDocker("inspect", "-f", "{{.State.Status}} {{.State.Running}}", "ticker"); st != "running true" {
		t.Errorf("inspect: %q", st)
	}
	start := time.Now()
	d.MustDocker("stop", "ticker")
	if time.Since(start) > 5*time.Second {
		t.Errorf("stop waited for the timeout although the program exits on SIGTERM")
	}
	if out := d.MustDocker("logs", "ticker"); !strings.HasSuffix(out, "bye") {
		t.Errorf("SIGTERM not delivered: log ends %q", out[max(0, len(out)-20):])
	}
	if st := d.MustDocker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "ticker"); st != "exited 0" {
		t.Errorf("after stop: %q", st)
	}
	d.MustDocker("rm", "ticker")
	if _, errs, code := d.Docker("inspect", "ticker"); code == 0 || !strings.Contains(errs, "No such object") && !strings.Contains(errs, "No such container") {
		t.Errorf("inspect after rm: %d %q", code, errs)
	}
	assertClean(t, d)
}

func TestStopEscalatesToKill(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	// sh as PID 1 ignores SIGTERM without a trap: stop must kill it.
	d.MustDocker("run", "-d", "--name", "stubborn", img, "sleep", "60")
	start := time.Now()
	d.MustDocker("stop", "-t", "1", "stubborn")
	if el := time.Since(start); el < time.Second || el > 6*time.Second {
		t.Errorf("stop -t 1 took %v", el)
	}
	if st := d.MustDocker("inspect", "-f", "{{.State.ExitCode}}", "stubborn"); st != "137" {
		t.Errorf("exit code after SIGKILL: %s", st)
	}
}

func TestMemoryLimitInCgroup(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	out := d.MustDocker("run", "--rm", "--memory", "64m", "--pids-limit", "50", "--cpus", "0.5", img, "sh", "-c",
		"cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null")
	lines := strings.Fields(out)
	if len(lines) < 3 || lines[0] != strconv.Itoa(64<<20) || lines[1] != "50" || lines[2] != "50000" {
		t.Errorf("limits seen inside: %q", out)
	}
}

func TestRestartPolicy(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	d.MustDocker("run", "-d", "--name", "crasher", "--restart", "on-failure:2", img, "sh", "-c", "echo run; exit 3")
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := d.MustDocker("inspect", "-f", "{{.State.Status}} {{.RestartCount}}", "crasher")
		if st == "exited 2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("on-failure:2 never settled: %s", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := strings.Count(d.MustDocker("logs", "crasher"), "run"); n != 3 {
		t.Errorf("ran %d times, want 3 (once plus two restarts)", n)
	}
}

func TestKillDaemonKeepsContainers(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	d.MustDocker("run", "-d", "--name", "survivor", img, "sh", "-c", "while true; do echo alive; sleep 0.2; done")
	d.MustDocker("run", "-d", "--name", "ends", img, "sh", "-c", "sleep 1; exit 4")
	pid := d.MustDocker("inspect", "-f", "{{.State.Pid}}", "survivor")
	d.Kill()
	time.Sleep(1500 * time.Millisecond) // "ends" exits while hakod is down
	if _, err := os.Stat("/proc/" + pid); err != nil {
		t.Fatalf("container died with hakod: %v", err)
	}
	d.Restart()
	if st := d.MustDocker("inspect", "-f", "{{.State.Status}} {{.State.Pid}}", "survivor"); st != "running "+pid {
		t.Errorf("after restart: %q (pid was %s)", st, pid)
	}
	if st := d.MustDocker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "ends"); st != "exited 4" {
		t.Errorf("exit while hakod was down: %q", st)
	}
	if out := d.MustDocker("ps", "--format", "{{.Names}}"); out != "survivor" {
		t.Errorf("ps after restart: %q", out)
	}
	if out := d.MustDocker("exec", "survivor", "echo", "still here"); out != "still here" {
		t.Errorf("exec after restart: %q", out)
	}
	if !strings.Contains(d.MustDocker("logs", "--tail", "1", "survivor"), "alive") {
		t.Errorf("logs after restart")
	}
	d.MustDocker("rm", "-f", "survivor", "ends")
	assertClean(t, d)
}

// TestAutoRemoveAcrossDaemonRestart: as with dockerd, a --rm container
// that is not running once hakod is back is removed: one that ended while
// hakod was down (its shim kept the exit), one whose shim was killed with
// it, one that was never started. A running one stays.
func TestAutoRemoveAcrossDaemonRestart(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	d.MustDocker("run", "-d", "--rm", "--name", "ends", img, "sh", "-c", "sleep 1")
	orphan := d.MustDocker("run", "-d", "--rm", "--name", "orphan", img, "sleep", "1000")
	d.MustDocker("create", "--rm", "--name", "never", img, "true")
	d.MustDocker("run", "-d", "--rm", "--name", "stays", img, "sleep", "1000")
	pid, err := strconv.Atoi(d.MustDocker("inspect", "-f", "{{.State.Pid}}", "orphan"))
	must(t, err)
	d.Kill()
	shim := processWith(t, "hako-shim", orphan)
	must(t, syscall.Kill(shim, syscall.SIGKILL))
	must(t, syscall.Kill(pid, syscall.SIGKILL))
	time.Sleep(1500 * time.Millisecond) // "ends" exits while hakod is down
	d.Restart()
	if out := d.MustDocker("ps", "-a", "--format", "{{.Names}} {{.Status}}"); !strings.HasPrefix(out, "stays Up") || strings.Contains(out, "\n") {
		t.Errorf("after the restart: %q, want only the running --rm container", out)
	}
	d.MustDocker("rm", "-f", "stays")
	assertClean(t, d)
}

// processWith finds the process whose command line starts with a word
// ending in prog and contains arg.
func processWith(t *testing.T, prog, arg string) int {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		args := strings.Split(string(b), "\x00")
		if strings.HasSuffix(args[0], prog) && strings.Contains(string(b), arg) {
			return pid
		}
	}
	t.Fatalf("no %s process with %s", prog, arg)
	return 0
}

// TestContainersGetHakodsTimerSlack: hakod and the shims run with a coarse
// timer slack (internal/timerslack); a container's processes, run or
// exec'd, get the slack hakod was started with.
func TestContainersGetHakodsTimerSlack(t *testing.T) {
	const slack = 123457 // neither the kernel's default nor ours
	want := strconv.Itoa(slack)
	var d *hakodtest.Daemon
	timerslacktest.With(t, slack, func() { d = hakodtest.Start(t) })
	img := d.DefaultImage()
	if out := d.MustDocker("run", "--rm", img, "cat", "/proc/self/timerslack_ns"); out != want {
		t.Errorf("run: the container's slack is %q, want %s", out, want)
	}
	// Whichever the runtime: the shim starts runc with hakod's slack too.
	if _, err := exec.LookPath("runc"); err == nil {
		if out := d.MustDocker("run", "--rm", "--runtime", "runc", img, "cat", "/proc/self/timerslack_ns"); out != want {
			t.Errorf("run on runc: the container's slack is %q, want %s", out, want)
		}
	}
	d.MustDocker("run", "-d", "--name", "slack", img, "sleep", "60")
	if out := d.MustDocker("exec", "slack", "cat", "/proc/self/timerslack_ns"); out != want {
		t.Errorf("exec: the process's slack is %q, want %s", out, want)
	}
	// The container's init is the shim's child; the shim is coarse.
	pid := d.MustDocker("inspect", "-f", "{{.State.Pid}}", "slack")
	st, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:]))
	shim := fields[1]
	comm, _ := os.ReadFile("/proc/" + shim + "/comm")
	if got, _ := os.ReadFile("/proc/" + shim + "/timerslack_ns"); strings.TrimSpace(string(comm)) != "hako-shim" || strings.TrimSpace(string(got)) != strconv.Itoa(timerslack.Coarse) {
		t.Errorf("the container's parent %s (%q) has slack %q, want hako-shim with %d", shim, comm, got, timerslack.Coarse)
	}
	d.MustDocker("rm", "-f", "slack")
}

func TestRuntimeChoice(t *testing.T) {
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("runc is not installed")
	}
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	out := d.MustDocker("run", "--rm", "--runtime", "runc", img, "sh", "-c", "echo on runc")
	if out != "on runc" {
		t.Errorf("--runtime runc: %q", out)
	}
	if _, errs, code := d.Docker("run", "--rm", "--runtime", "nope", img, "true"); code != 125 || !strings.Contains(errs, "unknown or invalid runtime name: nope") {
		t.Errorf("unknown runtime: %d %q", code, errs)
	}
}

func TestBadInputLeavesNothing(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	cases := []struct {
		args []string
		want string
		code int
	}{
		{[]string{"run", "--rm", "--pull", "never", "no-such-image-here:1"}, "No such image", 125},
		{[]string{"run", "--rm", "--memory", "1k", img, "true"}, "Minimum memory limit allowed is 6MB", 125},
		{[]string{"run", "-d", "--restart", "bogus", img, "true"}, "invalid restart policy", 125},
		{[]string{"run", "--rm", "--mount", "type=bind,source=/no/such/dir,target=/x", img, "true"}, "bind source path does not exist", 125},
		{[]string{"run", "--rm", "--network", "nonet", img, "true"}, "network nonet not found", 125},
		{[]string{"run", "--rm", "-v", "vol 1:/data", img, "true"}, "includes invalid characters for a local volume name", 125},
	}
	for _, c := range cases {
		_, errs, code := d.Docker(c.args...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("%v: code %d stderr %q (want %d, %q)", c.args, code, errs, c.code, c.want)
		}
	}
	d.MustDocker("create", "--name", "taken", img, "true")
	if _, errs, code := d.Docker("create", "--name", "taken", img, "true"); code == 0 || !strings.Contains(errs, "is already in use") {
		t.Errorf("name conflict: %d %q", code, errs)
	}
	// A runtime failure at start: a container whose working directory is a file.
	d.MustDocker("create", "--name", "badcwd", "-w", "/etc/passwd", img, "true")
	if _, errs, code := d.Docker("start", "badcwd"); code == 0 || !strings.Contains(errs, "cwd") {
		t.Errorf("start with a bad cwd: %d %q", code, errs)
	}
	d.MustDocker("rm", "taken", "badcwd")
	assertClean(t, d)
}

// assertClean checks that no container, snapshot mount, shim or runtime
// state is left in the daemon.
func assertClean(t *testing.T, d *hakodtest.Daemon) {
	t.Helper()
	if out := d.MustDocker("ps", "-aq"); out != "" {
		t.Errorf("containers left: %s", out)
	}
	// A container's network is detached in the background (CNI DEL, then
	// its namespace's pin is unmounted): rm has returned before that.
	m := hakodtest.Mounts(d.Dir)
	for deadline := time.Now().Add(10 * time.Second); len(m) > 0 && time.Now().Before(deadline); m = hakodtest.Mounts(d.Dir) {
		time.Sleep(20 * time.Millisecond)
	}
	if len(m) > 0 {
		t.Errorf("mounts left: %v", m)
	}
	// A removed container's directory and its layer's files are emptied
	// from the trash in the background too.
	trash, layers := filepath.Join(d.DataRoot, "trash"), filepath.Join(d.DataRoot, "snapshots", "trash")
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		a, _ := os.ReadDir(trash)
		b, _ := os.ReadDir(layers)
		if len(a)+len(b) == 0 {
			break
		}
	}
	for _, dir := range []string{filepath.Join(d.ExecRoot, "shims"), filepath.Join(d.DataRoot, "containers"), filepath.Join(d.ExecRoot, "containers"), trash, layers} {
		if ents, _ := os.ReadDir(dir); len(ents) > 0 {
			t.Errorf("%s not empty: %v", dir, ents)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(d.ExecRoot, "runtime", "hako"))
	for _, e := range ents {
		if e.Name() != "@seccomp" { // the runtime's compiled-filter cache
			t.Errorf("runtime state left: %s", e.Name())
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
