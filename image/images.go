package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/image/layer"
	"github.com/hako-project/hako/image/metadata"
	"github.com/hako-project/hako/image/reference"
	"github.com/hako-project/hako/snapshot"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Docker schema2 media types (OCI's are in ocispec).
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
)

// maxJSONBlob bounds manifests and configs we parse (docker's limit is 4MB
// for manifests; configs with long history can be bigger).
const maxJSONBlob = 16 << 20

// Image is an image as the engine sees it.
type Image struct {
	// ID is the digest of the config, docker's image ID.
	ID digest.Digest
	// Names are the fully qualified references pointing at the image, tags
	// and digests ("docker.io/library/busybox:latest").
	Names       []string
	RepoDigests []string
	Manifest    ocispec.Descriptor
	Config      ocispec.Descriptor
	Layers      []ocispec.Descriptor
	DiffIDs     []digest.Digest
	// ChainID names the snapshot holding the image's top layer ("" for an
	// image without layers).
	ChainID  digest.Digest
	Platform ocispec.Platform
	Created  time.Time
	// Parent is the image a commit made this one from ("" otherwise).
	Parent digest.Digest
	// Size is the sum of the compressed layer sizes, the image's size on
	// a registry (CRI's image size, as containerd's). Docker's API shows
	// the unpacked sizes instead (Store.UnpackedSizes).
	Size int64
}

// Tags returns the tag names (not digests) among Names.
func (i *Image) Tags() []string {
	var out []string
	for _, n := range i.Names {
		if !strings.Contains(n, "@") {
			out = append(out, n)
		}
	}
	return out
}

