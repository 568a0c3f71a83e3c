package image

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/image/layer"
	"github.com/hako-project/hako/image/progress"
	"github.com/hako-project/hako/snapshot"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// BlobOpener opens a blob of the image being fetched (a registry GET, a
// file in an archive). The store verifies what it reads; the opener need
// not.
type BlobOpener func(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error)

// FetchRequest describes an image to bring into the store.
type FetchRequest struct {
	// Manifest is the image manifest (its bytes must hash to
	// ManifestDesc.Digest).
	ManifestDesc ocispec.Descriptor
	Manifest     []byte
	// Config is the config blob; if nil it is read through Open.
	Config []byte
	// Open reads layer (and, if Config is nil, config) blobs the store does
	// not already have.
	Open BlobOpener
	// Register names the image once everything is in place.
	Register RegisterOptions
	// Progress receives per-layer events (progress.Nop if nil).
	Progress progress.Func
	// NoUnpack stores blobs only, leaving snapshots to a later Unpack.
	NoUnpack bool
}

// Fetch stores an image's blobs and unpacks its layers into snapshots, then
// records it. Layers are fetched in parallel; each one is unpacked while it
// downloads (an overlay upper dir does not depend on the layers below it),
// and its snapshot is committed only after both its compressed digest and
// its diff_id verify. Blobs and snapshots already present are not fetched
// again. On failure everything Fetch added is removed again.
func (s *Store) Fetch(ctx context.Context, req FetchRequest) (img *Image, err error) {
	if req.Progress == nil {
		req.Progress = progress.Nop
	}
	m, err := ParseManifest(req.ManifestDesc.MediaType, req.Manifest)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", req.ManifestDesc.Digest, err)
	}
	req.ManifestDesc.MediaType = m.MediaType
	if got := digest.FromBytes(req.Manifest); got != req.ManifestDesc.Digest {
		return nil, fmt.Errorf("manifest %s: %w: bytes hash to %s", req.ManifestDesc.Digest, errdefs.ErrDataLoss, got)
	}
	lease, err := s.NewLease(ctx)
	if err != nil {
		return nil, err
	}
	defer func() {
		if endErr := lease.End(ctx, err != nil); endErr != nil && err == nil {
			err = endErr
		}
	}()
	cfgBytes := req.Config
	if cfgBytes == nil {
		if cfgBytes, err = s.readSmallBlob(ctx, lease, m.Config, req.Open); err != nil {
			return nil, fmt.Errorf("config %s: %w", m.Config.Digest, err)
		}
	}
	if got := digest.FromBytes(cfgBytes); got != m.Config.Digest {
		return nil, fmt.Errorf("config %s: %w: bytes hash to %s", m.Config.Digest, errdefs.ErrDataLoss, got)
	}
	cfg, err := ParseConfig(cfgBytes, len(m.Layers))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	if _, err := lease.WriteBlob(m.Config.Digest, cfgBytes); err != nil {
		return nil, err
	}
	if err := s.fetchLayers(ctx, lease, m.Layers, cfg.RootFS.DiffIDs, req.Open, req.Progress, !req.NoUnpack); err != nil {
		return nil, err
	}
	// The manifest goes last: a manifest in the store means its blobs are.
	if _, err := lease.WriteBlob(req.ManifestDesc.Digest, req.Manifest); err != nil {
		return nil, err
	}
	return s.Register(ctx, req.ManifestDesc, req.Register)
}

