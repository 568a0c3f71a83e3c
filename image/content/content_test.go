package content

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hako-project/hako/errdefs"
	"github.com/opencontainers/go-digest"
)

func write(t *testing.T, s *Store, expected digest.Digest, size int64, data string) (Info, error) {
	t.Helper()
	w, err := s.Writer(expected, size)
	if err != nil {
		return Info{}, err
	}
	defer w.Close()
	if _, err := w.Write([]byte(data)); err != nil {
		return Info{}, err
	}
	return w.Commit()
}

func noIngest(t *testing.T, s *Store) {
	t.Helper()
	if n, _ := s.IngestCount(); n != 0 {
		t.Errorf("%d temp files left", n)
	}
}

func TestWriteVerifiesAndPublishes(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d := digest.FromString("hello")
	info, err := write(t, s, d, 5, "hello")
	if err != nil || info.Digest != d || info.Size != 5 {
		t.Fatalf("commit: %+v %v", info, err)
	}
	b, err := s.ReadAll(d, 100)
	if err != nil || string(b) != "hello" {
		t.Fatalf("read back %q %v", b, err)
	}
	// Same blob again: kept, no error.
	if _, err := write(t, s, d, 5, "hello"); err != nil {
		t.Fatal(err)
	}
	// Unknown digest up front.
	info, err = write(t, s, "", -1, "computed")
	if err != nil || info.Digest != digest.FromString("computed") {
		t.Fatalf("unknown-digest write: %+v %v", info, err)
	}
	noIngest(t, s)
}

func TestWriteRejectsBadContentAndLeavesNothing(t *testing.T) {
	s, _ := Open(t.TempDir())
	d := digest.FromString("expected")
	cases := []struct {
		name string
		size int64
		data string
		say  string
	}{
		{"wrong bytes", 8, "tampered", "hash to"},
		{"truncated", 8, "expec", "truncated"},
		{"too long", 8, "expected-and-more", "more than"},
	}
	for _, tc := range cases {
		_, err := write(t, s, d, tc.size, tc.data)
		if !errors.Is(err, errdefs.ErrDataLoss) || !strings.Contains(err.Error(), tc.say) || !strings.Contains(err.Error(), d.String()) {
			t.Errorf("%s: %v", tc.name, err)
		}
		if s.Has(d) {
			t.Errorf("%s: blob published", tc.name)
		}
	}
	noIngest(t, s)
	if _, err := s.Writer("sha256:nothex", 1); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("bad digest accepted: %v", err)
	}
	if _, err := s.BlobPath("sha256:../../etc/passwd"); err == nil {
		t.Error("path traversal digest accepted")
	}
	if _, err := s.Open(digest.FromString("missing")); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("open missing: %v", err)
	}
}

func TestOpenRemovesStaleIngestsAndVerifyFindsCorruption(t *testing.T) {
	root := t.TempDir()
	s, _ := Open(root)
	w, _ := s.Writer("", -1)
	w.Write([]byte("partial"))
	// The process dies here: no Commit, no Close.
	s2, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	noIngest(t, s2)
	d := digest.FromString("good")
	write(t, s2, d, 4, "good")
	if err := s2.Verify(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	p, _ := s2.BlobPath(d)
	os.WriteFile(p, []byte("bad!"), 0o600)
	if err := s2.Verify(context.Background(), d); !errors.Is(err, errdefs.ErrDataLoss) {
		t.Fatalf("corruption not found: %v", err)
	}
	if _, err := s2.ReadAll(d, 10); !errors.Is(err, errdefs.ErrDataLoss) {
		t.Fatalf("ReadAll parsed a corrupt blob: %v", err)
	}
	os.WriteFile(filepath.Join(root, "blobs/sha256/stray"), nil, 0o600)
	if err := s2.Walk(context.Background(), func(Info) error { return nil }); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("stray file not reported: %v", err)
	}
}

func TestConcurrentWritersOfOneBlob(t *testing.T) {
	s, _ := Open(t.TempDir())
	d := digest.FromString("same")
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = write(t, s, d, 4, "same")
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Verify(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	noIngest(t, s)
}
