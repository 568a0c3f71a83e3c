package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/engine/specgen"
	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/internal/tarfs"
	"github.com/hako-project/hako/trace"
)

// The archive endpoints (docker cp) and export read and write a
// container's files from hakod, which runs on the host; docker cp sees
// the container's volumes and binds too (archiveview.go). Every path a user
// names is resolved with the container's root as the limit, never with
// the host's, by securejoin (openat2 RESOLVE_IN_ROOT: a symlink to "/"
// inside the container leads to the container's root); the trees below
// are read and written by package tarfs through file descriptors, so a
// running container that swaps a directory for a symlink while we walk
// gets an error, not a read or write on the host.

// PathStat is what docker's archive endpoints report about a path
// (X-Docker-Container-Path-Stat).
type PathStat = container.PathStat

// resolved is a path in a container: its parent directory, resolved inside
// the root, and its last element, not followed (docker lstat()s it).
type resolved struct {
	dir  *os.File // O_PATH handle of the parent directory
	base string   // "" when the path is the directory itself
	abs  string   // the absolute path in the container, as the user wrote it
	st   unix.Stat_t
}

func (r *resolved) close() { r.dir.Close() }

// notFound is docker's message for a path that is not there.
func notFound(path, ref string) error {
	return errdefs.NotFoundf("Could not find the file %s in container %s", path, ref)
}

// resolvePath resolves p (absolute or relative to "/" in the container).
func resolvePath(root *os.File, p, ref string) (*resolved, error) {
	abs := preserveTrailingDotOrSeparator(filepath.Join("/", p), p)
	dirPath, base := filepath.Split(abs)
	if base == "." {
		base = ""
	}
	dir, err := securejoin.OpenatInRoot(root, dirPath)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return nil, notFound(p, ref)
		}
		return nil, fmt.Errorf("resolve %s in container %s: %w", p, ref, tarfs.CleanErr(err))
	}
	r := &resolved{dir: dir, base: base, abs: abs}
	if base == "" {
		err = unix.Fstat(int(dir.Fd()), &r.st)
	} else {
		err = unix.Fstatat(int(dir.Fd()), base, &r.st, unix.AT_SYMLINK_NOFOLLOW)
	}
	if err != nil {
		dir.Close()
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return nil, notFound(p, ref)
		}
		return nil, fmt.Errorf("stat %s in container %s: %w", p, ref, err)
	}
	if base == "" && r.st.Mode&unix.S_IFMT != unix.S_IFDIR {
		dir.Close()
		return nil, notFound(p, ref)
	}
	return r, nil
}

// preserveTrailingDotOrSeparator keeps the "/" or "/." the user ended the
// path with, which filepath.Join drops: docker cp treats "dir/" and
// "dir/." differently from "dir".
func preserveTrailingDotOrSeparator(cleaned, original string) string {
	if strings.HasSuffix(original, "/.") && !strings.HasSuffix(cleaned, "/.") {
		if !strings.HasSuffix(cleaned, "/") {
			cleaned += "/"
		}
		return cleaned + "."
	}
	if strings.HasSuffix(original, "/") && !strings.HasSuffix(cleaned, "/") {
		return cleaned + "/"
	}
	return cleaned
}

// stat builds docker's PathStat; a symlink's target is evaluated inside
// the container (for the CLI's --follow-link).
func (r *resolved) stat(hostRoot string) PathStat {
	ps := PathStat{Name: filepath.Base(r.abs), Size: r.st.Size, Mode: tarfs.FileMode(r.st.Mode),
		Mtime: time.Unix(r.st.Mtim.Unix())}
	if r.st.Mode&unix.S_IFMT == unix.S_IFLNK {
		// Only a name is computed here, nothing is opened: SecureJoin's
		// lexical walk is enough and handles dangling links.
		if p, err := securejoin.SecureJoin(hostRoot, r.abs); err == nil {
			if rel, err := filepath.Rel(hostRoot, p); err == nil {
				ps.LinkTarget = filepath.Join("/", rel)
			}
		}
	}
	return ps
}

// StatPath is HEAD /containers/{id}/archive: what path is in the container.
func (e *Engine) StatPath(ctx context.Context, ref, path string) (st PathStat, err error) {
	c, err := e.Get(ref)
	if err != nil {
		return st, err
	}
	err = e.withContainerView(ctx, c, func(root *os.File, host string, _ []viewMount) error {
		r, err := resolvePath(root, path, ref)
		if err != nil {
			return err
		}
		defer r.close()
		st = r.stat(host)
		return nil
	})
	return st, err
}

