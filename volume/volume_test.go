package volume

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/errdefs"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "volumes"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestValidateName(t *testing.T) {
	for name, want := range map[string]string{
		"ok":       "",
		"a1_b.c-d": "",
		"x":        "create x: volume name is too short, names should be at least two alphanumeric characters",
		"bad name": `create bad name: "bad name" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`,
		"/abs":     `create /abs: "/abs" includes invalid characters`,
		".hidden":  "includes invalid characters",
		"..":       "includes invalid characters",
		"a/b":      "includes invalid characters",
	} {
		err := ValidateName(name)
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", name, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want) || !errdefs.IsInvalid(err)):
			t.Errorf("%q: got %v, want %q (invalid)", name, err, want)
		}
	}
}

func TestValidateOptions(t *testing.T) {
	for _, c := range []struct {
		opts map[string]string
		want string
	}{
		{nil, ""},
		{map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}, ""},
		{map[string]string{"bogus": "1"}, `create v: invalid option: "bogus"`},
		{map[string]string{"type": "tmpfs"}, `create v: missing required option: "device"`},
		{map[string]string{"device": "x"}, `create v: missing required option: "type"`},
		{map[string]string{"o": "bind"}, `missing required option`},
		{map[string]string{"size": "1g"}, "quota size requested but no quota support"},
	} {
		err := ValidateOptions("v", c.opts)
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%v: got %v, want %q", c.opts, err, c.want)
		}
	}
}

func TestCreateListRemove(t *testing.T) {
	s := newStore(t)
	v, created, err := s.Create(CreateOptions{Name: "data", Labels: map[string]string{"a": "b"}, Ref: "c1"})
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	if v.Mountpoint != filepath.Join(s.Root(), "data", "_data") || v.Driver != "local" || v.Anonymous() {
		t.Errorf("volume %+v", v)
	}
	if st, err := os.Stat(v.Mountpoint); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("_data: %v %v", st, err)
	}
	var meta Volume
	b, err := os.ReadFile(filepath.Join(s.Root(), "data", metaFile))
	if err != nil || json.Unmarshal(b, &meta) != nil || meta.Name != "data" || meta.Labels["a"] != "b" {
		t.Errorf("metadata %s: %v", b, err)
	}
	// A second create of the name is the same volume, with one more user;
	// its options are not looked at (docker's way).
	if _, created, err := s.Create(CreateOptions{Name: "data", Options: map[string]string{"bogus": "x"}, Ref: "c2"}); err != nil || created {
		t.Errorf("second create: %v %v", created, err)
	}
	anon, _, err := s.Create(CreateOptions{})
	if err != nil || len(anon.Name) != 64 || !anon.Anonymous() {
		t.Fatalf("anonymous: %+v %v", anon, err)
	}
	if got := names(s.List()); !reflect.DeepEqual(got, []string{anon.Name, "data"}) && !reflect.DeepEqual(got, []string{"data", anon.Name}) {
		t.Errorf("list %v", got)
	}
	err = s.Remove("data", true)
	if !errdefs.IsConflict(err) || err.Error() != "remove data: volume is in use - [c1, c2]" {
		t.Errorf("remove in use: %v", err)
	}
	s.Release("data", "c1")
	s.Release("data", "c2")
	if err := s.Remove("data", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Root(), "data")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory left: %v", err)
	}
	if err := s.Remove("data", false); !errdefs.IsNotFound(err) || err.Error() != "get data: no such volume" {
		t.Errorf("remove again: %v", err)
	}
	if err := s.Remove("data", true); err != nil {
		t.Errorf("remove -f of a missing volume: %v", err)
	}
	if _, _, err := s.Create(CreateOptions{Name: "zz", Driver: "nfs"}); !errdefs.IsNotFound(err) ||
		err.Error() != `create zz: error looking up volume plugin nfs: plugin "nfs" not found` {
		t.Errorf("other driver: %v", err)
	}
}

func names(vs []Volume) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Name)
	}
	return out
}

