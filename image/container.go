package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"

	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/image/layer"
	"github.com/hako-project/hako/image/progress"
	"github.com/hako-project/hako/image/reference"
	"github.com/hako-project/hako/snapshot"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PrepareContainer creates the writable snapshot key for a container of
// image refOrID (unpacking layers first if GC or an import left them
// packed) and returns its mounts: overlay with the image's layers as lower
// dirs, or a bind mount for an image without layers.
func (s *Store) PrepareContainer(ctx context.Context, key, refOrID string) (*Image, []snapshot.Mount, error) {
	img, err := s.Resolve(ctx, refOrID)
	if err != nil {
		return nil, nil, err
	}
	if img.ChainID != "" {
		if _, err := s.snaps.Stat(ctx, img.ChainID.String()); errors.Is(err, errdefs.ErrNotFound) {
			if err := s.Unpack(ctx, img, nil); err != nil {
				return nil, nil, err
			}
		} else if err != nil {
			return nil, nil, err
		}
	}
	// gcMu shared: GC must not take the chain between the check above and
	// the new snapshot that makes it live.
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	mounts, err := s.snaps.Prepare(ctx, key, s.containerParent(ctx, img), map[string]string{LabelImage: img.ID.String()}) // initlayer.go
	if err != nil {
		return nil, nil, fmt.Errorf("container snapshot %s of image %s: %w", key, img.ID, err)
	}
	return img, mounts, nil
}

// RemoveSnapshot removes a container's snapshot. Its image layers stay
// until their image is removed and GC runs.
func (s *Store) RemoveSnapshot(ctx context.Context, key string) error {
	return s.snaps.Remove(ctx, key)
}

// CommitOptions describe the image CommitContainer makes.
type CommitOptions struct {
	// Ref names the new image ("" leaves it untagged).
	Ref string
	// Config replaces the runtime config of the parent image, if set.
	Config *ocispec.ImageConfig
	// Author and Comment go to the config and its history entry.
	Author  string
	Comment string
	// CreatedBy is the history line ("/bin/sh -c ..." for a build step).
	CreatedBy string
	// Created is the image's creation time (now if zero).
	Created time.Time
	// Healthcheck is docker's HEALTHCHECK, an extension of the OCI config
	// (nil: none).
	Healthcheck *dockerspec.HealthcheckConfig
	// OnBuild and Shell are docker's ONBUILD triggers and SHELL, its other
	// extensions.
	OnBuild, Shell []string
}

// CommitContainer turns the changes in container snapshot key into a new
// layer on top of the image the snapshot was prepared from, records the
// new image and unpacks the layer, leaving the container's snapshot as it
// is (docker commit of a running container). The layer is a gzip tar with
// docker/OCI whiteouts, readable by any tool.
func (s *Store) CommitContainer(ctx context.Context, key string, opts CommitOptions) (img *Image, err error) {
	info, err := s.snaps.Stat(ctx, key)
	if err != nil {
		return nil, err
	}
	if info.Kind != snapshot.Active {
		return nil, fmt.Errorf("commit %s: %w: snapshot is %s", key, errdefs.ErrInvalid, info.Kind)
	}
	var parent *Image
	var pcfg *ocispec.Image
	var pmediaType string
	if id := info.Labels[LabelImage]; id != "" {
		if parent, err = s.Resolve(ctx, id); err != nil {
			return nil, fmt.Errorf("commit %s: parent image: %w", key, err)
		}
		if pcfg, _, err = s.ReadConfig(ctx, parent); err != nil {
			return nil, err
		}
		pmediaType = parent.Manifest.MediaType
	} else {
		pcfg = &ocispec.Image{Platform: hostPlatform(), RootFS: ocispec.RootFS{Type: "layers"}}
	}
	upper, err := s.snaps.UpperDir(ctx, key)
	if err != nil {
		return nil, err
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
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(layer.WriteDiff(ctx, upper, pw)) }()
	ldesc, diffID, err := s.storeLayer(lease, pr, layer.Gzip, pmediaType == MediaTypeDockerManifest)
	pr.CloseWithError(err)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", key, err)
	}
	cfg := *pcfg
	created := opts.Created
	if created.IsZero() {
		created = time.Now().UTC()
	}
	cfg.Created = &created
	if opts.Author != "" {
		cfg.Author = opts.Author
	}
	if opts.Config != nil {
		cfg.Config = *opts.Config
	}
	cfg.RootFS.DiffIDs = append(append([]digest.Digest{}, pcfg.RootFS.DiffIDs...), diffID)
	cfg.History = append(append([]ocispec.History{}, pcfg.History...), ocispec.History{
		Created: &created, CreatedBy: opts.CreatedBy, Author: opts.Author, Comment: opts.Comment,
	})
	var layers []ocispec.Descriptor
	if parent != nil {
		layers = append(layers, parent.Layers...)
	}
	layers = append(layers, ldesc)
	var ext *dockerspec.DockerOCIImageConfigExt
	if opts.Healthcheck != nil || len(opts.OnBuild) > 0 || len(opts.Shell) > 0 {
		ext = &dockerspec.DockerOCIImageConfigExt{Healthcheck: opts.Healthcheck, OnBuild: opts.OnBuild, Shell: opts.Shell}
	}
	var parentID digest.Digest
	if parent != nil {
		parentID = parent.ID
	}
	return s.writeImage(ctx, lease, &cfg, ext, layers, pmediaType, opts.Ref, parentID, nil)
}

