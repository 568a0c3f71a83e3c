package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/internal/mountns"
	"github.com/hako-project/hako/snapshot"
)

// The init layer, as docker's "-init" layer: a committed snapshot on top of
// an image's layers, which the writable snapshots of its containers build
// on, holding the files hakod's runtime bind-mounts the container's
// /etc/hostname, /etc/hosts and /etc/resolv.conf on (engine: etcFiles),
// where the image has none. Without it each container's start made them in
// its own writable layer: a copy-up of /etc and three files (~0.9 ms of the
// runtime's init on these machines, whose ext4 makes inodes slowly), which
// `docker commit` then put in the new image and `docker diff` had to hide.
// It is made the first time a container of the image is, kept while the
// image is (GC), and is not part of the image: pushes, saves and commits
// know nothing of it.

// initSuffix names an image's init layer after its chain ID.
const initSuffix = "-init"

// initFiles are the files the init layer holds, where the image has
// nothing at that path (a symlink there is left as it is, as docker
// leaves it: the runtime's mount follows it).
var initFiles = []string{"etc/hostname", "etc/hosts", "etc/resolv.conf"}

// initSymlinks are the symlinks the init layer holds where the image has
// nothing at that path: /etc/mtab, which docker's init layer makes too and
// programs that read the mount table from it (not /proc) expect.
var initSymlinks = map[string]string{"etc/mtab": "/proc/mounts"}

// initLayerName is the name of the init layer on top of chain.
func initLayerName(chain string) string { return chain + initSuffix }

// containerParent is the snapshot a container of img builds on: the
// image's init layer, made now if it is not there, or, when it cannot be
// made (or the image has no layers), the image's top layer, on which a
// container still runs (its start makes the mount points in its own
// layer, as before). Called under gcMu (shared).
func (s *Store) containerParent(ctx context.Context, img *Image) string {
	chain := img.ChainID.String()
	if chain == "" {
		return ""
	}
	name := initLayerName(chain)
	if _, err := s.snaps.Stat(ctx, name); err == nil {
		return name
	}
	s.initMu.Lock()
	defer s.initMu.Unlock()
	_, err := s.snaps.Stat(ctx, name)
	if errors.Is(err, errdefs.ErrNotFound) {
		err = s.makeInitLayer(ctx, chain, name)
	}
	if err != nil {
		s.log.Warn("make the image's init layer", "image", img.ID, "err", err)
		return chain
	}
	return name
}

// makeInitLayer prepares a snapshot on chain, makes the missing files in
// it through an overlay mounted in a mount namespace of its own (so that
// the overlay's copy-up gives /etc the image's owner and mode, and no
// mount outlives the call), and commits it as name.
func (s *Store) makeInitLayer(ctx context.Context, chain, name string) (err error) {
	key := name + "-prepare"
	// LabelExtract: a crash's leftover is removed by the next Open.
	mounts, err := s.snaps.Prepare(ctx, key, chain, map[string]string{LabelExtract: name})
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = s.snaps.Remove(context.WithoutCancel(ctx), key)
		}
	}()
	dir, err := os.MkdirTemp("", "hako-init-")
	if err != nil {
		return err
	}
	defer os.Remove(dir)
	err = mountns.Run(func() error {
		if err := snapshot.MountAll(mounts, dir); err != nil {
			return err
		}
		// Unmounted before the commit, rather than when the thread's
		// namespace goes: the layer is a lower dir of containers next.
		defer func() { _ = snapshot.UnmountAll(dir) }()
		for _, f := range initFiles {
			if err := makeInitFile(dir, f); err != nil {
				return err
			}
		}
		for rel, target := range initSymlinks {
			if err := makeInitSymlink(dir, rel, target); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("init layer of %s: %w", chain, err)
	}
	return s.snaps.Commit(ctx, name, key)
}

// initPath is where rel goes in root: its parent directory resolved inside
// root (whatever symlinks the image holds) and made (0755) if missing, the
// last component not followed. "" when something is there already.
func initPath(root, rel string) (string, error) {
	parent, err := securejoin.SecureJoin(root, filepath.Dir(rel))
	if err != nil {
		return "", err
	}
	p := filepath.Join(parent, filepath.Base(rel))
	if _, err := os.Lstat(p); err == nil {
		return "", nil
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("make %s: %w", filepath.Dir(rel), err)
	}
	return p, nil
}

// makeInitSymlink makes rel in root a symlink to target unless something
// is there already; its parent resolves inside root, as makeInitFile's.
func makeInitSymlink(root, rel, target string) error {
	p, err := initPath(root, rel)
	if err != nil || p == "" {
		return err
	}
	if err := os.Symlink(target, p); err != nil {
		return fmt.Errorf("make %s: %w", rel, err)
	}
	return nil
}

// makeInitFile makes the empty file rel (0644) in root unless something is
// there already, even a symlink, with its missing parent directories
// (0755). The parent resolves inside root, whatever symlinks the image
// holds; the file itself is never followed.
func makeInitFile(root, rel string) error {
	p, err := initPath(root, rel)
	if err != nil || p == "" {
		return err
	}
	fd, err := unix.Open(p, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return fmt.Errorf("make %s: %w", rel, err)
	}
	return unix.Close(fd)
}
