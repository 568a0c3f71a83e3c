package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/shim"
)

func TestDiffUpper(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("whiteouts are 0/0 character devices: mknod needs root")
	}
	lower, upper := t.TempDir(), t.TempDir()
	old := time.Unix(1000000000, 0)
	mk := func(root, p string, dir bool) {
		full := filepath.Join(root, p)
		if dir {
			must(t, os.MkdirAll(full, 0o755))
		} else {
			must(t, os.MkdirAll(filepath.Dir(full), 0o755))
			must(t, os.WriteFile(full, []byte("x"), 0o644))
		}
	}
	for _, p := range []string{"bin/cat", "bin/sh", "etc/passwd"} {
		mk(lower, p, false)
	}
	mk(lower, "var", true)
	for _, p := range []string{"bin", "etc", "var"} {
		must(t, os.Chtimes(filepath.Join(lower, p), old, old))
	}
	// The container: removed bin/cat, changed etc/passwd, added var/x; the
	// runtime made its mount targets in etc.
	mk(upper, "bin", true)
	must(t, unix.Mknod(filepath.Join(upper, "bin/cat"), unix.S_IFCHR, 0))
	mk(upper, "etc/passwd", false)
	mk(upper, "etc/hostname", false)
	mk(upper, "etc/hosts", false)
	mk(upper, "var/x", true)
	must(t, os.Chtimes(filepath.Join(upper, "var"), old, old))
	got, err := diffUpper(t.Context(), upper, []string{lower})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, c := range got {
		lines = append(lines, c.Kind.String()+" "+c.Path)
	}
	want := []string{"C /bin", "D /bin/cat", "C /etc/passwd", "C /var", "A /var/x"}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("changes %v, want %v", lines, want)
	}
}

func TestParsePS(t *testing.T) {
	out := []byte("UID          PID    PPID  C STIME TTY          TIME CMD\n" +
		"root           1       0  0 10:00 ?        00:00:01 /sbin/init splash\n" +
		"root         123       1  0 10:01 ?        00:00:00 sleep 600\n" +
		"root         124     123  0 10:01 ?        00:00:00 sh -c while :; do :; done\n")
	top, err := parsePS(out, []int{123, 124})
	if err != nil {
		t.Fatal(err)
	}
	if len(top.Titles) != 8 || len(top.Processes) != 2 || top.Processes[1][7] != "sh -c while :; do :; done" {
		t.Errorf("parsePS: %+v", top)
	}
	if _, err := parsePS([]byte("COMMAND\nsleep\n"), []int{1}); err == nil {
		t.Error("ps output without PID accepted")
	}
}

func TestParseNetDev(t *testing.T) {
	in := `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0
  eth0:    1500      10    1    2    0     0          0         0      700       5    3    4    0     0       0          0
`
	got := parseNetDev(in)
	want := map[string]container.NetworkStats{"eth0": {RxBytes: 1500, RxPackets: 10, RxErrors: 1, RxDropped: 2, TxBytes: 700, TxPackets: 5, TxErrors: 3, TxDropped: 4}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseNetDev: %+v", got)
	}
}

