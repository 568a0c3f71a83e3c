// Package content is hako's content-addressed blob store: every manifest,
// config and compressed layer is kept once under blobs/sha256/<hex>.
//
// A blob only ever appears under its digest after its bytes were hashed,
// counted, fsynced and renamed from a private temp file, so a crash, a
// killed pull or a cancelled context can leave temp files (removed at the
// next Open) but never a blob whose name lies about its content. Deciding
// which blobs to keep is the caller's job (see package image's GC).
package content

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hako-project/hako/errdefs"
	"github.com/opencontainers/go-digest"
)

// Store is a blob directory. It is safe for concurrent use: writers use
// private temp files and publish with an atomic rename.
type Store struct {
	root string
}

// Open creates or opens the store rooted at root and removes temp files left
// by a previous process. The caller must make sure no other process uses the
// same root at the same time (package image holds the bbolt lock for that).
func Open(root string) (*Store, error) {
	for _, d := range []string{"blobs/sha256", "ingest"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return nil, fmt.Errorf("create content store dir: %w", err)
		}
	}
	ingest := filepath.Join(root, "ingest")
	entries, err := os.ReadDir(ingest)
	if err != nil {
		return nil, fmt.Errorf("read ingest dir: %w", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(ingest, e.Name())); err != nil {
			return nil, fmt.Errorf("remove stale ingest %s: %w", e.Name(), err)
		}
	}
	return &Store{root: root}, nil
}

// Root is the directory the store lives in.
func (s *Store) Root() string { return s.root }

// BlobPath is where the blob d lives (or would live). It validates d so a
// hostile digest string cannot name a path outside the store.
func (s *Store) BlobPath(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("blob %q: %w: %v", d, errdefs.ErrInvalid, err)
	}
	if d.Algorithm() != digest.SHA256 {
		return "", fmt.Errorf("blob %s: %w: only sha256 is supported", d, errdefs.ErrInvalid)
	}
	return filepath.Join(s.root, "blobs", "sha256", d.Encoded()), nil
}

// Info describes a stored blob.
type Info struct {
	Digest digest.Digest
	Size   int64
}

// Info returns the size of blob d, or an ErrNotFound error.
func (s *Store) Info(d digest.Digest) (Info, error) {
	p, err := s.BlobPath(d)
	if err != nil {
		return Info{}, err
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, fmt.Errorf("blob %s: %w", d, errdefs.ErrNotFound)
	}
	if err != nil {
		return Info{}, fmt.Errorf("stat blob %s: %w", d, err)
	}
	return Info{Digest: d, Size: fi.Size()}, nil
}

// Has reports whether blob d is stored.
func (s *Store) Has(d digest.Digest) bool {
	_, err := s.Info(d)
	return err == nil
}

// Open opens blob d for reading.
func (s *Store) Open(d digest.Digest) (*os.File, error) {
	p, err := s.BlobPath(d)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", d, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", d, err)
	}
	return f, nil
}

// ReadAll returns the bytes of a small blob (a manifest or config) after
// checking them against d, so a blob damaged on disk is never parsed.
func (s *Store) ReadAll(d digest.Digest, max int64) ([]byte, error) {
	f, err := s.Open(d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", d, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("blob %s: %w: larger than %d bytes", d, errdefs.ErrInvalid, max)
	}
	if got := digest.FromBytes(b); got != d {
		return nil, fmt.Errorf("blob %s: %w: stored bytes hash to %s", d, errdefs.ErrDataLoss, got)
	}
	return b, nil
}

// Delete removes blob d. Deleting a missing blob is not an error, so GC and
// cleanup paths can run twice.
func (s *Store) Delete(d digest.Digest) error {
	p, err := s.BlobPath(d)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete blob %s: %w", d, err)
	}
	return nil
}

// Walk calls fn for every stored blob. Files whose names are not valid
// sha256 hex are reported as errors rather than skipped silently.
func (s *Store) Walk(ctx context.Context, fn func(Info) error) error {
	dir := filepath.Join(s.root, "blobs", "sha256")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list blobs: %w", err)
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if err := d.Validate(); err != nil {
			return fmt.Errorf("stray file %s in blob dir: %w", filepath.Join(dir, e.Name()), errdefs.ErrInvalid)
		}
		fi, err := e.Info()
		if err != nil {
			return fmt.Errorf("stat blob %s: %w", d, err)
		}
		if err := fn(Info{Digest: d, Size: fi.Size()}); err != nil {
			return err
		}
	}
	return nil
}