// ArchivePath is GET /containers/{id}/archive: a tar of path (a directory
// with everything below it, the mounts in it included, or one file), its
// entries named as docker names them (the last element of path, or "." for "dir/."). start gets
// the path's stat before the first byte and returns where the tar goes.
func (e *Engine) ArchivePath(ctx context.Context, ref, path string, start func(PathStat) io.Writer) (err error) {
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	ctx, span := trace.Start(ctx, "engine.archive.get", "id", c.ID, "path", path)
	defer func() { span.End(err) }()
	return e.withContainerView(ctx, c, func(root *os.File, host string, _ []viewMount) error {
		r, err := resolvePath(root, path, ref)
		if err != nil {
			return err
		}
		defer r.close()
		st := r.stat(host)
		tw := tarfs.NewWriter(ctx, start(st))
		name := filepath.Base(r.abs) // "/" for the root, "." for "dir/."
		if name == "/" {
			name = ""
		}
		if err := tw.Add(int(r.dir.Fd()), r.base, name); err != nil {
			return err
		}
		return tw.Close()
	})
}

// Export is GET /containers/{id}/export: the container's whole filesystem
// as a tar (without the mounts docker adds at run time), entries relative
// to its root.
func (e *Engine) Export(ctx context.Context, ref string, start func() io.Writer) (err error) {
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	ctx, span := trace.Start(ctx, "engine.export", "id", c.ID)
	defer func() { span.End(err) }()
	return e.withRootfs(ctx, c, func(root *os.File, _ string) error {
		dir, err := tarfs.ReopenDir(int(root.Fd()), "")
		if err != nil {
			return fmt.Errorf("open the root of container %s: %w", c.ID, err)
		}
		defer dir.Close()
		tw := tarfs.NewWriter(ctx, start())
		if err := tw.AddChildren(dir, ""); err != nil {
			return err
		}
		if err := tw.Close(); err != nil {
			return err
		}
		e.events.emitContainer(c, "export", nil)
		return nil
	})
}

// ExtractOptions are PUT /containers/{id}/archive's.
type ExtractOptions struct {
	// NoOverwriteDirNonDir refuses to replace a directory with a
	// non-directory and the reverse.
	NoOverwriteDirNonDir bool
	// CopyUIDGID (docker cp -a) gives every file the container's user
	// when it has one; otherwise the owners in the tar are kept, as docker
	// does either way.
	CopyUIDGID bool
}

// ExtractToDir is PUT /containers/{id}/archive: unpacks the tar r into the
// directory path of the container. The directory is resolved inside the
// container; the tar's names are resolved inside that directory, as if it
// were the root (docker extracts in a chroot of it), so neither "..", an
// absolute name, a symlink in the container nor one in the tar leads out.
func (e *Engine) ExtractToDir(ctx context.Context, ref, path string, r io.Reader, opts ExtractOptions) (err error) {
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	ctx, span := trace.Start(ctx, "engine.archive.put", "id", c.ID, "path", path)
	defer func() { span.End(err) }()
	snap := c.Snapshot()
	return e.withContainerView(ctx, c, func(root *os.File, host string, mounts []viewMount) error {
		dest, err := securejoin.OpenatInRoot(root, filepath.Join("/", path))
		if err != nil {
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
				return notFound(path, ref)
			}
			return fmt.Errorf("resolve %s in container %s: %w", path, ref, tarfs.CleanErr(err))
		}
		defer dest.Close()
		var st unix.Stat_t
		if err := unix.Fstat(int(dest.Fd()), &st); err != nil {
			return fmt.Errorf("stat %s: %w", path, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return errdefs.Invalidf("extraction point is not a directory")
		}
		if err := checkWritable(host, mounts, filepath.Join("/", path), snap.HostConfig.ReadonlyRootfs); err != nil {
			return err
		}
		xo := tarfs.ExtractOptions{NoOverwriteDirNonDir: opts.NoOverwriteDirNonDir}
		if opts.CopyUIDGID && snap.Config.User != "" {
			u, err := specgen.ResolveUser(host, snap.Config.User)
			if err != nil {
				return errdefs.Invalidf("%s", err.Error())
			}
			xo.Owner = &[2]int{int(u.UID), int(u.GID)}
		}
		return tarfs.Extract(ctx, dest, r, xo)
	})
}
