package engine

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"

	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/runtime/cgroups"
)

// Top is GET /containers/{id}/top: the host's ps(1), with docker's
// default "-ef" or the caller's arguments, cut down to the processes in
// the container's cgroup, as dockerd does it. The pids are the host's.
func (e *Engine) Top(ctx context.Context, ref, psArgs string) (container.TopResponse, error) {
	c, err := e.Get(ref)
	if err != nil {
		return container.TopResponse{}, err
	}
	snap := c.SettledSnapshot() // after a start under way
	switch snap.State.Status {
	case container.StateRunning, container.StatePaused:
	case container.StateRestarting:
		return container.TopResponse{}, errdefs.Conflictf("Container %s is restarting, wait until the container is running", c.ID)
	default:
		return container.TopResponse{}, errdefs.Conflictf("Container %s is not running", c.ID)
	}
	if psArgs == "" {
		psArgs = "-ef"
	}
	pids, err := cgroupPids(snap.State.Pid, c.ID)
	if err != nil {
		return container.TopResponse{}, err
	}
	args := strings.Fields(psArgs)
	// "-q PID,PID" makes ps list only those; some options (f) refuse it,
	// so, like docker, retry without and filter ourselves.
	out, err := exec.CommandContext(ctx, "ps", append(args, "-q", joinPids(pids))...).Output()
	if err != nil {
		out, err = exec.CommandContext(ctx, "ps", args...).Output()
	}
	if err != nil {
		//lint:ignore ST1005 docker's words, which clients show
		return container.TopResponse{}, fmt.Errorf("Error running ps: %w", err)
	}
	return parsePS(out, pids)
}

func joinPids(pids []int) string {
	s := make([]string, len(pids))
	for i, p := range pids {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ",")
}

// cgroupPids lists the processes in the cgroup of the container whose init
// is pid, found from the init's /proc/PID/cgroup whichever runtime made it.
func cgroupPids(pid int, id string) ([]int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil, fmt.Errorf("cgroup of container %s: %w", id, err)
	}
	path := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[0] == "0" && f[1] == "" && path == "" {
			path = f[2]
		}
		if slices.Contains(strings.Split(f[1], ","), "pids") || slices.Contains(strings.Split(f[1], ","), "memory") {
			path = f[2]
			break
		}
	}
	if path == "" {
		return []int{pid}, nil
	}
	m, err := cgroups.New(cgroups.Config{Path: path, ID: id})
	if err != nil {
		return nil, fmt.Errorf("cgroup of container %s: %w", id, err)
	}
	pids, err := m.Pids()
	if err != nil {
		return nil, fmt.Errorf("processes of container %s: %w", id, err)
	}
	return pids, nil
}

// parsePS keeps ps's header as the titles and the lines of pids, split
// into as many columns as there are titles (the last keeps its spaces).
func parsePS(out []byte, pids []int) (container.TopResponse, error) {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	titles := strings.Fields(lines[0])
	pidCol := slices.Index(titles, "PID")
	if pidCol < 0 {
		return container.TopResponse{}, errdefs.Invalidf("Couldn't find PID field in ps output")
	}
	resp := container.TopResponse{Titles: titles, Processes: [][]string{}}
	for _, l := range lines[1:] {
		if strings.TrimSpace(l) == "" {
			continue
		}
		f := strings.Fields(l)
		if len(f) < len(titles) {
			continue
		}
		p, err := strconv.Atoi(f[pidCol])
		if err != nil {
			return container.TopResponse{}, fmt.Errorf("unexpected pid %q in ps output", f[pidCol])
		}
		if !slices.Contains(pids, p) {
			continue
		}
		row := append(f[:len(titles)-1:len(titles)-1], strings.Join(f[len(titles)-1:], " "))
		resp.Processes = append(resp.Processes, row)
	}
	return resp, nil
}
