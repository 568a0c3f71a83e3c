package cgroups

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// writeFile writes val to a cgroup control file. It never creates the file:
// a missing file means a missing controller or kernel feature and must
// surface as ENOENT, not as a new regular file in a fake tree.
func writeFile(dir, name, val string) error {
	p := filepath.Join(dir, name)
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_TRUNC|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", p, err)
	}
	defer unix.Close(fd)
	for {
		_, err = unix.Write(fd, []byte(val))
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", val, p, err)
	}
	return nil
}

// readFile returns a control file's content without the trailing newline.
// It uses open/read/close directly: os.ReadFile's fstat and poller
// registration cost 2-4x more per file here (measured, docs/cgroups.md),
// and the runtime reads these files on its hot path.
func readFile(dir, name string) (string, error) {
	p := filepath.Join(dir, name)
	b, err := readAll(p)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\n"), nil
}

func readAll(p string) ([]byte, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 4096)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

// readUint reads a single-number file; "max" reads as MaxUint64.
func readUint(dir, name string) (uint64, error) {
	s, err := readFile(dir, name)
	if err != nil {
		return 0, err
	}
	return parseUint(s, filepath.Join(dir, name))
}

func parseUint(s, where string) (uint64, error) {
	s = strings.TrimSpace(s)
	if s == "max" {
		return math.MaxUint64, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		// v1 files report "-1"-like values as negative numbers on some
		// kernels; treat any negative as unlimited.
		if i, ierr := strconv.ParseInt(s, 10, 64); ierr == nil && i < 0 {
			return math.MaxUint64, nil
		}
		return 0, fmt.Errorf("parse %s: %q is not a number", where, s)
	}
	return v, nil
}

// readKV reads a "key value" per line file (memory.stat, cpu.stat,
// memory.events) into a map.
func readKV(dir, name string) (map[string]uint64, error) {
	s, err := readFile(dir, name)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	for line := range strings.SplitSeq(s, "\n") {
		k, v, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue // non-numeric lines are not statistics
		}
		out[k] = n
	}
	return out, nil
}

// exists reports whether a control file is present.
func exists(dir, name string) bool {
	return unix.Access(filepath.Join(dir, name), unix.F_OK) == nil
}
