package engine

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/snapshot"
)

// withRootfs gives fn a handle (O_PATH) on the container's root filesystem
// as hakod sees it: the overlay mount a running container already has, or,
// for a stopped or created container, its snapshot mounted for the time of
// fn, so `docker cp`, export and archive work on both, as docker's do.
//
// Everything fn does must resolve paths from root with the container's
// root as the limit (securejoin, *at syscalls with O_NOFOLLOW): the
// container may have put symlinks anywhere, and a running one may swap
// them while we walk.
//
// The container's fsMu is held throughout, so a start does not mount the
// same overlay upper dir a second time while a copy uses it (two overlay
// mounts of one upper dir are undefined behaviour).
func (e *Engine) withRootfs(ctx context.Context, c *Container, fn func(root *os.File, hostPath string) error) error {
	c.fsMu.Lock()
	defer c.fsMu.Unlock()
	switch c.Snapshot().State.Status {
	case container.StateRemoving, container.StateDead, "removed":
		return errdefs.Conflictf("container %s is marked for removal", c.ID)
	}
	rootfs := filepath.Join(e.bundleDir(c.ID), "rootfs")
	mounted, err := isMountPoint(rootfs)
	if err != nil {
		return err
	}
	if !mounted {
		if err := os.MkdirAll(rootfs, 0o755); err != nil {
			return fmt.Errorf("create rootfs mount point: %w", err)
		}
		if err := e.mountRootfs(ctx, c, rootfs); err != nil {
			return fmt.Errorf("mount the filesystem of container %s: %w", c.ID, err)
		}
		defer func() {
			if err := snapshot.UnmountAll(rootfs); err != nil {
				e.log.Warn("unmount the filesystem of a stopped container", "id", c.ID, "err", err)
			}
		}()
	}
	root, err := os.OpenFile(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open the root of container %s: %w", c.ID, err)
	}
	defer root.Close()
	return fn(root, rootfs)
}

// isMountPoint reports whether path is a mount point in hakod's mount
// namespace (a bind-mounted base layer has the same st_dev as its parent,
// so comparing devices is not enough). It reads the calling thread's
// table: /proc/self is the main thread's, and a thread parked in another
// namespace would answer for a mount table that is not ours.
func isMountPoint(path string) (bool, error) {
	f, err := os.Open("/proc/thread-self/mountinfo")
	if err != nil {
		return false, fmt.Errorf("read mount table: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && unescapeMountinfo(fields[4]) == path {
			return true, nil
		}
	}
	return false, sc.Err()
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
