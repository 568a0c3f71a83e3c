// Package registry pulls images from and pushes them to OCI distribution
// registries (Docker Hub, docker-registry, any v2 registry) using
// go-containerregistry for the protocol: docker's name normalization,
// credentials from docker's config.json, basic and bearer-token auth, OCI
// and docker schema2 manifests, indexes with platform selection, and plain
// http for loopback and configured insecure registries, and registry
// mirrors for Docker Hub images as dockerd's --registry-mirror (mirror.go).
//
// Storing and unpacking what arrives is package image's job: Pull resolves
// the manifest here and hands image.Store.Fetch an opener for the blobs.
package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/image"
	"github.com/hako-project/hako/image/progress"
	"github.com/hako-project/hako/image/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Options configure a Client.
type Options struct {
	// ConfigDir holds docker's config.json with credentials
	// (DefaultConfigDir() if empty).
	ConfigDir string
	// Insecure lists registries (host[:port]) reached over plain http.
	// Loopback and localhost registries always are, as with docker.
	Insecure []string
	// Mirrors are registry mirror URLs (dockerd's registry-mirrors) tried in
	// order before Docker Hub for docker.io images. Check them with
	// ValidateMirrors first: New cannot fail, so with an invalid one every
	// Docker Hub pull fails with that error instead.
	Mirrors []string
	// Hosts are per-registry hosts (containerd's hosts.toml, see hosts.go)
	// by registry host ("registry.k8s.io", "_default"); LoadHostsDir
	// reads them. They come before Mirrors for docker.io.
	Hosts map[string]RegistryHosts
	// Platform selects from multi-platform indexes (the host's if nil).
	Platform *ocispec.Platform
	// Transport is the base HTTP transport (http.DefaultTransport if nil).
	Transport http.RoundTripper
	// Retries of a failed manifest request on temporary errors (0: none).
	Retries   int
	UserAgent string
	Logger    *slog.Logger
}

// Client talks to registries on behalf of one image store.
type Client struct {
	store    *image.Store
	opts     Options
	keychain configKeychain
	log      *slog.Logger
	mirrors  []mirror
	// mirrorErr is why Options.Mirrors was invalid; Docker Hub pulls
	// report it rather than silently skip the mirrors the user asked for.
	mirrorErr error
	// hubHost replaces Docker Hub's host (tests point it at a closed port).
	hubHost string
}

// New returns a client that stores pulled images in store.
func New(store *image.Store, opts Options) *Client {
	if opts.ConfigDir == "" {
		opts.ConfigDir = DefaultConfigDir()
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "hako"
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	c := &Client{store: store, opts: opts, keychain: configKeychain{dir: opts.ConfigDir}, log: log}
	c.mirrors, c.mirrorErr = parseMirrors(opts.Mirrors)
	return c
}

func (c *Client) transport() http.RoundTripper {
	if c.opts.Transport != nil {
		return c.opts.Transport
	}
	return http.DefaultTransport
}

func (c *Client) platform() ocispec.Platform {
	if c.opts.Platform != nil {
		return *c.opts.Platform
	}
	p := ocispec.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	if runtime.GOARCH == "arm64" {
		p.Variant = "v8"
	}
	return p
}

func (c *Client) nameOpts(registry string) []name.Option {
	opts := []name.Option{name.WeakValidation}
	if slices.Contains(c.opts.Insecure, registry) {
		opts = append(opts, name.Insecure)
	}
	return opts
}

func (c *Client) remoteOpts(ctx context.Context) []remote.Option {
	backoff := remote.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: c.opts.Retries + 1}
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(c.keychain),
		remote.WithTransport(c.transport()),
		remote.WithUserAgent(c.opts.UserAgent),
		remote.WithRetryBackoff(backoff),
		remote.WithJobs(3),
	}
}

// ggcrRepo converts a normalized reference to go-containerregistry's form.
func (c *Client) ggcrRepo(r reference.Reference) (name.Repository, error) {
	repo, err := name.NewRepository(r.Name(), c.nameOpts(r.Domain)...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("%w: %v", errdefs.ErrInvalid, err)
	}
	return repo, nil
}

