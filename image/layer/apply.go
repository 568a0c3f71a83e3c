// Package layer reads and writes image layer tar streams: it applies a layer
// into an overlay upper directory (converting docker/OCI whiteouts to
// overlayfs's form), produces a layer from an upper directory (the reverse),
// and detects and applies layer compression.
//
// Apply is the trust boundary between a registry and the host: every path
// is resolved by the kernel with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS)
// relative to the layer root, so no entry can land outside it, whatever
// symlinks earlier entries created. Entries are refused, with an error naming
// them, rather than silently rewritten.
package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hako-project/hako/errdefs"
	"golang.org/x/sys/unix"
)

const (
	// WhiteoutPrefix marks a deleted path in a layer tar (AUFS/OCI form).
	WhiteoutPrefix = ".wh."
	// WhiteoutMetaPrefix marks AUFS-internal entries that carry no file.
	WhiteoutMetaPrefix = WhiteoutPrefix + WhiteoutPrefix
	// WhiteoutOpaqueDir marks a directory whose lower contents are hidden.
	WhiteoutOpaqueDir = WhiteoutMetaPrefix + ".opq"
	// overlayOpaqueXattr is overlayfs's marker for an opaque directory.
	overlayOpaqueXattr = "trusted.overlay.opaque"
	// overlayXattrPrefix names overlayfs's private xattrs, which a layer must
	// not be able to set (redirects and metacopy would change what the
	// overlay shows).
	overlayXattrPrefix = "trusted.overlay."
	paxXattrPrefix     = "SCHILY.xattr."
)

// ApplyOptions adjusts what Apply accepts.
type ApplyOptions struct {
	// NoDevices refuses character and block device entries (for callers
	// that cannot or will not create device nodes).
	NoDevices bool
}

// Stats describes an applied layer.
type Stats struct {
	Entries int
	// Bytes is the sum of regular file sizes written.
	Bytes int64
}

// EntryError reports an entry Apply refused or failed to create.
type EntryError struct {
	Entry  string
	Reason string
	Err    error
}

func (e *EntryError) Error() string {
	s := fmt.Sprintf("layer entry %q: %s", e.Entry, e.Reason)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *EntryError) Unwrap() error { return e.Err }

// refuse builds an EntryError for input we will not apply; it wraps
// ErrInvalid so callers classify it as bad input.
func refuse(entry, reason string) error {
	return &EntryError{Entry: entry, Reason: reason, Err: errdefs.ErrInvalid}
}

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// Apply extracts the uncompressed layer tar r into dir, which must be an
// overlay upper directory (or any empty directory). Whiteout entries become
// overlay whiteouts (0/0 character devices) and opaque markers become the
// trusted.overlay.opaque xattr; owners, modes, xattrs, hardlinks, device
// nodes and times are kept. It reads r up to the tar end-of-archive marker.
func Apply(ctx context.Context, dir string, r io.Reader, opts ApplyOptions) (Stats, error) {
	rootFd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Stats{}, fmt.Errorf("open layer root %s: %w", dir, err)
	}
	a := &applier{root: rootFd, rootPath: dir, opts: opts, cacheFd: -1}
	defer a.close()
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return a.stats, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return a.stats, fmt.Errorf("%w: read layer tar after %d entries: %v", errdefs.ErrInvalid, a.stats.Entries, err)
		}
		if err := a.apply(hdr, tr); err != nil {
			return a.stats, err
		}
		a.stats.Entries++
	}
	if err := a.finishDirs(); err != nil {
		return a.stats, err
	}
	return a.stats, nil
}

type dirTime struct {
	rel          string
	atime, mtime time.Time
}

type applier struct {
	root     int
	rootPath string
	opts     ApplyOptions
	stats    Stats
	dirs     []dirTime
	// cache the last parent directory: tar entries come grouped by dir.
	cacheRel string
	cacheFd  int
}

func (a *applier) close() {
	if a.cacheFd >= 0 {
		unix.Close(a.cacheFd)
	}
	unix.Close(a.root)
}

// cleanName validates a tar path and returns its components. Absolute paths
// and any ".." component are refused: a legitimate layer never needs them.
func cleanName(entry, name string) ([]string, error) {
	if strings.HasPrefix(name, "/") {
		return nil, refuse(entry, "absolute path")
	}
	var parts []string
	for _, p := range strings.Split(name, "/") {
		switch p {
		case "", ".":
			continue
		case "..":
			return nil, refuse(entry, "path contains \"..\"")
		}
		parts = append(parts, p)
	}
	return parts, nil
}

