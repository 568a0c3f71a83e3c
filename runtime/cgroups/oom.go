package cgroups

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// OOMEvents watches for OOM kills: on v1 through memory.oom_control
// registered in cgroup.event_control with an eventfd, on v2 by watching
// memory.events with inotify and counting oom_kill. Both fds are
// non-blocking and owned by the Go poller, so cancelling ctx unblocks the
// reader at once instead of leaving a thread stuck in read(2).
func (m *manager) OOMEvents(ctx context.Context) (<-chan struct{}, error) {
	h, err := m.place("memory")
	if err != nil {
		return nil, fmt.Errorf("oom events: %w", err)
	}
	if h.Unified {
		return oomV2(ctx, h.Path)
	}
	return oomV1(ctx, h.Path)
}

func oomV1(ctx context.Context, dir string) (<-chan struct{}, error) {
	ctl, err := os.Open(filepath.Join(dir, "memory.oom_control"))
	if err != nil {
		return nil, fmt.Errorf("oom events: %w", err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		ctl.Close()
		return nil, fmt.Errorf("oom events: eventfd: %w", err)
	}
	ef := os.NewFile(uintptr(efd), "oom-eventfd")
	if err := writeFile(dir, "cgroup.event_control", fmt.Sprintf("%d %d", efd, ctl.Fd())); err != nil {
		ef.Close()
		ctl.Close()
		return nil, fmt.Errorf("oom events: %w", err)
	}
	ch := make(chan struct{})
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
		}
		ef.Close() // wakes the reader
	}()
	go func() {
		defer close(ch)
		defer close(done)
		defer ctl.Close()
		buf := make([]byte, 8)
		for {
			if _, err := ef.Read(buf); err != nil {
				return
			}
			// The eventfd also fires when the cgroup is removed.
			if !exists(dir, "cgroup.event_control") {
				return
			}
			for n := binary.NativeEndian.Uint64(buf); n > 0; n-- {
				select {
				case ch <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return ch, nil
}

// oomKills reads the oom_kill counter of memory.events.
func oomKills(dir string) (uint64, error) {
	kv, err := readKV(dir, "memory.events")
	if err != nil {
		return 0, err
	}
	return kv["oom_kill"], nil
}

func oomV2(ctx context.Context, dir string) (<-chan struct{}, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("oom events: inotify: %w", err)
	}
	f := os.NewFile(uintptr(fd), "oom-inotify")
	memWD, err := unix.InotifyAddWatch(fd, filepath.Join(dir, "memory.events"), unix.IN_MODIFY)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("oom events: watch %s/memory.events: %w", dir, err)
	}
	last, err := oomKills(dir)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("oom events: %w", err)
	}
	ch := make(chan struct{})
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
		}
		f.Close()
	}()
	go func() {
		defer close(ch)
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			if err != nil {
				return
			}
			gone := false
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				if int(ev.Wd) == memWD && ev.Mask&unix.IN_IGNORED != 0 {
					gone = true // the cgroup was removed
				}
				off += unix.SizeofInotifyEvent + int(ev.Len)
			}
			cur, err := oomKills(dir)
			if err != nil {
				return
			}
			for ; cur > last; last++ {
				select {
				case ch <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
			if gone {
				return
			}
		}
	}()
	return ch, nil
}

// oomControl reports memory.oom_control's oom_kill counter on v1 (used by
// tests and by callers wanting a count rather than events).
func oomControl(dir string) (map[string]uint64, error) {
	s, err := readFile(dir, "memory.oom_control")
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	for line := range strings.SplitSeq(s, "\n") {
		k, v, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		n, err := parseUint(v, dir)
		if err == nil {
			out[k] = n
		}
	}
	return out, nil
}
