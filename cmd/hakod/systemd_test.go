package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hako-project/hako/test/hakodtest"
)

// notifyListener is a service manager's end of sd_notify: a unixgram
// socket whose datagrams arrive on the returned channel.
func notifyListener(t *testing.T) (string, <-chan string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	must(t, err)
	t.Cleanup(func() { c.Close() })
	ch := make(chan string, 8)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				close(ch)
				return
			}
			ch <- string(buf[:n])
		}
	}()
	return path, ch
}

func nextNotice(t *testing.T, ch <-chan string, want string) {
	t.Helper()
	select {
	case got, ok := <-ch:
		if !ok || got != want {
			t.Fatalf("sd_notify: got %q (open %v), want %q", got, ok, want)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("sd_notify: no %q in 20 s", want)
	}
}

// TestNotifyReady: started as systemd's Type=notify starts it, hakod says
// READY=1 once its API answers and STOPPING=1 when told to stop, and no
// process it starts inherits $NOTIFY_SOCKET (one speaking for hakod would
// confuse systemd): not ps (docker top), which gets hakod's environment,
// nor a shim, which gets one of its own.
func TestNotifyReady(t *testing.T) {
	hakodtest.NeedRoot(t)
	path, notices := notifyListener(t)
	// Whether the API answers at the moment READY=1 arrives, checked
	// while Start is still polling the socket.
	answered := make(chan error, 1)
	// A second API socket, whose path the test knows before the start
	// (hakodtest picks the first one's).
	sock := filepath.Join(t.TempDir(), "h.sock")
	go func() {
		select {
		case n, ok := <-notices:
			if !ok || n != "READY=1" {
				answered <- errors.New("first notice " + n)
				return
			}
		case <-time.After(30 * time.Second):
			answered <- errors.New("no READY=1 in 30 s")
			return
		}
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
		}
		answered <- err
	}()
	// A ps that records its environment before it runs the real one:
	// `docker top` has hakod run ps, which inherits hakod's environment.
	realPS, err := exec.LookPath("ps")
	must(t, err)
	fake := t.TempDir()
	psEnv := filepath.Join(fake, "ps.env")
	must(t, os.WriteFile(filepath.Join(fake, "ps"), []byte("#!/bin/sh\nenv >"+psEnv+"\nexec "+realPS+" \"$@\"\n"), 0o755))
	d := hakodtest.StartEnv(t, []string{"NOTIFY_SOCKET=" + path, "PATH=" + fake + ":" + os.Getenv("PATH")},
		"-H", "unix://"+sock, "--bridge=none", "--cri-socket=")
	if err := <-answered; err != nil {
		t.Fatalf("the API did not answer when READY=1 came: %v\n%s", err, d.Log())
	}

	img := d.DefaultImage()
	d.MustDocker("run", "-d", "--name", "sd", img, "sleep", "1000")
	pids, _ := filepath.Glob(filepath.Join(d.ExecRoot, "shims", "*", "shim.pid"))
	if len(pids) == 0 {
		t.Fatal("no shim.pid under the exec root")
	}
	for _, p := range pids {
		b, err := os.ReadFile(p)
		must(t, err)
		env, err := os.ReadFile("/proc/" + strings.TrimSpace(string(b)) + "/environ")
		must(t, err)
		if bytes.Contains(env, []byte("NOTIFY_SOCKET=")) {
			t.Errorf("shim %s inherited NOTIFY_SOCKET", strings.TrimSpace(string(b)))
		}
	}
	d.MustDocker("top", "sd")
	env, err := os.ReadFile(psEnv)
	if err != nil {
		t.Fatalf("docker top did not run the recording ps: %v", err)
	}
	if bytes.Contains(env, []byte("NOTIFY_SOCKET=")) {
		t.Errorf("ps, started by hakod, inherited NOTIFY_SOCKET:\n%s", env)
	}
	d.MustDocker("rm", "-f", "sd")
	d.Stop()
	nextNotice(t, notices, "STOPPING=1")
}

