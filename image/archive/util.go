package archive

import (
	"bytes"
	"io"
	"strings"

	specs "github.com/opencontainers/image-spec/specs-go"
)

func stringsReader(s string) io.Reader { return strings.NewReader(s) }
func bytesReader(b []byte) io.Reader   { return bytes.NewReader(b) }
func specsVersioned() specs.Versioned  { return specs.Versioned{SchemaVersion: 2} }
