package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hako-project/hako/test/hakodtest"
)

// idleSpares lists the pids of the spare shims (shim.Spares) that d's
// hakod, whose pid is hakod, started and has not yet given a container.
// (Other hakods' spares may run the same binary.)
func idleSpares(d *hakodtest.Daemon, hakod int) []int {
	var out []int
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		if !bytes.HasPrefix(b, []byte(d.Bin.Shim+"\x00--spare\x00")) {
			continue
		}
		pid, _ := strconv.Atoi(strings.Split(p, "/")[2])
		if state, ppid := procStat(pid); state != "" && state != "Z" && ppid == hakod {
			out = append(out, pid)
		}
	}
	return out
}

// standbyOf returns the pid of the spare's standby runtime (`hako-runtime
// standby`, its child), 0 if it has none.
func standbyOf(d *hakodtest.Daemon, spare int) int {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		if string(b) != d.Bin.Runtime+"\x00standby\x00" {
			continue
		}
		pid, _ := strconv.Atoi(strings.Split(p, "/")[2])
		if state, ppid := procStat(pid); state != "" && state != "Z" && ppid == spare {
			return pid
		}
	}
	return 0
}

// procStat returns pid's state letter and parent, "" once it has gone.
func procStat(pid int) (state string, ppid int) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ppid, _ = strconv.Atoi(f[1])
	return f[0], ppid
}

// running: pid exists and is not a zombie.
func running(pid int) bool {
	state, _ := procStat(pid)
	return state != "" && state != "Z"
}

func hakodPid(t *testing.T, d *hakodtest.Daemon) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(d.Dir, "hakod.pid"))
	must(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	must(t, err)
	return pid
}

func untilTrue(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestSpareShim: once hakod has started a container it keeps a spare
// shim, and the spare a standby runtime; the next container's shim is that
// spare, named for its container in ps as any shim; hakod's stop ends the
// idle spare and its standby before hakod exits, and a kill -9 of hakod
// ends them too (they read end-of-file) while the containers run on.
func TestSpareShim(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	d.MustDocker("run", "--rm", img, "true")
	hakod := hakodPid(t, d)
	var spare []int
	untilTrue(t, "a spare shim", func() bool { spare = idleSpares(d, hakod); return len(spare) == 1 })

	id := d.MustDocker("run", "-d", img, "sleep", "1000")
	pid := d.MustDocker("inspect", "-f", "{{.State.Pid}}", id)
	if shim := processWith(t, "hako-shim", id); shim != spare[0] {
		t.Errorf("the container's shim is %d, want the spare %d", shim, spare[0])
	}
	var next []int
	untilTrue(t, "the next spare", func() bool { next = idleSpares(d, hakod); return len(next) == 1 })
	var standby int
	untilTrue(t, "the spare's standby runtime", func() bool { standby = standbyOf(d, next[0]); return standby != 0 })

	d.Stop()
	if running(next[0]) {
		t.Errorf("spare %d outlives hakod's stop", next[0])
	}
	untilTrue(t, "the standby of a stopped hakod's spare to exit", func() bool { return !running(standby) })
	if _, err := os.Stat("/proc/" + pid); err != nil {
		t.Fatalf("the container died with hakod: %v", err)
	}

	d.Restart()
	d.MustDocker("run", "--rm", img, "true")
	hakod = hakodPid(t, d)
	untilTrue(t, "a spare shim after the restart", func() bool { spare = idleSpares(d, hakod); return len(spare) == 1 })
	untilTrue(t, "the spare's standby runtime", func() bool { standby = standbyOf(d, spare[0]); return standby != 0 })
	d.Kill()
	untilTrue(t, "the spare of a killed hakod to exit", func() bool { return !running(spare[0]) })
	untilTrue(t, "the standby of a killed hakod's spare to exit", func() bool { return !running(standby) })
	if _, err := os.Stat("/proc/" + pid); err != nil {
		t.Fatalf("the container died with hakod: %v", err)
	}
	d.Restart()
	d.MustDocker("rm", "-f", id)
	assertClean(t, d)
}
