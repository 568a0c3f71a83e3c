package formatter

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/container"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ContainerContext is one container as `hako ps` templates see it. Its
// methods are the template fields and, for --format json, the object's
// keys; its name is docker's, which shows in template errors.
type ContainerContext struct {
	c     container.Summary
	trunc bool
	now   time.Time
}

// NewContainerContext wraps c; trunc shortens IDs and commands, now is
// the reference for "ago".
func NewContainerContext(c container.Summary, trunc bool, now time.Time) *ContainerContext {
	return &ContainerContext{c: c, trunc: trunc, now: now}
}

// MarshalJSON is the --format json object.
func (r *ContainerContext) MarshalJSON() ([]byte, error) { return MarshalMethods(r) }

func (r *ContainerContext) ID() string {
	if r.trunc {
		return TruncateID(r.c.ID)
	}
	return r.c.ID
}

func (r *ContainerContext) Names() string {
	var names []string
	for _, n := range r.c.Names {
		n = strings.TrimPrefix(n, "/")
		if r.trunc {
			// Link names ("/other/alias") are shown only with --no-trunc.
			if !strings.Contains(n, "/") {
				return n
			}
			continue
		}
		names = append(names, n)
	}
	return strings.Join(names, ",")
}

func (r *ContainerContext) Image() string {
	img := r.c.Image
	if img == "" {
		return "<no image>"
	}
	if !r.trunc {
		return img
	}
	if t := TruncateID(r.c.ImageID); t == TruncateID(img) {
		return t
	}
	ref, err := reference.ParseNormalizedNamed(img)
	if err != nil {
		return img
	}
	if _, ok := ref.(reference.Digested); ok {
		tag := ""
		if t, ok := ref.(reference.Tagged); ok {
			tag = t.Tag()
		}
		ref = reference.TrimNamed(ref)
		if tag != "" {
			if tagged, err := reference.WithTag(ref, tag); err == nil {
				ref = tagged
			}
		}
	}
	return reference.FamiliarString(ref)
}

func (r *ContainerContext) Command() string {
	c := r.c.Command
	if r.trunc {
		c = Ellipsis(c, 20)
	}
	return strconv.Quote(c)
}

func (r *ContainerContext) CreatedAt() string { return time.Unix(r.c.Created, 0).String() }

func (r *ContainerContext) RunningFor() string { return Ago(r.c.Created, r.now) }

func (r *ContainerContext) Ports() string { return Ports(r.c.Ports) }

func (r *ContainerContext) State() string { return string(r.c.State) }

func (r *ContainerContext) Status() string { return r.c.Status }

func (r *ContainerContext) Size() string {
	s := Size(r.c.SizeRw)
	if r.c.SizeRootFs > 0 {
		s = fmt.Sprintf("%s (virtual %s)", s, Size(r.c.SizeRootFs))
	}
	return s
}

func (r *ContainerContext) Labels() string {
	l := make([]string, 0, len(r.c.Labels))
	for k, v := range r.c.Labels {
		l = append(l, k+"="+v)
	}
	sort.Strings(l)
	return strings.Join(l, ",")
}

// Label is the value of one label ({{.Label "com.example.x"}}).
func (r *ContainerContext) Label(name string) string { return r.c.Labels[name] }

func (r *ContainerContext) Mounts() string {
	m := make([]string, 0, len(r.c.Mounts))
	for _, mp := range r.c.Mounts {
		name := mp.Name
		if name == "" {
			name = mp.Source
		}
		if r.trunc {
			name = Ellipsis(name, 15)
		}
		m = append(m, name)
	}
	return strings.Join(m, ",")
}

func (r *ContainerContext) LocalVolumes() string {
	n := 0
	for _, m := range r.c.Mounts {
		if m.Driver == "local" {
			n++
		}
	}
	return strconv.Itoa(n)
}

func (r *ContainerContext) Networks() string {
	if r.c.NetworkSettings == nil {
		return ""
	}
	n := make([]string, 0, len(r.c.NetworkSettings.Networks))
	for k := range r.c.NetworkSettings.Networks {
		n = append(n, k)
	}
	sort.Strings(n)
	return strings.Join(n, ",")
}

// Platform is the platform of the container's image, when the daemon
// says (null in JSON otherwise).
func (r *ContainerContext) Platform() *Platform {
	d := r.c.ImageManifestDescriptor
	if d == nil || d.Platform == nil {
		return nil
	}
	return &Platform{*d.Platform}
}

// Platform prints as os/arch[/variant].
type Platform struct{ ocispec.Platform }

func (p Platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}
