package formatter

import (
	"strconv"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/image"
)

func isDangling(img image.Summary) bool {
	if len(img.RepoTags) == 0 && len(img.RepoDigests) == 0 {
		return true
	}
	return len(img.RepoTags) == 1 && img.RepoTags[0] == "<none>:<none>" &&
		len(img.RepoDigests) == 1 && img.RepoDigests[0] == "<none>@<none>"
}

// ImageContexts expands an image into one row per repository and tag
// (and digest, when shown), as `docker images` lists them; repositories
// come in the order the daemon lists their tags. needDigest: the format
// shows digests; digests: --digests was given.
func ImageContexts(img image.Summary, needDigest, digests, trunc bool, now time.Time) []any {
	rows := imageRows(img, needDigest, digests)
	out := make([]any, len(rows))
	for i, r := range rows {
		r.trunc, r.now = trunc, now
		out[i] = r
	}
	return out
}

func imageRows(img image.Summary, needDigest, showDigestOnly bool) []*imageContext {
	if isDangling(img) {
		return []*imageContext{{i: img, repo: "<none>", tag: "<none>", digest: "<none>"}}
	}
	var order []string
	tags := map[string][]string{}
	dgsts := map[string][]string{}
	for _, s := range img.RepoTags {
		ref, err := reference.ParseNormalizedNamed(s)
		if err != nil {
			continue
		}
		if nt, ok := ref.(reference.NamedTagged); ok {
			name := reference.FamiliarName(ref)
			if _, seen := tags[name]; !seen {
				order = append(order, name)
			}
			tags[name] = append(tags[name], nt.Tag())
		}
	}
	var digestOnly []string
	for _, s := range img.RepoDigests {
		ref, err := reference.ParseNormalizedNamed(s)
		if err != nil {
			continue
		}
		if c, ok := ref.(reference.Canonical); ok {
			name := reference.FamiliarName(ref)
			if _, tagged := tags[name]; !tagged {
				if _, seen := dgsts[name]; !seen {
					digestOnly = append(digestOnly, name)
				}
			}
			dgsts[name] = append(dgsts[name], c.Digest().String())
		}
	}
	var rows []*imageContext
	for _, repo := range order {
		ds := dgsts[repo]
		if !needDigest {
			ds = nil
		}
		for _, t := range tags[repo] {
			if len(ds) == 0 {
				rows = append(rows, &imageContext{i: img, repo: repo, tag: t, digest: "<none>"})
				continue
			}
			for _, d := range ds {
				rows = append(rows, &imageContext{i: img, repo: repo, tag: t, digest: d})
			}
		}
	}
	for _, repo := range digestOnly {
		if showDigestOnly {
			for _, d := range dgsts[repo] {
				rows = append(rows, &imageContext{i: img, repo: repo, tag: "<none>", digest: d})
			}
		} else {
			rows = append(rows, &imageContext{i: img, repo: repo, tag: "<none>"})
		}
	}
	return rows
}

// imageContext is one line of `hako images`; its methods are the
// template fields and the keys of --format json; its name is docker's,
// which shows in template errors.
type imageContext struct {
	i                 image.Summary
	repo, tag, digest string
	trunc             bool
	now               time.Time
}

// MarshalJSON is the --format json object.
func (r *imageContext) MarshalJSON() ([]byte, error) { return MarshalMethods(r) }

func (r *imageContext) ID() string {
	if r.trunc {
		return TruncateID(r.i.ID)
	}
	return r.i.ID
}

func (r *imageContext) Repository() string { return r.repo }
func (r *imageContext) Tag() string        { return r.tag }
func (r *imageContext) Digest() string     { return r.digest }

func (r *imageContext) CreatedSince() string {
	if time.Unix(r.i.Created, 0).IsZero() {
		return ""
	}
	return Ago(r.i.Created, r.now)
}

func (r *imageContext) CreatedAt() string { return time.Unix(r.i.Created, 0).String() }

func (r *imageContext) Size() string { return Size(r.i.Size) }

func (r *imageContext) Containers() string {
	if r.i.Containers == -1 {
		return "N/A"
	}
	return strconv.FormatInt(r.i.Containers, 10)
}

func (r *imageContext) SharedSize() string {
	if r.i.SharedSize == -1 {
		return "N/A"
	}
	return units.HumanSize(float64(r.i.SharedSize))
}

func (r *imageContext) UniqueSize() string {
	if r.i.Size == -1 || r.i.SharedSize == -1 {
		return "N/A"
	}
	return units.HumanSize(float64(r.i.Size - r.i.SharedSize))
}

// VirtualSize is docker 28's alias of Size, in its older rounding.
func (r *imageContext) VirtualSize() string { return units.HumanSize(float64(r.i.Size)) }