// classify wraps registry errors with hako's error classes, keeping the
// registry's message (which names the URL and the error code).
func classify(err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		switch {
		case te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden:
			return fmt.Errorf("%w: %w", errdefs.ErrUnauthorized, err)
		case te.StatusCode == http.StatusNotFound:
			return fmt.Errorf("%w: %w", errdefs.ErrNotFound, err)
		case te.StatusCode >= 500:
			return fmt.Errorf("%w: %w", errdefs.ErrUnavailable, err)
		}
		for _, d := range te.Errors {
			switch d.Code {
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
				return fmt.Errorf("%w: %w", errdefs.ErrNotFound, err)
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return fmt.Errorf("%w: %w", errdefs.ErrUnauthorized, err)
			}
		}
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) || strings.Contains(err.Error(), "connection refused") {
		return fmt.Errorf("%w: %w", errdefs.ErrUnavailable, err)
	}
	return err
}

// Resolved is what a reference resolves to in a registry.
type Resolved struct {
	Ref reference.Reference
	// Registry served the manifest: a mirror's URL or the registry host.
	Registry string
	// Digest is what the reference named: an index or a manifest.
	Digest       digest.Digest
	ManifestDesc ocispec.Descriptor
	Manifest     []byte
}

// Resolve looks up ref in its registry (or, for Docker Hub images, the
// first registry mirror that has it) and picks the image manifest for the
// client's platform if ref names an index.
func (c *Client) Resolve(ctx context.Context, ref string) (*Resolved, error) {
	r, err := reference.Parse(ref)
	if err != nil {
		return nil, err
	}
	eps, err := c.endpoints(r)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", r, err)
	}
	var res *Resolved
	if _, err := c.tryEndpoints(ctx, r, eps, func(ep endpoint) error {
		var err error
		res, err = c.resolveAt(ctx, r, ep)
		return err
	}); err != nil {
		return nil, fmt.Errorf("resolve %s: %w", r, err)
	}
	return res, nil
}

// resolveAt is Resolve against one endpoint. Its errors do not name r:
// the caller does, once.
func (c *Client) resolveAt(ctx context.Context, r reference.Reference, ep endpoint) (*Resolved, error) {
	repo := ep.repo
	var gref name.Reference = repo.Tag(r.Tag)
	if r.Digest != "" {
		gref = repo.Digest(r.Digest.String())
	}
	desc, err := remote.Get(gref, c.remoteOpts(ctx)...)
	if err != nil {
		return nil, classify(err)
	}
	res := &Resolved{Ref: r, Registry: ep.String(), Digest: digest.Digest(desc.Digest.String())}
	mt := string(desc.MediaType)
	body := desc.Manifest
	switch mt {
	case ocispec.MediaTypeImageIndex, image.MediaTypeDockerManifestList:
		child, err := c.selectPlatform(body, mt)
		if err != nil {
			return nil, err
		}
		cdesc, err := remote.Get(repo.Digest(child.Digest.String()), c.remoteOpts(ctx)...)
		if err != nil {
			return nil, fmt.Errorf("platform manifest %s: %w", child.Digest, classify(err))
		}
		mt, body = string(cdesc.MediaType), cdesc.Manifest
		if mt == "" {
			mt = child.MediaType
		}
		res.ManifestDesc = ocispec.Descriptor{MediaType: mt, Digest: child.Digest, Size: int64(len(body))}
	case ocispec.MediaTypeImageManifest, image.MediaTypeDockerManifest:
		res.ManifestDesc = ocispec.Descriptor{MediaType: mt, Digest: res.Digest, Size: int64(len(body))}
	default:
		return nil, fmt.Errorf("%w: manifest %s has unsupported media type %q", errdefs.ErrInvalid, desc.Digest, mt)
	}
	if got := digest.FromBytes(body); got != res.ManifestDesc.Digest {
		return nil, fmt.Errorf("manifest %s: %w: received bytes hash to %s", res.ManifestDesc.Digest, errdefs.ErrDataLoss, got)
	}
	res.Manifest = body
	return res, nil
}

