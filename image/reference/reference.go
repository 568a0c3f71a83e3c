// Package reference parses image references and normalizes them the way the
// docker CLI and daemon do, so that "busybox", "library/busybox" and
// "docker.io/library/busybox:latest" all name the same image in hako's store.
//
// It only parses and prints names; it never talks to a registry.
package reference

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/hako-project/hako/errdefs"
	"github.com/opencontainers/go-digest"
)

const (
	// DefaultDomain is the registry a name without a domain refers to.
	DefaultDomain = "docker.io"
	// legacyDefaultDomain is accepted on input and rewritten to DefaultDomain,
	// as docker does, so both spellings share one store entry.
	legacyDefaultDomain = "index.docker.io"
	// officialRepoPrefix is prepended to single-component names on docker.io.
	officialRepoPrefix = "library/"
	// DefaultTag is used when a name carries neither tag nor digest.
	DefaultTag = "latest"
	// maxNameLength is docker's limit on the repository name (domain + path).
	maxNameLength = 255
)

// ErrInvalid is wrapped by every parse error, so callers can classify it;
// it is also an errdefs.ErrInvalid.
var ErrInvalid = fmt.Errorf("invalid reference format: %w", errdefs.ErrInvalid)

var (
	// pathComponent is one lowercase path segment of a repository name.
	pathComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$`)
	// domainRe matches a registry host with optional port (IPv6 in brackets).
	domainRe = regexp.MustCompile(`^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$`)
	tagRe    = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)
	// idRe matches a bare 64-hex image ID, which docker refuses as a name.
	idRe = regexp.MustCompile(`^[a-f0-9]{64}$`)
)

// Reference is a parsed, normalized image reference. Domain and Path are
// always set; Tag and Digest may both be set ("name:tag@sha256:...").
type Reference struct {
	Domain string
	Path   string
	Tag    string
	Digest digest.Digest
}

// Parse parses s with docker's normalization: a missing domain becomes
// docker.io, single-component docker.io names get "library/", and a name
// without tag or digest gets ":latest".
func Parse(s string) (Reference, error) {
	r, err := ParseNamed(s)
	if err != nil {
		return Reference{}, err
	}
	if r.Tag == "" && r.Digest == "" {
		r.Tag = DefaultTag
	}
	return r, nil
}

// ParseNamed parses like Parse but does not add the default tag; it is what
// "docker push NAME" (all tags) or "docker tag" targets need.
func ParseNamed(s string) (Reference, error) {
	if s == "" {
		return Reference{}, fmt.Errorf("%w: empty reference", ErrInvalid)
	}
	if idRe.MatchString(s) {
		return Reference{}, fmt.Errorf("%w: %q: repository name must not be a 64-byte hex string (it is an image ID)", ErrInvalid, s)
	}
	rest := s
	var r Reference
	if i := strings.Index(rest, "@"); i >= 0 {
		d, err := digest.Parse(rest[i+1:])
		if err != nil {
			return Reference{}, fmt.Errorf("%w: %q: bad digest: %v", ErrInvalid, s, err)
		}
		r.Digest = d
		rest = rest[:i]
	}
	// A tag follows the last ':' that comes after the last '/'; an earlier
	// ':' belongs to the registry port.
	if i := strings.LastIndex(rest, ":"); i >= 0 && i > strings.LastIndex(rest, "/") {
		tag := rest[i+1:]
		if !tagRe.MatchString(tag) {
			return Reference{}, fmt.Errorf("%w: %q: bad tag %q", ErrInvalid, s, tag)
		}
		r.Tag = tag
		rest = rest[:i]
	}
	domain, path := splitDomain(rest)
	if domain == legacyDefaultDomain {
		domain = DefaultDomain
	}
	if !domainRe.MatchString(domain) {
		return Reference{}, fmt.Errorf("%w: %q: bad registry host %q", ErrInvalid, s, domain)
	}
	if domain == DefaultDomain && !strings.Contains(path, "/") {
		path = officialRepoPrefix + path
	}
	if path == "" {
		return Reference{}, fmt.Errorf("%w: %q: empty repository path", ErrInvalid, s)
	}
	for _, c := range strings.Split(path, "/") {
		if !pathComponent.MatchString(c) {
			if strings.ToLower(c) != c {
				return Reference{}, fmt.Errorf("%w: %q: repository name must be lowercase", ErrInvalid, s)
			}
			return Reference{}, fmt.Errorf("%w: %q: bad path component %q", ErrInvalid, s, c)
		}
	}
	if len(domain)+1+len(path) > maxNameLength {
		return Reference{}, fmt.Errorf("%w: %q: repository name longer than %d characters", ErrInvalid, s, maxNameLength)
	}
	r.Domain, r.Path = domain, path
	return r, nil
}

// splitDomain separates the registry host from the repository path using
// docker's rule: the first component is a host only if it contains '.' or
// ':', is "localhost", or has an uppercase letter.
func splitDomain(name string) (domain, path string) {
	i := strings.IndexRune(name, '/')
	if i == -1 {
		return DefaultDomain, name
	}
	first := name[:i]
	if !strings.ContainsAny(first, ".:") && first != "localhost" && strings.ToLower(first) == first {
		return DefaultDomain, name
	}
	return first, name[i+1:]
}

// Name is the repository without tag or digest: "docker.io/library/busybox".
func (r Reference) Name() string { return r.Domain + "/" + r.Path }

// String is the fully qualified form used as the key in hako's store.
func (r Reference) String() string {
	s := r.Name()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest.String()
	}
	return s
}

// FamiliarName is the short repository name docker prints ("busybox",
// "myuser/app", "localhost:5000/app").
func (r Reference) FamiliarName() string {
	if r.Domain == DefaultDomain {
		return strings.TrimPrefix(r.Path, officialRepoPrefix)
	}
	return r.Name()
}

// FamiliarString is the short form with tag and digest, as in
// "docker images" and in docker save's RepoTags.
func (r Reference) FamiliarString() string {
	s := r.FamiliarName()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest.String()
	}
	return s
}

// WithTag returns r naming tag and no digest.
func (r Reference) WithTag(tag string) Reference {
	r.Tag, r.Digest = tag, ""
	return r
}

// WithDigest returns r naming d and no tag: the "repo@sha256:..." form that
// docker keeps as a RepoDigest.
func (r Reference) WithDigest(d digest.Digest) Reference {
	r.Tag, r.Digest = "", d
	return r
}

// IsDigested reports whether r pins content by digest.
func (r Reference) IsDigested() bool { return r.Digest != "" }
