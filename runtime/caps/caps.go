// Package caps turns the runtime-spec's process.capabilities into the five
// capability bit masks that hako-runtime's container init applies.
//
// The init runs as C before the Go runtime starts, so everything that needs
// judgement happens here, in the parent: names are checked, capabilities the
// kernel or the host cannot grant are dropped with a warning (as runc does),
// and combinations the kernel would refuse at capset(2) time are reported as
// errors naming the field, before any process exists. The order in which the
// init must apply the masks is written down in docs/hardening.md.
//
// The package also carries the capability lists the engine and the exec
// command need: docker's and runc's defaults, docker's --cap-add/--cap-drop
// arithmetic and runc exec's --cap.
package caps

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Sets holds the five capability sets as bit masks (bit n = capability n),
// ready to be handed to the init process.
type Sets struct {
	Bounding    uint64
	Effective   uint64
	Permitted   uint64
	Inheritable uint64
	Ambient     uint64
}

// Limits describes what the container's init can possibly be granted.
type Limits struct {
	// LastCap is the running kernel's highest capability number
	// (/proc/sys/kernel/cap_last_cap). The init must drop every capability
	// from 0 to LastCap that is not in Sets.Bounding, including ones newer
	// than this package knows, so nothing new leaks into a container.
	LastCap int
	// Bounding is the bounding set the init starts with. Capabilities
	// outside it can never be raised again, so asking for them is answered
	// with a warning and the capability is left out.
	Bounding uint64
}

// Warning is a requested capability that was left out because the kernel or
// the host cannot grant it. It is not an error: runc starts such containers
// too, without the capability.
type Warning struct {
	Field      string // e.g. "process.capabilities.bounding[3]"
	Capability string
	Reason     string
}

func (w Warning) String() string {
	return fmt.Sprintf("%s: %s skipped: %s", w.Field, w.Capability, w.Reason)
}

// ProcLastCap is where the kernel publishes its highest capability number.
const ProcLastCap = "/proc/sys/kernel/cap_last_cap"

// LastCap returns the running kernel's highest capability number. It reads
// ProcLastCap and, where that file is missing (kernels before 3.2 or a /proc
// without it), asks the kernel one capability at a time with
// PR_CAPBSET_READ, which fails with EINVAL past the last one.
func LastCap() (int, error) {
	b, err := os.ReadFile(ProcLastCap)
	if err == nil {
		n, perr := strconv.Atoi(strings.TrimSpace(string(b)))
		if perr != nil || n < 0 || n > 63 {
			return 0, fmt.Errorf("parse %s: unexpected content %q", ProcLastCap, strings.TrimSpace(string(b)))
		}
		return n, nil
	}
	last := -1
	for n := 0; n <= 63; n++ {
		if _, perr := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(n), 0, 0, 0); perr != nil {
			break
		}
		last = n
	}
	if last < 0 {
		return 0, fmt.Errorf("read %s: %w; PR_CAPBSET_READ probe found no capability either", ProcLastCap, err)
	}
	return last, nil
}

// HostLimits returns the limits for a container init started by the calling
// process. With newUserNamespace the init creates or joins a user namespace,
// where the kernel resets the bounding set to every capability, so only the
// kernel's last capability limits it. Without one the init inherits the
// calling process's bounding set (on this project's CI host, for example,
// root lacks CAP_SYS_RESOURCE there).
func HostLimits(newUserNamespace bool) (Limits, error) {
	last, err := LastCap()
	if err != nil {
		return Limits{}, err
	}
	l := Limits{LastCap: last}
	if newUserNamespace {
		l.Bounding = maskUpTo(last)
		return l, nil
	}
	for n := 0; n <= last; n++ {
		in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(n), 0, 0, 0)
		if err != nil {
			return Limits{}, fmt.Errorf("read bounding set: PR_CAPBSET_READ %s: %w", capLabel(n), err)
		}
		if in == 1 {
			l.Bounding |= 1 << uint(n)
		}
	}
	return l, nil
}

// Available lists the names of the capabilities within the limits, the list
// docker's --privileged and --cap-add=ALL expand to on this host.
func (l Limits) Available() []string {
	return NamesOf(l.Bounding & maskUpTo(l.LastCap))
}

// Parse converts c using the limits of the calling process without a user
// namespace, and logs every skipped capability with slog's default logger.
// The runtime, which knows whether the container gets a user namespace,
// should call Limits.Parse with HostLimits(userns) instead.
func Parse(c *specs.LinuxCapabilities) (Sets, error) {
	l, err := HostLimits(false)
	if err != nil {
		return Sets{}, err
	}
	s, warnings, err := l.Parse(c)
	if err != nil {
		return Sets{}, err
	}
	for _, w := range warnings {
		slog.Warn("capability skipped", "field", w.Field, "capability", w.Capability, "reason", w.Reason)
	}
	return s, nil
}

