package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hako-project/hako/errdefs"
)

// bind is one -v SOURCE:CONTAINER[:MODE] of docker run: a host path, or
// a volume name (volumes.go).
type bind struct {
	source, dest string
	readonly     bool
	propagation  string
	volume       bool // source names a volume
	nocopy       bool
	mode         string
}

var bindPropagations = map[string]bool{
	"private": true, "rprivate": true, "shared": true, "rshared": true, "slave": true, "rslave": true,
}

// parseBind reads a -v entry with docker's checks and messages. An
// absolute source is a host path; anything else names a volume.
func parseBind(s string) (bind, error) {
	parts := strings.Split(s, ":")
	var b bind
	switch len(parts) {
	case 2, 3:
		b.source, b.dest = parts[0], parts[1]
	default:
		return b, errdefs.Invalidf("invalid volume specification: '%s'", s)
	}
	if len(parts) == 3 {
		b.mode = parts[2]
	}
	if !validMode(b.mode) {
		return b, errdefs.Invalidf("invalid mode: %s", b.mode)
	}
	b.volume = !filepath.IsAbs(b.source)
	typ := "bind"
	if b.volume {
		typ = "volume"
	}
	if filepath.Clean(b.dest) == "/" {
		return b, errdefs.Invalidf("invalid volume specification: '%s': invalid mount config for type \"%s\": invalid specification: destination can't be '/'", s, typ)
	}
	if !filepath.IsAbs(b.dest) {
		return b, errdefs.Invalidf("invalid volume specification: '%s': invalid mount config for type \"%s\": invalid mount path: '%s' mount path must be absolute", s, typ, b.dest)
	}
	for _, o := range strings.Split(b.mode, ",") {
		switch {
		case o == "ro":
			b.readonly = true
		case o == "nocopy":
			b.nocopy = true
		case bindPropagations[o]:
			b.propagation = o
		}
	}
	switch {
	case b.volume && b.propagation != "":
		return b, errdefs.Invalidf("invalid volume specification: '%s': invalid mount config for type \"volume\": field BindOptions must not be specified", s)
	case !b.volume && b.nocopy:
		return b, errdefs.Invalidf("invalid volume specification: '%s': invalid mount config for type \"bind\": field VolumeOptions must not be specified", s)
	}
	return b, nil
}

// validMode is docker's rule for a -v mode: comma-separated, at most one
// of each kind (rw/ro, z/Z, a propagation, nocopy, a consistency).
func validMode(mode string) bool {
	if mode == "" {
		return true
	}
	seen := map[string]bool{}
	for _, o := range strings.Split(mode, ",") {
		var kind string
		switch {
		case o == "rw" || o == "ro":
			kind = "rw"
		case o == "z" || o == "Z":
			kind = "label"
		case bindPropagations[o]:
			kind = "propagation"
		case o == "nocopy":
			kind = "copy"
		case o == "consistent" || o == "cached" || o == "delegated":
			kind = "consistency"
		default:
			return false
		}
		if seen[kind] {
			return false
		}
		seen[kind] = true
	}
	return true
}

// validateMount checks a --mount entry the way docker does.
func validateMount(m mount.Mount) error {
	if m.Target != "" && filepath.Clean(m.Target) == "/" {
		return errdefs.Invalidf("invalid mount config for type \"%s\": invalid specification: destination can't be '/'", m.Type)
	}
	if !filepath.IsAbs(m.Target) {
		return errdefs.Invalidf("invalid mount config for type \"%s\": invalid mount path: '%s' mount path must be absolute", m.Type, m.Target)
	}
	switch m.Type {
	case mount.TypeBind:
		if m.Source == "" {
			return errdefs.Invalidf("invalid mount config for type \"bind\": field Source must not be empty")
		}
		if _, err := os.Stat(m.Source); err != nil {
			return errdefs.Invalidf("invalid mount config for type \"bind\": bind source path does not exist: %s", m.Source)
		}
	case mount.TypeTmpfs:
		if m.Source != "" {
			return errdefs.Invalidf("invalid mount config for type \"tmpfs\": field Source must not be specified")
		}
	case mount.TypeVolume:
		if m.BindOptions != nil {
			return errdefs.Invalidf("invalid mount config for type \"volume\": field BindOptions must not be specified")
		}
		if m.Source == "" && m.ReadOnly {
			return errdefs.Invalidf("invalid mount config for type \"volume\": must not set ReadOnly mode when using anonymous volumes")
		}
	default:
		return errdefs.Invalidf("invalid mount config for type \"%s\": mount type unknown", m.Type)
	}
	return nil
}

