package registry

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/image"
	"github.com/hako-project/hako/image/progress"
	"github.com/hako-project/hako/image/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Push uploads the image named ref (a name in the store, default tag
// latest) to its registry, skipping blobs the registry already has, and
// records the pushed digest as a RepoDigest. It returns the manifest
// digest.
func (c *Client) Push(ctx context.Context, ref string, pf progress.Func) (digest.Digest, error) {
	if pf == nil {
		pf = progress.Nop
	}
	r, err := reference.Parse(ref)
	if err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	img, err := c.store.Resolve(ctx, r.String())
	if err != nil {
		return "", fmt.Errorf("push %s: %w", r, err)
	}
	repo, err := c.ggcrRepo(r)
	if err != nil {
		return "", fmt.Errorf("push %s: %w", r, err)
	}
	pf(progress.Event{Status: "The push refers to repository [" + r.Name() + "]"})
	si, err := c.storeImage(ctx, img, pf)
	if err != nil {
		return "", fmt.Errorf("push %s: %w", r, err)
	}
	for i := len(img.Layers) - 1; i >= 0; i-- {
		pf(progress.Event{ID: progress.ShortID(img.Layers[i].Digest.String()), Status: progress.StatusPreparing})
	}
	tag := r.Tag
	if tag == "" {
		tag = reference.DefaultTag
	}
	var target = repo.Tag(tag)
	if err := remote.Write(target, si, c.remoteOpts(ctx)...); err != nil {
		return "", fmt.Errorf("push %s: %w", r, classify(err))
	}
	for i := len(img.Layers) - 1; i >= 0; i-- {
		d := img.Layers[i].Digest
		status := progress.StatusLayerExists
		if si.uploaded(d) {
			status = progress.StatusPushed
		}
		pf(progress.Event{ID: progress.ShortID(d.String()), Status: status})
	}
	pf(progress.Event{Status: fmt.Sprintf("%s: digest: %s size: %d", tag, img.Manifest.Digest, img.Manifest.Size)})
	if _, err := c.store.Register(ctx, img.Manifest, image.RegisterOptions{RepoDigests: []string{r.WithDigest(img.Manifest.Digest).String()}}); err != nil {
		return "", fmt.Errorf("push %s: record digest: %w", r, err)
	}
	return img.Manifest.Digest, nil
}

// storeImage is a go-containerregistry image read from image.Store: the
// manifest and blobs are pushed byte for byte, so the digest does not
// change on the way.
type storeImage struct {
	v1.Image
	core *storeCore
}

func (s *storeImage) uploaded(d digest.Digest) bool {
	s.core.mu.Lock()
	defer s.core.mu.Unlock()
	return s.core.opened[d]
}

type storeCore struct {
	c        *Client
	img      *image.Image
	manifest []byte
	config   []byte
	pf       progress.Func
	mu       sync.Mutex
	opened   map[digest.Digest]bool
}

func (c *Client) storeImage(ctx context.Context, img *image.Image, pf progress.Func) (*storeImage, error) {
	mb, err := c.store.ReadManifest(ctx, img)
	if err != nil {
		return nil, err
	}
	_, cb, err := c.store.ReadConfig(ctx, img)
	if err != nil {
		return nil, err
	}
	core := &storeCore{c: c, img: img, manifest: mb, config: cb, pf: progress.Throttle(pf, 100*time.Millisecond), opened: map[digest.Digest]bool{}}
	vi, err := partial.CompressedToImage(core)
	if err != nil {
		return nil, err
	}
	return &storeImage{Image: vi, core: core}, nil
}

func (s *storeCore) RawConfigFile() ([]byte, error) { return s.config, nil }
func (s *storeCore) MediaType() (types.MediaType, error) {
	return types.MediaType(s.img.Manifest.MediaType), nil
}
func (s *storeCore) RawManifest() ([]byte, error) { return s.manifest, nil }

func (s *storeCore) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	d := digest.Digest(h.String())
	if d == s.img.Config.Digest {
		return &storeLayer{core: s, desc: s.img.Config}, nil
	}
	for _, l := range s.img.Layers {
		if l.Digest == d {
			return &storeLayer{core: s, desc: l}, nil
		}
	}
	return nil, fmt.Errorf("blob %s: %w in image %s", d, errdefs.ErrNotFound, s.img.ID)
}

type storeLayer struct {
	core *storeCore
	desc ocispec.Descriptor
}

func (l *storeLayer) Digest() (v1.Hash, error) { return v1.NewHash(l.desc.Digest.String()) }
func (l *storeLayer) Size() (int64, error)     { return l.desc.Size, nil }
func (l *storeLayer) MediaType() (types.MediaType, error) {
	return types.MediaType(l.desc.MediaType), nil
}

// Compressed is called only for blobs the registry lacks, which is how Push
// tells "Pushed" from "Layer already exists".
func (l *storeLayer) Compressed() (io.ReadCloser, error) {
	f, err := l.core.c.store.Content().Open(l.desc.Digest)
	if err != nil {
		return nil, err
	}
	l.core.mu.Lock()
	l.core.opened[l.desc.Digest] = true
	l.core.mu.Unlock()
	if l.desc.Digest == l.core.img.Config.Digest {
		return f, nil
	}
	pr := &pushReader{f: f, total: l.desc.Size, id: progress.ShortID(l.desc.Digest.String()), pf: l.core.pf}
	return pr, nil
}

type pushReader struct {
	f     io.ReadCloser
	n     int64
	total int64
	id    string
	pf    progress.Func
}

func (p *pushReader) Read(b []byte) (int, error) {
	n, err := p.f.Read(b)
	p.n += int64(n)
	if n > 0 {
		p.pf(progress.Event{ID: p.id, Status: progress.StatusPushing, Current: p.n, Total: p.total})
	}
	return n, err
}

func (p *pushReader) Close() error { return p.f.Close() }
