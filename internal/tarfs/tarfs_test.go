package tarfs

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func openDir(t *testing.T, p string) *os.File {
	t.Helper()
	f, err := os.OpenFile(p, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func tarOf(t *testing.T, hdrs ...*tar.Header) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range hdrs {
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(h.Name))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			_, _ = tw.Write([]byte(h.Name))
		}
	}
	_ = tw.Close()
	return b.Bytes()
}

// TestExtractStaysInside: "..", absolute names, symlinks already in the
// destination and symlinks the tar makes all resolve inside it.
func TestExtractStaysInside(t *testing.T) {
	base := t.TempDir()
	dest := filepath.Join(base, "dest")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{dest, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(dest, "planted")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../..", filepath.Join(dest, "up")); err != nil {
		t.Fatal(err)
	}
	data := tarOf(t,
		&tar.Header{Name: "../outside/dotdot", Typeflag: tar.TypeReg, Mode: 0o644},
		&tar.Header{Name: outside + "/absolute", Typeflag: tar.TypeReg, Mode: 0o644},
		&tar.Header{Name: "planted/viaplanted", Typeflag: tar.TypeReg, Mode: 0o644},
		&tar.Header{Name: "up/outside/viaup", Typeflag: tar.TypeReg, Mode: 0o644},
		&tar.Header{Name: "made", Typeflag: tar.TypeSymlink, Linkname: outside},
		&tar.Header{Name: "made/viamade", Typeflag: tar.TypeReg, Mode: 0o644},
		&tar.Header{Name: "hard", Typeflag: tar.TypeLink, Linkname: "../outside/x"},
	)
	err := Extract(context.Background(), openDir(t, dest), bytes.NewReader(data), ExtractOptions{NoChown: true})
	if ents, _ := os.ReadDir(outside); len(ents) > 0 {
		t.Fatalf("extract wrote outside its destination: %v (err %v)", ents, err)
	}
	if _, err := os.Stat(filepath.Join(dest, "outside", "dotdot")); err != nil {
		t.Errorf("../outside/dotdot did not land inside: %v", err)
	}
}

func TestExtractNoOverwriteDirNonDir(t *testing.T) {
	dest := t.TempDir()
	if err := os.Mkdir(filepath.Join(dest, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	data := tarOf(t, &tar.Header{Name: "d", Typeflag: tar.TypeReg, Mode: 0o644})
	err := Extract(context.Background(), openDir(t, dest), bytes.NewReader(data), ExtractOptions{NoChown: true, NoOverwriteDirNonDir: true})
	if err == nil || !strings.Contains(err.Error(), "cannot overwrite directory") {
		t.Errorf("directory replaced by a file: %v", err)
	}
}

// TestRoundTrip writes a tree and unpacks it again: modes, symlinks,
// hardlinks and contents survive; a symlink is never followed.
func TestRoundTrip(t *testing.T) {
	src := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "tree", "sub"), 0o750))
	must(os.WriteFile(filepath.Join(src, "tree", "a"), []byte("alpha"), 0o640))
	must(os.Link(filepath.Join(src, "tree", "a"), filepath.Join(src, "tree", "sub", "hard")))
	must(os.Symlink("/etc", filepath.Join(src, "tree", "etc")))
	var buf bytes.Buffer
	w := NewWriter(context.Background(), &buf)
	must(w.Add(int(openDir(t, src).Fd()), "tree", "tree"))
	must(w.Close())
	var names []string
	tr := tar.NewReader(bytes.NewReader(buf.Bytes()))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(err)
		names = append(names, h.Name+":"+string(h.Typeflag))
	}
	sort.Strings(names)
	if got := strings.Join(names, " "); got != "tree/:5 tree/a:0 tree/etc:2 tree/sub/:5 tree/sub/hard:1" {
		t.Errorf("entries: %s", got)
	}
	dst := t.TempDir()
	must(Extract(context.Background(), openDir(t, dst), &buf, ExtractOptions{NoChown: true}))
	if b, _ := os.ReadFile(filepath.Join(dst, "tree", "sub", "hard")); string(b) != "alpha" {
		t.Errorf("hardlink: %q", b)
	}
	if fi, err := os.Stat(filepath.Join(dst, "tree", "a")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("mode: %v %v", fi, err)
	}
	if l, _ := os.Readlink(filepath.Join(dst, "tree", "etc")); l != "/etc" {
		t.Errorf("symlink: %q", l)
	}
}
