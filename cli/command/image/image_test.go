package image

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.tar")
	if err := writeFileAtomic(p, strings.NewReader("archive")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "archive" {
		t.Fatalf("content %q", b)
	}
	// A failing stream leaves neither the target nor a temporary file.
	q := filepath.Join(dir, "broken.tar")
	if err := writeFileAtomic(q, iotest.ErrReader(errors.New("cut"))); err == nil {
		t.Fatal("stream error lost")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("left behind: %v", ents)
	}
	if err := checkWritableDir(filepath.Join(dir, "nodir", "x.tar")); err == nil {
		t.Fatal("missing directory accepted")
	}
	if err := checkWritableDir(filepath.Join(p, "x.tar")); err == nil {
		t.Fatal("a file as directory accepted")
	}
}

func TestImagesFormat(t *testing.T) {
	if imagesFormat("", true, true) != "{{.ID}}" || imagesFormat("", false, true) != defaultImagesDigestFormat {
		t.Fatal("default formats")
	}
	if f := imagesFormat(`table {{.ID}}`, false, true); !f.Contains("{{.Digest}}") {
		t.Fatalf("--digests adds the column: %q", f)
	}
	if _, err := validateFilter("=x"); err == nil {
		t.Fatal("empty filter name accepted")
	}
	if _, err := parsePlatform("a/b/c/d"); err == nil {
		t.Fatal("bad platform accepted")
	}
}
