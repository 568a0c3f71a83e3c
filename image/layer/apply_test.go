package layer_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/image/layer"
	"github.com/hako-project/hako/test/imagetest"
	"golang.org/x/sys/unix"
)

// sandbox returns dir/root to unpack into; dir itself is where an escape
// would land, so tests check it stays empty apart from root.
func sandbox(t *testing.T) (outer, root string) {
	outer = t.TempDir()
	root = filepath.Join(outer, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	return outer, root
}

func assertNoEscape(t *testing.T, outer string) {
	t.Helper()
	entries, _ := os.ReadDir(outer)
	for _, e := range entries {
		if e.Name() != "root" {
			t.Errorf("entry escaped the layer root: %s", filepath.Join(outer, e.Name()))
		}
	}
	for _, p := range []string{"/evil", "/etc/evil", "/tmp/evil"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("entry escaped to %s", p)
		}
	}
}

func TestApplyRefusesEscapes(t *testing.T) {
	imagetest.RequireRoot(t)
	cases := []struct {
		name    string
		entries []imagetest.Entry
		bad     string // the entry the error must name
		reason  string
	}{
		{"dotdot", []imagetest.Entry{{Name: "../evil", Body: "x"}}, "../evil", `".."`},
		{"nested dotdot", []imagetest.Entry{{Name: "a/../../evil", Body: "x"}}, "a/../../evil", `".."`},
		{"absolute", []imagetest.Entry{{Name: "/tmp/evil", Body: "x"}}, "/tmp/evil", "absolute"},
		{"symlink parent to /", []imagetest.Entry{
			{Name: "l", Type: tar.TypeSymlink, Linkname: "/"},
			{Name: "l/tmp/evil", Body: "x"},
		}, "l/tmp/evil", "symlink"},
		{"symlink parent to ..", []imagetest.Entry{
			{Name: "l", Type: tar.TypeSymlink, Linkname: "../"},
			{Name: "l/evil", Body: "x"},
		}, "l/evil", "symlink"},
		{"symlink parent inside", []imagetest.Entry{
			{Name: "d/", Type: tar.TypeDir},
			{Name: "l", Type: tar.TypeSymlink, Linkname: "d"},
			{Name: "l/f", Body: "x"},
		}, "l/f", "symlink"},
		{"symlink as dir entry parent", []imagetest.Entry{
			{Name: "l", Type: tar.TypeSymlink, Linkname: "/tmp"},
			{Name: "l/sub/", Type: tar.TypeDir},
		}, "l/sub/", "symlink"},
		{"hardlink dotdot", []imagetest.Entry{{Name: "h", Type: tar.TypeLink, Linkname: "../../../etc/passwd"}}, "h", "escapes"},
		{"hardlink absolute", []imagetest.Entry{{Name: "h", Type: tar.TypeLink, Linkname: "/etc/passwd"}}, "h", "escapes"},
		{"hardlink through symlink", []imagetest.Entry{
			{Name: "l", Type: tar.TypeSymlink, Linkname: "/etc"},
			{Name: "h", Type: tar.TypeLink, Linkname: "l/passwd"},
		}, "h", "symlink"},
		{"hardlink to missing", []imagetest.Entry{{Name: "h", Type: tar.TypeLink, Linkname: "nothere"}}, "h", "not in this layer"},
		{"whiteout through symlink", []imagetest.Entry{
			{Name: "l", Type: tar.TypeSymlink, Linkname: "/tmp"},
			{Name: "l/.wh.evil", Body: ""},
		}, "l/.wh.evil", "symlink"},
		{"file under file", []imagetest.Entry{{Name: "f", Body: "x"}, {Name: "f/g", Body: "y"}}, "f/g", "not a directory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			outer, root := sandbox(t)
			_, err := layer.Apply(context.Background(), root, bytes.NewReader(imagetest.Tar(t, tc.entries)), layer.ApplyOptions{})
			if err == nil {
				t.Fatal("applied")
			}
			var ee *layer.EntryError
			if !errors.As(err, &ee) || ee.Entry != tc.bad {
				t.Fatalf("error %v does not name entry %q", err, tc.bad)
			}
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Errorf("error %v is not ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("error %q does not say %q", err, tc.reason)
			}
			assertNoEscape(t, outer)
		})
	}
}