// storeLayer compresses the tar stream r into a blob and returns its
// descriptor and diff_id.
func (s *Store) storeLayer(lease *Lease, r io.Reader, c layer.Compression, docker bool) (ocispec.Descriptor, digest.Digest, error) {
	w, err := s.content.Writer("", -1)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	defer w.Close()
	zw, err := layer.Compress(w, c)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	dh := digest.SHA256.Digester()
	if _, err := io.Copy(io.MultiWriter(zw, dh.Hash()), r); err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("write layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("compress layer: %w", err)
	}
	info, err := lease.CommitBlob(w)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	mt := layer.OCIMediaType(c)
	if docker {
		mt = map[layer.Compression]string{layer.Gzip: layer.MediaTypeDockerLayerGzip, layer.Zstd: layer.MediaTypeDockerLayerZstd, layer.Uncompressed: layer.MediaTypeDockerLayer}[c]
	}
	return ocispec.Descriptor{MediaType: mt, Digest: info.Digest, Size: info.Size}, dh.Digest(), nil
}

// writeImage stores config (with docker's extensions ext, if any) and
// manifest for layers (all in the store), registers the image under ref
// (with parent, the image a commit was made from) and unpacks it.
func (s *Store) writeImage(ctx context.Context, lease *Lease, cfg *ocispec.Image, ext *dockerspec.DockerOCIImageConfigExt, layers []ocispec.Descriptor, manifestType, ref string, parent digest.Digest, pf progress.Func) (*Image, error) {
	var cb []byte
	var err error
	if ext != nil {
		// docker's extensions (HEALTHCHECK, ONBUILD, SHELL) sit in the
		// config beside the OCI fields.
		cb, err = json.Marshal(dockerspec.DockerOCIImage{Image: *cfg,
			Config: dockerspec.DockerOCIImageConfig{ImageConfig: cfg.Config, DockerOCIImageConfigExt: *ext}})
	} else {
		cb, err = json.Marshal(cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("encode image config: %w", err)
	}
	cdesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cb), Size: int64(len(cb))}
	if manifestType == MediaTypeDockerManifest {
		cdesc.MediaType = MediaTypeDockerConfig
	} else {
		manifestType = ocispec.MediaTypeImageManifest
	}
	if _, err := lease.WriteBlob(cdesc.Digest, cb); err != nil {
		return nil, err
	}
	man := struct {
		SchemaVersion int                  `json:"schemaVersion"`
		MediaType     string               `json:"mediaType"`
		Config        ocispec.Descriptor   `json:"config"`
		Layers        []ocispec.Descriptor `json:"layers"`
	}{2, manifestType, cdesc, layers}
	if man.Layers == nil {
		man.Layers = []ocispec.Descriptor{}
	}
	mb, err := json.Marshal(man)
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	mdesc := ocispec.Descriptor{MediaType: manifestType, Digest: digest.FromBytes(mb), Size: int64(len(mb))}
	if _, err := lease.WriteBlob(mdesc.Digest, mb); err != nil {
		return nil, err
	}
	opts := RegisterOptions{Parent: parent}
	if ref != "" {
		r, err := reference.Parse(ref)
		if err != nil {
			return nil, err
		}
		opts.Names = []string{r.String()}
	}
	// Unpack before the image is named, under the same lease, so a layer
	// Apply refuses undoes the whole import and moves no name.
	if err := s.fetchLayers(ctx, lease, layers, cfg.RootFS.DiffIDs, nil, orNop(pf), true); err != nil {
		return nil, err
	}
	return s.Register(ctx, mdesc, opts)
}

func orNop(pf progress.Func) progress.Func {
	if pf == nil {
		return progress.Nop
	}
	return pf
}
