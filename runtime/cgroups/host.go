package cgroups

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// Hierarchy is one mounted cgroup hierarchy and this container's directory
// in it. It is part of State, so field names are JSON-stable.
type Hierarchy struct {
	// Mountpoint is where the hierarchy is mounted on the host,
	// e.g. /sys/fs/cgroup/cpu,cpuacct or /sys/fs/cgroup/unified.
	Mountpoint string `json:"mountpoint"`
	// MountRoot is the mount's root within the hierarchy (mountinfo field
	// 4); not "/" when the runtime itself runs in a cgroup namespace.
	MountRoot string `json:"mountRoot,omitempty"`
	// Unified is true for the cgroup2 hierarchy.
	Unified bool `json:"unified,omitempty"`
	// Controllers are a v1 hierarchy's controllers ("cpu", "cpuacct") or
	// its name ("name=systemd"). Empty for cgroup2, whose controllers are
	// read from cgroup.controllers when needed.
	Controllers []string `json:"controllers,omitempty"`
	// Options are the mount's super options other than rw/ro, which a
	// "cgroup" mount inside the container must repeat to join the same
	// hierarchy.
	Options []string `json:"options,omitempty"`
	// Path is the container's cgroup directory on the host.
	Path string `json:"path,omitempty"`
}

// has reports whether a v1 hierarchy carries the controller.
func (h *Hierarchy) has(ctrl string) bool { return slices.Contains(h.Controllers, ctrl) }

// layout is what New learns about the host, once, from /proc/self/mountinfo.
type layout struct {
	mode Mode
	hier []Hierarchy
}

// parseMountinfo returns the cgroup hierarchies mounted at root (pure v2) or
// directly below it (v1 and hybrid). Other cgroup mounts (a container's
// own, a bind mount elsewhere) are ignored: the runtime manages the host's
// tree at root and nothing else.
func parseMountinfo(data []byte, root string) (layout, error) {
	var l layout
	var unifiedAtRoot bool
	for len(data) > 0 {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		sep := bytes.Index(line, []byte(" - cgroup"))
		if sep < 0 {
			continue
		}
		// Optional fields sit between field 6 and " - ", so take fields
		// 4 (root) and 5 (mount point) by position and the rest after
		// the separator.
		f := fieldsN(line[:sep], 5)
		p := fieldsN(line[sep+3:], 3)
		if len(f) < 5 || len(p) < 3 {
			return layout{}, fmt.Errorf("parse mountinfo line %q: too few fields", line)
		}
		fstype := string(p[0])
		if fstype != "cgroup" && fstype != "cgroup2" {
			continue
		}
		mp := unescapeMountinfo(string(f[4]))
		if mp != root && filepath.Dir(mp) != root {
			continue
		}
		// Over-mounted: the later mount hides the earlier one.
		l.hier = slices.DeleteFunc(l.hier, func(h Hierarchy) bool { return h.Mountpoint == mp })
		h := Hierarchy{Mountpoint: mp, MountRoot: unescapeMountinfo(string(f[3])), Unified: fstype == "cgroup2"}
		for o := range strings.SplitSeq(string(p[2]), ",") {
			if o == "rw" || o == "ro" {
				continue
			}
			h.Options = append(h.Options, o)
			if !h.Unified && (isV1Controller(o) || strings.HasPrefix(o, "name=")) {
				h.Controllers = append(h.Controllers, o)
			}
		}
		if !h.Unified && len(h.Controllers) == 0 {
			continue // e.g. a "none" hierarchy with no controller and no name
		}
		if h.Unified && mp == root {
			unifiedAtRoot = true
		}
		l.hier = append(l.hier, h)
	}
	switch {
	case unifiedAtRoot:
		l.hier = slices.DeleteFunc(l.hier, func(h Hierarchy) bool { return h.Mountpoint != root })
		l.mode = ModeUnified
	case len(l.hier) == 0:
		return layout{}, fmt.Errorf("no cgroup hierarchy mounted at or below %s", root)
	case slices.ContainsFunc(l.hier, func(h Hierarchy) bool { return h.Unified }):
		l.mode = ModeHybrid
	default:
		l.mode = ModeV1
	}
	// Deterministic order: v1 by mountpoint, the unified hierarchy last.
	slices.SortFunc(l.hier, func(a, b Hierarchy) int {
		if a.Unified != b.Unified {
			if a.Unified {
				return 1
			}
			return -1
		}
		return strings.Compare(a.Mountpoint, b.Mountpoint)
	})
	return l, nil
}

// fieldsN returns up to n space-separated fields of b without allocating
// the rest.
func fieldsN(b []byte, n int) [][]byte {
	out := make([][]byte, 0, n)
	for len(out) < n {
		b = bytes.TrimLeft(b, " ")
		if len(b) == 0 {
			break
		}
		i := bytes.IndexByte(b, ' ')
		if i < 0 {
			out = append(out, b)
			break
		}
		out = append(out, b[:i])
		b = b[i+1:]
	}
	return out
}

// isV1Controller reports whether a v1 mount option names a controller
// (a switch, not a map, so the package has no init-time allocation).
func isV1Controller(o string) bool {
	switch o {
	case "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "hugetlb",
		"net_cls", "net_prio", "perf_event", "rdma", "misc", "debug":
		return true
	}
	return false
}

// unescapeMountinfo undoes the octal escapes (\040 for space) of mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			v := 0
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + int(c-'0')
			}
			if ok {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ownCgroups parses /proc/self/cgroup into a map from hierarchy key (the
// comma-joined controller list of a v1 line, "" for the unified line) to the
// cgroup path.
func ownCgroups(data []byte) (map[string]string, error) {
	out := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(string(data)), "\n") {
		if line == "" {
			continue
		}
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("parse /proc/self/cgroup line %q", line)
		}
		out[parts[1]] = parts[2]
	}
	return out, nil
}

// ownPath returns the runtime's own cgroup in h from the parsed
// /proc/self/cgroup, relative to the hierarchy's mount root.
func ownPath(own map[string]string, h *Hierarchy) (string, error) {
	var p string
	var ok bool
	if h.Unified {
		p, ok = own[""]
	} else {
		want := slices.Clone(h.Controllers)
		slices.Sort(want)
		for k, v := range own {
			if k == "" {
				continue
			}
			got := strings.Split(k, ",")
			slices.Sort(got)
			if slices.Equal(got, want) {
				p, ok = v, true
				break
			}
		}
	}
	if !ok {
		return "", fmt.Errorf("/proc/self/cgroup has no line for hierarchy %s", h.Mountpoint)
	}
	// Strip the mount root: in a cgroup namespace or with a bind-mounted
	// subtree the mount shows only part of the hierarchy.
	if h.MountRoot != "" && h.MountRoot != "/" {
		rel, ok := strings.CutPrefix(p, h.MountRoot)
		if !ok || (rel != "" && rel[0] != '/') {
			return "", fmt.Errorf("own cgroup %s is outside the mount root %s of %s", p, h.MountRoot, h.Mountpoint)
		}
		p = rel
	}
	if p == "" {
		p = "/"
	}
	return p, nil
}

func readSelfCgroup() ([]byte, error) {
	b, err := readAll("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("own cgroup: %w", err)
	}
	return b, nil
}
