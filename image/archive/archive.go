// Package archive moves images between hako's store and files: docker
// save/load archives (manifest.json) and OCI image layouts, as directories
// or tar archives, both ways, so images travel between hako, docker, skopeo,
// umoci and containerd.
//
// Save writes one tar that is at once a docker archive and an OCI layout
// (as docker 25+ does): blobs are stored once under blobs/sha256/, listed by
// index.json (OCI) and manifest.json (docker), so `docker load`,
// `skopeo copy oci-archive:` and `skopeo copy docker-archive:` all read it.
package archive

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/hako-project/hako/image"
	"github.com/hako-project/hako/image/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Annotations naming images in an OCI index, as containerd and docker use.
const (
	AnnotationImageName = "io.containerd.image.name"
	AnnotationRefName   = ocispec.AnnotationRefName
)

// dockerManifestEntry is one element of docker's manifest.json.
type dockerManifestEntry struct {
	Config   string   `json:"Config"`
	RepoTags []string `json:"RepoTags"`
	Layers   []string `json:"Layers"`
}

// sink receives the files of a layout: a tar stream or a directory.
type sink interface {
	dir(name string) error
	file(name string, size int64, r io.Reader) error
}

// fixedTime keeps saved archives byte-identical across runs.
var fixedTime = time.Unix(0, 0).UTC()

type tarSink struct{ tw *tar.Writer }

func (t tarSink) dir(name string) error {
	return t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, ModTime: fixedTime, Format: tar.FormatPAX})
}

func (t tarSink) file(name string, size int64, r io.Reader) error {
	if err := t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size, ModTime: fixedTime, Format: tar.FormatPAX}); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if _, err := io.Copy(t.tw, r); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

type dirSink struct{ root string }

func (d dirSink) dir(name string) error {
	return os.MkdirAll(filepath.Join(d.root, name), 0o755)
}

func (d dirSink) file(name string, size int64, r io.Reader) error {
	p := filepath.Join(d.root, name)
	if _, err := os.Stat(p); err == nil && filepath.Dir(name) == "blobs/sha256" {
		return nil // content-addressed: already there
	}
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("create %s: %w", p, err)
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", p, err)
	}
	return os.Rename(tmp, p)
}

type savedImage struct {
	img   *image.Image
	names []reference.Reference
}

// collect resolves refs; a name saves that name, an ID saves the image
// without names (docker does the same).
func collect(ctx context.Context, s *image.Store, refs []string) ([]savedImage, error) {
	var out []savedImage
	byID := map[digest.Digest]int{}
	for _, ref := range refs {
		img, err := s.Resolve(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("save: %w", err)
		}
		i, ok := byID[img.ID]
		if !ok {
			i = len(out)
			byID[img.ID] = i
			out = append(out, savedImage{img: img})
		}
		if r, err := reference.Parse(ref); err == nil && r.Digest == "" {
			for _, n := range img.Names {
				if n == r.String() {
					out[i].names = append(out[i].names, r)
				}
			}
		}
	}
	return out, nil
}

func writeLayout(ctx context.Context, s *image.Store, imgs []savedImage, sk sink, withDocker bool) error {
	if err := sk.file(ocispec.ImageLayoutFile, int64(len(layoutFile)), stringsReader(layoutFile)); err != nil {
		return err
	}
	for _, d := range []string{"blobs", "blobs/sha256"} {
		if err := sk.dir(d); err != nil {
			return err
		}
	}
	written := map[digest.Digest]bool{}
	writeBlob := func(d digest.Digest) error {
		if written[d] {
			return nil
		}
		written[d] = true
		f, err := s.Content().Open(d)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		return sk.file("blobs/sha256/"+d.Encoded(), fi.Size(), f)
	}
	idx := ocispec.Index{Versioned: specsVersioned(), MediaType: ocispec.MediaTypeImageIndex}
	var dockerManifest []dockerManifestEntry
	for _, si := range imgs {
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, l := range si.img.Layers {
			if err := writeBlob(l.Digest); err != nil {
				return fmt.Errorf("save image %s: %w", si.img.ID, err)
			}
		}
		for _, d := range []digest.Digest{si.img.Config.Digest, si.img.Manifest.Digest} {
			if err := writeBlob(d); err != nil {
				return fmt.Errorf("save image %s: %w", si.img.ID, err)
			}
		}
		desc := ocispec.Descriptor{MediaType: si.img.Manifest.MediaType, Digest: si.img.Manifest.Digest, Size: si.img.Manifest.Size}
		plat := si.img.Platform
		desc.Platform = &plat
		if len(si.names) == 0 {
			idx.Manifests = append(idx.Manifests, desc)
		}
		entry := dockerManifestEntry{Config: "blobs/sha256/" + si.img.Config.Digest.Encoded(), RepoTags: []string{}}
		for _, n := range si.names {
			d := desc
			d.Annotations = map[string]string{AnnotationImageName: n.String(), AnnotationRefName: n.Tag}
			idx.Manifests = append(idx.Manifests, d)
			entry.RepoTags = append(entry.RepoTags, n.FamiliarString())
		}
		for _, l := range si.img.Layers {
			entry.Layers = append(entry.Layers, "blobs/sha256/"+l.Digest.Encoded())
		}
		dockerManifest = append(dockerManifest, entry)
	}
	ib, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	if err := sk.file(ocispec.ImageIndexFile, int64(len(ib)), bytesReader(ib)); err != nil {
		return err
	}
	if withDocker {
		mb, err := json.Marshal(dockerManifest)
		if err != nil {
			return err
		}
		if err := sk.file("manifest.json", int64(len(mb)), bytesReader(mb)); err != nil {
			return err
		}
	}
	return nil
}

const layoutFile = `{"imageLayoutVersion":"1.0.0"}`

// Save writes the images refs name (names or IDs) to w as a tar that is
// both a docker save archive and an OCI image layout.
func Save(ctx context.Context, s *image.Store, refs []string, w io.Writer) error {
	imgs, err := collect(ctx, s, refs)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	if err := writeLayout(ctx, s, imgs, tarSink{tw}, true); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return nil
}

// WriteOCILayout writes the images refs name into dir as an OCI image
// layout directory (created if missing). Existing blobs are kept; index.json
// is replaced.
func WriteOCILayout(ctx context.Context, s *image.Store, refs []string, dir string) error {
	imgs, err := collect(ctx, s, refs)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("oci layout %s: %w", dir, err)
	}
	if err := writeLayout(ctx, s, imgs, dirSink{dir}, false); err != nil {
		return fmt.Errorf("oci layout %s: %w", dir, err)
	}
	return nil
}
