package archive

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/image"
	"github.com/hako-project/hako/image/layer"
	"github.com/hako-project/hako/image/progress"
	"github.com/hako-project/hako/image/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// LoadOptions adjust Load and LoadOCILayout.
type LoadOptions struct {
	// Name is the repository for OCI layout entries whose ref.name
	// annotation is only a tag (as umoci and skopeo write), e.g. "myapp"
	// turns "v1" into myapp:v1. Without it such images load untagged.
	Name string
	// Platform picks from nested indexes (the host's if nil).
	Platform *ocispec.Platform
	Progress progress.Func
}

// maxMetaFile bounds the JSON files of an archive kept in memory.
const maxMetaFile = 16 << 20

// loader holds what a tar stream carried: blobs went into the store under
// a lease, small metadata files stay in memory.
type loader struct {
	s     *image.Store
	lease *image.Lease
	files map[string][]byte        // small files by cleaned path
	blobs map[string]digest.Digest // other files (layers) by path
	links map[string]string        // symlink path -> target path
	opts  LoadOptions
}

func cleanPath(p string) (string, error) {
	c := path.Clean("/" + p)[1:]
	if c == "" || strings.Contains(p, "..") {
		return "", fmt.Errorf("%w: archive entry %q: bad path", errdefs.ErrInvalid, p)
	}
	return c, nil
}

// Load reads a docker save archive or an OCI layout archive (plain, gzip
// or zstd) into the store and returns the images it named. Every blob is
// verified; anything the archive carried that no loaded image uses is
// removed again, and a failed load leaves the store as it was.
func Load(ctx context.Context, s *image.Store, r io.Reader, opts LoadOptions) (imgs []*image.Image, err error) {
	if opts.Progress == nil {
		opts.Progress = progress.Nop
	}
	tr, _, err := layer.Decompress(r)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	defer tr.Close()
	lease, err := s.NewLease(ctx)
	if err != nil {
		return nil, err
	}
	defer func() {
		// Remove what no image kept (other platforms, stray files), and
		// everything on failure.
		if endErr := lease.End(ctx, true); endErr != nil && err == nil {
			err = endErr
		}
	}()
	l := &loader{s: s, lease: lease, files: map[string][]byte{}, blobs: map[string]digest.Digest{}, links: map[string]string{}, opts: opts}
	t := tar.NewReader(tr)
	for {
		hdr, err := t.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("load: %w: read archive: %v", errdefs.ErrInvalid, err)
		}
		name, err := cleanPath(hdr.Name)
		if err != nil {
			if hdr.Typeflag == tar.TypeDir && path.Clean(hdr.Name) == "." {
				continue
			}
			return nil, fmt.Errorf("load: %w", err)
		}
		switch hdr.Typeflag {
		case tar.TypeSymlink:
			l.links[name] = path.Join(path.Dir(name), hdr.Linkname)
			continue
		case tar.TypeLink:
			l.links[name] = path.Clean(hdr.Linkname)
			continue
		case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck
		default:
			continue
		}
		if err := l.ingest(ctx, name, hdr.Size, t); err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
	}
	return l.interpret(ctx)
}

func (l *loader) ingest(ctx context.Context, name string, size int64, r io.Reader) error {
	var expected digest.Digest
	if dir, file := path.Split(name); strings.HasSuffix(dir, "blobs/sha256/") {
		expected = digest.NewDigestFromEncoded(digest.SHA256, file)
		if err := expected.Validate(); err != nil {
			return fmt.Errorf("%w: archive entry %s: not a sha256 blob name", errdefs.ErrInvalid, name)
		}
	} else if size <= maxMetaFile && (strings.HasSuffix(name, ".json") || path.Base(name) == "repositories" || path.Base(name) == "VERSION" || path.Base(name) == "json" || name == ocispec.ImageLayoutFile) {
		b, err := io.ReadAll(io.LimitReader(r, size))
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		l.files[name] = b
		if expected == "" {
			// Also a blob: docker archives name configs <hex>.json.
			d := digest.FromBytes(b)
			if _, err := l.lease.WriteBlob(d, b); err != nil {
				return err
			}
			l.blobs[name] = d
		}
		return nil
	}
	w, err := l.s.Content().Writer(expected, size)
	if err != nil {
		return err
	}
	defer w.Close()
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	info, err := l.lease.CommitBlob(w)
	if err != nil {
		return fmt.Errorf("archive entry %s: %w", name, err)
	}
	l.blobs[name] = info.Digest
	return nil
}

func (l *loader) resolve(p string) string {
	for i := 0; i < 10; i++ {
		t, ok := l.links[p]
		if !ok {
			return p
		}
		p = t
	}
	return p
}

func (l *loader) blobAt(p string) (digest.Digest, error) {
	p = l.resolve(p)
	if d, ok := l.blobs[p]; ok {
		return d, nil
	}
	return "", fmt.Errorf("%w: archive has no file %s", errdefs.ErrInvalid, p)
}

