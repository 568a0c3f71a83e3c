// Package opts holds the flag values docker's commands share (--opt,
// --label, --filter), with docker's parsing and messages, so that every
// hako command that takes one behaves the same.
package opts

import (
	"fmt"
	"strings"

	"github.com/moby/moby/client"
)

// Map is docker's --opt: KEY=VALUE pairs into a map (a bare KEY has an
// empty value; the daemon judges it).
type Map map[string]string

func (m Map) String() string {
	parts := make([]string, 0, len(m))
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	return "map[" + strings.Join(parts, " ") + "]"
}

// Set adds one KEY=VALUE.
func (m Map) Set(s string) error {
	k, v, _ := strings.Cut(s, "=")
	m[k] = v
	return nil
}

// Type is the name pflag shows in help.
func (m Map) Type() string { return "map" }

// List is a repeatable string flag with a check per value.
type List struct {
	Values   []string
	Validate func(string) error
}

func (l *List) String() string { return "[" + strings.Join(l.Values, " ") + "]" }

// Set checks and appends one value.
func (l *List) Set(s string) error {
	if l.Validate != nil {
		if err := l.Validate(s); err != nil {
			return err
		}
	}
	l.Values = append(l.Values, s)
	return nil
}

// Type is the name pflag shows in help.
func (l *List) Type() string { return "list" }

// ValidateLabel is docker's check of a --label.
func ValidateLabel(s string) error {
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

// LabelMap turns KEY=VALUE labels into a map (a bare KEY has "").
func LabelMap(l []string) map[string]string {
	m := map[string]string{}
	for _, s := range l {
		k, v, _ := strings.Cut(s, "=")
		m[k] = v
	}
	return m
}

// Filter is docker's --filter NAME=VALUE (the name case-insensitive).
type Filter struct{ Filters client.Filters }

// NewFilter is an empty --filter.
func NewFilter() *Filter { return &Filter{Filters: client.Filters{}} }

func (o *Filter) String() string {
	var parts []string
	for k, vs := range o.Filters {
		for v := range vs {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, " ")
}

// Set adds one NAME=VALUE.
func (o *Filter) Set(s string) error {
	if s == "" {
		return nil
	}
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("bad format of filter (expected name=value)")
	}
	o.Filters.Add(strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v))
	return nil
}

// Type is the name pflag shows in help.
func (o *Filter) Type() string { return "filter" }
