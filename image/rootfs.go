package image

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/hako-project/hako/image/layer"
	"github.com/hako-project/hako/image/progress"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ImportOptions describe the image ImportRootfs makes, like the flags and
// --change instructions of docker import.
type ImportOptions struct {
	// Ref names the image ("" leaves it untagged, as docker import does).
	Ref        string
	Entrypoint []string
	Cmd        []string
	Env        []string
	WorkingDir string
	User       string
	Labels     map[string]string
	// Volumes are the image's VOLUME list (container paths).
	Volumes []string
	// Platform defaults to the host's.
	Platform *ocispec.Platform
	// Created is the creation time (now if zero). Fix it for a
	// reproducible image.
	Created time.Time
	// Comment is the history comment ("Imported from -" if empty).
	Comment string
	// Compression of the stored layer (gzip if unset).
	Compression *layer.Compression
	Progress    progress.Func
}

func hostPlatform() ocispec.Platform {
	p := ocispec.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	if runtime.GOARCH == "arm64" {
		p.Variant = "v8"
	}
	return p
}

// ImportRootfs makes a one-layer image from a root filesystem tarball
// (plain, gzip or zstd), as docker import does, and unpacks it. A tarball
// Apply refuses leaves nothing behind.
func (s *Store) ImportRootfs(ctx context.Context, r io.Reader, opts ImportOptions) (img *Image, err error) {
	tr, _, err := layer.Decompress(r)
	if err != nil {
		return nil, fmt.Errorf("import rootfs: %w", err)
	}
	defer tr.Close()
	lease, err := s.NewLease(ctx)
	if err != nil {
		return nil, err
	}
	defer func() {
		if endErr := lease.End(ctx, err != nil); endErr != nil && err == nil {
			err = endErr
		}
	}()
	c := layer.Gzip
	if opts.Compression != nil {
		c = *opts.Compression
	}
	ldesc, diffID, err := s.storeLayer(lease, tr, c, false)
	if err != nil {
		return nil, fmt.Errorf("import rootfs: %w", err)
	}
	created := opts.Created
	if created.IsZero() {
		created = time.Now().UTC()
	}
	plat := hostPlatform()
	if opts.Platform != nil {
		plat = *opts.Platform
	}
	comment := opts.Comment
	if comment == "" {
		comment = "Imported from -"
	}
	cfg := &ocispec.Image{
		Created:  &created,
		Platform: plat,
		Config: ocispec.ImageConfig{
			Entrypoint: opts.Entrypoint, Cmd: opts.Cmd, Env: opts.Env, WorkingDir: opts.WorkingDir,
			User: opts.User, Labels: opts.Labels, Volumes: volumeSet(opts.Volumes),
		},
		RootFS:  ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
		History: []ocispec.History{{Created: &created, Comment: comment}},
	}
	img, err = s.writeImage(ctx, lease, cfg, nil, []ocispec.Descriptor{ldesc}, ocispec.MediaTypeImageManifest, opts.Ref, "", opts.Progress)
	if err != nil {
		return nil, fmt.Errorf("import rootfs: %w", err)
	}
	return img, nil
}

// volumeSet is the config's form of a VOLUME list (nil when empty).
func volumeSet(vs []string) map[string]struct{} {
	if len(vs) == 0 {
		return nil
	}
	m := make(map[string]struct{}, len(vs))
	for _, v := range vs {
		m[v] = struct{}{}
	}
	return m
}
