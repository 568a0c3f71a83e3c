// Package tarfs reads and writes docker cp's tar streams on a directory
// tree through file descriptors, so a tree that someone else controls (a
// container's filesystem seen from hakod, or a container's tar unpacked by
// the CLI) cannot lead a read or a write out of it.
//
// Writer walks with openat(O_NOFOLLOW) and fstatat(AT_SYMLINK_NOFOLLOW)
// from a directory handle and never follows a symlink. Extract resolves
// every name in the tar below its destination with securejoin (openat2
// RESOLVE_IN_ROOT): "..", absolute names and symlinks, the tree's own or
// ones the tar made, all stay inside, as if the destination were the root
// (docker extracts in a chroot of it); objects are then made and changed
// with *at calls on the resolved directory, or through their own fd.
package tarfs

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/errdefs"
)

// Writer writes directory trees from file descriptors as a tar, entries
// sorted, never following a symlink, headers as docker's archive package
// writes them (PAX, times to the second, no user or group names).
type Writer struct {
	ctx   context.Context
	tw    *tar.Writer
	links map[[2]uint64]string // dev/inode → first name, for hardlinks
}

// NewWriter writes a tar to w; ctx cancels a long walk.
func NewWriter(ctx context.Context, w io.Writer) *Writer {
	return &Writer{ctx: ctx, tw: tar.NewWriter(w), links: map[[2]uint64]string{}}
}

// Close finishes the tar.
func (a *Writer) Close() error { return a.tw.Close() }

// Add writes name below dirfd ("" for dirfd itself) as tarName: a
// directory with its whole tree (entries "tarName/..."; with tarName ""
// the directory is "/" and its entries have bare names), anything else as
// one entry.
func (a *Writer) Add(dirfd int, name, tarName string) error {
	var st unix.Stat_t
	var err error
	if name == "" {
		err = unix.Fstat(dirfd, &st)
	} else {
		err = unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	}
	if err != nil {
		return fmt.Errorf("stat %s: %w", tarName, CleanErr(err))
	}
	return a.add(dirfd, name, tarName, &st)
}

// AddChildren writes the entries of the directory dir, named below prefix
// (bare names for ""), without an entry for dir itself (docker export).
func (a *Writer) AddChildren(dir *os.File, prefix string) error { return a.children(dir, prefix) }

// ReopenDir opens name below dirfd ("" for dirfd itself) for reading,
// refusing a symlink.
func ReopenDir(dirfd int, name string) (*os.File, error) {
	if name == "" {
		name = "."
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

// addDir writes the directory name (below dirfd) as tarName and its tree.
func (a *Writer) addDir(dirfd int, name, tarName string, st *unix.Stat_t) error {
	if err := a.header(tarName+"/", st, ""); err != nil {
		return err
	}
	dir, err := ReopenDir(dirfd, name)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", tarName, err)
	}
	defer dir.Close()
	return a.children(dir, tarName)
}

// children writes the entries of dir, sorted, named below prefix.
func (a *Writer) children(dir *os.File, prefix string) error {
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("read directory %s: %w", prefix, err)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Fstatat(int(dir.Fd()), n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue // removed while we walk
			}
			return fmt.Errorf("stat %s/%s: %w", prefix, n, err)
		}
		tarName := n
		if prefix != "" {
			tarName = prefix + "/" + n
		}
		if err := a.add(int(dir.Fd()), n, tarName, &st); err != nil {
			return err
		}
	}
	return nil
}

// add writes one entry (and, for a directory, its tree).
func (a *Writer) add(dirfd int, name, tarName string, st *unix.Stat_t) error {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return a.addDir(dirfd, name, tarName, st)
	case unix.S_IFSOCK:
		return nil // docker skips sockets
	case unix.S_IFLNK:
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return fmt.Errorf("read link %s: %w", tarName, err)
		}
		return a.header(tarName, st, string(buf[:n]))
	case unix.S_IFREG:
		key := [2]uint64{st.Dev, st.Ino}
		if st.Nlink > 1 {
			if first, ok := a.links[key]; ok {
				return a.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeLink, Name: tarName, Linkname: first,
					Mode: int64(st.Mode & 0o7777), Uid: int(st.Uid), Gid: int(st.Gid),
					ModTime: time.Unix(st.Mtim.Unix()).Truncate(time.Second), Format: tar.FormatPAX})
			}
			a.links[key] = tarName
		}
		return a.file(dirfd, name, tarName, st)
	}
	return a.header(tarName, st, "")
}