// TestOpenCleansAndReloads: what a crash left half-made is removed, the
// rest comes back with its metadata; users are the caller's to restore.
func TestOpenCleansAndReloads(t *testing.T) {
	root := filepath.Join(t.TempDir(), "volumes")
	s, err := Open(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Create(CreateOptions{Name: "keep", Options: map[string]string{"type": "tmpfs", "device": "tmpfs"}}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{stagingPrefix + "123/_data", removalPrefix + "456/_data", "legacy/_data"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s2, err := Open(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(s2.List()); !reflect.DeepEqual(got, []string{"keep", "legacy"}) {
		t.Errorf("reloaded %v", got)
	}
	if v, _ := s2.Get("keep"); v.Options["type"] != "tmpfs" || !v.NeedsMount() {
		t.Errorf("options lost: %+v", v)
	}
	ents, _ := os.ReadDir(root)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("left: %s", e.Name())
		}
	}
}

func TestPrune(t *testing.T) {
	s := newStore(t)
	for _, o := range []CreateOptions{
		{Name: "used", Ref: "c1"},
		{Name: "free", Labels: map[string]string{"keep": "no"}},
		{Name: "kept", Labels: map[string]string{"keep": "yes"}},
		{Name: "device", Options: map[string]string{"type": "tmpfs", "device": "tmpfs"}},
	} {
		if _, _, err := s.Create(o); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(s.Root(), "free", "_data", "f"), []byte("12345"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := s.Prune(func(v Volume) bool { return v.Labels["keep"] != "yes" })
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.Deleted, []string{"free"}) || res.SpaceReclaimed != 5 {
		t.Errorf("prune %+v", res)
	}
	if got := names(s.List()); !reflect.DeepEqual(got, []string{"device", "kept", "used"}) {
		t.Errorf("left %v", got)
	}
}

func TestDirSizeCountsHardLinksOnce(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a"), make([]byte, 100), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "d", "c"), make([]byte, 10), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, err := DirSize(dir); err != nil || n != 110 {
		t.Errorf("size %d %v", n, err)
	}
}

func TestParseMountOptions(t *testing.T) {
	flags, prop, data := parseMountOptions("bind,ro,nosuid,size=10m,rshared,uid=1")
	if flags != unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID || prop != unix.MS_SHARED|unix.MS_REC || data != "size=10m,uid=1" {
		t.Errorf("flags %#x prop %#x data %q", flags, prop, data)
	}
	if flags, _, _ := parseMountOptions("ro,rw"); flags != 0 {
		t.Errorf("rw after ro: %#x", flags)
	}
	if got := unescapeMountinfo(`/a\040b\134c`); got != `/a b\c` {
		t.Errorf("unescape %q", got)
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root (chown, mknod, mount)")
	}
}

// TestCopyUp: the image's directory arrives whole (owners, modes with
// set-id bits, times, xattrs, symlinks, hard links, fifos), the volume
// root takes the source's owner and mode, an absolute symlink on the way
// resolves inside the image, and a volume with content is left alone.
func TestCopyUp(t *testing.T) {
	needRoot(t)
	rootfs := t.TempDir()
	src := filepath.Join(rootfs, "real")
	must(t, os.MkdirAll(filepath.Join(src, "sub", "deep"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "file"), []byte("hello"), 0o644))
	must(t, os.Chown(filepath.Join(src, "file"), 1000, 1001))
	must(t, os.WriteFile(filepath.Join(src, "sub", "suid"), []byte("x"), 0o755))
	must(t, unix.Chmod(filepath.Join(src, "sub", "suid"), 0o4755))
	must(t, os.Chmod(filepath.Join(src, "sub"), 0o700))
	must(t, os.Link(filepath.Join(src, "file"), filepath.Join(src, "sub", "hard")))
	must(t, os.Symlink("/etc/shadow", filepath.Join(src, "abslink")))
	must(t, unix.Mkfifo(filepath.Join(src, "fifo"), 0o640))
	xattrOK := unix.Setxattr(filepath.Join(src, "file"), "user.hako", []byte("v"), 0) == nil
	must(t, os.Chown(src, 123, 456))
	must(t, os.Chmod(src, 0o750))
	// The path the container names is a symlink to /real: it must resolve
	// in the image, not on the host.
	must(t, os.Symlink("/real", filepath.Join(rootfs, "data")))

	dst := t.TempDir()
	copied, err := CopyUp(rootfs, "/data", dst)
	if err != nil || !copied {
		t.Fatalf("copy-up: %v %v", copied, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "file")); string(b) != "hello" {
		t.Errorf("file content %q", b)
	}
	stat := func(p string) *unix.Stat_t {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dst, p), &st); err != nil {
			t.Fatal(err)
		}
		return &st
	}
	if st := stat("file"); st.Uid != 1000 || st.Gid != 1001 || st.Mode&0o7777 != 0o644 || st.Nlink != 2 {
		t.Errorf("file: uid %d gid %d mode %o links %d", st.Uid, st.Gid, st.Mode&0o7777, st.Nlink)
	}
	if stat("sub/hard").Ino != stat("file").Ino {
		t.Errorf("hard link copied as a separate file")
	}
	if st := stat("sub/suid"); st.Mode&0o7777 != 0o4755 {
		t.Errorf("suid mode %o", st.Mode&0o7777)
	}
	if st := stat("sub"); st.Mode&0o7777 != 0o700 {
		t.Errorf("dir mode %o", st.Mode&0o7777)
	}
	if l, err := os.Readlink(filepath.Join(dst, "abslink")); err != nil || l != "/etc/shadow" {
		t.Errorf("symlink %q %v", l, err)
	}
	if st := stat("fifo"); st.Mode&unix.S_IFMT != unix.S_IFIFO || st.Mode&0o777 != 0o640 {
		t.Errorf("fifo mode %o", st.Mode)
	}
	if st := stat("."); st.Uid != 123 || st.Gid != 456 || st.Mode&0o7777 != 0o750 {
		t.Errorf("volume root: uid %d gid %d mode %o", st.Uid, st.Gid, st.Mode&0o7777)
	}
	srcSt, dstSt := stat("file"), &unix.Stat_t{}
	must(t, unix.Lstat(filepath.Join(src, "file"), dstSt))
	if srcSt.Mtim != dstSt.Mtim {
		t.Errorf("mtime %v, want %v", srcSt.Mtim, dstSt.Mtim)
	}
	if xattrOK {
		buf := make([]byte, 8)
		n, err := unix.Getxattr(filepath.Join(dst, "file"), "user.hako", buf)
		if err != nil || string(buf[:n]) != "v" {
			t.Errorf("xattr: %q %v", buf[:n], err)
		}
	}

	// Content in the volume: nothing is copied.
	dst2 := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dst2, "mine"), nil, 0o644))
	if copied, err := CopyUp(rootfs, "/data", dst2); err != nil || copied {
		t.Errorf("non-empty volume: %v %v", copied, err)
	}
	// Nothing at the path, or a file there: nothing to copy.
	for _, p := range []string{"/nothing", "/real/file", "/"} {
		if copied, err := CopyUp(rootfs, p, t.TempDir()); err != nil || copied {
			t.Errorf("%s: %v %v", p, copied, err)
		}
	}
}

