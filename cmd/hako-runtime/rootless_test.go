package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestRootless runs containers as an unprivileged user (nobody): a user
// namespace mapping the user's own uid to root, no cgroups (none is
// delegated to nobody), devices bound from the host, the state under the
// user's runtime directory.
func TestRootless(t *testing.T) {
	needRoot(t) // to prepare a bundle nobody owns
	b := newBundle(t, "sh", "-c", "id -u; cat /proc/self/uid_map; ls /dev/null; hostname")
	ToRootless(b.spec, 65534, 65534)
	b.save()
	for _, d := range []string{filepath.Dir(b.dir), b.dir} {
		must(t, os.Chmod(d, 0o755))
	}
	must(t, filepath.Walk(b.dir, func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			err = os.Lchown(p, 65534, 65534)
		}
		return err
	}))
	xdg := filepath.Join(t.TempDir(), "xdg")
	must(t, os.MkdirAll(xdg, 0o700))
	must(t, os.Chown(xdg, 65534, 65534))
	must(t, os.Chmod(filepath.Dir(xdg), 0o755))
	run := func(args ...string) (string, string, int) {
		cmd := exec.Command(runtimeBin, args...)
		cmd.Dir = b.dir
		cmd.Env = []string{"PATH=/usr/bin:/bin", "XDG_RUNTIME_DIR=" + xdg}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		// Files, not pipes: a created container keeps the runtime's stdio.
		outF, err := os.CreateTemp(t.TempDir(), "out")
		must(t, err)
		errF, err := os.CreateTemp(t.TempDir(), "err")
		must(t, err)
		defer outF.Close()
		defer errF.Close()
		cmd.Stdout, cmd.Stderr = outF, errF
		err = cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		out, _ := os.ReadFile(outF.Name())
		errs, _ := os.ReadFile(errF.Name())
		return string(out), string(errs), code
	}
	out, errs, code := run("run", "rootless1")
	if code != 0 {
		t.Fatalf("rootless run: exit %d: %s", code, errs)
	}
	f := strings.Fields(out)
	if len(f) < 6 || f[0] != "0" || f[1] != "0" || f[2] != "65534" || f[4] != "/dev/null" {
		t.Errorf("rootless container saw %q", out)
	}
	// create/start/delete, state under $XDG_RUNTIME_DIR/hako-runtime.
	b.spec.Process.Args = []string{"sleep", "30"}
	b.save()
	must(t, os.Lchown(filepath.Join(b.dir, "config.json"), 65534, 65534))
	if _, errs, code := run("create", "rootless2"); code != 0 {
		t.Fatalf("rootless create: %s", errs)
	}
	if _, err := os.Stat(filepath.Join(xdg, "hako-runtime", "rootless2", "state.json")); err != nil {
		t.Errorf("state not under XDG_RUNTIME_DIR: %v", err)
	}
	if _, errs, code := run("start", "rootless2"); code != 0 {
		t.Fatalf("rootless start: %s", errs)
	}
	if out, errs, code := run("exec", "rootless2", "id", "-u"); code != 0 || strings.TrimSpace(out) != "0" {
		t.Errorf("rootless exec: %d %q %q", code, out, errs)
	}
	if _, errs, code := run("delete", "--force", "rootless2"); code != 0 {
		t.Fatalf("rootless delete: %s", errs)
	}
	if ents, _ := os.ReadDir(filepath.Join(xdg, "hako-runtime")); len(ents) != 0 {
		t.Errorf("rootless state left: %v", ents)
	}
}