func (l *loader) interpret(ctx context.Context) ([]*image.Image, error) {
	open := func(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
		return nil, fmt.Errorf("%w: blob %s is not in the archive", errdefs.ErrInvalid, d.Digest)
	}
	// Names docker's manifest.json gives, by config digest.
	dockerNames := map[digest.Digest][]string{}
	var dockerEntries []dockerManifestEntry
	if b, ok := l.files["manifest.json"]; ok {
		if err := json.Unmarshal(b, &dockerEntries); err != nil {
			return nil, fmt.Errorf("load: %w: manifest.json: %v", errdefs.ErrInvalid, err)
		}
		for _, e := range dockerEntries {
			d, err := l.blobAt(e.Config)
			if err != nil {
				return nil, fmt.Errorf("load: manifest.json: %w", err)
			}
			dockerNames[d] = append(dockerNames[d], e.RepoTags...)
		}
	}
	if b, ok := l.files[ocispec.ImageIndexFile]; ok {
		return loadIndex(ctx, l.s, b, open, l.opts, dockerNames)
	}
	if dockerEntries == nil {
		return nil, fmt.Errorf("load: %w: neither index.json nor manifest.json in the archive (not a docker or OCI image archive)", errdefs.ErrInvalid)
	}
	var out []*image.Image
	for _, e := range dockerEntries {
		img, err := l.loadDockerEntry(ctx, e)
		if err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
		out = append(out, img)
	}
	return out, nil
}

// loadDockerEntry turns a classic docker save entry (no manifest in the
// archive) into an OCI manifest over the layer files as they are.
func (l *loader) loadDockerEntry(ctx context.Context, e dockerManifestEntry) (*image.Image, error) {
	cd, err := l.blobAt(e.Config)
	if err != nil {
		return nil, err
	}
	cb, err := l.s.Content().ReadAll(cd, maxMetaFile)
	if err != nil {
		return nil, err
	}
	man := ocispec.Manifest{
		Versioned: specsVersioned(),
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cd, Size: int64(len(cb))},
		Layers:    []ocispec.Descriptor{},
	}
	for _, lp := range e.Layers {
		ld, err := l.blobAt(lp)
		if err != nil {
			return nil, err
		}
		info, err := l.s.Content().Info(ld)
		if err != nil {
			return nil, err
		}
		c, err := blobCompression(l.s, ld)
		if err != nil {
			return nil, err
		}
		man.Layers = append(man.Layers, ocispec.Descriptor{MediaType: layer.OCIMediaType(c), Digest: ld, Size: info.Size})
	}
	mb, err := json.Marshal(man)
	if err != nil {
		return nil, err
	}
	img, err := l.s.Fetch(ctx, image.FetchRequest{
		ManifestDesc: ocispec.Descriptor{MediaType: man.MediaType, Digest: digest.FromBytes(mb), Size: int64(len(mb))},
		Manifest:     mb,
		Register:     image.RegisterOptions{Names: e.RepoTags},
		Progress:     l.opts.Progress,
	})
	if err != nil {
		return nil, err
	}
	announce(l.opts.Progress, img, e.RepoTags)
	return img, nil
}

func announce(pf progress.Func, img *image.Image, names []string) {
	if len(names) == 0 {
		pf(progress.Event{Status: "Loaded image ID: " + img.ID.String()})
	}
	for _, n := range names {
		if r, err := reference.Parse(n); err == nil {
			n = r.FamiliarString()
		}
		pf(progress.Event{Status: "Loaded image: " + n})
	}
}

func blobCompression(s *image.Store, d digest.Digest) (layer.Compression, error) {
	f, err := s.Content().Open(d)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return layer.Detect(bufio.NewReaderSize(f, 16))
}

// loadIndex loads every image an OCI index.json lists (picking one platform
// from nested indexes), naming them from their annotations.
func loadIndex(ctx context.Context, s *image.Store, b []byte, open image.BlobOpener, opts LoadOptions, extra map[digest.Digest][]string) ([]*image.Image, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("load: %w: index.json: %v", errdefs.ErrInvalid, err)
	}
	if opts.Progress == nil {
		opts.Progress = progress.Nop
	}
	// Several entries may name one manifest; load it once with all names.
	type item struct {
		desc  ocispec.Descriptor
		names []string
	}
	var items []*item
	byDigest := map[digest.Digest]*item{}
	for _, d := range idx.Manifests {
		desc := d
		if desc.MediaType == ocispec.MediaTypeImageIndex || desc.MediaType == image.MediaTypeDockerManifestList {
			child, err := pickFromIndex(ctx, s, desc, open, opts)
			if err != nil {
				return nil, err
			}
			child.Annotations = desc.Annotations
			desc = child
		}
		it, ok := byDigest[desc.Digest]
		if !ok {
			it = &item{desc: desc}
			byDigest[desc.Digest] = it
			items = append(items, it)
		}
		if n := nameOf(desc.Annotations, opts.Name); n != "" {
			it.names = append(it.names, n)
		}
	}
	var out []*image.Image
	for _, it := range items {
		mb, err := readBlob(ctx, s, it.desc, open)
		if err != nil {
			return nil, fmt.Errorf("load: manifest %s: %w", it.desc.Digest, err)
		}
		m, err := image.ParseManifest(it.desc.MediaType, mb)
		if err != nil {
			return nil, fmt.Errorf("load: manifest %s: %w", it.desc.Digest, err)
		}
		names := append(it.names, extra[m.Config.Digest]...)
		img, err := s.Fetch(ctx, image.FetchRequest{
			ManifestDesc: ocispec.Descriptor{MediaType: m.MediaType, Digest: it.desc.Digest, Size: int64(len(mb))},
			Manifest:     mb,
			Open:         open,
			Register:     image.RegisterOptions{Names: names},
			Progress:     opts.Progress,
		})
		if err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
		announce(opts.Progress, img, names)
		out = append(out, img)
	}
	return out, nil
}

