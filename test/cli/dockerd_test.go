package cli_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// dockerd is a dockerd this suite started, with everything it owns
// (data root, exec root, socket, pidfile, its containerd) under one
// directory, so stopping it can find and remove all of it.
type dockerd struct {
	base string
	// cgroup is the cgroup parent of its containers, unique to this run,
	// so that stop can find containers a killed dockerd left behind. It
	// is given to dockerd as an absolute path ("/NAME"): a relative one
	// is taken relative to dockerd's own cgroup in each hierarchy, which
	// is not the root where the test runs in a cgroup of its own (on
	// cgroup v1, often in the memory hierarchy only), and removeCgroups
	// would not find it.
	cgroup string
	host   string
	cmd    *exec.Cmd
	done   chan struct{}
}

// startDockerd starts dockerd under base and waits for its API.
func startDockerd(base string) (*dockerd, error) {
	if err := os.MkdirAll(base, 0o700); err != nil {
		return nil, err
	}
	sock := filepath.Join(base, "docker.sock")
	d := &dockerd{base: base, host: "unix://" + sock, done: make(chan struct{}), cgroup: filepath.Base(filepath.Dir(base))}
	logf, err := os.Create(filepath.Join(base, "dockerd.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	d.cmd = exec.Command("dockerd",
		"--data-root", filepath.Join(base, "root"),
		"--exec-root", filepath.Join(base, "exec"),
		"-H", d.host,
		"--pidfile", filepath.Join(base, "docker.pid"),
		"--bridge=none", "--iptables=false", "--ip6tables=false",
		"--storage-driver=overlay2",
		"--cgroup-parent", "/"+d.cgroup)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	// If the test binary dies, dockerd is told to shut down (and takes
	// its containerd and containers with it).
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := d.cmd.Start(); err != nil {
		os.RemoveAll(base)
		return nil, fmt.Errorf("start dockerd: %w", err)
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}, Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := hc.Get("http://docker/_ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return d, nil
			}
		}
		select {
		case <-d.done:
			log, _ := os.ReadFile(filepath.Join(base, "dockerd.log"))
			d.stop()
			return nil, fmt.Errorf("dockerd exited at start; log:\n%s", tail(string(log), 3000))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(base, "dockerd.log"))
			d.stop()
			return nil, fmt.Errorf("dockerd did not answer /_ping in 60s; log:\n%s", tail(string(log), 3000))
		}
	}
}

// stop ends dockerd (SIGTERM, then SIGKILL after 30s), kills what it
// started that is still alive (its containerd, shims and their
// containers, found by our base directory in their command lines or
// cgroups), detaches every mount below base and removes base.
func (d *dockerd) stop() {
	if d.cmd.Process != nil {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(30 * time.Second):
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	}
	killUnder(d.base, d.cgroup)
	unmountUnder(d.base)
	os.RemoveAll(d.base)
	removeCgroups(d.cgroup)
}

// removeCgroups removes the cgroup parent (in every v1 hierarchy, or in
// the v2 tree) once its processes are gone: dockerd removes its
// containers' cgroups but leaves the parent.
func removeCgroups(name string) {
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", name))
	dirs = append(dirs, filepath.Join("/sys/fs/cgroup", name))
	for _, d := range dirs {
		var all []string
		filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				all = append(all, p)
			}
			return nil
		})
		// Children before parents; cgroup dirs go with rmdir, not unlink.
		for i := len(all) - 1; i >= 0; i-- {
			_ = syscall.Rmdir(all[i])
		}
	}
}

// killUnder SIGKILLs processes whose command line names dir or whose
// cgroup is under cgroup: only ones this suite's dockerd started can.
func killUnder(dir, cgroup string) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cl, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cg, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cgroup"))
		if strings.Contains(string(cl), dir) || strings.Contains(string(cg), "/"+cgroup+"/") {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// unmountUnder detaches every mount at or below dir, deepest first.
func unmountUnder(dir string) {
	for i := 0; i < 3; i++ {
		b, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			return
		}
		var targets []string
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
				targets = append(targets, f[4])
			}
		}
		if len(targets) == 0 {
			return
		}
		for j := len(targets) - 1; j >= 0; j-- {
			_ = unix.Unmount(targets[j], unix.MNT_DETACH)
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