// file writes a regular file: opened without following, checked to be the
// file that was stat()ed, and padded if it shrank meanwhile (the tar header
// already promised its size).
func (a *Writer) file(dirfd int, name, tarName string, st *unix.Stat_t) error {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", tarName, err)
	}
	f := os.NewFile(uintptr(fd), tarName)
	defer f.Close()
	var now unix.Stat_t
	if err := unix.Fstat(fd, &now); err != nil || now.Ino != st.Ino || now.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%s changed while it was read", tarName)
	}
	if err := a.header(tarName, st, ""); err != nil {
		return err
	}
	n, err := io.CopyN(a.tw, f, st.Size)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read %s: %w", tarName, err)
	}
	if n < st.Size {
		if _, err := io.CopyN(a.tw, zeros{}, st.Size-n); err != nil {
			return err
		}
	}
	return nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// header writes a tar header as docker's archive package does: PAX,
// times to the second, no user or group names.
func (a *Writer) header(name string, st *unix.Stat_t, link string) error {
	h := &tar.Header{Name: name, Mode: int64(st.Mode & 0o7777), Uid: int(st.Uid), Gid: int(st.Gid),
		ModTime: time.Unix(st.Mtim.Unix()).Truncate(time.Second), Format: tar.FormatPAX, Linkname: link}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		h.Typeflag = tar.TypeDir
	case unix.S_IFLNK:
		h.Typeflag = tar.TypeSymlink
	case unix.S_IFREG:
		h.Typeflag, h.Size = tar.TypeReg, st.Size
	case unix.S_IFCHR, unix.S_IFBLK:
		h.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			h.Typeflag = tar.TypeBlock
		}
		h.Devmajor, h.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		h.Typeflag = tar.TypeFifo
	}
	if err := a.tw.WriteHeader(h); err != nil {
		return fmt.Errorf("write tar entry %s: %w", name, err)
	}
	return nil
}

// ExtractOptions say how Extract treats what is there and who owns what
// it makes.
type ExtractOptions struct {
	// NoOverwriteDirNonDir refuses to replace a directory with a
	// non-directory and the reverse.
	NoOverwriteDirNonDir bool
	// Owner, when set, owns every entry (uid, gid); otherwise the tar's
	// owners are kept.
	Owner *[2]int
	// NoChown keeps the caller as the owner (docker's CLI unpacking on the
	// user's side).
	NoChown bool
}

// Extract unpacks the tar r below the directory dest.
func Extract(ctx context.Context, dest *os.File, r io.Reader, opts ExtractOptions) error {
	x := &extractor{ctx: ctx, dest: dest, opts: opts}
	return x.run(tar.NewReader(r))
}

// extractor unpacks a tar below dest.
type extractor struct {
	ctx  context.Context
	dest *os.File
	opts ExtractOptions
	dirs []dirTimes
}

type dirTimes struct {
	rel   string
	mtime time.Time
}

func (x *extractor) run(tr *tar.Reader) error {
	for {
		if err := x.ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return errdefs.Invalidf("read the archive: %s", err.Error())
		}
		if err := x.entry(hdr, tr); err != nil {
			return err
		}
	}
	// Directory times last: creating entries in them changed them.
	for i := len(x.dirs) - 1; i >= 0; i-- {
		d := x.dirs[i]
		h, err := x.open(d.rel)
		if err != nil {
			continue
		}
		ts := []unix.Timespec{unix.NsecToTimespec(d.mtime.UnixNano()), unix.NsecToTimespec(d.mtime.UnixNano())}
		_ = unix.UtimesNano(fdPath(int(h.Fd())), ts)
		h.Close()
	}
	return nil
}

// open resolves rel (a directory) inside dest.
func (x *extractor) open(rel string) (*os.File, error) {
	if rel == "" || rel == "." {
		return ReopenDir(int(x.dest.Fd()), "")
	}
	h, err := securejoin.OpenatInRoot(x.dest, rel)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	return ReopenDir(int(h.Fd()), "")
}