// mountPoints lists the container's binds and tmpfs mounts as inspect
// reports them (its volumes come from createVolumes).
func mountPoints(hc *container.HostConfig) []container.MountPoint {
	var out []container.MountPoint
	for _, s := range hc.Binds {
		b, err := parseBind(s)
		if err != nil || b.volume {
			continue
		}
		mode := ""
		if p := strings.SplitN(s, ":", 3); len(p) == 3 {
			mode = p[2]
		}
		out = append(out, container.MountPoint{Type: mount.TypeBind, Source: b.source, Destination: b.dest,
			Mode: mode, RW: !b.readonly, Propagation: mount.Propagation(orDefault(b.propagation, "rprivate"))})
	}
	for _, m := range hc.Mounts {
		if m.Type == mount.TypeVolume {
			continue
		}
		mp := container.MountPoint{Type: m.Type, Source: m.Source, Destination: m.Target, RW: !m.ReadOnly}
		if m.BindOptions != nil {
			mp.Propagation = m.BindOptions.Propagation
		}
		if m.Type == mount.TypeBind && mp.Propagation == "" {
			mp.Propagation = "rprivate"
		}
		out = append(out, mp)
	}
	return out
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// ociMounts turns -v, --mount and --tmpfs into OCI mounts, volumes aside
// (volumeSpecMounts). Missing bind sources of -v are created, as docker
// does.
func ociMounts(hc *container.HostConfig) ([]specs.Mount, error) {
	var out []specs.Mount
	for _, s := range hc.Binds {
		b, err := parseBind(s)
		if err != nil {
			return nil, err
		}
		if b.volume {
			continue
		}
		if _, err := os.Stat(b.source); os.IsNotExist(err) {
			if err := os.MkdirAll(b.source, 0o755); err != nil {
				return nil, fmt.Errorf("create bind source %s: %w", b.source, err)
			}
		}
		opts := []string{"rbind", orDefault(b.propagation, "rprivate")}
		if b.readonly {
			opts = append(opts, "ro")
		}
		out = append(out, specs.Mount{Destination: b.dest, Type: "bind", Source: b.source, Options: opts})
	}
	for _, m := range hc.Mounts {
		switch m.Type {
		case mount.TypeBind:
			prop := "rprivate"
			if m.BindOptions != nil && m.BindOptions.Propagation != "" {
				prop = string(m.BindOptions.Propagation)
			}
			opts := []string{"rbind", prop}
			if m.BindOptions != nil && m.BindOptions.NonRecursive {
				opts[0] = "bind"
			}
			if m.ReadOnly {
				opts = append(opts, "ro")
			}
			out = append(out, specs.Mount{Destination: m.Target, Type: "bind", Source: m.Source, Options: opts})
		case mount.TypeTmpfs:
			opts := []string{"nosuid", "nodev", "noexec"}
			if t := m.TmpfsOptions; t != nil {
				if t.SizeBytes > 0 {
					opts = append(opts, fmt.Sprintf("size=%d", t.SizeBytes))
				}
				if t.Mode != 0 {
					opts = append(opts, fmt.Sprintf("mode=%o", t.Mode))
				}
			}
			if m.ReadOnly {
				opts = append(opts, "ro")
			}
			out = append(out, specs.Mount{Destination: m.Target, Type: "tmpfs", Source: "tmpfs", Options: opts})
		}
	}
	dests := make([]string, 0, len(hc.Tmpfs))
	for d := range hc.Tmpfs {
		dests = append(dests, d)
	}
	sort.Strings(dests)
	for _, d := range dests {
		opts := []string{"nosuid", "nodev", "noexec"}
		if o := hc.Tmpfs[d]; o != "" {
			opts = append(opts, strings.Split(o, ",")...)
		}
		out = append(out, specs.Mount{Destination: d, Type: "tmpfs", Source: "tmpfs", Options: opts})
	}
	return out, nil
}