// openDir opens the directory rel (components) beneath the root, refusing
// symlinks anywhere on the way and creating missing directories (0755, as
// docker does for parents a tar does not list).
func (a *applier) openDir(entry string, parts []string) (int, error) {
	rel := strings.Join(parts, "/")
	if rel == "" {
		return a.root, nil
	}
	if a.cacheFd >= 0 && a.cacheRel == rel {
		return a.cacheFd, nil
	}
	fd, err := a.resolve(rel)
	if errors.Is(err, unix.ENOENT) {
		parent, perr := a.openDir(entry, parts[:len(parts)-1])
		if perr != nil {
			return -1, perr
		}
		if err := unix.Mkdirat(parent, parts[len(parts)-1], 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return -1, &EntryError{Entry: entry, Reason: "create parent " + rel, Err: err}
		}
		fd, err = a.resolve(rel)
	}
	switch {
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.EXDEV):
		return -1, refuse(entry, "parent "+rel+" is a symlink")
	case errors.Is(err, unix.ENOTDIR):
		if a.isSymlink(rel) {
			return -1, refuse(entry, "parent "+rel+" is a symlink")
		}
		return -1, refuse(entry, "parent "+rel+" is not a directory")
	case err != nil:
		return -1, &EntryError{Entry: entry, Reason: "open parent " + rel, Err: err}
	}
	if a.cacheFd >= 0 {
		unix.Close(a.cacheFd)
	}
	a.cacheRel, a.cacheFd = rel, fd
	return fd, nil
}

func (a *applier) resolve(rel string) (int, error) {
	for {
		fd, err := unix.Openat2(a.root, rel, &unix.OpenHow{
			Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC | unix.O_NOFOLLOW,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
		})
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		return fd, err
	}
}

// isSymlink reports whether rel (or a component of it) is a symlink, to
// word an error; the refusal itself never depends on it.
func (a *applier) isSymlink(rel string) bool {
	fd, err := unix.Openat2(a.root, rel, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return errors.Is(err, unix.ELOOP)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false
	}
	return st.Mode&unix.S_IFMT == unix.S_IFLNK
}

// invalidate drops the parent cache when an entry replaces a directory.
func (a *applier) invalidate() {
	if a.cacheFd >= 0 {
		unix.Close(a.cacheFd)
	}
	a.cacheFd, a.cacheRel = -1, ""
}

// removeExisting deletes what a later entry of the same layer replaces.
func (a *applier) removeExisting(entry string, dirFd int, base string, keepDir bool) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dirFd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return &EntryError{Entry: entry, Reason: "stat existing", Err: err}
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if keepDir {
			return nil
		}
		// dirFd (the cached parent) stays valid: only the child goes.
		if err := os.RemoveAll(fmt.Sprintf("/proc/self/fd/%d/%s", dirFd, base)); err != nil {
			return &EntryError{Entry: entry, Reason: "replace directory", Err: err}
		}
		return nil
	}
	if err := unix.Unlinkat(dirFd, base, 0); err != nil {
		return &EntryError{Entry: entry, Reason: "replace existing", Err: err}
	}
	return nil
}

