package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/errdefs"
)

func open(t *testing.T, root string) *Snapshotter {
	s, err := Open(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func requireRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount overlayfs; CI runs as root")
	}
}

// layer prepares, fills and commits one layer.
func layer(t *testing.T, s *Snapshotter, name, parent string, files map[string]string) {
	t.Helper()
	ctx := context.Background()
	key := "extract-" + name
	if _, err := s.Prepare(ctx, key, "", nil); err != nil {
		t.Fatal(err)
	}
	dir, _ := s.UpperDir(ctx, key)
	for p, c := range files {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644)
	}
	if err := s.Commit(ctx, name, key, WithParent(parent)); err != nil {
		t.Fatal(err)
	}
}

func TestLifecycleAndMounts(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	s := open(t, t.TempDir())
	layer(t, s, "l1", "", map[string]string{"a": "1", "b": "1"})
	layer(t, s, "l2", "l1", map[string]string{"b": "2"})
	mounts, err := s.Prepare(ctx, "ctr", "l2", map[string]string{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	m := mounts[0]
	if m.Type != "overlay" || len(m.LowerDirs()) != 2 || !strings.HasSuffix(m.LowerDirs()[0], "/fs") {
		t.Fatalf("mount %+v", m)
	}
	target := t.TempDir()
	if err := MountAll(mounts, target); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(target, "b"))
	a, _ := os.ReadFile(filepath.Join(target, "a"))
	os.WriteFile(filepath.Join(target, "c"), []byte("3"), 0o644)
	if err := UnmountAll(target); err != nil {
		t.Fatal(err)
	}
	if string(a) != "1" || string(b) != "2" {
		t.Fatalf("merged view a=%q b=%q", a, b)
	}
	up, _ := s.UpperDir(ctx, "ctr")
	if c, _ := os.ReadFile(filepath.Join(up, "c")); string(c) != "3" {
		t.Fatal("write did not land in the upper dir")
	}
	if err := UnmountAll(target); err != nil {
		t.Fatalf("second unmount: %v", err)
	}
	// A committed snapshot in use cannot go; errors are classified.
	if err := s.Remove(ctx, "l2"); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("remove parent: %v", err)
	}
	if _, err := s.Prepare(ctx, "ctr", "l2", nil); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("duplicate key: %v", err)
	}
	if _, err := s.Prepare(ctx, "x", "nope", nil); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("missing parent: %v", err)
	}
	if _, err := s.Prepare(ctx, "y", "ctr", nil); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("active parent: %v", err)
	}
	if err := s.Commit(ctx, "l3", "ctr", WithParent("l1")); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("re-parenting a snapshot that has a parent: %v", err)
	}
	// A view of l2 is read-only.
	vm, err := s.View(ctx, "v", "l2", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := MountAll(vm, target); err != nil {
		t.Fatal(err)
	}
	werr := os.WriteFile(filepath.Join(target, "z"), nil, 0o644)
	UnmountAll(target)
	if werr == nil {
		t.Fatal("view is writable")
	}
	for _, k := range []string{"v", "ctr", "l2", "l1"} {
		if err := s.Remove(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(s.Root(), "snapshots"))
	if len(entries) != 0 {
		t.Fatalf("dirs left: %v", entries)
	}
}

func TestOpenRemovesOrphanDirs(t *testing.T) {
	root := t.TempDir()
	s := open(t, root)
	os.MkdirAll(filepath.Join(root, "snapshots", "999", "fs"), 0o755)
	s.Close()
	open(t, root)
	if _, err := os.Stat(filepath.Join(root, "snapshots", "999")); err == nil {
		t.Fatal("orphan dir kept")
	}
}

// TestManyLayersBeyondOnePage mounts an overlay whose lowerdir option is
// longer than mount(2) accepts, through fsconfig's lowerdir+.
func TestManyLayersBeyondOnePage(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), strings.Repeat("long-path-component-", 4))
	s := open(t, root)
	parent := ""
	const n = 80
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("layer-%d", i)
		layer(t, s, name, parent, map[string]string{fmt.Sprintf("f%d", i): "x"})
		parent = name
	}
	mounts, err := s.Prepare(ctx, "c", parent, nil)
	if err != nil {
		t.Fatal(err)
	}
	if l := len(strings.Join(mounts[0].Options, ",")); l <= maxMountData {
		t.Fatalf("options only %d bytes; the test needs more than a page", l)
	}
	target := t.TempDir()
	if err := MountAll(mounts, target); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(target)
	UnmountAll(target)
	if len(entries) != n {
		t.Fatalf("merged view has %d files, want %d", len(entries), n)
	}
}

