package runopts

import (
	"fmt"
	"math/big"
	"net/netip"
	"strings"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
)

// The pflag.Value types below validate at flag-parse time, as docker's do,
// so a bad value is reported as `invalid argument "x" for "--flag" flag:
// reason` with the usage line and exit status 125.

// MemBytes is a size such as "512m" (binary units).
type MemBytes int64

func (m *MemBytes) String() string {
	if *m == 0 {
		return "0"
	}
	return units.BytesSize(float64(*m))
}

// Set parses a size.
func (m *MemBytes) Set(s string) error {
	v, err := units.RAMInBytes(s)
	*m = MemBytes(v)
	return err
}

// Type names the value in help.
func (m *MemBytes) Type() string { return "bytes" }

// MemSwapBytes is a size that may also be -1 (unlimited swap).
type MemSwapBytes int64

func (m *MemSwapBytes) String() string { return (*MemBytes)(m).String() }

// Set parses a size or -1.
func (m *MemSwapBytes) Set(s string) error {
	if s == "-1" {
		*m = -1
		return nil
	}
	return (*MemBytes)(m).Set(s)
}

// Type names the value in help.
func (m *MemSwapBytes) Type() string { return "bytes" }

// NanoCPUs is a decimal number of CPUs ("1.5"), stored in billionths.
type NanoCPUs int64

func (c *NanoCPUs) String() string {
	if *c == 0 {
		return ""
	}
	return big.NewRat(int64(*c), 1e9).FloatString(3)
}

// Set parses a rational number of CPUs.
func (c *NanoCPUs) Set(s string) error {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return fmt.Errorf("failed to parse %v as a rational number", s)
	}
	n := r.Mul(r, big.NewRat(1e9, 1))
	if !n.IsInt() {
		return fmt.Errorf("value is too precise")
	}
	*c = NanoCPUs(n.Num().Int64())
	return nil
}

// Type names the value in help.
func (c *NanoCPUs) Type() string { return "decimal" }

// List is a repeatable string flag; each value is checked by validate
// (nil: any value) and may be rewritten by it.
type List struct {
	values   []string
	validate func(string) (string, error)
}

// NewList returns an empty list with a validator.
func NewList(validate func(string) (string, error)) *List { return &List{validate: validate} }

func (l *List) String() string {
	if len(l.values) == 0 {
		return "[]"
	}
	return "[" + strings.Join(l.values, " ") + "]"
}

// Set appends a value.
func (l *List) Set(s string) error {
	if l.validate != nil {
		v, err := l.validate(s)
		if err != nil {
			return err
		}
		s = v
	}
	l.values = append(l.values, s)
	return nil
}

// Type names the value in help.
func (l *List) Type() string { return "list" }

// Values returns the values in order.
func (l *List) Values() []string { return l.values }

// Len is the number of values.
func (l *List) Len() int { return len(l.values) }

// UlimitList is a repeatable --ulimit NAME=SOFT[:HARD].
type UlimitList struct {
	values []*container.Ulimit
}

func (u *UlimitList) String() string {
	parts := make([]string, len(u.values))
	for i, v := range u.values {
		parts[i] = v.String()
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// Set parses one ulimit; a later value for the same name replaces it.
func (u *UlimitList) Set(s string) error {
	l, err := units.ParseUlimit(s)
	if err != nil {
		return err
	}
	for i, v := range u.values {
		if v.Name == l.Name {
			u.values[i] = l
			return nil
		}
	}
	u.values = append(u.values, l)
	return nil
}

// Type names the value in help.
func (u *UlimitList) Type() string { return "ulimit" }

// Values returns the ulimits.
func (u *UlimitList) Values() []*container.Ulimit { return u.values }

// validateAttach accepts stdin, stdout or stderr (any case).
func validateAttach(s string) (string, error) {
	v := strings.ToLower(s)
	switch v {
	case "stdin", "stdout", "stderr":
		return v, nil
	}
	return s, fmt.Errorf("valid streams are STDIN, STDOUT and STDERR")
}

// validateIP accepts an IP address (for --dns).
func validateIP(s string) (string, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return "", fmt.Errorf("IP address is not correctly formatted: %s", s)
	}
	return a.String(), nil
}

// validateExtraHost accepts HOST:IP or HOST=IP (IP may be "host-gateway"),
// and returns docker's HOST:IP form.
func validateExtraHost(s string) (string, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		k, v, ok = strings.Cut(s, ":")
	}
	if !ok || k == "" {
		return "", fmt.Errorf("bad format for add-host: %q", s)
	}
	ip := strings.TrimSuffix(strings.TrimPrefix(v, "["), "]")
	if ip != "host-gateway" {
		if _, err := netip.ParseAddr(ip); err != nil {
			return "", fmt.Errorf("invalid IP address in add-host: %q", v)
		}
	}
	return k + ":" + ip, nil
}

// validateLabel refuses an empty key.
func validateLabel(s string) (string, error) {
	if strings.HasPrefix(s, "=") || strings.TrimSpace(s) == "" {
		return "", fmt.Errorf("invalid label '%s': empty name", s)
	}
	return s, nil
}