func TestCommitChanges(t *testing.T) {
	c := &container.Config{Env: []string{"PATH=/bin", "A=old"}}
	for _, ch := range []string{
		`CMD ["echo", "hi"]`, "ENTRYPOINT /bin/run it", `ENV A=new B="two words"`, "ENV C three",
		"LABEL x=1 y='z w'", "EXPOSE 80 53/udp", "VOLUME /data", "USER nobody", "WORKDIR /w", "STOPSIGNAL SIGINT",
		"HEALTHCHECK --interval=2s --retries=4 CMD test -f /ok",
		// Variables expand as in a Dockerfile, from the environment so far.
		`ENV PATH=$PATH:/opt D=${A}x E='$A' F=${NOPE:-dflt}`, "LABEL from=$C", "WORKDIR sub/$A", `VOLUME ["/v/$A"]`,
	} {
		if err := applyCommitChange(c, ch); err != nil {
			t.Fatalf("%s: %v", ch, err)
		}
	}
	if !reflect.DeepEqual(c.Cmd, []string{"echo", "hi"}) || !reflect.DeepEqual(c.Entrypoint, []string{"/bin/sh", "-c", "/bin/run it"}) {
		t.Errorf("cmd %q entrypoint %q", c.Cmd, c.Entrypoint)
	}
	if got := strings.Join(c.Env, ","); got != "PATH=/bin:/opt,A=new,B=two words,C=three,D=newx,E=$A,F=dflt" {
		t.Errorf("env %s", got)
	}
	if c.Labels["y"] != "z w" || c.Labels["from"] != "three" || len(c.ExposedPorts) != 2 || c.User != "nobody" ||
		c.WorkingDir != "/w/sub/new" || c.StopSignal != "SIGINT" {
		t.Errorf("config %+v", c)
	}
	if _, ok := c.Volumes["/v/new"]; !ok {
		t.Errorf("volumes %v", c.Volumes)
	}
	if hc := c.Healthcheck; hc == nil || !reflect.DeepEqual(hc.Test, []string{"CMD-SHELL", "test -f /ok"}) || hc.Interval != 2*time.Second || hc.Retries != 4 {
		t.Errorf("healthcheck %+v", c.Healthcheck)
	}
	if err := applyCommitChange(c, "RUN true"); err == nil || err.Error() != "run is not a valid change command" {
		t.Errorf("RUN: %v", err)
	}
	if err := applyCommitChange(c, "HEALTHCHECK NONE"); err != nil || c.Healthcheck.Test[0] != "NONE" {
		t.Errorf("HEALTHCHECK NONE: %v %+v", err, c.Healthcheck)
	}
}

func TestImageHealthcheckMerge(t *testing.T) {
	raw := []byte(`{"config":{"Healthcheck":{"Test":["CMD","true"],"Interval":1000000000,"Retries":2}}}`)
	if got := imageHealthcheck(nil, raw); got == nil || got.Test[1] != "true" || got.Retries != 2 {
		t.Errorf("from the image: %+v", got)
	}
	user := &container.HealthConfig{Interval: 5 * time.Second}
	if got := imageHealthcheck(user, raw); got.Test[1] != "true" || got.Interval != 5*time.Second || got.Retries != 2 {
		t.Errorf("merged: %+v", got)
	}
	none := &container.HealthConfig{Test: []string{"NONE"}}
	if got := imageHealthcheck(none, raw); !reflect.DeepEqual(got, none) {
		t.Errorf("--no-healthcheck inherits: %+v", got)
	}
}

func TestApplyProbe(t *testing.T) {
	c := &Container{Record: Record{ID: "x", State: State{StartedAt: time.Now(), Health: &container.Health{Status: container.Starting}}}}
	fail := &container.HealthcheckResult{Start: time.Now(), ExitCode: 1}
	// In the start period a failure does not count.
	if _, changed := applyProbe(c, fail, time.Hour, 1); changed || c.State.Health.FailingStreak != 0 {
		t.Errorf("failure in the start period: %+v", c.State.Health)
	}
	applyProbe(c, fail, 0, 2)
	if st, changed := applyProbe(c, fail, 0, 2); st != container.Unhealthy || !changed || c.State.Health.FailingStreak != 2 {
		t.Errorf("after two failures: %+v", c.State.Health)
	}
	before := c.State.Health
	for i := 0; i < 6; i++ {
		applyProbe(c, &container.HealthcheckResult{Start: time.Now()}, 0, 2)
	}
	if h := c.State.Health; h.Status != container.Healthy || h.FailingStreak != 0 || len(h.Log) != healthLogEntries {
		t.Errorf("after successes: %+v", h)
	}
	if before.Status != container.Unhealthy || len(before.Log) != 3 {
		t.Errorf("a health value handed out was changed in place: %+v", before)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestIsGone: a kill whose answer lost the race with the container's exit
// path (the shim client closed under it, or the shim gone) is no failure
// of stop or rm -f; other errors are.
func TestIsGone(t *testing.T) {
	for _, c := range []struct {
		err  error
		gone bool
	}{
		{syscall.ESRCH, true},
		{fmt.Errorf("kill: %w", shim.ErrClosed), true},
		{fmt.Errorf("shim of x: kill: %w", shim.ErrGone), true},
		{errdefs.NotFoundf("no such process"), true},
		{errors.New("OCI runtime kill failed: permission denied"), false},
		{classifyShim(&shim.Error{Op: "kill", Code: "runtime", Msg: "boom"}), false},
	} {
		if got := isGone(c.err); got != c.gone {
			t.Errorf("isGone(%v) = %v, want %v", c.err, got, c.gone)
		}
	}
}
