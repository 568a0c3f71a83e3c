// Package bundle loads an OCI bundle's config.json and checks it before any
// process starts, so that a bad field is reported by name and nothing is
// created for it.
package bundle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Load reads dir/config.json, validates it and resolves root.path against
// dir. The returned error names the offending field.
func Load(dir string) (*specs.Spec, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", dir, err)
	}
	name := filepath.Join(abs, "config.json")
	data, err := os.ReadFile(name)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("bundle %s: no config.json (create one with `hako-runtime spec`)", abs)
		}
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	s, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := Validate(s, abs); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if !filepath.IsAbs(s.Root.Path) {
		s.Root.Path = filepath.Join(abs, s.Root.Path)
	}
	return s, nil
}

// Parse decodes config.json, reporting syntax errors by line and column.
func Parse(data []byte) (*specs.Spec, error) {
	var s specs.Spec
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&s); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.Is(err, io.ErrUnexpectedEOF):
			line, _ := lineCol(data, int64(len(data)))
			return nil, fmt.Errorf("invalid JSON: the document ends early, at line %d (a missing } or ]?)", line)
		case errors.As(err, &se):
			line, col := lineCol(data, se.Offset)
			return nil, fmt.Errorf("invalid JSON at line %d, column %d: %v", line, col, se)
		case errors.As(err, &te):
			return nil, fmt.Errorf("field %s: cannot use a JSON %s as %s", te.Field, te.Value, te.Type)
		}
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("invalid JSON: extra data after the configuration object")
	}
	return &s, nil
}

func lineCol(data []byte, off int64) (int, int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// ValidateID checks a container ID the way runc does: it becomes a directory
// name, so it may not contain a slash or be "." or "..".
func ValidateID(id string) error {
	if id == "" {
		return errors.New("container id is empty")
	}
	ok := id != "." && id != ".." && len(id) <= 1024
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_+-.", c)) {
			ok = false
		}
	}
	if !ok {
		return fmt.Errorf("invalid container id %q: use letters, digits, '_', '+', '-' and '.'", id)
	}
	return nil
}