// selectPlatform picks the index entry for the client's platform, with
// docker's wording when none matches.
func (c *Client) selectPlatform(body []byte, mt string) (ocispec.Descriptor, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(body, &idx); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("%w: decode index: %v", errdefs.ErrInvalid, err)
	}
	want := c.platform()
	var best *ocispec.Descriptor
	for i := range idx.Manifests {
		m := &idx.Manifests[i]
		if m.Platform == nil || m.Platform.OS != want.OS || m.Platform.Architecture != want.Architecture {
			continue
		}
		if m.MediaType != ocispec.MediaTypeImageManifest && m.MediaType != image.MediaTypeDockerManifest {
			continue
		}
		if want.Variant != "" && m.Platform.Variant != "" && m.Platform.Variant != want.Variant {
			continue
		}
		if best == nil || (m.Platform.Variant == want.Variant && best.Platform.Variant != want.Variant) {
			best = m
		}
	}
	if best == nil {
		p := want.OS + "/" + want.Architecture
		if want.Variant != "" {
			p += "/" + want.Variant
		}
		return ocispec.Descriptor{}, fmt.Errorf("%w: no matching manifest for %s in the manifest list entries", errdefs.ErrNotFound, p)
	}
	return *best, nil
}

// Pull fetches ref into the store, unpacking layers as they download, and
// returns the image. Pulling by tag names the image with the tag; pulling
// by digest records the digest only, as docker does. A failed pull leaves
// the store as it was.
func (c *Client) Pull(ctx context.Context, ref string, pf progress.Func) (*image.Image, error) {
	if pf == nil {
		pf = progress.Nop
	}
	r, err := reference.Parse(ref)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	tagOrDigest := r.Tag
	if r.Digest != "" {
		tagOrDigest = r.Digest.String()
	}
	pf(progress.Event{ID: tagOrDigest, Status: "Pulling from " + r.Path})
	eps, err := c.endpoints(r)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", r, err)
	}
	before, _ := c.store.Resolve(ctx, r.String())
	var (
		res *Resolved
		img *image.Image
	)
	// A mirror's failure at any stage falls through to the next endpoint:
	// Fetch leaves the store as it was, so the next one starts clean.
	if _, err := c.tryEndpoints(ctx, r, eps, func(ep endpoint) error {
		var err error
		if res, err = c.resolveAt(ctx, r, ep); err != nil {
			return fmt.Errorf("resolve: %w", err)
		}
		blobs, err := c.blobClient(ctx, ep.repo)
		if err != nil {
			return err
		}
		// Whoever served it, the image is named as asked (docker.io/...),
		// never by the mirror's host.
		img, err = c.store.Fetch(ctx, image.FetchRequest{
			ManifestDesc: res.ManifestDesc,
			Manifest:     res.Manifest,
			Open:         blobs.open,
			Register: image.RegisterOptions{
				Names:       []string{r.String()},
				RepoDigests: []string{r.WithDigest(res.Digest).String()},
			},
			Progress: pf,
		})
		return err
	}); err != nil {
		return nil, fmt.Errorf("pull %s: %w", r, err)
	}
	pf(progress.Event{Status: "Digest: " + res.Digest.String()})
	if before != nil && before.ID == img.ID {
		pf(progress.Event{Status: "Status: Image is up to date for " + r.FamiliarString()})
	} else {
		pf(progress.Event{Status: "Status: Downloaded newer image for " + r.FamiliarString()})
	}
	return img, nil
}

// blobClient fetches blobs of one repository over an authenticated
// transport. It does not verify digests: image.Store hashes every byte as
// it stores it, and hashing twice would cost a core on a fast pull.
type blobClient struct {
	repo   name.Repository
	client *http.Client
}

func (c *Client) blobClient(ctx context.Context, repo name.Repository) (*blobClient, error) {
	auth, err := authn.Resolve(ctx, c.keychain, repo)
	if err != nil {
		return nil, err
	}
	rt, err := transport.NewWithContext(ctx, repo.Registry, auth, c.transport(), []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, classify(err)
	}
	return &blobClient{repo: repo, client: &http.Client{Transport: transport.NewUserAgent(rt, c.opts.UserAgent)}}, nil
}

func (b *blobClient) open(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	u := fmt.Sprintf("%s://%s/v2/%s/blobs/%s", b.repo.Registry.Scheme(), b.repo.RegistryStr(), b.repo.RepositoryStr(), desc.Digest)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, classify(err))
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		if err := transport.CheckError(resp, http.StatusOK); err != nil {
			return nil, fmt.Errorf("GET blob %s: %w", desc.Digest, classify(err))
		}
	}
	return resp.Body, nil
}
