package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// freezeTimeout bounds how long Freeze waits for the kernel to report the
// cgroup frozen (a task in an uninterruptible sleep delays it).
const freezeTimeout = 5 * time.Second

// freezer returns the directory and kind of the freezer: the v1 freezer
// hierarchy where the host mounts one, else cgroup2's cgroup.freeze.
func (m *manager) freezer() (dir string, v2 bool, err error) {
	if m.mode != ModeUnified {
		if h := m.v1("freezer"); h != nil {
			return h.Path, false, nil
		}
	}
	if u := m.unified(); u != nil {
		return u.Path, true, nil
	}
	return "", false, errors.New("the host has no freezer (no v1 freezer hierarchy, no cgroup2)")
}

func (m *manager) Freeze() error {
	dir, v2, err := m.freezer()
	if err != nil {
		return err
	}
	if v2 {
		if err := writeFile(dir, "cgroup.freeze", "1"); err != nil {
			return fmt.Errorf("freeze: %w", err)
		}
		return waitEvents(dir, "frozen", "1")
	}
	return freezeV1(dir)
}

func freezeV1(dir string) error {
	deadline := time.Now().Add(freezeTimeout)
	delay := 100 * time.Microsecond
	for i := 0; ; i++ {
		// Re-writing FROZEN restarts a freeze that raced with a fork.
		if err := writeFile(dir, "freezer.state", "FROZEN"); err != nil {
			return fmt.Errorf("freeze: %w", err)
		}
		st, err := readFile(dir, "freezer.state")
		if err != nil {
			return fmt.Errorf("freeze: %w", err)
		}
		if strings.TrimSpace(st) == "FROZEN" {
			return nil
		}
		if time.Now().After(deadline) {
			_ = writeFile(dir, "freezer.state", "THAWED")
			return fmt.Errorf("freeze %s: still %s after %v (a task may be in uninterruptible sleep); thawed again", dir, st, freezeTimeout)
		}
		// Some tasks only reach the freezer after being kicked out of a
		// syscall: a THAWED/FROZEN cycle now and then unsticks them,
		// as runc does.
		if i%25 == 24 {
			_ = writeFile(dir, "freezer.state", "THAWED")
		}
		time.Sleep(delay)
		delay = min(delay*2, 10*time.Millisecond)
	}
}

// waitEvents polls a cgroup2 cgroup.events until key has val.
func waitEvents(dir, key, val string) error {
	deadline := time.Now().Add(freezeTimeout)
	delay := 50 * time.Microsecond
	for {
		ev, err := readFile(dir, "cgroup.events")
		if err != nil {
			return err
		}
		for line := range strings.SplitSeq(ev, "\n") {
			if k, v, _ := strings.Cut(line, " "); k == key && v == val {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s/cgroup.events: %s did not become %s within %v", dir, key, val, freezeTimeout)
		}
		time.Sleep(delay)
		delay = min(delay*2, 10*time.Millisecond)
	}
}

func (m *manager) Thaw() error {
	dir, v2, err := m.freezer()
	if err != nil {
		return err
	}
	if v2 {
		if err := writeFile(dir, "cgroup.freeze", "0"); err != nil {
			return fmt.Errorf("thaw: %w", err)
		}
		return waitEvents(dir, "frozen", "0")
	}
	if err := writeFile(dir, "freezer.state", "THAWED"); err != nil {
		return fmt.Errorf("thaw: %w", err)
	}
	return nil
}

func (m *manager) Frozen() (bool, error) {
	dir, v2, err := m.freezer()
	if err != nil {
		return false, err
	}
	if v2 {
		s, err := readFile(dir, "cgroup.freeze")
		if err != nil {
			return false, err
		}
		return strings.TrimSpace(s) == "1", nil
	}
	s, err := readFile(dir, "freezer.self_freezing")
	if errors.Is(err, os.ErrNotExist) {
		s, err = readFile(dir, "freezer.state")
		return strings.TrimSpace(s) == "FROZEN", err
	}
	if err != nil {
		return false, err
	}
	return strings.TrimSpace(s) == "1", nil
}

// procsDir picks the hierarchy to list processes from: every process of the
// container is in every hierarchy, so one suffices; the unified one lists
// the same set on all layouts.
func (m *manager) procsDir() (string, error) {
	if u := m.unified(); u != nil {
		return u.Path, nil
	}
	for _, c := range []string{"freezer", "pids", "memory"} {
		if h := m.v1(c); h != nil {
			return h.Path, nil
		}
	}
	if len(m.hier) > 0 {
		return m.hier[0].Path, nil
	}
	return "", errors.New("no cgroup hierarchy to list processes from")
}

func (m *manager) Pids() ([]int, error) {
	dir, err := m.procsDir()
	if err != nil {
		return nil, err
	}
	var out []int
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if p != dir && errors.Is(err, os.ErrNotExist) {
				return nil // a sub-cgroup removed while walking
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		s, err := readFile(p, "cgroup.procs")
		if err != nil {
			if p != dir && errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		for f := range strings.FieldsSeq(s) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				return fmt.Errorf("parse %s/cgroup.procs: %q", p, f)
			}
			out = append(out, pid)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list processes of cgroup %s: %w", dir, err)
	}
	return out, nil
}

// Kill signals every process. SIGKILL uses cgroup.kill where cgroup2 has it
// (also on hybrid hosts: every process is in the unified hierarchy too),
// which the kernel applies atomically, forks included. Other signals go to
// each listed pid with the cgroup frozen, so a fork cannot slip through.
func (m *manager) Kill(sig syscall.Signal) error {
	if sig == unix.SIGKILL {
		if u := m.unified(); u != nil {
			err := writeFile(u.Path, "cgroup.kill", "1")
			if err == nil {
				return nil
			}
			if !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("kill cgroup: %w", err)
			}
		}
	}
	frozen := false
	if err := m.Freeze(); err == nil {
		frozen = true
	}
	pids, err := m.Pids()
	if err == nil {
		for _, pid := range pids {
			if kerr := unix.Kill(pid, sig); kerr != nil && !errors.Is(kerr, unix.ESRCH) {
				err = fmt.Errorf("signal %d to pid %d: %w", sig, pid, kerr)
				break
			}
		}
	}
	if frozen {
		if terr := m.Thaw(); terr != nil && err == nil {
			err = terr
		}
	}
	return err
}
