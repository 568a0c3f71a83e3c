package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// WriteDiff writes the overlay upper directory dir as a layer tar to w: the
// inverse of Apply. Overlay whiteouts (0/0 character devices) become ".wh."
// entries and opaque directories get a ".wh..wh..opq" entry, so any docker
// or OCI tool reads the result. Entries are sorted and hardlinks are kept,
// so the same directory always gives the same bytes.
func WriteDiff(ctx context.Context, dir string, w io.Writer) error {
	tw := tar.NewWriter(w)
	links := map[[2]uint64]string{}
	err := walkSorted(dir, "", func(rel string, fi fs.FileInfo) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return writeEntry(tw, dir, rel, fi, links)
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("finish layer tar of %s: %w", dir, err)
	}
	return nil
}

// walkSorted visits every entry below dir in lexical order of its path, the
// order docker writes layers in, without following symlinks.
func walkSorted(root, rel string, fn func(rel string, fi fs.FileInfo) error) error {
	entries, err := os.ReadDir(filepath.Join(root, rel))
	if err != nil {
		return fmt.Errorf("read %s: %w", filepath.Join(root, rel), err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		r := filepath.Join(rel, e.Name())
		fi, err := e.Info()
		if err != nil {
			return fmt.Errorf("stat %s: %w", filepath.Join(root, r), err)
		}
		if err := fn(r, fi); err != nil {
			return err
		}
		if fi.IsDir() {
			if err := walkSorted(root, r, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

func writeEntry(tw *tar.Writer, root, rel string, fi fs.FileInfo, links map[[2]uint64]string) error {
	full := filepath.Join(root, rel)
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("stat %s: no unix stat", full)
	}
	if fi.Mode()&fs.ModeCharDevice != 0 && st.Rdev == 0 {
		// An overlay whiteout.
		dirName, base := filepath.Split(rel)
		return tw.WriteHeader(&tar.Header{
			Typeflag: tar.TypeReg,
			Name:     filepath.ToSlash(filepath.Join(dirName, WhiteoutPrefix+base)),
			Mode:     0o600,
			ModTime:  fi.ModTime(),
			Format:   tar.FormatPAX,
		})
	}
	var linkTarget string
	if fi.Mode()&fs.ModeSymlink != 0 {
		t, err := os.Readlink(full)
		if err != nil {
			return fmt.Errorf("readlink %s: %w", full, err)
		}
		linkTarget = t
	}
	hdr, err := tar.FileInfoHeader(fi, linkTarget)
	if err != nil {
		return fmt.Errorf("tar header for %s: %w", full, err)
	}
	hdr.Name = filepath.ToSlash(rel)
	if fi.IsDir() {
		hdr.Name += "/"
	}
	hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
	hdr.Uname, hdr.Gname = "", ""
	// Access and change times vary between identical trees; docker leaves
	// them out too.
	hdr.AccessTime, hdr.ChangeTime = zeroTime, zeroTime
	hdr.Format = tar.FormatPAX
	if fi.Mode()&(fs.ModeDevice|fs.ModeCharDevice) != 0 {
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	}
	xattrs, err := listXattrs(full)
	if err != nil {
		return err
	}
	opaque := false
	for k, v := range xattrs {
		if k == overlayOpaqueXattr {
			opaque = fi.IsDir() && v == "y"
			continue
		}
		if strings.HasPrefix(k, overlayXattrPrefix) {
			continue
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords[paxXattrPrefix+k] = v
	}
	if fi.Mode().IsRegular() && st.Nlink > 1 {
		key := [2]uint64{st.Dev, st.Ino}
		if first, ok := links[key]; ok {
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
		} else {
			links[key] = hdr.Name
		}
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write tar header %s: %w", hdr.Name, err)
	}
	if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
		f, err := os.Open(full)
		if err != nil {
			return fmt.Errorf("open %s: %w", full, err)
		}
		_, err = io.Copy(tw, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("copy %s into layer: %w", full, err)
		}
	}
	if opaque {
		if err := tw.WriteHeader(&tar.Header{
			Typeflag: tar.TypeReg,
			Name:     hdr.Name + WhiteoutOpaqueDir,
			Mode:     0o600,
			ModTime:  fi.ModTime(),
			Format:   tar.FormatPAX,
		}); err != nil {
			return fmt.Errorf("write opaque marker for %s: %w", hdr.Name, err)
		}
	}
	return nil
}

// listXattrs reads all xattrs of path without following a symlink. A
// filesystem without xattr support yields none.
func listXattrs(path string) (map[string]string, error) {
	size, err := unix.Llistxattr(path, nil)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) {
			return nil, nil
		}
		return nil, fmt.Errorf("list xattrs of %s: %w", path, err)
	}
	if size == 0 {
		return nil, nil
	}
	buf := make([]byte, size)
	size, err = unix.Llistxattr(path, buf)
	if err != nil {
		return nil, fmt.Errorf("list xattrs of %s: %w", path, err)
	}
	out := map[string]string{}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:size]), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		vsz, err := unix.Lgetxattr(path, name, nil)
		if err != nil {
			if errors.Is(err, unix.ENODATA) {
				continue
			}
			return nil, fmt.Errorf("get xattr %s of %s: %w", name, path, err)
		}
		val := make([]byte, vsz)
		vsz, err = unix.Lgetxattr(path, name, val)
		if err != nil {
			return nil, fmt.Errorf("get xattr %s of %s: %w", name, path, err)
		}
		out[name] = string(val[:vsz])
	}
	return out, nil
}

var zeroTime = time.Time{}
