package registry

// Registry mirrors work as dockerd's --registry-mirror: they stand in for
// Docker Hub only (references whose registry is docker.io), each is tried
// in order and Docker Hub itself comes last, and whatever a mirror serves
// is stored under the docker.io name. A mirror is a cache, never the
// authority, so any failure of one (refused connection, 5xx, unknown
// manifest, refused credentials, bad bytes) falls through to the next with
// a debug log; only a cancelled pull stops the walk. Push never uses
// mirrors: it goes to the name's own registry.

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/image/reference"
)

// ValidateMirror checks a registry mirror URL as dockerd does and returns
// it normalized to "scheme://host[:port]/". hakod calls it at start, so a
// mistyped mirror stops the daemon with a message naming the value instead
// of every Docker Hub pull quietly bypassing it.
func ValidateMirror(raw string) (string, error) {
	// "host:port" parses as scheme "host", so look for "://" first, as
	// dockerd does, to give the message that helps.
	if scheme, _, ok := strings.Cut(raw, "://"); !ok || scheme == "" {
		return "", fmt.Errorf("%w: invalid registry mirror %q: no scheme: must start with http:// or https://", errdefs.ErrInvalid, raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the raw value, which may hold a password.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("%w: invalid registry mirror: not a valid URL: %v", errdefs.ErrInvalid, err)
	}
	switch {
	case u.User != nil:
		return "", fmt.Errorf("%w: invalid registry mirror %q: credentials are not allowed in the URL (use docker login for the mirror's host)", errdefs.ErrInvalid, u.Redacted())
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%w: invalid registry mirror %q: unsupported scheme %q: must be http:// or https://", errdefs.ErrInvalid, raw, u.Scheme)
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("%w: invalid registry mirror %q: no host", errdefs.ErrInvalid, raw)
	case u.Path != "" && u.Path != "/":
		// The distribution API lives at /v2/ on the host; a mirror under
		// a path prefix cannot be spoken to.
		return "", fmt.Errorf("%w: invalid registry mirror %q: a path (%q) is not allowed", errdefs.ErrInvalid, raw, u.Path)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(raw, "#"):
		return "", fmt.Errorf("%w: invalid registry mirror %q: a query or fragment is not allowed", errdefs.ErrInvalid, raw)
	}
	return u.Scheme + "://" + u.Host + "/", nil
}

// ValidateMirrors validates every mirror (see ValidateMirror) and returns
// them normalized, in the given order.
func ValidateMirrors(mirrors []string) ([]string, error) {
	out := make([]string, 0, len(mirrors))
	for _, m := range mirrors {
		n, err := ValidateMirror(m)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// mirror is a validated registry mirror.
type mirror struct {
	url      string // normalized, as logs and errors show it
	host     string // host[:port]
	insecure bool   // http://: spoken to over plain http, as dockerd does
}

func parseMirrors(raw []string) ([]mirror, error) {
	norm, err := ValidateMirrors(raw)
	if err != nil {
		return nil, err
	}
	ms := make([]mirror, len(norm))
	for i, n := range norm {
		u, _ := url.Parse(n) // valid: ValidateMirror built it
		ms[i] = mirror{url: n, host: u.Host, insecure: u.Scheme == "http"}
	}
	return ms, nil
}

// endpoint is one place a reference can be pulled from: a mirror or the
// reference's own registry.
type endpoint struct {
	repo   name.Repository
	mirror string // the mirror's URL; empty for the reference's own registry
}

// String names the endpoint in logs and errors.
func (e endpoint) String() string {
	if e.mirror != "" {
		return e.mirror
	}
	return e.repo.RegistryStr()
}

// endpoints lists where to pull r from, in the order to try them: the
// mirrors, then Docker Hub, for docker.io names; the name's own registry
// for any other.
func (c *Client) endpoints(r reference.Reference) ([]endpoint, error) {
	if h, ok := c.hostsFor(r.Domain); ok { // hosts.go
		own, err := c.ggcrRepo(r)
		if err != nil {
			return nil, err
		}
		return c.hostEndpoints(hostsRef{registry: r.Domain, path: r.Path, own: &endpoint{repo: own}}, h)
	}
	if r.Domain != reference.DefaultDomain {
		repo, err := c.ggcrRepo(r)
		if err != nil {
			return nil, err
		}
		return []endpoint{{repo: repo}}, nil
	}
	if c.mirrorErr != nil {
		return nil, c.mirrorErr
	}
	eps := make([]endpoint, 0, len(c.mirrors)+1)
	for _, m := range c.mirrors {
		opts := c.nameOpts(m.host)
		if m.insecure {
			opts = append(opts, name.Insecure)
		}
		repo, err := name.NewRepository(m.host+"/"+r.Path, opts...)
		if err != nil {
			return nil, fmt.Errorf("%w: registry mirror %s: %v", errdefs.ErrInvalid, m.url, err)
		}
		eps = append(eps, endpoint{repo: repo, mirror: m.url})
	}
	var (
		hub name.Repository
		err error
	)
	if c.hubHost != "" {
		hub, err = name.NewRepository(c.hubHost+"/"+r.Path, name.WeakValidation)
	} else {
		hub, err = c.ggcrRepo(r)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errdefs.ErrInvalid, err)
	}
	return append(eps, endpoint{repo: hub}), nil
}

// tryEndpoints calls fn for each endpoint in turn until one succeeds. The
// error of the last one is returned, with its class, and names the mirrors
// that failed before it so the user sees why the mirrors did not serve.
func (c *Client) tryEndpoints(ctx context.Context, r reference.Reference, eps []endpoint, fn func(endpoint) error) (endpoint, error) {
	var failed []string
	for i, ep := range eps {
		err := fn(ep)
		if err == nil {
			c.log.Debug("registry served", "ref", r.String(), "registry", ep.String(), "mirror", ep.mirror != "", "mirrors-failed", len(failed))
			return ep, nil
		}
		if i == len(eps)-1 || ctx.Err() != nil {
			if len(failed) > 0 {
				err = fmt.Errorf("%s: %w (registry mirrors failed first: %s)", ep, err, strings.Join(failed, "; "))
			}
			return ep, err
		}
		c.log.Debug("registry mirror failed, trying the next", "ref", r.String(), "mirror", ep.String(), "next", eps[i+1].String(), "err", err)
		failed = append(failed, fmt.Sprintf("%s: %v", ep, err))
	}
	return endpoint{}, fmt.Errorf("%w: no registry to pull %s from", errdefs.ErrInvalid, r)
}