// nameOf returns the image name an index entry carries, or "". The
// containerd name annotation wins when its tag agrees with ref.name; tools
// like umoci copy it onto new tags, so on disagreement ref.name (a full
// reference, or a tag for repo) decides.
func nameOf(ann map[string]string, repo string) string {
	ref := ann[AnnotationRefName]
	full, ferr := reference.Parse(ann[AnnotationImageName])
	if ann[AnnotationImageName] != "" && ferr == nil && (ref == "" || full.Tag == ref) {
		return full.String()
	}
	if ref == "" {
		return ""
	}
	// A full reference (skopeo oci:dir:name:tag writes those) or a tag.
	if strings.ContainsAny(ref, "/:@") {
		if r, err := reference.Parse(ref); err == nil {
			return r.String()
		}
	}
	if repo != "" {
		if r, err := reference.Parse(repo + ":" + ref); err == nil {
			return r.String()
		}
	}
	if ann[AnnotationImageName] != "" && ferr == nil {
		if r, err := reference.Parse(full.Name() + ":" + ref); err == nil {
			return r.String()
		}
	}
	return ""
}

func readBlob(ctx context.Context, s *image.Store, d ocispec.Descriptor, open image.BlobOpener) ([]byte, error) {
	if s.Content().Has(d.Digest) {
		return s.Content().ReadAll(d.Digest, maxMetaFile)
	}
	rc, err := open(ctx, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxMetaFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxMetaFile {
		return nil, fmt.Errorf("%w: blob %s too large for a manifest", errdefs.ErrInvalid, d.Digest)
	}
	if got := digest.FromBytes(b); got != d.Digest {
		return nil, fmt.Errorf("blob %s: %w: bytes hash to %s", d.Digest, errdefs.ErrDataLoss, got)
	}
	return b, nil
}

func pickFromIndex(ctx context.Context, s *image.Store, d ocispec.Descriptor, open image.BlobOpener, opts LoadOptions) (ocispec.Descriptor, error) {
	b, err := readBlob(ctx, s, d, open)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("load: index %s: %w", d.Digest, err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("load: %w: index %s: %v", errdefs.ErrInvalid, d.Digest, err)
	}
	want := ocispec.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	if opts.Platform != nil {
		want = *opts.Platform
	}
	for _, m := range idx.Manifests {
		if m.Platform != nil && m.Platform.OS == want.OS && m.Platform.Architecture == want.Architecture &&
			(want.Variant == "" || m.Platform.Variant == "" || m.Platform.Variant == want.Variant) {
			return m, nil
		}
	}
	return ocispec.Descriptor{}, fmt.Errorf("load: %w: index %s has no manifest for %s/%s", errdefs.ErrNotFound, d.Digest, want.OS, want.Architecture)
}

// LoadOCILayout loads the images of an OCI image layout directory (as
// skopeo, umoci and buildkit write), verifying every blob as it is copied.
func LoadOCILayout(ctx context.Context, s *image.Store, dir string, opts LoadOptions) ([]*image.Image, error) {
	lb, err := os.ReadFile(filepath.Join(dir, ocispec.ImageLayoutFile))
	if err != nil {
		return nil, fmt.Errorf("load %s: %w: not an OCI layout: %v", dir, errdefs.ErrInvalid, err)
	}
	var lay ocispec.ImageLayout
	if err := json.Unmarshal(lb, &lay); err != nil || lay.Version == "" {
		return nil, fmt.Errorf("load %s: %w: bad oci-layout file", dir, errdefs.ErrInvalid)
	}
	ib, err := os.ReadFile(filepath.Join(dir, ocispec.ImageIndexFile))
	if err != nil {
		return nil, fmt.Errorf("load %s: %w: %v", dir, errdefs.ErrInvalid, err)
	}
	open := func(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
		if err := d.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("%w: digest %q", errdefs.ErrInvalid, d.Digest)
		}
		f, err := os.Open(filepath.Join(dir, "blobs", d.Digest.Algorithm().String(), d.Digest.Encoded()))
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("blob %s: %w in %s", d.Digest, errdefs.ErrNotFound, dir)
		}
		return f, err
	}
	imgs, err := loadIndex(ctx, s, ib, open, opts, nil)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", dir, err)
	}
	return imgs, nil
}
