// Package devicefilter turns the OCI device cgroup rules of
// linux.resources.devices into a BPF_PROG_TYPE_CGROUP_DEVICE program and
// attaches it to a cgroup2 directory with the bpf(2) syscall.
//
// cgroup v2 has no devices.allow/devices.deny files: the kernel asks an eBPF
// program attached to the cgroup whether a device may be opened or created.
// This package is the whole of that path (rule parsing, code generation,
// load, attach, replace) so the cgroup manager only hands it rules and a
// directory. It uses x/sys/unix directly instead of an eBPF library because
// the program is a few dozen fixed instructions and a library would add its
// init cost to every runtime invocation.
package devicefilter

import (
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Access bits, as the kernel passes them in bpf_cgroup_dev_ctx.access_type
// (upper 16 bits) and as devices.allow spells them ("m", "r", "w").
const (
	AccMknod = 1
	AccRead  = 2
	AccWrite = 4
	accAll   = AccMknod | AccRead | AccWrite
)

// Device types, as the kernel passes them in the lower 16 bits of
// bpf_cgroup_dev_ctx.access_type.
const (
	TypeBlock = 1
	TypeChar  = 2
)

// Largest major and minor numbers a dev_t can carry (12 and 20 bits): a rule
// naming a larger one could never match and is a typo.
const (
	maxMajor = 1<<12 - 1
	maxMinor = 1<<20 - 1
)

// Rule is a validated device rule. Major or Minor of -1 match any number.
type Rule struct {
	Allow  bool
	Type   byte // 'a', 'b' or 'c'
	Major  int64
	Minor  int64
	Access uint8 // AccMknod|AccRead|AccWrite
}

// ParseRule validates one OCI rule. An empty type means "a" and an empty
// access means "rwm", as the runtime spec says.
func ParseRule(r specs.LinuxDeviceCgroup) (Rule, error) {
	out := Rule{Allow: r.Allow, Major: -1, Minor: -1}
	switch r.Type {
	case "", "a":
		out.Type = 'a'
	case "b", "c":
		out.Type = r.Type[0]
	default:
		return Rule{}, fmt.Errorf("type %q: must be \"a\", \"b\" or \"c\"", r.Type)
	}
	if r.Major != nil {
		if *r.Major < -1 || *r.Major > maxMajor {
			return Rule{}, fmt.Errorf("major %d: must be -1 (any) or 0..%d", *r.Major, maxMajor)
		}
		out.Major = *r.Major
	}
	if r.Minor != nil {
		if *r.Minor < -1 || *r.Minor > maxMinor {
			return Rule{}, fmt.Errorf("minor %d: must be -1 (any) or 0..%d", *r.Minor, maxMinor)
		}
		out.Minor = *r.Minor
	}
	acc, err := ParseAccess(r.Access)
	if err != nil {
		return Rule{}, err
	}
	out.Access = acc
	if out.Type == 'a' {
		// The kernel's "a" rule covers every device whatever numbers
		// follow it; normalise so v1 and v2 agree.
		out.Major, out.Minor = -1, -1
	}
	return out, nil
}

// ParseAccess parses an access string made of the letters r, w and m, each
// at most once; "" means all three.
func ParseAccess(s string) (uint8, error) {
	if s == "" {
		return accAll, nil
	}
	var acc uint8
	for _, c := range s {
		var bit uint8
		switch c {
		case 'r':
			bit = AccRead
		case 'w':
			bit = AccWrite
		case 'm':
			bit = AccMknod
		default:
			return 0, fmt.Errorf("access %q: unknown letter %q (want r, w, m)", s, c)
		}
		if acc&bit != 0 {
			return 0, fmt.Errorf("access %q: letter %q repeated", s, c)
		}
		acc |= bit
	}
	return acc, nil
}

// ParseRules validates a rule list, naming the index of a bad rule.
func ParseRules(rules []specs.LinuxDeviceCgroup) ([]Rule, error) {
	out := make([]Rule, 0, len(rules))
	for i, r := range rules {
		p, err := ParseRule(r)
		if err != nil {
			return nil, fmt.Errorf("devices[%d]: %w", i, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// String renders the rule in devices.allow/devices.deny syntax, e.g.
// "c 1:3 rwm" or "a *:* rwm".
func (r Rule) String() string {
	num := func(n int64) string {
		if n < 0 {
			return "*"
		}
		return fmt.Sprint(n)
	}
	var acc strings.Builder
	if r.Access&AccRead != 0 {
		acc.WriteByte('r')
	}
	if r.Access&AccWrite != 0 {
		acc.WriteByte('w')
	}
	if r.Access&AccMknod != 0 {
		acc.WriteByte('m')
	}
	return fmt.Sprintf("%c %s:%s %s", r.Type, num(r.Major), num(r.Minor), acc.String())
}
