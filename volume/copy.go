package volume

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Populate copies what the image has at dest (a path in the container, read
// from the container's root file system rootfs) into the volume, when the
// volume is empty: docker's copy-up, which gives a new volume mounted over
// an image's /etc or /var/lib/db the image's files. A volume with options
// is mounted for the copy and unmounted after it (so, as with docker, what
// is copied into a tmpfs volume is gone when its container starts, while a
// bind-style volume keeps it); where the image has nothing at dest, it is
// not mounted at all. copied reports whether anything was copied.
func (s *Store) Populate(name, rootfs, dest string) (copied bool, err error) {
	src, err := openSource(rootfs, dest)
	if err != nil || src < 0 {
		return false, err
	}
	defer unix.Close(src)
	ref := "copy-up-" + NewName()[:12]
	data, err := s.Mount(name, ref)
	if err != nil {
		return false, err
	}
	defer func() {
		if _, uerr := s.Unmount(name, ref); uerr != nil && err == nil {
			err = uerr
		}
	}()
	copied, err = copyInto(src, data)
	if err != nil {
		return false, fmt.Errorf("copy %s of the image into volume %s: %w", dest, name, err)
	}
	return copied, nil
}

// CopyUp copies the directory dest of the file system rootfs into the
// empty directory dst: contents with their owners, modes, extended
// attributes, times, symlinks (as links), hard links (as links), device
// nodes and fifos; then dst takes dest's owner and mode. dest is resolved
// inside rootfs as the container would resolve it (an absolute symlink in
// the image points into the image); every entry below is reached without
// following symlinks, and files are created with O_EXCL|O_NOFOLLOW under
// directory descriptors, so a symlink in the image or one planted in dst
// cannot make the copy read or write outside the two trees. A missing
// dest, or one that is not a directory, or a dst that is not empty, copies
// nothing.
func CopyUp(rootfs, dest, dst string) (bool, error) {
	src, err := openSource(rootfs, dest)
	if err != nil || src < 0 {
		return false, err
	}
	defer unix.Close(src)
	return copyInto(src, dst)
}

// openSource opens the directory dest resolved inside rootfs; -1 when
// there is none (nothing there, not a directory, or the root itself).
func openSource(rootfs, dest string) (int, error) {
	rel := strings.TrimPrefix(path.Clean("/"+dest), "/")
	if rel == "" {
		return -1, nil
	}
	rootfd, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: rootfs, Err: err}
	}
	defer unix.Close(rootfd)
	src, err := unix.Openat2(rootfd, rel, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return -1, nil
	}
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: filepath.Join(rootfs, rel), Err: err}
	}
	return src, nil
}

// copyInto copies the open directory src into dst if dst is empty.
func copyInto(src int, dst string) (bool, error) {
	dstfd, err := unix.Open(dst, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, &os.PathError{Op: "open", Path: dst, Err: err}
	}
	defer unix.Close(dstfd)
	existing, err := dirNames(dstfd)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", dst, err)
	}
	if len(existing) > 0 {
		return false, nil // docker copies into empty volumes only
	}
	c := &copier{dstRoot: dstfd, links: map[fileID]string{}}
	if err := c.tree(src, dstfd, ""); err != nil {
		return false, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(src, &st); err != nil {
		return false, err
	}
	if err := unix.Fchown(dstfd, int(st.Uid), int(st.Gid)); err != nil {
		return false, fmt.Errorf("chown %s: %w", dst, err)
	}
	if err := unix.Fchmod(dstfd, st.Mode&0o7777); err != nil {
		return false, fmt.Errorf("chmod %s: %w", dst, err)
	}
	return true, nil
}

type fileID struct{ dev, ino uint64 }

// copier holds what a copy needs across directories: the destination's
// root (for hard links) and the files with several links copied so far.
type copier struct {
	dstRoot int
	links   map[fileID]string // first copy of an inode, relative to dstRoot
}

// tree copies the entries of directory src into directory dst; rel is
// dst's path below the destination root.
func (c *copier) tree(src, dst int, rel string) error {
	names, err := dirNames(src)
	if err != nil {
		return fmt.Errorf("read %s: %w", orDot(rel), err)
	}
	for _, name := range names {
		if err := c.entry(src, dst, name, path.Join(rel, name)); err != nil {
			return err
		}
	}
	return nil
}

