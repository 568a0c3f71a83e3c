package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Runtime is one OCI runtime under test with its private state root and
// bundle.
type Runtime struct {
	Name   string // label in the report
	Path   string
	Root   string // passed as --root, so runs never touch the default root
	Bundle string
}

func (r Runtime) argv(args ...string) []string {
	return append([]string{r.Path, "--root", r.Root}, args...)
}

// Workload is one measured sequence of runtime commands.
type Workload struct {
	Name  string
	Title string
	Do    func(sp *Spawner, r Runtime, id string) (Usage, error)
}

// Workloads returns the two workloads, in the order they are run.
func Workloads() []Workload {
	return []Workload{
		{"run", "run: `RUNTIME --root R run --bundle B ID` of /bin/true", RunTrue},
		{"create-start-delete", "create-start-delete: `create --pid-file P`, `start`, wait for the container's init to exit, `delete`", CreateStartDelete},
	}
}

// RunTrue measures "run" of /bin/true: the runtime creates, starts, waits
// for and removes the container in one command.
func RunTrue(sp *Spawner, r Runtime, id string) (Usage, error) {
	var u Usage
	start := time.Now()
	err := sp.Run(r.argv("run", "--bundle", r.Bundle, id), &u)
	u.Wall = time.Since(start)
	ReapStragglers(&u)
	if err != nil {
		return u, err
	}
	return u, checkGone(r, id)
}

// CreateStartDelete measures the lifecycle a container manager drives:
//
//	create --bundle B --pid-file P ID   (exits 0; init waits for start)
//	start ID                            (exits 0; init execs /bin/true)
//	wait4(init pid from P)              (the harness is subreaper, so the
//	                                     orphaned init is its child)
//	delete ID                           (container is stopped: no --force)
//
// Waiting with wait4 instead of polling "state" keeps the sequence the same
// for every runtime and adds no runtime calls of its own.
func CreateStartDelete(sp *Spawner, r Runtime, id string) (Usage, error) {
	var u Usage
	pidFile := filepath.Join(filepath.Dir(r.Root), id+".pid")
	defer os.Remove(pidFile)
	start := time.Now()
	if err := sp.Run(r.argv("create", "--bundle", r.Bundle, "--pid-file", pidFile, id), &u); err != nil {
		return u, err
	}
	pid, err := readPid(pidFile)
	if err != nil {
		return u, err
	}
	if err := sp.Run(r.argv("start", id), &u); err != nil {
		return u, err
	}
	ws, err := Wait(pid, &u)
	if err != nil {
		return u, fmt.Errorf("wait for container init %d of %s (not adopted by the harness?): %w", pid, id, err)
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return u, fmt.Errorf("container %s: /bin/true %s", id, describe(ws))
	}
	if err := sp.Run(r.argv("delete", id), &u); err != nil {
		return u, err
	}
	u.Wall = time.Since(start)
	ReapStragglers(&u)
	return u, checkGone(r, id)
}

func readPid(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("pid file %s: bad pid %q", path, data)
	}
	return pid, nil
}

// checkGone fails if the runtime kept state for a container that should
// no longer exist: a leak would otherwise grow with every iteration.
func checkGone(r Runtime, id string) error {
	_, err := os.Stat(filepath.Join(r.Root, id))
	if err == nil {
		return fmt.Errorf("%s left state %s after the container was removed", r.Name, filepath.Join(r.Root, id))
	}
	if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("check state of %s: %w", id, err)
	}
	return nil
}