// Verify re-hashes blob d and reports ErrDataLoss if the bytes on disk no
// longer match their name.
func (s *Store) Verify(ctx context.Context, d digest.Digest) error {
	f, err := s.Open(d)
	if err != nil {
		return err
	}
	defer f.Close()
	v := d.Verifier()
	if _, err := io.Copy(v, ctxReader{ctx, f}); err != nil {
		return fmt.Errorf("read blob %s: %w", d, err)
	}
	if !v.Verified() {
		return fmt.Errorf("blob %s: %w", d, errdefs.ErrDataLoss)
	}
	return nil
}

// ctxReader stops a long copy when its context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Writer receives one blob. Write bytes, then Commit to verify and publish
// or Close to discard. Close after Commit is a no-op, so `defer w.Close()`
// is always right.
type Writer struct {
	s        *Store
	f        *os.File
	h        hash.Hash
	n        int64
	expected digest.Digest
	size     int64
	done     bool
}

// Writer starts a blob. expected may be "" when the digest is only known at
// the end (an import that compresses on the fly); size < 0 means unknown.
func (s *Store) Writer(expected digest.Digest, size int64) (*Writer, error) {
	if expected != "" {
		if _, err := s.BlobPath(expected); err != nil {
			return nil, err
		}
	}
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("ingest name: %w", err)
	}
	name := hex.EncodeToString(rnd[:])
	if expected != "" {
		name = expected.Encoded()[:12] + "-" + name
	}
	f, err := os.OpenFile(filepath.Join(s.root, "ingest", name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("start ingest of %s: %w", expected, err)
	}
	return &Writer{s: s, f: f, h: digest.SHA256.Hash(), expected: expected, size: size}, nil
}

// Write appends p to the blob. It fails as soon as more bytes arrive than
// the expected size, so an oversized response cannot fill the disk.
func (w *Writer) Write(p []byte) (int, error) {
	if w.size >= 0 && w.n+int64(len(p)) > w.size {
		return 0, fmt.Errorf("blob %s: %w: more than the expected %d bytes", w.expected, errdefs.ErrDataLoss, w.size)
	}
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("write blob %s: %w", w.expected, err)
	}
	return n, nil
}

// Written is the number of bytes received so far.
func (w *Writer) Written() int64 { return w.n }

// Digest is the digest of the bytes received so far.
func (w *Writer) Digest() digest.Digest { return digest.NewDigest(digest.SHA256, w.h) }

// Commit checks size and digest, fsyncs and renames the blob into place. A
// blob that already exists is kept and the new copy dropped (same bytes by
// definition). It returns the blob's digest and size.
func (w *Writer) Commit() (Info, error) {
	if w.done {
		return Info{}, errors.New("blob writer already finished")
	}
	w.done = true
	tmp := w.f.Name()
	fail := func(err error) (Info, error) {
		w.f.Close()
		os.Remove(tmp)
		return Info{}, err
	}
	got := w.Digest()
	if w.size >= 0 && w.n != w.size {
		return fail(fmt.Errorf("blob %s: %w: got %d bytes, want %d (truncated)", w.expected, errdefs.ErrDataLoss, w.n, w.size))
	}
	if w.expected != "" && got != w.expected {
		return fail(fmt.Errorf("blob %s: %w: received bytes hash to %s", w.expected, errdefs.ErrDataLoss, got))
	}
	if err := w.f.Sync(); err != nil {
		return fail(fmt.Errorf("fsync blob %s: %w", got, err))
	}
	if err := w.f.Close(); err != nil {
		return fail(fmt.Errorf("close blob %s: %w", got, err))
	}
	dst, err := w.s.BlobPath(got)
	if err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fail(fmt.Errorf("publish blob %s: %w", got, err))
	}
	// The rename must be durable before metadata that names the blob is.
	if d, err := os.Open(filepath.Dir(dst)); err == nil {
		d.Sync()
		d.Close()
	}
	return Info{Digest: got, Size: w.n}, nil
}

// Close discards an uncommitted blob.
func (w *Writer) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	w.f.Close()
	if err := os.Remove(w.f.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("discard ingest: %w", err)
	}
	return nil
}

// IngestCount is the number of temp files under way; tests use it to prove
// that a failed operation left nothing behind.
func (s *Store) IngestCount() (int, error) {
	entries, err := os.ReadDir(filepath.Join(s.root, "ingest"))
	if err != nil {
		return 0, fmt.Errorf("read ingest dir: %w", err)
	}
	return len(entries), nil
}
