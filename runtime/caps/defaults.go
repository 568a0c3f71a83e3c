package caps

import (
	"fmt"
	"slices"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// DockerDefault returns the capabilities docker grants a container that
// asks for nothing else (moby's oci/caps defaults), in docker's order.
func DockerDefault() []string {
	return []string{
		"CAP_CHOWN",
		"CAP_DAC_OVERRIDE",
		"CAP_FSETID",
		"CAP_FOWNER",
		"CAP_MKNOD",
		"CAP_NET_RAW",
		"CAP_SETGID",
		"CAP_SETUID",
		"CAP_SETFCAP",
		"CAP_SETPCAP",
		"CAP_NET_BIND_SERVICE",
		"CAP_SYS_CHROOT",
		"CAP_KILL",
		"CAP_AUDIT_WRITE",
	}
}

// RuncDefault returns the capabilities in the config.json that `runc spec`
// writes.
func RuncDefault() []string {
	return []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
}

// SpecFor builds the process.capabilities docker and `runc spec` write for a
// list of names: bounding, effective and permitted. Inheritable stays empty
// because an inheritable set lets file capabilities of a setuid-less binary
// be gained on exec (CVE-2022-24769, fixed in both that way); ambient stays
// empty as docker has no flag for it.
func SpecFor(names []string) *specs.LinuxCapabilities {
	return &specs.LinuxCapabilities{
		Bounding:  slices.Clone(names),
		Effective: slices.Clone(names),
		Permitted: slices.Clone(names),
	}
}

// AddToAll implements `runc exec --cap`: each named capability is added to
// all five sets of a copy of c (c itself is not modified; nil is an empty
// set). Names may be written as users type them ("net_admin"); unknown ones
// are an error naming the flag value.
func AddToAll(c *specs.LinuxCapabilities, names ...string) (*specs.LinuxCapabilities, error) {
	out := &specs.LinuxCapabilities{}
	if c != nil {
		out.Bounding = slices.Clone(c.Bounding)
		out.Effective = slices.Clone(c.Effective)
		out.Permitted = slices.Clone(c.Permitted)
		out.Inheritable = slices.Clone(c.Inheritable)
		out.Ambient = slices.Clone(c.Ambient)
	}
	for i, raw := range names {
		name, err := Normalize(raw)
		if err != nil {
			return nil, fmt.Errorf("--cap[%d]: %w", i, err)
		}
		if name == "ALL" {
			return nil, fmt.Errorf("--cap[%d]: ALL is not accepted here; name each capability", i)
		}
		for _, set := range []*[]string{&out.Bounding, &out.Effective, &out.Permitted, &out.Inheritable, &out.Ambient} {
			if !slices.Contains(*set, name) {
				*set = append(*set, name)
			}
		}
	}
	return out, nil
}

// Tweak applies docker's --cap-add and --cap-drop to base, the way the
// docker engine does: names are normalised ("net_admin" is CAP_NET_ADMIN),
// "ALL" in add grants every capability in all except those dropped, "ALL" in
// drop starts from nothing but what is added, and otherwise base minus drop
// plus add. all is the list "ALL" stands for, usually Limits.Available().
// The result has no duplicates and keeps base's order, additions last.
func Tweak(base, add, drop, all []string) ([]string, error) {
	normAdd, addAll, err := normalizeList("--cap-add", add)
	if err != nil {
		return nil, err
	}
	normDrop, dropAll, err := normalizeList("--cap-drop", drop)
	if err != nil {
		return nil, err
	}
	var out []string
	appendNew := func(names ...string) {
		for _, n := range names {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	switch {
	case addAll:
		for _, n := range all {
			if !slices.Contains(normDrop, n) {
				appendNew(n)
			}
		}
	case dropAll:
		appendNew(normAdd...)
	default:
		for _, n := range base {
			if !slices.Contains(normDrop, n) {
				appendNew(n)
			}
		}
		appendNew(normAdd...)
	}
	return out, nil
}

// normalizeList normalises each name and reports whether "ALL" was among
// them (it is not returned in the list).
func normalizeList(flag string, names []string) ([]string, bool, error) {
	var (
		out []string
		all bool
	)
	for i, raw := range names {
		n, err := Normalize(raw)
		if err != nil {
			return nil, false, fmt.Errorf("%s[%d]: %w", flag, i, err)
		}
		if n == "ALL" {
			all = true
			continue
		}
		out = append(out, n)
	}
	return out, all, nil
}