func TestApplyDevicesAndNoDevices(t *testing.T) {
	imagetest.RequireRoot(t)
	entries := []imagetest.Entry{
		{Name: "dev/", Type: tar.TypeDir},
		{Name: "dev/null", Type: tar.TypeChar, Major: 1, Minor: 3, Mode: 0o666},
		{Name: "dev/sda", Type: tar.TypeBlock, Major: 8, Minor: 0, Mode: 0o660, Gid: 6},
		{Name: "dev/fifo", Type: tar.TypeFifo, Mode: 0o600},
	}
	_, root := sandbox(t)
	if _, err := layer.Apply(context.Background(), root, bytes.NewReader(imagetest.Tar(t, entries)), layer.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	check := func(name string, typ uint32, major, minor uint32, perm uint32) {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(root, name), &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&unix.S_IFMT != typ || unix.Major(st.Rdev) != major || unix.Minor(st.Rdev) != minor || st.Mode&0o7777 != perm {
			t.Errorf("%s: mode %o rdev %d:%d", name, st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
	}
	check("dev/null", unix.S_IFCHR, 1, 3, 0o666)
	check("dev/sda", unix.S_IFBLK, 8, 0, 0o660)
	check("dev/fifo", unix.S_IFIFO, 0, 0, 0o600)

	outer, root2 := sandbox(t)
	_, err := layer.Apply(context.Background(), root2, bytes.NewReader(imagetest.Tar(t, entries)), layer.ApplyOptions{NoDevices: true})
	var ee *layer.EntryError
	if !errors.As(err, &ee) || ee.Entry != "dev/null" || !strings.Contains(err.Error(), "device nodes are not allowed") {
		t.Fatalf("NoDevices: %v", err)
	}
	assertNoEscape(t, outer)
	// A device node whose path escapes is refused like any entry.
	outer, root3 := sandbox(t)
	_, err = layer.Apply(context.Background(), root3, bytes.NewReader(imagetest.Tar(t, []imagetest.Entry{
		{Name: "l", Type: tar.TypeSymlink, Linkname: "/dev"},
		{Name: "l/evil", Type: tar.TypeBlock, Major: 8, Minor: 0},
	})), layer.ApplyOptions{})
	if !errors.As(err, &ee) || ee.Entry != "l/evil" {
		t.Fatalf("device through symlink: %v", err)
	}
	assertNoEscape(t, outer)
	if _, err := os.Lstat("/dev/evil"); err == nil {
		os.Remove("/dev/evil")
		t.Fatal("device node escaped to /dev/evil")
	}
}

func TestApplyKeepsMetadataAndConvertsWhiteouts(t *testing.T) {
	imagetest.RequireRoot(t)
	mt := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	entries := []imagetest.Entry{
		{Name: "./", Type: tar.TypeDir, Mode: 0o755},
		{Name: "bin/", Type: tar.TypeDir, Mode: 0o711, ModTime: mt},
		{Name: "bin/su", Body: "suid", Mode: 0o4755, Uid: 0, Gid: 0},
		{Name: "home/", Type: tar.TypeDir},
		{Name: "home/u/", Type: tar.TypeDir, Uid: 1000, Gid: 1001, Mode: 0o700},
		{Name: "home/u/f", Body: "data", Uid: 1000, Gid: 1001, Mode: 0o640, ModTime: mt,
			Xattrs: map[string]string{"user.note": "hi", "trusted.overlay.redirect": "/evil"}},
		{Name: "home/u/hl", Type: tar.TypeLink, Linkname: "home/u/f"},
		{Name: "home/u/sl", Type: tar.TypeSymlink, Linkname: "/abs/target", Uid: 1000, Gid: 1001},
		{Name: "gone/.wh.file", Body: ""},
		{Name: "opq/", Type: tar.TypeDir},
		{Name: "opq/.wh..wh..opq", Body: ""},
		{Name: "opq/new", Body: "n"},
		{Name: ".wh..wh.plnk", Type: tar.TypeDir},
		{Name: "dup", Body: "first"},
		{Name: "dup", Body: "second"},
	}
	_, root := sandbox(t)
	st, err := layer.Apply(context.Background(), root, bytes.NewReader(imagetest.Tar(t, entries)), layer.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Entries != len(entries) {
		t.Errorf("entries %d, want %d", st.Entries, len(entries))
	}
	stat := func(p string) *syscall.Stat_t {
		var s syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(root, p), &s); err != nil {
			t.Fatal(err)
		}
		return &s
	}
	if s := stat("bin/su"); s.Mode&0o7777 != 0o4755 {
		t.Errorf("setuid lost: %o", s.Mode)
	}
	if s := stat("home/u/f"); s.Uid != 1000 || s.Gid != 1001 || s.Mode&0o777 != 0o640 || s.Nlink != 2 {
		t.Errorf("home/u/f: uid %d gid %d mode %o nlink %d", s.Uid, s.Gid, s.Mode, s.Nlink)
	}
	if stat("home/u/f").Ino != stat("home/u/hl").Ino {
		t.Error("hardlink not kept")
	}
	if s := stat("home/u/sl"); s.Uid != 1000 {
		t.Errorf("symlink owner %d", s.Uid)
	}
	if l, _ := os.Readlink(filepath.Join(root, "home/u/sl")); l != "/abs/target" {
		t.Errorf("symlink target %q", l)
	}
	if fi, _ := os.Stat(filepath.Join(root, "home/u/f")); !fi.ModTime().Equal(mt) {
		t.Errorf("mtime %v", fi.ModTime())
	}
	if fi, _ := os.Stat(filepath.Join(root, "bin")); !fi.ModTime().Equal(mt) || fi.Mode().Perm() != 0o711 {
		t.Errorf("dir mtime %v mode %v", fi.ModTime(), fi.Mode())
	}
	buf := make([]byte, 64)
	if n, err := unix.Lgetxattr(filepath.Join(root, "home/u/f"), "user.note", buf); err != nil || string(buf[:n]) != "hi" {
		t.Errorf("user xattr: %q %v", buf[:n], err)
	}
	if _, err := unix.Lgetxattr(filepath.Join(root, "home/u/f"), "trusted.overlay.redirect", buf); err == nil {
		t.Error("a layer set trusted.overlay.redirect")
	}
	if s := stat("gone/file"); s.Mode&unix.S_IFMT != unix.S_IFCHR || s.Rdev != 0 {
		t.Errorf("whiteout: mode %o rdev %d", s.Mode, s.Rdev)
	}
	if n, err := unix.Lgetxattr(filepath.Join(root, "opq"), "trusted.overlay.opaque", buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("opaque xattr: %q %v", buf[:n], err)
	}
	if _, err := os.Lstat(filepath.Join(root, "opq/.wh..wh..opq")); err == nil {
		t.Error("opaque marker file created")
	}
	if b, _ := os.ReadFile(filepath.Join(root, "dup")); string(b) != "second" {
		t.Errorf("dup = %q", b)
	}

	// WriteDiff gives back docker's whiteout form.
	var out bytes.Buffer
	if err := layer.WriteDiff(context.Background(), root, &out); err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(&out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n := h.Name
		if h.Typeflag == tar.TypeLink {
			n += "->" + h.Linkname
		}
		if _, ok := h.PAXRecords["SCHILY.xattr.trusted.overlay.opaque"]; ok {
			t.Errorf("diff leaked the overlay xattr on %s", h.Name)
		}
		names = append(names, n)
	}
	want := []string{"bin/", "bin/su", "dup", "gone/", "gone/.wh.file", "home/", "home/u/", "home/u/f", "home/u/hl->home/u/f", "home/u/sl", "opq/", "opq/.wh..wh..opq", "opq/new"}
	sort.Strings(names)
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("diff entries:\n got %v\nwant %v", names, want)
	}
	// The same directory gives the same bytes.
	var again bytes.Buffer
	layer.WriteDiff(context.Background(), root, &again)
	if !bytes.Equal(out.Bytes(), again.Bytes()) && out.Len() > 0 {
		// out was consumed by the reader; compare with a fresh run.
		var third bytes.Buffer
		layer.WriteDiff(context.Background(), root, &third)
		if !bytes.Equal(again.Bytes(), third.Bytes()) {
			t.Error("WriteDiff is not deterministic")
		}
	}
}

func TestDecompressDetects(t *testing.T) {
	raw := []byte("plain tar bytes")
	for _, tc := range []struct {
		in   []byte
		want layer.Compression
	}{
		{raw, layer.Uncompressed},
		{imagetest.Gzip(t, raw), layer.Gzip},
		{zstdBytes(t, raw), layer.Zstd},
		{nil, layer.Uncompressed},
	} {
		rc, c, err := layer.Decompress(bytes.NewReader(tc.in))
		if err != nil {
			t.Fatal(err)
		}
		if c != tc.want {
			t.Errorf("detected %v, want %v", c, tc.want)
		}
		got, err := io.ReadAll(rc)
		if err != nil {
			t.Fatalf("%v: %v", c, err)
		}
		if tc.in != nil && !bytes.Equal(got, raw) {
			t.Errorf("%v: got %q", c, got)
		}
	}
	// Corrupt gzip fails when read, not silently.
	bad := imagetest.Gzip(t, bytes.Repeat([]byte("x"), 10000))
	bad[len(bad)-5] ^= 0xff
	rc, _, err := layer.Decompress(bytes.NewReader(bad))
	if err == nil {
		_, err = io.ReadAll(rc)
	}
	if err == nil {
		t.Error("corrupt gzip read without error")
	}
}

func zstdBytes(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	w, err := layer.Compress(&buf, layer.Zstd)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b)
	w.Close()
	return buf.Bytes()
}