func (x *extractor) entry(hdr *tar.Header, r io.Reader) error {
	rel := strings.TrimPrefix(filepath.Clean("/"+hdr.Name), "/")
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader, tar.TypeXHeader:
		return nil
	}
	if rel == "" {
		// The destination itself ("./"): its metadata only.
		if hdr.Typeflag != tar.TypeDir {
			return errdefs.Invalidf("cannot overwrite the extraction directory with %q", hdr.Name)
		}
		x.dirs = append(x.dirs, dirTimes{"", hdr.ModTime})
		d, err := ReopenDir(int(x.dest.Fd()), "")
		if err != nil {
			return err
		}
		defer d.Close()
		return x.meta(int(d.Fd()), hdr)
	}
	parentRel, base := filepath.Split(rel)
	parentRel = strings.TrimSuffix(parentRel, "/")
	parent, err := x.mkdirAll(parentRel)
	if err != nil {
		return fmt.Errorf("parent of %s: %w", hdr.Name, CleanErr(err))
	}
	defer parent.Close()
	pfd := int(parent.Fd())
	var existing unix.Stat_t
	exists := unix.Fstatat(pfd, base, &existing, unix.AT_SYMLINK_NOFOLLOW) == nil
	if exists {
		isDir := existing.Mode&unix.S_IFMT == unix.S_IFDIR
		wantDir := hdr.Typeflag == tar.TypeDir
		if x.opts.NoOverwriteDirNonDir && isDir && !wantDir {
			return errdefs.Invalidf("cannot overwrite directory %q with non-directory %q", "/"+rel, hdr.Name)
		}
		if x.opts.NoOverwriteDirNonDir && !isDir && wantDir {
			return errdefs.Invalidf("cannot overwrite non-directory %q with directory %q", "/"+rel, hdr.Name)
		}
		if !(isDir && wantDir) {
			if err := removeAt(pfd, base, isDir); err != nil {
				return fmt.Errorf("replace %s: %w", hdr.Name, err)
			}
			exists = false
		}
	}
	mode := uint32(hdr.Mode & 0o7777)
	switch hdr.Typeflag {
	case tar.TypeDir:
		if !exists {
			if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
				return fmt.Errorf("create directory %s: %w", hdr.Name, err)
			}
		}
		x.dirs = append(x.dirs, dirTimes{rel, hdr.ModTime})
		d, err := ReopenDir(pfd, base)
		if err != nil {
			return fmt.Errorf("open directory %s: %w", hdr.Name, err)
		}
		defer d.Close()
		return x.meta(int(d.Fd()), hdr)
	case tar.TypeReg:
		fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return fmt.Errorf("create %s: %w", hdr.Name, err)
		}
		f := os.NewFile(uintptr(fd), hdr.Name)
		defer f.Close()
		if _, err := io.Copy(f, r); err != nil {
			return fmt.Errorf("write %s: %w", hdr.Name, err)
		}
		if err := x.meta(fd, hdr); err != nil {
			return err
		}
		return unix.UtimesNano(fdPath(fd), times(hdr))
	case tar.TypeSymlink:
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return fmt.Errorf("create symlink %s: %w", hdr.Name, err)
		}
		if !x.opts.NoChown {
			uid, gid := x.ids(hdr)
			if err := unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return fmt.Errorf("chown %s: %w", hdr.Name, err)
			}
		}
		return unix.UtimesNanoAt(pfd, base, times(hdr), unix.AT_SYMLINK_NOFOLLOW)
	case tar.TypeLink:
		target := strings.TrimPrefix(filepath.Clean("/"+hdr.Linkname), "/")
		tdir, tbase := filepath.Split(target)
		th, err := x.open(strings.TrimSuffix(tdir, "/"))
		if err != nil {
			return fmt.Errorf("hardlink %s: target %s: %w", hdr.Name, hdr.Linkname, CleanErr(err))
		}
		defer th.Close()
		if err := unix.Linkat(int(th.Fd()), tbase, pfd, base, 0); err != nil {
			return fmt.Errorf("hardlink %s to %s: %w", hdr.Name, hdr.Linkname, err)
		}
		return nil
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		kind := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknodat(pfd, base, kind|0o600, int(dev)); err != nil {
			return fmt.Errorf("create %s: %w", hdr.Name, err)
		}
		fd, err := unix.Openat(pfd, base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", hdr.Name, err)
		}
		defer unix.Close(fd)
		if !x.opts.NoChown {
			uid, gid := x.ids(hdr)
			if err := unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH); err != nil {
				return fmt.Errorf("chown %s: %w", hdr.Name, err)
			}
		}
		// chmod has no AT_EMPTY_PATH; the fd's /proc link names exactly the
		// node just made.
		return unix.Chmod(fdPath(fd), mode)
	}
	return nil // other types (sparse, GNU extensions) are skipped, as docker does
}

