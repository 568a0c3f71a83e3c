package docker

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"github.com/hako-project/hako/engine"
	"github.com/hako-project/hako/errdefs"
)

// filters are docker's ?filters=: {"name":{"x":true}} (or the older
// {"name":["x"]}) read as name -> values.
type filters map[string][]string

func parseFilters(s string) (filters, error) {
	f := filters{}
	if s == "" {
		return f, nil
	}
	var m map[string]map[string]bool
	if err := json.Unmarshal([]byte(s), &m); err == nil {
		for k, vs := range m {
			for v, on := range vs {
				if on {
					f[k] = append(f[k], v)
				}
			}
		}
		return f, nil
	}
	var l map[string][]string
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, errdefs.Invalidf("invalid filter '%s'", s)
	}
	for k, vs := range l {
		f[k] = append(f[k], vs...)
	}
	return f, nil
}

// any reports whether one of the filter's values satisfies ok (or the
// filter is absent).
func (f filters) any(key string, ok func(string) bool) bool {
	vs, has := f[key]
	if !has {
		return true
	}
	for _, v := range vs {
		if ok(v) {
			return true
		}
	}
	return false
}

func labelMatch(labels map[string]string, want string) bool {
	k, v, hasV := strings.Cut(want, "=")
	got, ok := labels[k]
	return ok && (!hasV || got == v)
}

// containerMatches applies docker ps's filters.
func containerMatches(f filters, c engine.Record, all []*engine.Container) bool {
	if !f.any("id", func(v string) bool { return strings.HasPrefix(c.ID, v) }) {
		return false
	}
	if !f.any("name", func(v string) bool { return nameMatch(v, c.Name) }) {
		return false
	}
	if !f.any("health", func(v string) bool { return healthStatus(c.State.Health) == v }) {
		return false
	}
	if !f.any("is-task", func(v string) bool { return v == "false" || v == "0" }) {
		return false // hakod runs no swarm tasks
	}
	if !f.any("status", func(v string) bool { return string(c.State.Status) == v }) {
		return false
	}
	if !f.any("exited", func(v string) bool {
		n, err := strconv.Atoi(v)
		return err == nil && c.State.Status == container.StateExited && c.State.ExitCode == n
	}) {
		return false
	}
	if vs := f["label"]; len(vs) > 0 {
		for _, v := range vs {
			if !labelMatch(c.Config.Labels, v) {
				return false
			}
		}
	}
	if !f.any("ancestor", func(v string) bool {
		return c.Image == v || strings.HasPrefix(c.ImageID, v) || strings.HasPrefix(strings.TrimPrefix(c.ImageID, "sha256:"), v)
	}) {
		return false
	}
	if !f.any("network", func(v string) bool { return string(c.HostConfig.NetworkMode) == v }) {
		return false
	}
	if !f.any("volume", func(v string) bool {
		for _, m := range c.Mounts {
			if m.Name == v || m.Source == v || m.Destination == v {
				return true
			}
		}
		return false
	}) {
		return false
	}
	created := func(ref string) (int64, bool) {
		for _, o := range all {
			s := o.Snapshot()
			if s.Name == strings.TrimPrefix(ref, "/") || strings.HasPrefix(s.ID, ref) {
				return s.Created.UnixNano(), true
			}
		}
		return 0, false
	}
	if !f.any("before", func(v string) bool { t, ok := created(v); return ok && c.Created.UnixNano() < t }) {
		return false
	}
	if !f.any("since", func(v string) bool { t, ok := created(v); return ok && c.Created.UnixNano() > t }) {
		return false
	}
	return true
}

// eventMatches applies docker events' filters.
func eventMatches(f filters, m events.Message) bool {
	if !f.any("type", func(v string) bool { return string(m.Type) == v }) {
		return false
	}
	if !f.any("event", func(v string) bool { return string(m.Action) == v || strings.HasPrefix(string(m.Action), v+":") }) {
		return false
	}
	if !f.any("container", func(v string) bool {
		return m.Type == events.ContainerEventType && (strings.HasPrefix(m.Actor.ID, v) || m.Actor.Attributes["name"] == v)
	}) {
		return false
	}
	if !f.any("image", func(v string) bool { return m.Actor.Attributes["image"] == v || m.Actor.ID == v }) {
		return false
	}
	if vs := f["label"]; len(vs) > 0 {
		for _, v := range vs {
			if !labelMatch(m.Actor.Attributes, v) {
				return false
			}
		}
	}
	return true
}

func jsonMarshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
