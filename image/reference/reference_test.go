package reference

import (
	"errors"
	"strings"
	"testing"
)

func TestParseNormalizes(t *testing.T) {
	const dgst = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	cases := []struct{ in, full, familiar string }{
		{"busybox", "docker.io/library/busybox:latest", "busybox:latest"},
		{"library/busybox", "docker.io/library/busybox:latest", "busybox:latest"},
		{"docker.io/library/busybox:latest", "docker.io/library/busybox:latest", "busybox:latest"},
		{"index.docker.io/busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"},
		{"user/app:v1", "docker.io/user/app:v1", "user/app:v1"},
		{"localhost/app", "localhost/app:latest", "localhost/app:latest"},
		{"localhost:5000/a/b/c:t", "localhost:5000/a/b/c:t", "localhost:5000/a/b/c:t"},
		{"127.0.0.1:5000/x@" + dgst, "127.0.0.1:5000/x@" + dgst, "127.0.0.1:5000/x@" + dgst},
		{"busybox:1@" + dgst, "docker.io/library/busybox:1@" + dgst, "busybox:1@" + dgst},
		{"Example.com/app", "Example.com/app:latest", "Example.com/app:latest"},
		{"hako.local/busybox:latest", "hako.local/busybox:latest", "hako.local/busybox:latest"},
		{"[::1]:5000/x", "[::1]:5000/x:latest", "[::1]:5000/x:latest"},
	}
	for _, c := range cases {
		r, err := Parse(c.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if r.String() != c.full {
			t.Errorf("Parse(%q).String() = %q, want %q", c.in, r.String(), c.full)
		}
		if r.FamiliarString() != c.familiar {
			t.Errorf("Parse(%q).FamiliarString() = %q, want %q", c.in, r.FamiliarString(), c.familiar)
		}
	}
}

func TestParseNamedKeepsMissingTag(t *testing.T) {
	r, err := ParseNamed("busybox")
	if err != nil {
		t.Fatal(err)
	}
	if r.Tag != "" || r.String() != "docker.io/library/busybox" {
		t.Fatalf("got %+v", r)
	}
}

func TestParseRejectsMalformed(t *testing.T) {
	bad := map[string]string{
		"":                              "empty",
		"UPPER":                         "lowercase",
		"busybox:":                      "bad tag",
		"busybox:-x":                    "bad tag",
		"a//b":                          "path component",
		"busybox@sha256:abc":            "bad digest",
		"busybox@md5:00":                "bad digest",
		"-bad/name":                     "path component",
		"host:port:x/y":                 "bad registry host",
		strings.Repeat("a", 64):         "image ID",
		"x/" + strings.Repeat("a", 300): "longer than",
		"foo bar":                       "bad",
	}
	for in, want := range bad {
		_, err := Parse(in)
		if err == nil {
			t.Errorf("Parse(%q) succeeded", in)
			continue
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q) error %v is not ErrInvalid", in, err)
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want mention of %q", in, err, want)
		}
	}
}