// mkdirAll resolves (creating what is missing) the directory rel inside
// dest and opens it.
func (x *extractor) mkdirAll(rel string) (*os.File, error) {
	if rel == "" {
		return ReopenDir(int(x.dest.Fd()), "")
	}
	h, err := securejoin.MkdirAllHandle(x.dest, rel, 0o755)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	return ReopenDir(int(h.Fd()), "")
}

// ids is an entry's owner: the tar's, or the container user's (cp -a).
func (x *extractor) ids(hdr *tar.Header) (int, int) {
	if x.opts.Owner != nil {
		return x.opts.Owner[0], x.opts.Owner[1]
	}
	return hdr.Uid, hdr.Gid
}

// meta sets owner and mode on an open file or directory.
func (x *extractor) meta(fd int, hdr *tar.Header) error {
	if !x.opts.NoChown {
		uid, gid := x.ids(hdr)
		if err := unix.Fchown(fd, uid, gid); err != nil {
			return fmt.Errorf("chown %s: %w", hdr.Name, err)
		}
	}
	// After the chown, which clears set-id bits.
	if err := unix.Fchmod(fd, uint32(hdr.Mode&0o7777)); err != nil {
		return fmt.Errorf("chmod %s: %w", hdr.Name, err)
	}
	return nil
}

// CleanErr keeps only the errno of a path error: securejoin's and the
// *at calls' errors name hakod's mount of the container, a host path that
// is none of the client's business.
func CleanErr(err error) error {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}

// fdPath names an open file by its /proc/self/fd link: the kernel follows
// it to exactly the inode the fd holds, wherever that is, so a path-based
// call (chmod, utimensat) on it cannot be redirected by a swapped symlink.
func fdPath(fd int) string { return fmt.Sprintf("/proc/self/fd/%d", fd) }

func times(hdr *tar.Header) []unix.Timespec {
	at := hdr.AccessTime
	if at.IsZero() {
		at = hdr.ModTime
	}
	return []unix.Timespec{unix.NsecToTimespec(at.UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
}

// removeAt removes name below dirfd, a directory with all it holds. The
// recursive removal goes through the directory's /proc/self/fd link, which
// names exactly the directory resolved inside the container, and os.RemoveAll
// itself never follows a symlink.
func removeAt(dirfd int, name string, isDir bool) error {
	if !isDir {
		return unix.Unlinkat(dirfd, name, 0)
	}
	return os.RemoveAll(fdPath(dirfd) + "/" + name)
}

// FileMode converts a stat mode to Go's os.FileMode, as os.Lstat does.
func FileMode(m uint32) os.FileMode {
	fm := os.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFBLK:
		fm |= os.ModeDevice
	case unix.S_IFCHR:
		fm |= os.ModeDevice | os.ModeCharDevice
	case unix.S_IFDIR:
		fm |= os.ModeDir
	case unix.S_IFIFO:
		fm |= os.ModeNamedPipe
	case unix.S_IFLNK:
		fm |= os.ModeSymlink
	case unix.S_IFSOCK:
		fm |= os.ModeSocket
	}
	if m&unix.S_ISGID != 0 {
		fm |= os.ModeSetgid
	}
	if m&unix.S_ISUID != 0 {
		fm |= os.ModeSetuid
	}
	if m&unix.S_ISVTX != 0 {
		fm |= os.ModeSticky
	}
	return fm
}