// TestMountVolatile: a writable overlay is mounted volatile, and mounted
// again after that (overlayfs refuses until its marker is gone); the
// writes land in the upper dir; a read-only view stays a plain mount.
func TestMountVolatile(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	s := open(t, t.TempDir())
	layer(t, s, "l1", "", map[string]string{"a": "1"})
	mounts, err := s.Prepare(ctx, "ctr", "l1", nil)
	if err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	for i := range 2 {
		if err := MountVolatile(mounts, target); err != nil {
			t.Fatalf("mount %d: %v", i+1, err)
		}
		opts := mountOptions(t, target)
		werr := os.WriteFile(filepath.Join(target, fmt.Sprint("w", i)), []byte("x"), 0o644)
		if err := UnmountAll(target); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(opts, "volatile") || werr != nil {
			t.Fatalf("mount %d: options %q, write: %v", i+1, opts, werr)
		}
	}
	up, _ := s.UpperDir(ctx, "ctr")
	for _, f := range []string{"w0", "w1"} {
		if _, err := os.Stat(filepath.Join(up, f)); err != nil {
			t.Errorf("write to the volatile mount: %v", err)
		}
	}
	vm, err := s.View(ctx, "v", "l1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := MountVolatile(vm, target); err != nil {
		t.Fatal(err)
	}
	opts := mountOptions(t, target)
	UnmountAll(target)
	if strings.Contains(opts, "volatile") {
		t.Errorf("a read-only view was mounted volatile: %q", opts)
	}
}

// mountOptions returns the super options of the mount at target.
func mountOptions(t *testing.T, target string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == target {
			return l
		}
	}
	t.Fatalf("%s is not mounted", target)
	return ""
}

// TestRemoveKeepsRecordOfFilesLeft: an active snapshot whose files cannot
// be removed (a mount left inside its layer) keeps its record, so that a
// second Remove, once the mount is gone, removes the files; without the
// record it would find nothing and leave them to the next Open.
func TestRemoveKeepsRecordOfFilesLeft(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	s := open(t, t.TempDir())
	layer(t, s, "base", "", map[string]string{"a": "1"})
	if _, err := s.Prepare(ctx, "ctr", "base", nil); err != nil {
		t.Fatal(err)
	}
	up, _ := s.UpperDir(ctx, "ctr")
	busy := filepath.Join(up, "busy")
	if err := os.Mkdir(busy, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", busy, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	mounted := true
	defer func() {
		if mounted {
			unix.Unmount(busy, unix.MNT_DETACH)
		}
	}()
	if err := s.Remove(ctx, "ctr"); err == nil || !strings.Contains(err.Error(), "remove files of snapshot ctr") {
		t.Fatalf("remove with a mount inside: %v", err)
	}
	if _, err := s.Stat(ctx, "ctr"); err != nil {
		t.Fatalf("the record is gone after files were left: %v", err)
	}
	if err := unix.Unmount(busy, 0); err != nil {
		t.Fatal(err)
	}
	mounted = false
	if err := s.Remove(ctx, "ctr"); err != nil {
		t.Fatalf("second remove: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(up)); !os.IsNotExist(err) {
		t.Fatalf("the snapshot's files are still there: %v", err)
	}
	if err := s.Remove(ctx, "base"); err != nil {
		t.Fatal(err)
	}
}

// TestRemoveThroughTrash: a removed snapshot's directory is gone from its
// place at once, its files are deleted from the trash by Close at the
// latest, and a trash left by a crash is emptied by Open.
func TestRemoveThroughTrash(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := open(t, root)
	if _, err := s.Prepare(ctx, "ctr", "", nil); err != nil {
		t.Fatal(err)
	}
	up, _ := s.UpperDir(ctx, "ctr")
	for i := 0; i < 100; i++ {
		os.WriteFile(filepath.Join(up, fmt.Sprint(i)), []byte("x"), 0o644)
	}
	if err := s.Remove(ctx, "ctr"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(up)); !os.IsNotExist(err) {
		t.Fatalf("the snapshot's directory is still in place: %v", err)
	}
	s.Close()
	if ents, _ := os.ReadDir(filepath.Join(root, "trash")); len(ents) > 0 {
		t.Fatalf("trash not empty after Close: %v", ents)
	}
	left := filepath.Join(root, "trash", "7", "fs")
	if err := os.MkdirAll(left, 0o755); err != nil {
		t.Fatal(err)
	}
	open(t, root)
	if ents, _ := os.ReadDir(filepath.Join(root, "trash")); len(ents) > 0 {
		t.Fatalf("a crash's trash not emptied by Open: %v", ents)
	}
}
