// Command shimbench measures what an idle container costs in memory with
// hako-shim: it starts N containers (busybox `sleep`) through package shim,
// keeps a Wait pending on each as hakod does, and reads the proportional
// set size (PSS, /proc/PID/smaps_rollup) of every shim and of itself before
// and after. PSS divides shared pages (the shim's text, mapped by all N)
// among their users, so the sum over the shims is what they cost together.
// With -conmon it does the same with conmon driving runc, in the same run,
// and prints the ratio.
//
// Run it as root: bench/shim/run.sh builds the binaries and calls it.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hako-project/hako/shim"
)

func main() {
	n := flag.Int("n", 50, "number of idle containers")
	shimBin := flag.String("shim", "bin/hako-shim", "hako-shim binary")
	rtBin := flag.String("runtime", "bin/hako-runtime", "OCI runtime for hako-shim")
	conmon := flag.String("conmon", "", "also measure conmon (path to it) driving -conmon-runtime")
	conmonRT := flag.String("conmon-runtime", "runc", "OCI runtime conmon drives")
	flag.Parse()
	if err := run(*n, *shimBin, *rtBin, *conmon, *conmonRT); err != nil {
		fmt.Fprintln(os.Stderr, "shimbench:", err)
		os.Exit(1)
	}
}

// mem is memory of one process, in KiB.
type mem struct{ pss, rss, anon int }

func readMem(pid int) (mem, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return mem{}, err
	}
	defer f.Close()
	var m mem
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 2 {
			continue
		}
		v, _ := strconv.Atoi(fs[1])
		switch fs[0] {
		case "Pss:":
			m.pss = v
		case "Rss:":
			m.rss = v
		case "Pss_Anon:":
			m.anon = v
		}
	}
	return m, sc.Err()
}

// selfPSS is the bench's own PSS after a full collection, as hakod's
// steady state would be.
func selfPSS() int {
	runtime.GC()
	debug.FreeOSMemory()
	time.Sleep(200 * time.Millisecond)
	m, _ := readMem(os.Getpid())
	return m.pss
}

func run(n int, shimBin, rtBin, conmonBin, conmonRT string) error {
	shimBin, _ = filepath.Abs(shimBin)
	if p, err := exec.LookPath(rtBin); err == nil {
		rtBin, _ = filepath.Abs(p)
	}
	work, err := os.MkdirTemp("", "shimbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	rootfs := filepath.Join(work, "rootfs")
	if out, err := exec.Command("scripts/mkbundle.sh", work).CombinedOutput(); err != nil {
		return fmt.Errorf("mkbundle: %v: %s", err, out)
	}
	fmt.Printf("%d idle containers (busybox sleep), %s, runtime %s\n\n", n, time.Now().Format(time.RFC3339), filepath.Base(rtBin))

	hs, err := measureHakoShim(n, work, rootfs, shimBin, rtBin)
	if err != nil {
		return err
	}
	fmt.Printf("%-28s %10s %10s %10s %14s %14s\n", "monitor", "PSS/ctr", "RSS/ctr", "anon/ctr", "daemon/ctr", "total/ctr")
	hs.print("hako-shim")
	if conmonBin != "" {
		cm, err := measureConmon(n, work, rootfs, conmonBin, conmonRT)
		if err != nil {
			return fmt.Errorf("conmon: %w", err)
		}
		cm.print("conmon (" + filepath.Base(conmonRT) + ")")
		fmt.Printf("\nhako-shim / conmon, per container (monitor + daemon): %.2f\n", hs.total()/cm.total())
	}
	return nil
}

// result is the measurement of one monitor.
type result struct {
	n                int
	sum              mem // over all monitors
	daemonGrowthKiB  int
	monitorProcesses int
}

func (r result) total() float64 { return float64(r.sum.pss+r.daemonGrowthKiB) / float64(r.n) }

func (r result) print(name string) {
	per := func(v int) string { return fmt.Sprintf("%.0f KiB", float64(v)/float64(r.n)) }
	fmt.Printf("%-28s %10s %10s %10s %14s %14s\n", name, per(r.sum.pss), per(r.sum.rss), per(r.sum.anon),
		per(r.daemonGrowthKiB), fmt.Sprintf("%.0f KiB", r.total()))
}

// bundle writes a bundle whose config points at the shared rootfs.
func bundle(work, rootfs, id string, args []string) (string, error) {
	dir := filepath.Join(work, "b", id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	out, err := exec.Command("bin/hako-runtime", "spec", "--bundle", dir).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("spec: %v: %s", err, out)
	}
	var s specs.Spec
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return "", err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return "", err
	}
	s.Root = &specs.Root{Path: rootfs, Readonly: true}
	s.Process.Terminal = false
	s.Process.Args = args
	s.Linux.CgroupsPath = "/hako-shimbench/" + id
	if b, err = json.Marshal(&s); err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
}