func (a *applier) apply(hdr *tar.Header, r io.Reader) error {
	entry := hdr.Name
	parts, err := cleanName(entry, hdr.Name)
	if err != nil {
		return err
	}
	if len(parts) == 0 {
		// "./": the layer root itself; only its metadata can be applied.
		if hdr.Typeflag != tar.TypeDir {
			return refuse(entry, "root entry is not a directory")
		}
		return a.setMeta(entry, a.root, "", hdr, true)
	}
	base := parts[len(parts)-1]
	dirFd, err := a.openDir(entry, parts[:len(parts)-1])
	if err != nil {
		return err
	}

	if strings.HasPrefix(base, WhiteoutPrefix) {
		return a.whiteout(entry, dirFd, base)
	}

	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := a.removeExisting(entry, dirFd, base, true); err != nil {
			return err
		}
		if err := unix.Mkdirat(dirFd, base, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return &EntryError{Entry: entry, Reason: "mkdir", Err: err}
		}
		fd, err := unix.Openat(dirFd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return &EntryError{Entry: entry, Reason: "open directory", Err: err}
		}
		defer unix.Close(fd)
		if err := a.setMeta(entry, fd, "", hdr, false); err != nil {
			return err
		}
		a.dirs = append(a.dirs, dirTime{rel: strings.Join(parts, "/"), atime: atime(hdr), mtime: hdr.ModTime})
		return nil

	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse: //nolint:staticcheck // TypeRegA still appears in old layers
		if err := a.removeExisting(entry, dirFd, base, false); err != nil {
			return err
		}
		fd, err := unix.Openat(dirFd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return &EntryError{Entry: entry, Reason: "create file", Err: err}
		}
		f := os.NewFile(uintptr(fd), base)
		bufp := copyBufPool.Get().(*[]byte)
		n, err := io.CopyBuffer(onlyWriter{f}, r, *bufp)
		copyBufPool.Put(bufp)
		a.stats.Bytes += n
		if err != nil {
			f.Close()
			return &EntryError{Entry: entry, Reason: "write file", Err: err}
		}
		err = a.setMeta(entry, fd, "", hdr, true)
		if cerr := f.Close(); err == nil && cerr != nil {
			err = &EntryError{Entry: entry, Reason: "close file", Err: cerr}
		}
		return err

	case tar.TypeSymlink:
		if err := a.removeExisting(entry, dirFd, base, false); err != nil {
			return err
		}
		// The target is not checked: it is resolved inside the container's
		// root at run time, and Apply never follows it.
		if err := unix.Symlinkat(hdr.Linkname, dirFd, base); err != nil {
			return &EntryError{Entry: entry, Reason: "symlink", Err: err}
		}
		return a.setMeta(entry, dirFd, base, hdr, true)

	case tar.TypeLink:
		tparts, err := cleanName(entry, hdr.Linkname)
		if err != nil {
			return refuse(entry, "hardlink target "+strconv.Quote(hdr.Linkname)+" escapes the layer")
		}
		if len(tparts) == 0 {
			return refuse(entry, "hardlink to the layer root")
		}
		if err := a.removeExisting(entry, dirFd, base, false); err != nil {
			return err
		}
		// Resolve the target's parent without the cache (the cached fd is
		// dirFd and must stay valid).
		tdir, err := a.resolveParent(entry, tparts[:len(tparts)-1])
		if err != nil {
			return err
		}
		if tdir != a.root {
			defer unix.Close(tdir)
		}
		// flags 0: never follow a symlink target; linking the symlink itself
		// is harmless.
		if err := unix.Linkat(tdir, tparts[len(tparts)-1], dirFd, base, 0); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return refuse(entry, "hardlink target "+strconv.Quote(hdr.Linkname)+" is not in this layer")
			}
			return &EntryError{Entry: entry, Reason: "hardlink to " + hdr.Linkname, Err: err}
		}
		return nil

	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		if a.opts.NoDevices && hdr.Typeflag != tar.TypeFifo {
			return refuse(entry, "device nodes are not allowed")
		}
		if err := a.removeExisting(entry, dirFd, base, false); err != nil {
			return err
		}
		mode := uint32(hdr.Mode & 0o7777)
		switch hdr.Typeflag {
		case tar.TypeChar:
			mode |= unix.S_IFCHR
		case tar.TypeBlock:
			mode |= unix.S_IFBLK
		default:
			mode |= unix.S_IFIFO
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknodat(dirFd, base, mode, int(dev)); err != nil {
			return &EntryError{Entry: entry, Reason: "mknod", Err: err}
		}
		return a.setMeta(entry, dirFd, base, hdr, true)

	case tar.TypeXGlobalHeader:
		return nil
	}
	return refuse(entry, fmt.Sprintf("unsupported tar entry type %q", hdr.Typeflag))
}

// resolveParent opens a directory for a hardlink target; unlike openDir it
// never creates anything and never touches the cache.
func (a *applier) resolveParent(entry string, parts []string) (int, error) {
	rel := strings.Join(parts, "/")
	if rel == "" {
		return a.root, nil
	}
	fd, err := a.resolve(rel)
	switch {
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.EXDEV):
		return -1, refuse(entry, "hardlink target parent "+rel+" is a symlink")
	case errors.Is(err, unix.ENOTDIR) && a.isSymlink(rel):
		return -1, refuse(entry, "hardlink target parent "+rel+" is a symlink")
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR):
		return -1, refuse(entry, "hardlink target parent "+rel+" is not in this layer")
	case err != nil:
		return -1, &EntryError{Entry: entry, Reason: "open hardlink target parent " + rel, Err: err}
	}
	return fd, nil
}

