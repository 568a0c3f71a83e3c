// Package network is `hako network`: create, ls, inspect, rm, connect,
// disconnect and prune, with docker's flags, output and exit statuses
// (docker CLI 28 against an API 1.41 daemon).
package network

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/moby/moby/client"
)

// mapOpt is docker's --opt/--ipam-opt/--aux-address: KEY=VALUE pairs.
type mapOpt map[string]string

func (m mapOpt) String() string {
	parts := make([]string, 0, len(m))
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	return "map[" + strings.Join(parts, " ") + "]"
}

func (m mapOpt) Set(s string) error {
	k, v, _ := strings.Cut(s, "=")
	m[k] = v
	return nil
}

func (m mapOpt) Type() string { return "map" }

// listOpt is a repeatable string flag with a check per value.
type listOpt struct {
	values   []string
	validate func(string) error
}

func (l *listOpt) String() string { return "[" + strings.Join(l.values, " ") + "]" }

func (l *listOpt) Set(s string) error {
	if l.validate != nil {
		if err := l.validate(s); err != nil {
			return err
		}
	}
	l.values = append(l.values, s)
	return nil
}

func (l *listOpt) Type() string { return "list" }

// validateLabel is docker's check of a --label.
func validateLabel(s string) error {
	k, _, _ := strings.Cut(s, "=")
	k = strings.TrimSpace(k)
	if k == "" {
		return fmt.Errorf("invalid label '%s': empty name", s)
	}
	if strings.ContainsAny(k, " \t\n\v\f\r") {
		return fmt.Errorf("label '%s' contains whitespaces", k)
	}
	return nil
}

// labelMap turns KEY=VALUE labels into a map (a bare KEY has "").
func labelMap(l []string) map[string]string {
	m := map[string]string{}
	for _, s := range l {
		k, v, _ := strings.Cut(s, "=")
		m[k] = v
	}
	return m
}

// filterOpt is docker's --filter NAME=VALUE (the name case-insensitive).
type filterOpt struct{ f client.Filters }

func newFilterOpt() *filterOpt { return &filterOpt{f: client.Filters{}} }

func (o *filterOpt) String() string {
	var parts []string
	for k, vs := range o.f {
		for v := range vs {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, " ")
}

func (o *filterOpt) Set(s string) error {
	if s == "" {
		return nil
	}
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("bad format of filter (expected name=value)")
	}
	o.f.Add(strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v))
	return nil
}

func (o *filterOpt) Type() string { return "filter" }

// naturalLess orders names as docker's lists do: digit runs compare by
// value ("net2" before "net10").
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		ca, cb := rune(a[0]), rune(b[0])
		if unicode.IsDigit(ca) && unicode.IsDigit(cb) {
			da, ra := digits(a)
			db, rb := digits(b)
			na, nb := strings.TrimLeft(da, "0"), strings.TrimLeft(db, "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			if len(da) != len(db) {
				return len(da) < len(db)
			}
			a, b = ra, rb
			continue
		}
		if ca != cb {
			return ca < cb
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func digits(s string) (string, string) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i], s[i:]
}