func (c *copier) entry(src, dst int, name, rel string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(src, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("stat %s: %w", rel, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := unix.Mkdirat(dst, name, 0o700); err != nil {
			return fmt.Errorf("mkdir %s: %w", rel, err)
		}
		sfd, err := unix.Openat(src, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", rel, err)
		}
		defer unix.Close(sfd)
		dfd, err := unix.Openat(dst, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", rel, err)
		}
		defer unix.Close(dfd)
		if err := c.tree(sfd, dfd, rel); err != nil {
			return err
		}
		// Metadata last: a read-only directory still took its children,
		// and its times are not touched again.
		return copyMeta(sfd, dfd, &st, rel)
	case unix.S_IFREG:
		id := fileID{uint64(st.Dev), st.Ino}
		if st.Nlink > 1 {
			if first, ok := c.links[id]; ok {
				return c.link(first, dst, name, rel)
			}
		}
		if err := copyFile(src, dst, name, &st, rel); err != nil {
			return err
		}
		if st.Nlink > 1 {
			c.links[id] = rel
		}
		return nil
	case unix.S_IFLNK:
		target, err := readlinkat(src, name)
		if err != nil {
			return fmt.Errorf("readlink %s: %w", rel, err)
		}
		if err := unix.Symlinkat(target, dst, name); err != nil {
			return fmt.Errorf("symlink %s: %w", rel, err)
		}
		if err := unix.Fchownat(dst, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown %s: %w", rel, err)
		}
		ts := []unix.Timespec{st.Atim, st.Mtim}
		if err := unix.UtimesNanoAt(dst, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("set times of %s: %w", rel, err)
		}
		return nil
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
		if err := unix.Mknodat(dst, name, st.Mode&(unix.S_IFMT|0o777), int(st.Rdev)); err != nil {
			return fmt.Errorf("mknod %s: %w", rel, err)
		}
		fd, err := unix.Openat(dst, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", rel, err)
		}
		defer unix.Close(fd)
		return copyMeta(-1, fd, &st, rel)
	}
	return nil // sockets belong to a running program, not to an image
}

// link makes name in dst another link to the file first copied at first.
func (c *copier) link(first string, dst int, name, rel string) error {
	dir, base := path.Split(first)
	pfd, err := unix.Openat2(c.dstRoot, orDot(strings.TrimSuffix(dir, "/")), &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS,
	})
	if err != nil {
		return fmt.Errorf("open %s: %w", orDot(dir), err)
	}
	defer unix.Close(pfd)
	if err := unix.Linkat(pfd, base, dst, name, 0); err != nil {
		return fmt.Errorf("link %s to %s: %w", rel, first, err)
	}
	return nil
}

// copyFile copies a regular file's data and metadata.
func copyFile(src, dst int, name string, st *unix.Stat_t, rel string) error {
	sfd, err := unix.Openat(src, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", rel, err)
	}
	sf := os.NewFile(uintptr(sfd), rel)
	defer sf.Close()
	dfd, err := unix.Openat(dst, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", rel, err)
	}
	df := os.NewFile(uintptr(dfd), rel)
	defer df.Close()
	if _, err := io.Copy(df, sf); err != nil { // copy_file_range where it can
		return fmt.Errorf("copy %s: %w", rel, err)
	}
	return copyMeta(sfd, dfd, st, rel)
}

// copyMeta gives dst (an open descriptor; O_PATH for device nodes) src's
// owner, extended attributes (src < 0: none), mode and times, in the order
// that keeps them: chown clears set-id bits and file capabilities, so it
// comes first.
func copyMeta(src, dst int, st *unix.Stat_t, rel string) error {
	if err := unix.Fchownat(dst, "", int(st.Uid), int(st.Gid), unix.AT_EMPTY_PATH); err != nil {
		return fmt.Errorf("chown %s: %w", rel, err)
	}
	if src >= 0 {
		if err := copyXattrs(src, dst); err != nil {
			return fmt.Errorf("copy extended attributes of %s: %w", rel, err)
		}
	}
	// Through /proc: it works for O_PATH descriptors too, and reaches the
	// very inode we created whatever happened to its name since.
	proc := "/proc/self/fd/" + strconv.Itoa(dst)
	if err := unix.Chmod(proc, st.Mode&0o7777); err != nil {
		return fmt.Errorf("chmod %s: %w", rel, err)
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, proc, ts, 0); err != nil {
		return fmt.Errorf("set times of %s: %w", rel, err)
	}
	return nil
}

// copyXattrs copies every extended attribute the destination accepts; one
// its file system does not support, or that needs a privilege we lack
// (trusted.*), is skipped, as docker's archive copy skips them.
func copyXattrs(src, dst int) error {
	size, err := unix.Flistxattr(src, nil)
	if err != nil || size == 0 {
		if errors.Is(err, unix.ENOTSUP) {
			return nil
		}
		return err
	}
	buf := make([]byte, size)
	n, err := unix.Flistxattr(src, buf)
	if err != nil {
		return err
	}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		vsz, err := unix.Fgetxattr(src, name, nil)
		if err != nil {
			continue // removed meanwhile, or not readable by us
		}
		val := make([]byte, vsz)
		vn, err := unix.Fgetxattr(src, name, val)
		if err != nil {
			continue
		}
		if err := unix.Fsetxattr(dst, name, val[:vn], 0); err != nil &&
			!errors.Is(err, unix.ENOTSUP) && !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// dirNames lists a directory open as fd (the descriptor stays open).
func dirNames(fd int) ([]string, error) {
	dup, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), ".")
	defer f.Close()
	return f.Readdirnames(-1)
}

func readlinkat(dir int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dir, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

func orDot(p string) string {
	if p == "" {
		return "."
	}
	return p
}