// readSmallBlob returns a config from the store or through open.
func (s *Store) readSmallBlob(ctx context.Context, lease *Lease, desc ocispec.Descriptor, open BlobOpener) ([]byte, error) {
	if ok, err := lease.Protect(desc.Digest); err != nil {
		return nil, err
	} else if ok {
		return s.content.ReadAll(desc.Digest, maxJSONBlob)
	}
	if open == nil {
		return nil, fmt.Errorf("blob %s: %w", desc.Digest, errdefs.ErrNotFound)
	}
	if desc.Size > maxJSONBlob {
		return nil, fmt.Errorf("%w: blob %s is %d bytes, larger than %d", errdefs.ErrInvalid, desc.Digest, desc.Size, maxJSONBlob)
	}
	rc, err := open(ctx, desc)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxJSONBlob+1))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", desc.Digest, err)
	}
	if desc.Size > 0 && int64(len(b)) != desc.Size {
		return nil, fmt.Errorf("blob %s: %w: got %d bytes, want %d", desc.Digest, errdefs.ErrDataLoss, len(b), desc.Size)
	}
	return b, nil
}

// Unpack makes sure every layer of img is unpacked into snapshots, from the
// blobs in the store.
func (s *Store) Unpack(ctx context.Context, img *Image, pf progress.Func) error {
	if pf == nil {
		pf = progress.Nop
	}
	lease, err := s.NewLease(ctx)
	if err != nil {
		return err
	}
	err = s.fetchLayers(ctx, lease, img.Layers, img.DiffIDs, nil, pf, true)
	if endErr := lease.End(ctx, err != nil); err == nil {
		err = endErr
	}
	if err != nil {
		return fmt.Errorf("unpack image %s: %w", img.ID, err)
	}
	return nil
}

type layerJob struct {
	idx       int
	desc      ocispec.Descriptor
	diffID    digest.Digest
	chainID   digest.Digest
	needBlob  bool
	needUnpak bool
	key       string // active snapshot the layer is unpacked into
	unpacked  int64  // bytes of the regular files the unpack wrote
}

