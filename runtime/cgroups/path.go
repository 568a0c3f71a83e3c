package cgroups

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// DefaultParent is the cgroup under which containers go when
// linux.cgroupsPath is empty: "/hako/<id>". runc uses "/<id>"; a parent of
// our own keeps the hierarchy root tidy and lets an operator find, limit or
// delete every hako container in one place.
const DefaultParent = "/hako"

// systemdRunDir exists exactly when systemd is PID 1 (sd_booted(3)).
const systemdRunDir = "/run/systemd/system"

// isSystemdForm reports whether p has the "slice:prefix:name" shape of the
// systemd cgroup driver.
func isSystemdForm(p string) bool {
	return !strings.HasPrefix(p, "/") && strings.Count(p, ":") == 2
}

// pathSpec is a cgroupsPath checked for shape: either absolute (relative to
// each hierarchy's root) or relative (to the runtime's own cgroup).
type pathSpec struct {
	relative bool
	elems    []string // cleaned, no "." or ".."; nil means the base itself
}

// parsePath validates linux.cgroupsPath against the --systemd-cgroup flag
// and returns its clean form. Nothing on the host is looked at.
func parsePath(c Config) (pathSpec, error) {
	p := c.Path
	switch {
	case c.Systemd && p != "" && !isSystemdForm(p):
		return pathSpec{}, fmt.Errorf("linux.cgroupsPath %q: --systemd-cgroup needs the form \"slice:prefix:name\"", p)
	case c.Systemd:
		if p == "" {
			p = "system.slice:hako:" + c.ID
		}
		if _, err := systemdPath(p); err != nil {
			return pathSpec{}, err
		}
		return pathSpec{}, systemdUnavailable(p)
	case isSystemdForm(p):
		return pathSpec{}, fmt.Errorf("linux.cgroupsPath %q is in the systemd form \"slice:prefix:name\", which needs --systemd-cgroup", p)
	case p == "":
		if c.ID == "" || strings.ContainsAny(c.ID, "/") || c.ID == "." || c.ID == ".." {
			return pathSpec{}, fmt.Errorf("container id %q cannot name a cgroup", c.ID)
		}
		p = DefaultParent + "/" + c.ID
	}
	spec := pathSpec{relative: !strings.HasPrefix(p, "/")}
	depth := 0
	for e := range strings.SplitSeq(p, "/") {
		switch e {
		case "", ".":
			continue
		case "..":
			if depth == 0 && !spec.relative {
				return pathSpec{}, fmt.Errorf("linux.cgroupsPath %q: \"..\" climbs above the cgroup root", c.Path)
			}
			if depth > 0 {
				spec.elems = spec.elems[:len(spec.elems)-1]
				depth--
				continue
			}
			spec.elems = append(spec.elems, "..") // relative: resolved against the own cgroup later
			continue
		}
		spec.elems = append(spec.elems, e)
		depth++
	}
	if !spec.relative && len(spec.elems) == 0 {
		return pathSpec{}, fmt.Errorf("linux.cgroupsPath %q: is the cgroup root itself, which a container cannot own", c.Path)
	}
	return spec, nil
}

// resolve joins the spec onto base, the own cgroup (relative paths) or "/",
// refusing any ".." that leaves the hierarchy.
func (s pathSpec) resolve(base string, orig string) (string, error) {
	var stack []string
	if s.relative {
		for e := range strings.SplitSeq(base, "/") {
			if e != "" {
				stack = append(stack, e)
			}
		}
	}
	for _, e := range s.elems {
		if e == ".." {
			if len(stack) == 0 {
				return "", fmt.Errorf("linux.cgroupsPath %q: \"..\" climbs above the cgroup root", orig)
			}
			stack = stack[:len(stack)-1]
			continue
		}
		stack = append(stack, e)
	}
	if len(stack) == 0 {
		return "", fmt.Errorf("linux.cgroupsPath %q: resolves to the cgroup root itself, which a container cannot own", orig)
	}
	return "/" + strings.Join(stack, "/"), nil
}

// systemdPath expands "slice:prefix:name" to the cgroup path systemd gives
// the unit: slice "a-b.slice" nests as a.slice/a-b.slice, and the unit is
// "prefix-name.scope" (or name itself when it is a slice).
func systemdPath(p string) (string, error) {
	parts := strings.Split(p, ":")
	if len(parts) != 3 {
		return "", fmt.Errorf("linux.cgroupsPath %q: want \"slice:prefix:name\"", p)
	}
	slice, prefix, name := parts[0], parts[1], parts[2]
	if name == "" {
		return "", fmt.Errorf("linux.cgroupsPath %q: empty unit name", p)
	}
	if slice == "" {
		slice = "system.slice"
	}
	if !strings.HasSuffix(slice, ".slice") || strings.Contains(slice, "/") {
		return "", fmt.Errorf("linux.cgroupsPath %q: slice %q must be a unit name ending in .slice", p, slice)
	}
	var path string
	if slice != "-.slice" {
		base := strings.TrimSuffix(slice, ".slice")
		if strings.HasPrefix(base, "-") || strings.HasSuffix(base, "-") || strings.Contains(base, "--") {
			return "", fmt.Errorf("linux.cgroupsPath %q: slice %q has an empty dash-separated part", p, slice)
		}
		acc := ""
		for i, comp := range strings.Split(base, "-") {
			if i > 0 {
				acc += "-"
			}
			acc += comp
			path += "/" + acc + ".slice"
		}
	}
	unit := name
	if !strings.HasSuffix(name, ".slice") {
		if prefix != "" {
			unit = prefix + "-" + name
		}
		unit += ".scope"
	}
	if strings.Contains(unit, "/") {
		return "", fmt.Errorf("linux.cgroupsPath %q: unit name %q contains '/'", p, unit)
	}
	return path + "/" + unit, nil
}

// ErrSystemdUnavailable is wrapped by the error for --systemd-cgroup on a
// host where it cannot be honoured.
var ErrSystemdUnavailable = errors.New("systemd cgroup driver unavailable")

// systemdUnavailable explains why --systemd-cgroup cannot be used here.
// Where systemd is not PID 1 nothing can own the unit. Where it is, the unit
// must be created over D-Bus (StartTransientUnit), which this package does
// not do yet: creating the directories behind systemd's back would leave a
// scope systemd does not know about and may remove.
func systemdUnavailable(p string) error {
	if _, err := os.Stat(systemdRunDir); err != nil {
		return fmt.Errorf("--systemd-cgroup (linux.cgroupsPath %q): %w: systemd is not running on this host (%s absent); run without --systemd-cgroup and use a cgroupfs path such as \"/hako/<id>\"", p, ErrSystemdUnavailable, systemdRunDir)
	}
	return fmt.Errorf("--systemd-cgroup (linux.cgroupsPath %q): %w: creating transient units over D-Bus is not implemented; run without --systemd-cgroup", p, ErrSystemdUnavailable)
}
