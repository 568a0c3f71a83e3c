// Package formatter renders lists and objects the way docker's CLI does:
// Go templates with docker's template functions, "table" formats aligned
// in columns under a header, "json" as one object per line, and the
// display helpers (short IDs, ellipsis, "2 minutes ago", port lists) that
// make hako's tables byte-for-byte docker's.
package formatter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"text/template"
	"unicode"
)

// funcs are docker's template functions (`docker inspect -f`, `--format`).
var funcs = template.FuncMap{
	"json":     toJSON,
	"split":    strings.Split,
	"join":     join,
	"title":    title,
	"lower":    strings.ToLower,
	"upper":    strings.ToUpper,
	"pad":      pad,
	"truncate": truncate,
}

// headerFuncs make a table's header row from the same template: every
// function passes the header text through.
var headerFuncs = template.FuncMap{
	"json":     func(v string) string { return v },
	"split":    func(v string, _ string) string { return v },
	"join":     func(v string, _ string) string { return v },
	"title":    func(v string) string { return v },
	"lower":    func(v string) string { return v },
	"upper":    func(v string) string { return v },
	"truncate": func(v string, _ int) string { return v },
}

// ParseTemplate parses a user's template with docker's functions.
func ParseTemplate(format string) (*template.Template, error) {
	return template.New("").Funcs(funcs).Parse(format)
}

// NamedTemplate parses text as template name with docker's functions
// and extra ones.
func NamedTemplate(name string, extra template.FuncMap, text string) (*template.Template, error) {
	return template.New(name).Funcs(funcs).Funcs(extra).Parse(text)
}

// toJSON is the `json` function: compact JSON without HTML escaping.
func toJSON(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSpace(buf.String()), nil
}

// join joins a slice (any element type) or a map's values (sorted).
func join(v any, sep string) (string, error) {
	if v == nil {
		return "", nil
	}
	if ss, ok := v.([]string); ok {
		return strings.Join(ss, sep), nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		parts := make([]string, rv.Len())
		for i := range parts {
			parts[i] = fmt.Sprint(rv.Index(i).Interface())
		}
		return strings.Join(parts, sep), nil
	case reflect.Map:
		parts := make([]string, 0, rv.Len())
		for _, k := range rv.MapKeys() {
			parts = append(parts, fmt.Sprint(rv.MapIndex(k).Interface()))
		}
		sort.Strings(parts)
		return strings.Join(parts, sep), nil
	default:
		return "", fmt.Errorf("expected slice, got %T", v)
	}
}

// title upper-cases the first letter of each word (ASCII, as docker's
// strings.Title use does in practice).
func title(s string) string {
	prev := ' '
	return strings.Map(func(r rune) rune {
		defer func() { prev = r }()
		if unicode.IsSpace(prev) || prev == '-' || prev == '_' {
			return unicode.ToTitle(r)
		}
		return r
	}, s)
}

func pad(s string, prefix, suffix int) string {
	if s == "" {
		return s
	}
	return strings.Repeat(" ", prefix) + s + strings.Repeat(" ", suffix)
}

func truncate(s string, n int) string {
	if len(s) < n {
		return s
	}
	return s[:n]
}