func (s *Store) fetchLayers(ctx context.Context, lease *Lease, descs []ocispec.Descriptor, diffIDs []digest.Digest, open BlobOpener, pf progress.Func, unpack bool) (err error) {
	if len(descs) != len(diffIDs) {
		return fmt.Errorf("%w: %d layers but %d diff_ids", errdefs.ErrInvalid, len(descs), len(diffIDs))
	}
	chainIDs := make([]digest.Digest, len(diffIDs))
	copy(chainIDs, diffIDs)
	identity.ChainIDs(chainIDs)

	// The highest chain already unpacked: everything below it is too.
	top := -1
	if unpack {
		for i := len(chainIDs) - 1; i >= 0; i-- {
			if ok, err := s.protectSnapshot(ctx, lease, chainIDs[i].String()); err != nil {
				return err
			} else if ok {
				top = i
				break
			}
		}
	}
	jobs := make([]*layerJob, len(descs))
	for i, d := range descs {
		j := &layerJob{idx: i, desc: d, diffID: diffIDs[i], chainID: chainIDs[i], needUnpak: unpack && i > top}
		have, err := lease.Protect(d.Digest)
		if err != nil {
			return err
		}
		j.needBlob = !have
		if j.needBlob && open == nil {
			return fmt.Errorf("layer %s: %w", d.Digest, errdefs.ErrNotFound)
		}
		jobs[i] = j
		id := progress.ShortID(d.Digest.String())
		switch {
		case !j.needBlob && !j.needUnpak:
			pf(progress.Event{ID: id, Status: progress.StatusAlreadyExists})
		default:
			pf(progress.Event{ID: id, Status: progress.StatusPullingFSL})
		}
	}
	// Remove unpack snapshots of a failed fetch; committed ones are
	// removed by lease.End if nothing else uses them.
	defer func() {
		if err == nil {
			return
		}
		for _, j := range jobs {
			if j.key != "" {
				if rerr := s.snaps.Remove(context.WithoutCancel(ctx), j.key); rerr != nil && !errors.Is(rerr, errdefs.ErrNotFound) {
					s.log.Warn("remove failed unpack", "snapshot", j.key, "err", rerr)
				}
			}
		}
	}()

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.jobs)
	for _, j := range jobs {
		if !j.needBlob && !j.needUnpak {
			continue
		}
		g.Go(func() error { return s.fetchLayer(gctx, lease, j, open, pf) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// Chain the verified layers in order.
	for _, j := range jobs {
		if !j.needUnpak {
			continue
		}
		parent := ""
		if j.idx > 0 {
			parent = chainIDs[j.idx-1].String()
		}
		if err := s.commitLayer(ctx, lease, j, parent); err != nil {
			return err
		}
		pf(progress.Event{ID: progress.ShortID(j.desc.Digest.String()), Status: progress.StatusPullComplete})
	}
	return nil
}

// protectSnapshot puts an existing committed snapshot under the lease.
func (s *Store) protectSnapshot(ctx context.Context, lease *Lease, name string) (bool, error) {
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	in, err := s.snaps.Stat(ctx, name)
	if errors.Is(err, errdefs.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if in.Kind != snapshot.Committed {
		return false, nil
	}
	return true, lease.add(nil, []string{name})
}

func (s *Store) commitLayer(ctx context.Context, lease *Lease, j *layerJob, parent string) error {
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	name := j.chainID.String()
	err := s.snaps.Commit(ctx, name, j.key, snapshot.WithParent(parent), snapshot.WithLabels(map[string]string{
		"hako.io/diffid": j.diffID.String(), LabelUnpackedSize: strconv.FormatInt(j.unpacked, 10),
	}))
	if errors.Is(err, errdefs.ErrAlreadyExists) {
		// Another fetch of the same layer won the race; use its snapshot.
		if rerr := s.snaps.Remove(ctx, j.key); rerr != nil {
			return rerr
		}
		j.key = ""
		return lease.add(nil, []string{name})
	}
	if err != nil {
		return fmt.Errorf("layer %s: %w", j.desc.Digest, err)
	}
	j.key = ""
	if err := lease.add(nil, []string{name}); err != nil {
		return err
	}
	lease.mu.Lock()
	lease.newSnapshots = append(lease.newSnapshots, name)
	lease.mu.Unlock()
	return nil
}

// progressReader reports bytes read as events for one layer.
type progressReader struct {
	r      io.Reader
	n      int64
	total  int64
	id     string
	status string
	pf     progress.Func
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if n > 0 {
		p.pf(progress.Event{ID: p.id, Status: p.status, Current: p.n, Total: p.total})
	}
	return n, err
}

func newKey(chainID digest.Digest) string {
	var b [6]byte
	rand.Read(b[:])
	return fmt.Sprintf("extract-%d-%s-%s", time.Now().UnixNano(), hex.EncodeToString(b[:]), chainID.Encoded()[:12])
}

// fetchLayer brings one layer in: download to the content store, unpack,
// or both at once from one stream.
func (s *Store) fetchLayer(ctx context.Context, lease *Lease, j *layerJob, open BlobOpener, pf progress.Func) error {
	id := progress.ShortID(j.desc.Digest.String())
	tpf := progress.Throttle(pf, 100*time.Millisecond)
	if j.needUnpak {
		key := newKey(j.chainID)
		if _, err := s.snaps.Prepare(ctx, key, "", map[string]string{LabelExtract: j.chainID.String()}); err != nil {
			return fmt.Errorf("layer %s: %w", j.desc.Digest, err)
		}
		j.key = key
	}
	var src io.ReadCloser
	var err error
	if j.needBlob {
		src, err = open(ctx, j.desc)
		if err != nil {
			return fmt.Errorf("layer %s: %w", j.desc.Digest, err)
		}
	} else {
		src, err = s.content.Open(j.desc.Digest)
		if err != nil {
			return fmt.Errorf("layer %s: %w", j.desc.Digest, err)
		}
	}
	defer src.Close()
	status := progress.StatusDownloading
	if !j.needBlob {
		status = progress.StatusExtracting
	}
	body := &progressReader{r: src, total: j.desc.Size, id: id, status: status, pf: tpf}

	if !j.needUnpak {
		return s.downloadOnly(ctx, lease, j, body, pf)
	}
	dir, err := s.snaps.UpperDir(ctx, j.key)
	if err != nil {
		return err
	}
	if !j.needBlob {
		if err := unpackStream(ctx, dir, body, j); err != nil {
			return err
		}
		return nil
	}
	// Download and unpack from one stream: the download side writes every
	// byte to the blob and to a pipe the unpacker reads. If the unpacker
	// stops early the download still runs to its end, so the blob digest
	// decides between "the registry sent bad bytes" (a digest error) and
	// "the layer itself is bad" (the unpack error).
	w, err := s.content.Writer(j.desc.Digest, j.desc.Size)
	if err != nil {
		return err
	}
	defer w.Close()
	pr, pw := io.Pipe()
	unpacked := make(chan error, 1)
	go func() {
		err := unpackStream(ctx, dir, pr, j)
		pr.CloseWithError(err)
		unpacked <- err
	}()
	tee := &pipeTee{w: pw}
	_, copyErr := io.Copy(io.MultiWriter(w, tee), body)
	if copyErr != nil {
		copyErr = fmt.Errorf("layer %s: download: %w", j.desc.Digest, copyErr)
		pw.CloseWithError(copyErr)
	} else {
		pw.Close()
	}
	unpackErr := <-unpacked
	if copyErr != nil {
		return copyErr
	}
	pf(progress.Event{ID: id, Status: progress.StatusVerifying})
	if _, err := lease.CommitBlob(w); err != nil {
		return fmt.Errorf("layer %s: %w", j.desc.Digest, err)
	}
	if unpackErr != nil {
		return unpackErr
	}
	pf(progress.Event{ID: id, Status: progress.StatusDownloaded})
	return nil
}

// pipeTee feeds the unpacker until it stops reading, then swallows the
// rest so the blob side of the download can finish.
type pipeTee struct {
	w      *io.PipeWriter
	closed bool
}

func (p *pipeTee) Write(b []byte) (int, error) {
	if !p.closed {
		if _, err := p.w.Write(b); err != nil {
			p.closed = true
		}
	}
	return len(b), nil
}

func (s *Store) downloadOnly(ctx context.Context, lease *Lease, j *layerJob, body io.Reader, pf progress.Func) error {
	w, err := s.content.Writer(j.desc.Digest, j.desc.Size)
	if err != nil {
		return err
	}
	defer w.Close()
	if _, err := io.Copy(w, body); err != nil {
		return fmt.Errorf("layer %s: download: %w", j.desc.Digest, err)
	}
	if _, err := lease.CommitBlob(w); err != nil {
		return fmt.Errorf("layer %s: %w", j.desc.Digest, err)
	}
	pf(progress.Event{ID: progress.ShortID(j.desc.Digest.String()), Status: progress.StatusDownloaded})
	return nil
}

// unpackStream decompresses r, applies the tar into dir and checks that the
// uncompressed bytes hash to the layer's diff_id. It reads r to its end so
// the download side sees every byte.
func unpackStream(ctx context.Context, dir string, r io.Reader, j *layerJob) error {
	dr, _, err := layer.Decompress(r)
	if err != nil {
		return fmt.Errorf("layer %s: %w", j.desc.Digest, err)
	}
	defer dr.Close()
	v := j.diffID.Verifier()
	tee := io.TeeReader(dr, v)
	st, err := layer.Apply(ctx, dir, tee, layer.ApplyOptions{})
	if err != nil {
		return fmt.Errorf("layer %s: %w", j.desc.Digest, err)
	}
	j.unpacked = st.Bytes
	// Tar padding after the end marker still counts for the diff_id, and a
	// gzip stream checks its CRC only at EOF.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return fmt.Errorf("layer %s: %w: decompress: %v", j.desc.Digest, errdefs.ErrDataLoss, err)
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return fmt.Errorf("layer %s: read: %w", j.desc.Digest, err)
	}
	if !v.Verified() {
		return fmt.Errorf("layer %s: %w: uncompressed content does not match diff_id %s", j.desc.Digest, errdefs.ErrDataLoss, j.diffID)
	}
	return nil
}