// Parse converts c into bit masks within the limits l.
//
// A name that is not a Linux capability is an error naming the field
// (`process.capabilities.bounding[2]: unknown capability "CAP_FOO"`): the
// runtime-spec requires values that cannot be mapped to a kernel interface
// to fail. Names this kernel does not have yet (beyond LastCap), names
// outside l.Bounding and ambient capabilities that are not both permitted
// and inheritable are skipped with a Warning, as runc skips them; the
// container still starts. An effective capability that is not permitted, or
// an inheritable one outside the bounding set, is an error because capset(2)
// would refuse it inside the init, where the failure is far harder to read.
//
// A nil c means "leave capabilities alone", which is what runc does; for
// the init that amounts to keeping everything in l.Bounding in the
// bounding, effective and permitted sets.
func (l Limits) Parse(c *specs.LinuxCapabilities) (Sets, []Warning, error) {
	if c == nil {
		return Sets{Bounding: l.Bounding, Effective: l.Bounding, Permitted: l.Bounding}, nil, nil
	}
	var (
		s        Sets
		warnings []Warning
	)
	sets := []struct {
		field string
		names []string
		mask  *uint64
	}{
		{"bounding", c.Bounding, &s.Bounding},
		{"effective", c.Effective, &s.Effective},
		{"permitted", c.Permitted, &s.Permitted},
		{"inheritable", c.Inheritable, &s.Inheritable},
		{"ambient", c.Ambient, &s.Ambient},
	}
	for _, set := range sets {
		for i, name := range set.names {
			field := fmt.Sprintf("process.capabilities.%s[%d]", set.field, i)
			n, ok := Number(name)
			if !ok {
				return Sets{}, nil, fmt.Errorf("%s: unknown capability %q", field, name)
			}
			switch {
			case n > l.LastCap:
				warnings = append(warnings, Warning{field, name,
					fmt.Sprintf("the running kernel does not have it (cap_last_cap is %d)", l.LastCap)})
			case l.Bounding&(1<<uint(n)) == 0:
				warnings = append(warnings, Warning{field, name,
					"not in the runtime's bounding set, so no process it starts can hold it (host limit)"})
			default:
				*set.mask |= 1 << uint(n)
			}
		}
	}
	if extra := s.Effective &^ s.Permitted; extra != 0 {
		return Sets{}, nil, fmt.Errorf("%s: %s is not in process.capabilities.permitted; the kernel refuses an effective capability that is not permitted",
			fieldOf("effective", c.Effective, extra), lowest(extra))
	}
	if extra := s.Inheritable &^ s.Bounding; extra != 0 {
		return Sets{}, nil, fmt.Errorf("%s: %s is not in process.capabilities.bounding; the kernel refuses an inheritable capability outside the bounding set",
			fieldOf("inheritable", c.Inheritable, extra), lowest(extra))
	}
	if extra := s.Ambient &^ (s.Permitted & s.Inheritable); extra != 0 {
		for i, name := range c.Ambient {
			if n, _ := Number(name); n <= MaxKnown && extra&(1<<uint(n)) != 0 {
				warnings = append(warnings, Warning{fmt.Sprintf("process.capabilities.ambient[%d]", i), name,
					"an ambient capability must also be permitted and inheritable"})
			}
		}
		s.Ambient &^= extra
	}
	return s, warnings, nil
}

// Validate checks every name in c without looking at the host, for callers
// (such as a spec linter) that only need to know the names exist.
func Validate(c *specs.LinuxCapabilities) error {
	_, _, err := Limits{LastCap: MaxKnown, Bounding: maskUpTo(MaxKnown)}.Parse(c)
	return err
}

func maskUpTo(last int) uint64 {
	if last >= 63 {
		return ^uint64(0)
	}
	return (uint64(1) << uint(last+1)) - 1
}

// fieldOf names the first entry of list whose capability is in mask.
func fieldOf(set string, list []string, mask uint64) string {
	for i, name := range list {
		if n, ok := Number(name); ok && mask&(1<<uint(n)) != 0 {
			return fmt.Sprintf("process.capabilities.%s[%d]", set, i)
		}
	}
	return "process.capabilities." + set
}

func lowest(mask uint64) string {
	for n := 0; n < 64; n++ {
		if mask&(1<<uint(n)) != 0 {
			return capLabel(n)
		}
	}
	return ""
}

func capLabel(n int) string {
	if name := Name(n); name != "" {
		return name
	}
	return "capability " + strconv.Itoa(n)
}