func measureHakoShim(n int, work, rootfs, shimBin, rtBin string) (result, error) {
	ctx := context.Background()
	start := func(i int) (*shim.Client, error) {
		id := fmt.Sprintf("hs%03d", i)
		b, err := bundle(work, rootfs, id, []string{"sleep", "100000"})
		if err != nil {
			return nil, err
		}
		c, err := shim.Start(ctx, shim.Config{ID: id, Bundle: b, StateDir: filepath.Join(work, "s", id),
			Runtime: rtBin, RuntimeRoot: filepath.Join(work, "rt"), Binary: shimBin,
			Log: shim.LogConfig{Path: filepath.Join(work, "log", id+".log")}})
		if err != nil {
			return nil, err
		}
		return c, c.Start(ctx)
	}
	// Warm up: page in the code paths, so the daemon's growth is the
	// containers' and not first use.
	c, err := start(n)
	if err != nil {
		return result{}, err
	}
	go func() { _, _ = c.Wait(ctx) }()
	if _, err := c.Delete(ctx, true); err != nil {
		return result{}, err
	}
	before := selfPSS()

	clients := make([]*shim.Client, 0, n)
	defer func() {
		for _, c := range clients {
			_, _ = c.Delete(ctx, true)
		}
	}()
	for i := range n {
		c, err := start(i)
		if err != nil {
			return result{}, err
		}
		clients = append(clients, c)
		go func() { _, _ = c.Wait(ctx) }() // as hakod does for every container
	}
	time.Sleep(2 * time.Second)
	after := selfPSS()
	r := result{n: n, daemonGrowthKiB: after - before}
	for _, c := range clients {
		b, err := os.ReadFile(filepath.Join(c.StateDir(), "shim.pid"))
		if err != nil {
			return r, err
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		m, err := readMem(pid)
		if err != nil {
			return r, err
		}
		r.sum.pss += m.pss
		r.sum.rss += m.rss
		r.sum.anon += m.anon
		r.monitorProcesses++
	}
	return r, nil
}

// measureConmon runs conmon as podman does (detached, with an exit
// directory and a log), driving the same kind of container.
func measureConmon(n int, work, rootfs, conmonBin, rt string) (result, error) {
	rtPath, err := exec.LookPath(rt)
	if err != nil {
		return result{}, err
	}
	root := filepath.Join(work, "conmon-rt")
	var pids []int
	var ids []string
	defer func() {
		for _, id := range ids {
			_ = exec.Command(rtPath, "--root", root, "delete", "--force", id).Run()
		}
	}()
	for i := range n {
		id := fmt.Sprintf("cm%03d", i)
		b, err := bundle(work, rootfs, id, []string{"sleep", "100000"})
		if err != nil {
			return result{}, err
		}
		dir := filepath.Join(work, "cm", id)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return result{}, err
		}
		pidFile := filepath.Join(dir, "conmon.pid")
		cmd := exec.Command(conmonBin, "--api-version", "1", "-c", id, "-u", id, "-n", id, "-r", rtPath,
			"--runtime-arg", "--root", "--runtime-arg", root, "-b", b, "-p", filepath.Join(dir, "pidfile"),
			"--conmon-pidfile", pidFile, "--exit-dir", dir, "--persist-dir", dir, "-l", "k8s-file:"+filepath.Join(dir, "ctr.log"),
			"--socket-dir-path", dir, "--syslog=false", "--log-level", "error")
		if out, err := cmd.CombinedOutput(); err != nil {
			return result{}, fmt.Errorf("%v: %s", err, out)
		}
		ids = append(ids, id)
		// conmon runs the runtime's create after it has detached: wait
		// for the container's pid file.
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, err := os.Stat(filepath.Join(dir, "pidfile")); err == nil {
				break
			}
			if time.Now().After(deadline) {
				return result{}, fmt.Errorf("conmon created no container %s", id)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if out, err := exec.Command(rtPath, "--root", root, "start", id).CombinedOutput(); err != nil {
			return result{}, fmt.Errorf("start: %v: %s", err, out)
		}
		b2, err := os.ReadFile(pidFile)
		if err != nil {
			return result{}, err
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b2)))
		pids = append(pids, pid)
	}
	time.Sleep(2 * time.Second)
	r := result{n: n}
	for _, pid := range pids {
		m, err := readMem(pid)
		if err != nil {
			return r, err
		}
		r.sum.pss += m.pss
		r.sum.rss += m.rss
		r.sum.anon += m.anon
		r.monitorProcesses++
	}
	return r, nil
}