// TestMountCounts: a volume with options is mounted by its first user and
// unmounted by its last, and cannot be removed while mounted.
func TestMountCounts(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	v, _, err := s.Create(CreateOptions{Name: "tmp", Options: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m,mode=0700"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(v.Mountpoint, unix.MNT_DETACH) })
	for _, ref := range []string{"a", "b"} {
		if p, err := s.Mount("tmp", ref); err != nil || p != v.Mountpoint {
			t.Fatalf("mount %s: %q %v", ref, p, err)
		}
	}
	if m, _ := mounted(v.Mountpoint); !m {
		t.Fatal("not mounted")
	}
	var st unix.Statfs_t
	if err := unix.Statfs(v.Mountpoint, &st); err != nil || st.Type != unix.TMPFS_MAGIC {
		t.Errorf("not a tmpfs: %x %v", st.Type, err)
	}
	if err := s.Remove("tmp", false); !errdefs.IsConflict(err) {
		t.Errorf("remove while mounted: %v", err)
	}
	if was, err := s.Unmount("tmp", "a"); err != nil || !was {
		t.Fatal(was, err)
	}
	if m, _ := mounted(v.Mountpoint); !m {
		t.Error("unmounted while b still uses it")
	}
	if was, err := s.Unmount("tmp", "b"); err != nil || !was {
		t.Fatal(was, err)
	}
	if m, _ := mounted(v.Mountpoint); m {
		t.Error("still mounted after the last user")
	}
	if was, _ := s.Unmount("tmp", "b"); was {
		t.Error("second unmount reported a user")
	}
	if err := s.Remove("tmp", false); err != nil {
		t.Error(err)
	}

	// A device that is not there: docker's message, nothing mounted.
	if _, _, err := s.Create(CreateOptions{Name: "bad", Options: map[string]string{"type": "none", "o": "bind", "device": "/no/such/dir"}}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Mount("bad", "a")
	want := "error while mounting volume '" + filepath.Join(s.Root(), "bad", "_data") + "': failed to mount local volume: mount /no/such/dir:" +
		filepath.Join(s.Root(), "bad", "_data") + ", flags: 0x1000: no such file or directory"
	if err == nil || err.Error() != want {
		t.Errorf("bad device:\n got %v\nwant %s", err, want)
	}
	if len(mountsUnder(s.Root())) != 0 {
		t.Errorf("mounts left: %v", mountsUnder(s.Root()))
	}
}

// TestPopulateBindVolume: copy-up into a volume bound to a host
// directory lands in that directory, and the bind is gone after.
func TestPopulateBindVolume(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	host := t.TempDir()
	if _, _, err := s.Create(CreateOptions{Name: "bv", Options: map[string]string{"type": "none", "o": "bind", "device": host}}); err != nil {
		t.Fatal(err)
	}
	rootfs := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755))
	must(t, os.WriteFile(filepath.Join(rootfs, "etc", "conf"), []byte("c"), 0o644))
	if copied, err := s.Populate("bv", rootfs, "/etc"); err != nil || !copied {
		t.Fatalf("populate: %v %v", copied, err)
	}
	if b, err := os.ReadFile(filepath.Join(host, "conf")); err != nil || string(b) != "c" {
		t.Errorf("host dir: %q %v", b, err)
	}
	if len(mountsUnder(s.Root())) != 0 {
		t.Errorf("mounts left: %v", mountsUnder(s.Root()))
	}
	// Removing the volume leaves the host's directory alone.
	if err := s.Remove("bv", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(host, "conf")); err != nil {
		t.Errorf("host data lost: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
