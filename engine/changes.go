package engine

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

// runtimeMountTargets are files the runtime creates in a container's
// writable layer only to bind-mount hakod's copies over them. docker keeps
// its equivalents in an "init" layer below the container's, so its diff
// never shows them; neither does ours.
var runtimeMountTargets = map[string]bool{
	"/etc/hostname": true, "/etc/hosts": true, "/etc/resolv.conf": true,
}

// Changes is GET /containers/{id}/changes (docker diff): what the
// container changed against its image, read from its overlay upper dir
// without mounting anything. A whiteout (0/0 character device) is a
// deletion; an entry that exists in a lower layer is a modification, any
// other an addition. A directory counts as modified when it was deleted
// and made again (opaque), when its mode or owner changed, when its time
// changed after the runtime's mount targets were made, or when something
// was added to or deleted from it; like docker's, the list is in the order
// of a sorted walk.
func (e *Engine) Changes(ctx context.Context, ref string) ([]container.FilesystemChange, error) {
	c, err := e.Get(ref)
	if err != nil {
		return nil, err
	}
	mounts, err := e.images.Snapshots().Mounts(ctx, c.ID)
	if err != nil {
		return nil, fmt.Errorf("the filesystem of container %s: %w", c.ID, err)
	}
	upper, err := e.images.Snapshots().UpperDir(ctx, c.ID)
	if err != nil {
		return nil, fmt.Errorf("the filesystem of container %s: %w", c.ID, err)
	}
	var lowers []string
	if len(mounts) > 0 {
		lowers = mounts[0].LowerDirs()
	}
	return diffUpper(ctx, upper, lowers)
}

// diffUpper lists the changes an overlay upper dir holds over lowers
// (nearest first).
func diffUpper(ctx context.Context, upper string, lowers []string) ([]container.FilesystemChange, error) {
	out := []container.FilesystemChange{}
	recorded := map[string]bool{} // directories already in out
	inLower := func(p string) (os.FileInfo, bool) {
		for _, l := range lowers {
			if fi, err := os.Lstat(filepath.Join(l, p)); err == nil {
				return fi, true
			}
		}
		return nil, false
	}
	record := func(p string, kind container.ChangeType) {
		if kind != container.ChangeModify {
			// An addition or deletion changes its directory.
			if parent := filepath.Dir(p); parent != "/" && !recorded[parent] {
				out = append(out, container.FilesystemChange{Path: parent, Kind: container.ChangeModify})
				recorded[parent] = true
			}
		}
		out = append(out, container.FilesystemChange{Path: p, Kind: kind})
	}
	var walk func(rel string) error
	walk = func(rel string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		ents, err := os.ReadDir(filepath.Join(upper, rel))
		if err != nil {
			return fmt.Errorf("read %s: %w", filepath.Join(upper, rel), err)
		}
		sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
		for _, en := range ents {
			p := filepath.Join("/", rel, en.Name())
			if runtimeMountTargets[p] {
				if _, ok := inLower(p); !ok {
					continue
				}
			}
			fi, err := en.Info()
			if err != nil {
				continue // removed meanwhile
			}
			if isWhiteout(fi) {
				record(p, container.ChangeDelete)
				continue
			}
			lfi, exists := inLower(p)
			switch {
			case !exists:
				record(p, container.ChangeAdd)
			case fi.IsDir() && lfi.IsDir():
				if dirChanged(filepath.Join(upper, p), fi, lfi, targetsTime(upper, p)) {
					record(p, container.ChangeModify)
					recorded[p] = true
				}
			default:
				record(p, container.ChangeModify)
			}
			if fi.IsDir() {
				if !exists {
					recorded[p] = true
				}
				if err := walk(filepath.Join(rel, en.Name())); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(""); err != nil {
		return nil, err
	}
	return out, nil
}

// isWhiteout reports an overlay whiteout: a 0/0 character device.
func isWhiteout(fi fs.FileInfo) bool {
	if fi.Mode()&fs.ModeCharDevice == 0 {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Rdev == 0
}

// targetsTime is the time of the newest of the runtime's mount targets in
// directory dir of the upper dir (0 if none): a directory whose time is not
// newer changed only because of them.
func targetsTime(upper, dir string) int64 {
	var t int64
	for p := range runtimeMountTargets {
		if filepath.Dir(p) != dir {
			continue
		}
		if fi, err := os.Lstat(filepath.Join(upper, p)); err == nil {
			t = max(t, fi.ModTime().UnixNano())
		}
	}
	return t
}

// dirChanged compares a directory of the upper dir with the one it
// shadows. targetsTime is the newest mount target the runtime made in it.
func dirChanged(path string, up, low fs.FileInfo, targetsTime int64) bool {
	b := make([]byte, 1)
	if n, err := unix.Lgetxattr(path, "trusted.overlay.opaque", b); err == nil && n == 1 && b[0] == 'y' {
		return true
	}
	us, ok1 := up.Sys().(*syscall.Stat_t)
	ls, ok2 := low.Sys().(*syscall.Stat_t)
	if !ok1 || !ok2 {
		return true
	}
	if up.Mode() != low.Mode() || us.Uid != ls.Uid || us.Gid != ls.Gid {
		return true
	}
	// A second of slack: the runtime made its targets at the start, and a
	// change of the user's in that second that is not itself an addition or
	// deletion (which mark the directory anyway) is a bare touch.
	mt := up.ModTime().UnixNano()
	return mt != low.ModTime().UnixNano() && mt > targetsTime+int64(time.Second)
}