// whiteout converts ".wh.NAME" to an overlay whiteout and ".wh..wh..opq" to
// the opaque xattr on the containing directory.
func (a *applier) whiteout(entry string, dirFd int, base string) error {
	if base == WhiteoutOpaqueDir {
		if err := unix.Fsetxattr(dirFd, overlayOpaqueXattr, []byte("y"), 0); err != nil {
			return &EntryError{Entry: entry, Reason: "mark directory opaque", Err: err}
		}
		return nil
	}
	if strings.HasPrefix(base, WhiteoutMetaPrefix) {
		// AUFS bookkeeping (.wh..wh.plnk, .wh..wh.aufs): nothing to create.
		return nil
	}
	name := strings.TrimPrefix(base, WhiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return refuse(entry, "bad whiteout name")
	}
	if err := a.removeExisting(entry, dirFd, name, false); err != nil {
		return err
	}
	if err := unix.Mknodat(dirFd, name, unix.S_IFCHR, 0); err != nil {
		return &EntryError{Entry: entry, Reason: "create whiteout", Err: err}
	}
	return nil
}

// setMeta applies owner, mode, xattrs and (for non-directories) times. When
// base is "" fd is the object itself; otherwise fd is its directory and the
// object is never followed (symlinks, device nodes).
func (a *applier) setMeta(entry string, fd int, base string, hdr *tar.Header, times bool) error {
	isLink := hdr.Typeflag == tar.TypeSymlink
	if base == "" {
		if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
			return &EntryError{Entry: entry, Reason: "chown", Err: err}
		}
		// chown clears set-id bits, so mode comes after it.
		if err := unix.Fchmod(fd, uint32(hdr.Mode&0o7777)); err != nil {
			return &EntryError{Entry: entry, Reason: "chmod", Err: err}
		}
	} else {
		if err := unix.Fchownat(fd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &EntryError{Entry: entry, Reason: "chown", Err: err}
		}
		if !isLink {
			if err := unix.Fchmodat(fd, base, uint32(hdr.Mode&0o7777), 0); err != nil {
				return &EntryError{Entry: entry, Reason: "chmod", Err: err}
			}
		}
	}
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, paxXattrPrefix)
		if !ok {
			continue
		}
		if strings.HasPrefix(name, overlayXattrPrefix) {
			// Never let a layer forge overlay metadata (opaque, redirect,
			// metacopy): only whiteout entries may produce it.
			continue
		}
		var err error
		if base == "" {
			err = unix.Fsetxattr(fd, name, []byte(v), 0)
		} else {
			err = unix.Lsetxattr(fmt.Sprintf("/proc/self/fd/%d/%s", fd, base), name, []byte(v), 0)
		}
		if err != nil {
			if isLink && errors.Is(err, unix.EPERM) {
				continue // user.* xattrs are not allowed on symlinks
			}
			return &EntryError{Entry: entry, Reason: "set xattr " + name, Err: err}
		}
	}
	if !times {
		return nil
	}
	ts := []unix.Timespec{unix.NsecToTimespec(atime(hdr).UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
	var err error
	if base == "" {
		err = unix.UtimesNanoAt(fd, "", ts, unix.AT_EMPTY_PATH)
	} else {
		err = unix.UtimesNanoAt(fd, base, ts, unix.AT_SYMLINK_NOFOLLOW)
	}
	if err != nil {
		return &EntryError{Entry: entry, Reason: "set times", Err: err}
	}
	return nil
}

// finishDirs sets directory times last, since creating their children
// changed them. Deepest first is not needed: utimensat on a dir does not
// touch its parent.
func (a *applier) finishDirs() error {
	a.invalidate()
	for _, d := range a.dirs {
		ts := []unix.Timespec{unix.NsecToTimespec(d.atime.UnixNano()), unix.NsecToTimespec(d.mtime.UnixNano())}
		parent, base := path.Split(d.rel)
		dfd, err := a.resolveParent(d.rel, splitRel(parent))
		if err != nil {
			// A later entry of the layer replaced the directory; nothing to do.
			continue
		}
		err = unix.UtimesNanoAt(dfd, base, ts, unix.AT_SYMLINK_NOFOLLOW)
		if dfd != a.root {
			unix.Close(dfd)
		}
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return &EntryError{Entry: d.rel, Reason: "set directory times", Err: err}
		}
	}
	return nil
}

func splitRel(p string) []string {
	var out []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func atime(hdr *tar.Header) time.Time {
	if hdr.AccessTime.IsZero() {
		return hdr.ModTime
	}
	return hdr.AccessTime
}

// onlyWriter hides *os.File's ReadFrom so io.CopyBuffer uses our buffer
// (ReadFrom would fall back to a small one for a non-file source).
type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(p []byte) (int, error) { return o.w.Write(p) }