func fromRecord(rec metadata.Image, names []string) *Image {
	img := &Image{
		ID: rec.ID, Manifest: rec.Manifest, Config: rec.Config, Layers: rec.Layers, DiffIDs: rec.DiffIDs,
		Platform: rec.Platform, Created: rec.Created, RepoDigests: rec.RepoDigests, Parent: rec.Parent,
	}
	for _, n := range names {
		if strings.Contains(n, "@") {
			if !containsStr(img.RepoDigests, n) {
				img.RepoDigests = append(img.RepoDigests, n)
			}
			continue
		}
		img.Names = append(img.Names, n)
	}
	for _, n := range names {
		if strings.Contains(n, "@") {
			img.Names = append(img.Names, n)
		}
	}
	if len(rec.DiffIDs) > 0 {
		img.ChainID = identity.ChainID(rec.DiffIDs)
	}
	for _, l := range rec.Layers {
		img.Size += l.Size
	}
	return img
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ParsedManifest is an image manifest with the parts hako needs.
type ParsedManifest struct {
	MediaType string
	Config    ocispec.Descriptor
	Layers    []ocispec.Descriptor
}

// ParseManifest checks that b is an OCI or docker schema2 image manifest of
// media type mt whose config and layers hako can use.
func ParseManifest(mt string, b []byte) (*ParsedManifest, error) {
	var m struct {
		SchemaVersion int                  `json:"schemaVersion"`
		MediaType     string               `json:"mediaType"`
		Config        ocispec.Descriptor   `json:"config"`
		Layers        []ocispec.Descriptor `json:"layers"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: decode manifest: %v", errdefs.ErrInvalid, err)
	}
	if mt == "" {
		mt = m.MediaType
	}
	if mt == "" {
		mt = ocispec.MediaTypeImageManifest // OCI allows omitting it
	}
	switch mt {
	case ocispec.MediaTypeImageManifest, MediaTypeDockerManifest:
	case ocispec.MediaTypeImageIndex, MediaTypeDockerManifestList:
		return nil, fmt.Errorf("%w: %s is an index, not an image manifest", errdefs.ErrInvalid, mt)
	default:
		return nil, fmt.Errorf("%w: unsupported manifest media type %q", errdefs.ErrInvalid, mt)
	}
	if m.SchemaVersion != 2 {
		return nil, fmt.Errorf("%w: manifest schemaVersion %d (only 2 is supported)", errdefs.ErrInvalid, m.SchemaVersion)
	}
	switch m.Config.MediaType {
	case ocispec.MediaTypeImageConfig, MediaTypeDockerConfig:
	default:
		return nil, fmt.Errorf("%w: config media type %q is not a container image config (an artifact?)", errdefs.ErrInvalid, m.Config.MediaType)
	}
	if err := m.Config.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("%w: config digest %q: %v", errdefs.ErrInvalid, m.Config.Digest, err)
	}
	for i, l := range m.Layers {
		if !layer.IsLayerMediaType(l.MediaType) {
			return nil, fmt.Errorf("%w: layer %d (%s): unsupported media type %q", errdefs.ErrInvalid, i, l.Digest, l.MediaType)
		}
		if err := l.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("%w: layer %d digest %q: %v", errdefs.ErrInvalid, i, l.Digest, err)
		}
		if l.Size < 0 {
			return nil, fmt.Errorf("%w: layer %d (%s): negative size", errdefs.ErrInvalid, i, l.Digest)
		}
	}
	return &ParsedManifest{MediaType: mt, Config: m.Config, Layers: m.Layers}, nil
}

// ParseConfig decodes an image config and checks it matches layerCount.
func ParseConfig(b []byte, layerCount int) (*ocispec.Image, error) {
	var c ocispec.Image
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%w: decode image config: %v", errdefs.ErrInvalid, err)
	}
	if c.RootFS.Type != "layers" {
		return nil, fmt.Errorf("%w: image config rootfs type %q, want \"layers\"", errdefs.ErrInvalid, c.RootFS.Type)
	}
	if len(c.RootFS.DiffIDs) != layerCount {
		return nil, fmt.Errorf("%w: image config lists %d diff_ids for %d layers", errdefs.ErrInvalid, len(c.RootFS.DiffIDs), layerCount)
	}
	for i, d := range c.RootFS.DiffIDs {
		if err := d.Validate(); err != nil {
			return nil, fmt.Errorf("%w: diff_id %d %q: %v", errdefs.ErrInvalid, i, d, err)
		}
	}
	return &c, nil
}

// record builds the metadata record of an image from its manifest and
// config bytes, which must already be in the content store.
func (s *Store) record(mdesc ocispec.Descriptor) (metadata.Image, error) {
	mb, err := s.content.ReadAll(mdesc.Digest, maxJSONBlob)
	if err != nil {
		return metadata.Image{}, fmt.Errorf("manifest %s: %w", mdesc.Digest, err)
	}
	m, err := ParseManifest(mdesc.MediaType, mb)
	if err != nil {
		return metadata.Image{}, fmt.Errorf("manifest %s: %w", mdesc.Digest, err)
	}
	cb, err := s.content.ReadAll(m.Config.Digest, maxJSONBlob)
	if err != nil {
		return metadata.Image{}, fmt.Errorf("config of %s: %w", mdesc.Digest, err)
	}
	c, err := ParseConfig(cb, len(m.Layers))
	if err != nil {
		return metadata.Image{}, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	mdesc.MediaType = m.MediaType
	rec := metadata.Image{
		ID: m.Config.Digest, Manifest: mdesc, Config: m.Config, Layers: m.Layers, DiffIDs: c.RootFS.DiffIDs,
		Platform: ocispec.Platform{OS: c.OS, Architecture: c.Architecture, Variant: c.Variant, OSVersion: c.OSVersion},
		Added:    time.Now().UTC(),
	}
	if c.Created != nil {
		rec.Created = c.Created.UTC()
	}
	return rec, nil
}

// RegisterOptions name an image being recorded.
type RegisterOptions struct {
	// Names are references to point at the image (normalized by
	// reference.Parse). A name that pointed elsewhere is moved.
	Names []string
	// RepoDigests are "name@digest" forms to remember (the digest the
	// image was pulled by, which may be an index's).
	RepoDigests []string
	// Parent is the image a commit was made from.
	Parent digest.Digest
}

// Register records the image whose manifest mdesc (and its config and
// layer blobs) are in the content store, and points opts.Names at it, in one
// transaction. It does not unpack layers; see Unpack.
func (s *Store) Register(ctx context.Context, mdesc ocispec.Descriptor, opts RegisterOptions) (*Image, error) {
	rec, err := s.record(mdesc)
	if err != nil {
		return nil, err
	}
	for _, l := range rec.Layers {
		if !s.content.Has(l.Digest) {
			return nil, fmt.Errorf("register image %s: layer %s: %w", rec.ID, l.Digest, errdefs.ErrNotFound)
		}
	}
	names := make([]string, 0, len(opts.Names))
	for _, n := range opts.Names {
		r, err := reference.Parse(n)
		if err != nil {
			return nil, fmt.Errorf("register image %s: %w", rec.ID, err)
		}
		names = append(names, r.String())
	}
	var out *Image
	err = s.db.Update(func(tx *metadata.Tx) error {
		if old, err := tx.Image(rec.ID); err == nil {
			// Same config: keep the first record's time and merge digests.
			rec.Added = old.Added
			rec.RepoDigests = old.RepoDigests
			rec.Parent = old.Parent
			if old.Manifest.Digest != rec.Manifest.Digest {
				s.log.Debug("image re-registered with another manifest", "image", rec.ID, "old", old.Manifest.Digest, "new", rec.Manifest.Digest)
			}
		} else if !errors.Is(err, errdefs.ErrNotFound) {
			return err
		}
		for _, d := range opts.RepoDigests {
			if !containsStr(rec.RepoDigests, d) {
				rec.RepoDigests = append(rec.RepoDigests, d)
			}
		}
		sort.Strings(rec.RepoDigests)
		if opts.Parent != "" {
			rec.Parent = opts.Parent
		}
		if err := tx.PutImage(rec); err != nil {
			return err
		}
		for _, n := range names {
			if err := tx.PutRef(n, rec.ID); err != nil {
				return err
			}
		}
		all, err := tx.RefsOf(rec.ID)
		if err != nil {
			return err
		}
		out = fromRecord(rec, all)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("register image %s: %w", rec.ID, err)
	}
	return out, nil
}

// Resolve finds an image by name ("busybox", "repo@sha256:..."), by full ID
// ("sha256:...") or by a unique ID prefix, as docker does.
func (s *Store) Resolve(ctx context.Context, refOrID string) (*Image, error) {
	var out *Image
	err := s.db.View(func(tx *metadata.Tx) error {
		id, err := s.resolveID(tx, refOrID)
		if err != nil {
			return err
		}
		rec, err := tx.Image(id)
		if err != nil {
			return err
		}
		names, err := tx.RefsOf(id)
		if err != nil {
			return err
		}
		out = fromRecord(rec, names)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", refOrID, err)
	}
	return out, nil
}

func isHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return s != ""
}

func (s *Store) resolveID(tx *metadata.Tx, refOrID string) (digest.Digest, error) {
	if strings.HasPrefix(refOrID, "sha256:") {
		return s.idByPrefix(tx, strings.TrimPrefix(refOrID, "sha256:"))
	}
	r, perr := reference.Parse(refOrID)
	if perr == nil {
		if id, err := tx.Ref(r.String()); err == nil {
			return id, nil
		}
		if r.Digest != "" {
			// name@digest where the digest is a manifest or index we pulled
			// under another name of the same repository.
			imgs, err := tx.Images()
			if err != nil {
				return "", err
			}
			for _, img := range imgs {
				if img.Manifest.Digest == r.Digest {
					return img.ID, nil
				}
				for _, rd := range img.RepoDigests {
					if rd == r.Name()+"@"+r.Digest.String() {
						return img.ID, nil
					}
				}
			}
		}
	}
	if isHex(refOrID) && len(refOrID) <= 64 {
		id, err := s.idByPrefix(tx, refOrID)
		if err == nil || !errors.Is(err, errdefs.ErrNotFound) {
			return id, err
		}
	}
	if perr != nil {
		return "", perr
	}
	return "", fmt.Errorf("no such image: %w", errdefs.ErrNotFound)
}

func (s *Store) idByPrefix(tx *metadata.Tx, prefix string) (digest.Digest, error) {
	if !isHex(prefix) {
		return "", fmt.Errorf("%w: %q is not a hex image ID", errdefs.ErrInvalid, prefix)
	}
	imgs, err := tx.Images()
	if err != nil {
		return "", err
	}
	var found []digest.Digest
	for _, img := range imgs {
		if strings.HasPrefix(img.ID.Encoded(), prefix) {
			found = append(found, img.ID)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no such image ID: %w", errdefs.ErrNotFound)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%w: ID prefix %q matches %d images", errdefs.ErrConflict, prefix, len(found))
}

// List returns every image, newest first.
func (s *Store) List(ctx context.Context) ([]*Image, error) {
	var out []*Image
	err := s.db.View(func(tx *metadata.Tx) error {
		recs, err := tx.Images()
		if err != nil {
			return err
		}
		refs, err := tx.Refs()
		if err != nil {
			return err
		}
		byID := map[digest.Digest][]string{}
		for n, id := range refs {
			byID[id] = append(byID[id], n)
		}
		for _, rec := range recs {
			names := byID[rec.ID]
			sort.Strings(names)
			out = append(out, fromRecord(rec, names))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// ReadConfig returns the parsed config and its raw bytes.
func (s *Store) ReadConfig(ctx context.Context, img *Image) (*ocispec.Image, []byte, error) {
	b, err := s.content.ReadAll(img.Config.Digest, maxJSONBlob)
	if err != nil {
		return nil, nil, fmt.Errorf("config of image %s: %w", img.ID, err)
	}
	c, err := ParseConfig(b, len(img.Layers))
	if err != nil {
		return nil, nil, fmt.Errorf("config of image %s: %w", img.ID, err)
	}
	return c, b, nil
}

// ReadManifest returns the raw manifest bytes of img.
func (s *Store) ReadManifest(ctx context.Context, img *Image) ([]byte, error) {
	b, err := s.content.ReadAll(img.Manifest.Digest, maxJSONBlob)
	if err != nil {
		return nil, fmt.Errorf("manifest of image %s: %w", img.ID, err)
	}
	return b, nil
}

// Tag points target (a name, default tag "latest") at the image src names.
func (s *Store) Tag(ctx context.Context, src, target string) error {
	r, err := reference.Parse(target)
	if err != nil {
		return fmt.Errorf("tag %s: %w", target, err)
	}
	if r.Digest != "" {
		return fmt.Errorf("tag %s: %w: cannot tag with a digest", target, errdefs.ErrInvalid)
	}
	err = s.db.Update(func(tx *metadata.Tx) error {
		id, err := s.resolveID(tx, src)
		if err != nil {
			return fmt.Errorf("image %q: %w", src, err)
		}
		return tx.PutRef(r.String(), id)
	})
	if err != nil {
		return fmt.Errorf("tag %s as %s: %w", src, target, err)
	}
	return nil
}

// Untag removes one name. The image stays (maybe without names).
func (s *Store) Untag(ctx context.Context, name string) error {
	r, err := reference.Parse(name)
	if err != nil {
		return fmt.Errorf("untag %s: %w", name, err)
	}
	err = s.db.Update(func(tx *metadata.Tx) error {
		if _, err := tx.Ref(r.String()); err != nil {
			return err
		}
		return tx.DeleteRef(r.String())
	})
	if err != nil {
		return fmt.Errorf("untag %s: %w", name, err)
	}
	return nil
}

// RemoveResult is one line of docker rmi's answer.
type RemoveResult struct {
	Untagged string
	Deleted  digest.Digest
}

// RemoveOptions adjust Remove.
type RemoveOptions struct {
	// Force removes an image with several repositories or used by a
	// container (the container keeps its layers).
	Force bool
	// NoPrune keeps blobs and snapshots no image uses any more.
	NoPrune bool
}

// Remove follows docker rmi: by name it removes that name and deletes the
// image when no tag is left; by ID it removes all names (refusing, unless
// Force, when they span several repositories) and the image. An image a
// container snapshot uses is refused unless Force. Unless NoPrune, the
// blobs and snapshots nothing uses any more are removed too.
func (s *Store) Remove(ctx context.Context, refOrID string, opts RemoveOptions) ([]RemoveResult, error) {
	var results []RemoveResult
	var deleted digest.Digest
	inUse, err := s.imagesInUse(ctx)
	if err != nil {
		return nil, err
	}
	err = s.db.Update(func(tx *metadata.Tx) error {
		results = nil
		id, err := s.resolveID(tx, refOrID)
		if err != nil {
			return err
		}
		names, err := tx.RefsOf(id)
		if err != nil {
			return err
		}
		var byName string
		if r, err := reference.Parse(refOrID); err == nil {
			if containsStr(names, r.String()) {
				byName = r.String()
			}
		}
		var untag []string
		if byName != "" {
			untag = []string{byName}
			// The image goes when no tag is left; its digest names go with it.
			tagsLeft := 0
			for _, n := range names {
				if n != byName && !strings.Contains(n, "@") {
					tagsLeft++
				}
			}
			if tagsLeft == 0 {
				untag = names
			}
		} else {
			repos := map[string]bool{}
			for _, n := range names {
				if r, err := reference.Parse(n); err == nil {
					repos[r.Name()] = true
				}
			}
			if len(repos) > 1 && !opts.Force {
				return fmt.Errorf("%w: image %s is referenced in multiple repositories (use force)", errdefs.ErrConflict, id.Encoded()[:12])
			}
			untag = names
		}
		removesImage := len(untag) == len(names)
		if removesImage && inUse[id] && !opts.Force {
			return fmt.Errorf("%w: image %s is being used by a container", errdefs.ErrConflict, id.Encoded()[:12])
		}
		for _, n := range untag {
			if err := tx.DeleteRef(n); err != nil {
				return err
			}
			results = append(results, RemoveResult{Untagged: n})
		}
		if removesImage && !inUse[id] {
			if err := tx.DeleteImage(id); err != nil {
				return err
			}
			results = append(results, RemoveResult{Deleted: id})
			deleted = id
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("remove image %q: %w", refOrID, err)
	}
	if deleted != "" && !opts.NoPrune {
		if _, err := s.GC(ctx); err != nil {
			return results, fmt.Errorf("remove image %q: prune: %w", refOrID, err)
		}
	}
	return results, nil
}

// imagesInUse returns the images container snapshots were prepared from.
func (s *Store) imagesInUse(ctx context.Context) (map[digest.Digest]bool, error) {
	infos, err := s.snaps.List(ctx)
	if err != nil {
		return nil, err
	}
	out := map[digest.Digest]bool{}
	for _, in := range infos {
		if in.Kind != snapshot.Committed && in.Labels[LabelImage] != "" {
			out[digest.Digest(in.Labels[LabelImage])] = true
		}
	}
	return out, nil
}

// UnpackedSizes are the sizes of img's layers as docker gives them: the
// bytes of the regular files each layer's tar holds, as its unpack wrote
// them (LabelUnpackedSize on the layer's snapshot); and their sum, the
// image's size in docker's images, inspect, history and system df. A layer
// unpacked before hako recorded the figure counts with its files' bytes on
// disk (each inode once: the same figure, by a walk), one not unpacked
// with its compressed size.
func (s *Store) UnpackedSizes(ctx context.Context, img *Image) ([]int64, int64) {
	chain := append([]digest.Digest(nil), img.DiffIDs...)
	identity.ChainIDs(chain)
	sizes := make([]int64, len(img.Layers))
	var total int64
	for i := range img.Layers {
		sizes[i] = img.Layers[i].Size
		if i < len(chain) {
			sizes[i] = s.unpackedSize(ctx, chain[i].String(), sizes[i])
		}
		total += sizes[i]
	}
	return sizes, total
}

// unpackedSize is the unpacked size of the layer snapshot name, or
// otherwise if it has none.
func (s *Store) unpackedSize(ctx context.Context, name string, otherwise int64) int64 {
	in, err := s.snaps.Stat(ctx, name)
	if err != nil {
		return otherwise
	}
	if n, err := strconv.ParseInt(in.Labels[LabelUnpackedSize], 10, 64); err == nil && n >= 0 {
		return n
	}
	if n, _, err := s.snaps.Usage(ctx, name); err == nil {
		return n
	}
	return otherwise
}
