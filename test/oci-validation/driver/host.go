package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Mount is one line of /proc/self/mountinfo.
type Mount struct {
	ID     int
	Point  string
	FSType string
	Source string
}

// ParseMountInfo parses /proc/<pid>/mountinfo (proc(5)), unescaping the
// octal escapes the kernel uses for spaces and the like in paths.
func ParseMountInfo(r io.Reader) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		sep := -1
		for i, x := range f {
			if x == "-" {
				sep = i
				break
			}
		}
		if len(f) < 5 || sep < 6 || len(f) < sep+3 {
			return nil, fmt.Errorf("malformed mountinfo line %q", sc.Text())
		}
		id, err := strconv.Atoi(f[0])
		if err != nil {
			return nil, fmt.Errorf("mountinfo line %q: mount ID: %w", sc.Text(), err)
		}
		out = append(out, Mount{ID: id, Point: unescapeOctal(f[4]), FSType: f[sep+1], Source: unescapeOctal(f[sep+2])})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return out, nil
}

func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func readMounts() ([]Mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("open mountinfo: %w", err)
	}
	defer f.Close()
	return ParseMountInfo(f)
}

// CgroupRoots returns the mount points of every cgroup v1 and v2 hierarchy.
func CgroupRoots(mounts []Mount) []string {
	var roots []string
	for _, m := range mounts {
		if m.FSType == "cgroup" || m.FSType == "cgroup2" {
			roots = append(roots, m.Point)
		}
	}
	sort.Strings(roots)
	return roots
}

// ListCgroups returns every cgroup directory under the given hierarchy roots
// (the roots themselves excluded).
func ListCgroups(roots []string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, root := range roots {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil // removed while we walked
				}
				return err
			}
			if d.IsDir() && p != root {
				out[p] = true
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("walk cgroup hierarchy %s: %w", root, err)
		}
	}
	return out, nil
}

var (
	uuidRe       = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	uuidInNameRe = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
)

// suiteCgroup reports whether a cgroup path is one the validation programs
// make: their fixed paths ("/cgrouptest", "testdir/cgrouptest/container") or
// one whose name holds a container ID, which the programs always make with
// uuid.NewString() (runtimes may add a prefix or suffix, "crun-ID.scope"). Other new cgroups belong to whoever else uses the
// machine at the same time and are left alone.
func suiteCgroup(path string) bool {
	for _, c := range strings.Split(path, "/") {
		if c == "cgrouptest" || c == "testdir" || uuidInNameRe.MatchString(c) {
			return true
		}
	}
	return false
}

// Runtime is the OCI runtime under test, used only to list and remove what
// the validation programs left in its default root.
type Runtime struct {
	Path string
}

// List returns the IDs of the containers in the runtime's default root.
func (r Runtime) List(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, r.Path, "list", "-q").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("%s list -q: %w: %s", r.Path, err, strings.TrimSpace(string(ee.Stderr)))
		}
		return nil, fmt.Errorf("%s list -q: %w", r.Path, err)
	}
	var ids []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			ids = append(ids, l)
		}
	}
	return ids, nil
}

// ForceDelete kills and removes a container.
func (r Runtime) ForceDelete(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, r.Path, "delete", "--force", id).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s delete --force %s: %w: %s", r.Path, id, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Snapshot is the host state a validation program may leave changed.
type Snapshot struct {
	Containers map[string]bool
	Mounts     map[int]Mount
	Cgroups    map[string]bool
}

// Host takes snapshots and undoes what a program left behind.
type Host struct {
	Runtime     Runtime
	CgroupRoots []string
	// Scratch is the TMPDIR parent given to the programs; mounts below it
	// are certainly theirs.
	Scratch string
}

// Snap records the containers, mounts and cgroups present now.
func (h Host) Snap(ctx context.Context) (Snapshot, error) {
	s := Snapshot{Containers: map[string]bool{}, Mounts: map[int]Mount{}}
	ids, err := h.Runtime.List(ctx)
	if err != nil {
		return s, err
	}
	for _, id := range ids {
		s.Containers[id] = true
	}
	ms, err := readMounts()
	if err != nil {
		return s, err
	}
	for _, m := range ms {
		s.Mounts[m.ID] = m
	}
	s.Cgroups, err = ListCgroups(h.CgroupRoots)
	return s, err
}