// TestDefaultConfigFile: without --config-file, hakod reads
// /etc/hako/hakod.toml when it exists (as dockerd reads
// /etc/docker/daemon.json); a --config-file that does not exist is an
// error naming it. The file is put there in a private mount namespace, so
// the host's /etc/hako (if any) is neither read nor touched.
func TestDefaultConfigFile(t *testing.T) {
	hakodtest.NeedRoot(t)
	bin := hakodtest.Build(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare (util-linux)")
	}
	if _, err := os.Stat("/etc/hako"); errors.Is(err, os.ErrNotExist) {
		// The mount point; removed again if this test made it.
		must(t, os.Mkdir("/etc/hako", 0o755))
		t.Cleanup(func() { os.Remove("/etc/hako") })
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "from-file.sock")
	conf := "hosts = [\"unix://" + sock + "\"]\nlog-level = \"debug\"\n"
	script := `mount -t tmpfs hakotest /etc/hako && printf '%s' "$CONF" >/etc/hako/hakod.toml && exec "$@"`
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
		bin.Hakod, "--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "run"),
		"--pidfile", filepath.Join(dir, "hakod.pid"), "--bridge=none", "--cri-socket=")
	cmd.Env = append(os.Environ(), "CONF="+conf)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	must(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		hakodtest.UnmountUnder(dir)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("hakod exited (%v) without listening on the socket of /etc/hako/hakod.toml:\n%s", err, log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("hakod did not listen on the socket of /etc/hako/hakod.toml:\n%s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	out, err := exec.Command("docker", "-H", "unix://"+sock, "version", "--format", "{{.Server.APIVersion}}").CombinedOutput()
	if err != nil {
		t.Fatalf("docker version against the socket of the default config file: %v\n%s", err, out)
	}

	missing := filepath.Join(dir, "nope.toml")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err = exec.CommandContext(ctx, bin.Hakod, "--config-file", missing, "-H", "unix://"+filepath.Join(dir, "x.sock"),
		"--data-root", filepath.Join(dir, "data2"), "--exec-root", filepath.Join(dir, "run2")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), missing) {
		t.Errorf("hakod --config-file %s: %v, %q; want an error naming the file", missing, err, out)
	}
}

// TestMakeInstall: `make install` into a DESTDIR puts the binaries
// together, the docs, and a unit that names them; systemd-analyze accepts
// the unit there and refuses it once the binary is gone (so its check is
// not empty); `make uninstall` takes it all back. The binaries are bin/'s,
// as `make gotest` built them (`-o build`: not rebuilt under running
// tests).
func TestMakeInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("runs make")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("needs make")
	}
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	must(t, err)
	binaries := []string{"hakod", "hako-shim", "hako-runtime", "hako-init", "hako"}
	for _, b := range binaries {
		if _, err := os.Stat(filepath.Join(repo, "bin", b)); err != nil {
			t.Skipf("bin/%s not built (make build): %v", b, err)
		}
	}
	dest := t.TempDir()
	mk := func(target string) {
		t.Helper()
		out, err := exec.Command("make", "-C", repo, "-o", "build", target, "DESTDIR="+dest).CombinedOutput()
		if err != nil {
			t.Fatalf("make %s: %v\n%s", target, err, out)
		}
	}
	mk("install")
	for _, b := range binaries {
		fi, err := os.Stat(filepath.Join(dest, "usr/local/bin", b))
		if err != nil || fi.Mode()&0o111 == 0 {
			t.Errorf("installed %s: %v %v", b, fi, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dest, "usr/local/share/doc/hako/hakod.md")); err != nil {
		t.Errorf("docs: %v", err)
	}
	unit, err := os.ReadFile(filepath.Join(dest, "etc/systemd/system/hakod.service"))
	must(t, err)
	for _, want := range []string{"\nExecStart=/usr/local/bin/hakod\n", "\nType=notify\n", "\nKillMode=process\n"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("hakod.service lacks %q", strings.TrimSpace(want))
		}
	}
	if strings.Contains(string(unit), "@") {
		t.Errorf("hakod.service keeps a placeholder:\n%s", unit)
	}
	out, err := exec.Command(filepath.Join(dest, "usr/local/bin/hakod"), "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "hakod") {
		t.Errorf("installed hakod --version: %v %q", err, out)
	}

	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Log("systemd-analyze not found: the unit's keys are not checked")
	} else {
		verify := func() ([]byte, error) {
			return exec.Command("systemd-analyze", "verify", "--root="+dest, "--man=no", "--recursive-errors=no", "hakod.service").CombinedOutput()
		}
		if out, err := verify(); err != nil {
			t.Errorf("systemd-analyze verify hakod.service: %v\n%s", err, out)
		}
		hakod := filepath.Join(dest, "usr/local/bin/hakod")
		must(t, os.Rename(hakod, hakod+".away"))
		if out, err := verify(); err == nil || !strings.Contains(string(out), "/usr/local/bin/hakod") {
			t.Errorf("systemd-analyze verify with hakod missing: %v\n%s", err, out)
		}
		must(t, os.Rename(hakod+".away", hakod))
	}

	mk("uninstall")
	must(t, filepath.WalkDir(dest, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			t.Errorf("left after make uninstall: %s", p)
		}
		return err
	}))
}