// Reclaim compares the host with before and removes what a program left:
// containers still listed by the runtime (force-deleted), mounts below the
// scratch directory (detached) and suite cgroups (processes killed, then
// removed). It returns one line per leak and per thing it could not undo;
// new mounts elsewhere are returned as notes, since they may be someone
// else's.
func (h Host) Reclaim(ctx context.Context, before Snapshot) (leaks, notes []string, err error) {
	ids, err := h.Runtime.List(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, id := range ids {
		if before.Containers[id] || !uuidRe.MatchString(id) {
			continue
		}
		msg := fmt.Sprintf("container %s still listed by the runtime", id)
		if derr := h.Runtime.ForceDelete(ctx, id); derr != nil {
			msg += fmt.Sprintf(" (and could not be deleted: %v)", derr)
		} else {
			msg += " (force-deleted)"
		}
		leaks = append(leaks, msg)
	}

	ms, err := readMounts()
	if err != nil {
		return leaks, notes, err
	}
	var ours []Mount
	for _, m := range ms {
		if _, ok := before.Mounts[m.ID]; ok {
			continue
		}
		if within(m.Point, h.Scratch) {
			ours = append(ours, m)
		} else {
			notes = append(notes, fmt.Sprintf("new mount %s (%s) appeared outside the program's TMPDIR; left alone", m.Point, m.FSType))
		}
	}
	// Deepest first, so that children go before their parents.
	sort.Slice(ours, func(i, j int) bool { return len(ours[i].Point) > len(ours[j].Point) })
	for _, m := range ours {
		msg := fmt.Sprintf("mount %s (%s) left in the host mount namespace", m.Point, m.FSType)
		if uerr := syscall.Unmount(m.Point, syscall.MNT_DETACH); uerr != nil && !errors.Is(uerr, syscall.EINVAL) && !errors.Is(uerr, syscall.ENOENT) {
			msg += fmt.Sprintf(" (and could not be unmounted: %v)", uerr)
		} else {
			msg += " (unmounted)"
		}
		leaks = append(leaks, msg)
	}

	now, err := ListCgroups(h.CgroupRoots)
	if err != nil {
		return leaks, notes, err
	}
	var cgs []string
	for p := range now {
		if !before.Cgroups[p] && suiteCgroup(p) {
			cgs = append(cgs, p)
		}
	}
	sort.Slice(cgs, func(i, j int) bool { return len(cgs[i]) > len(cgs[j]) })
	for _, p := range cgs {
		msg := fmt.Sprintf("cgroup %s", p)
		if rerr := removeCgroup(p); rerr != nil {
			msg += fmt.Sprintf(" (and could not be removed: %v)", rerr)
		} else {
			msg += " (removed)"
		}
		leaks = append(leaks, msg)
	}
	return leaks, notes, nil
}

// removeCgroup kills whatever still runs in a cgroup and removes it. A
// cgroup cannot be removed while it has processes, and a killed process
// leaves it only once it has been reaped, hence the retries.
func removeCgroup(p string) error {
	spare := ancestry()
	var err error
	for i := 0; i < 50; i++ {
		if err = syscall.Rmdir(p); err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) {
			return fmt.Errorf("rmdir %s: %w", p, err)
		}
		data, rerr := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		if rerr == nil {
			for _, f := range strings.Fields(string(data)) {
				if pid, perr := strconv.Atoi(f); perr == nil && pid > 1 && !spare[pid] {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("rmdir %s: %w", p, err)
}

// ancestry returns this process and its ancestors. A runtime that failed
// half-way may leave a suite cgroup holding a process of ours (it moves
// the caller before it forks the container on some paths); killing those
// would kill the harness and the shell that started it.
func ancestry() map[int]bool {
	out := map[int]bool{}
	for pid := os.Getpid(); pid > 1 && !out[pid]; {
		out[pid] = true
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			break
		}
		// The command name may hold spaces and parentheses: the ppid is
		// the second field after the last ')'.
		rest := string(data[strings.LastIndexByte(string(data), ')')+1:])
		f := strings.Fields(rest)
		if len(f) < 2 {
			break
		}
		pid, err = strconv.Atoi(f[1])
		if err != nil {
			break
		}
	}
	return out
}

func within(p, dir string) bool {
	if dir == "" {
		return false
	}
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel)
}

// RemoveTree removes dir, refusing to if anything is still mounted below
// it: a recursive delete through a leaked bind mount of /sys or /proc, or
// of a host directory, would destroy files that are not ours.
func RemoveTree(dir string) error {
	ms, err := readMounts()
	if err != nil {
		return err
	}
	for _, m := range ms {
		if within(m.Point, dir) {
			return fmt.Errorf("remove %s: %s is still mounted below it", dir, m.Point)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}
