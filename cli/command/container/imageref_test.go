package container

import (
	"errors"
	"math/rand"
	"strings"
	"testing"

	"github.com/distribution/reference"
	"github.com/hako-project/hako/cli/command"
	"github.com/spf13/cobra"
)

func TestPlainImageRef(t *testing.T) {
	plain := []string{
		"busybox", "busybox:latest", "hako.local/busybox", "hako.local/busybox:1.36", "library/busybox",
		"registry:5000/team/app:1.2", "localhost/app", "localhost:5000/a/b/c:v1", "127.0.0.1:5000/x",
		"a.b-c.example.com/x__y/z--w.q:TAG_1.2-x", "my-reg.io/a_b", "ubuntu:22.04", "Registry.Example.COM/app",
		"sha256:" + strings.Repeat("b", 64), // a digest to the parser, a name and tag here: valid to both
	}
	asks := []string{ // left to the parser, valid or not
		"", "Busybox", "busybox:", ":tag", "busybox:.x", "a//b", "a/", "/a", "a_", "-a", "a-", "a._b", "a-.b",
		"a-_b", "a___b", "busybox@sha256:" + strings.Repeat("a", 64), strings.Repeat("a", 64),
		"[::1]:5000/app", "host:/app", "host:5x/app", "-host.io/app",
		"host-.io/app", "a/b:" + strings.Repeat("t", 129), strings.Repeat("a", 240), "busy box", "a:b:c",
	}
	for _, s := range plain {
		if !plainImageRef(s) {
			t.Errorf("plainImageRef(%q) = false, want true", s)
		}
		if err := checkImageRef(s); err != nil {
			t.Errorf("checkImageRef(%q): %v", s, err)
		}
	}
	for _, s := range asks {
		if plainImageRef(s) {
			t.Errorf("plainImageRef(%q) = true, want it left to the parser", s)
		}
		_, want := reference.ParseAnyReference(s)
		if got := checkImageRef(s); (got == nil) != (want == nil) || got != nil && got.Error() != want.Error() {
			t.Errorf("checkImageRef(%q) = %v, want the parser's %v", s, got, want)
		}
	}
}

// TestPlainImageRefAgreesWithParser: whatever the fast path accepts, the
// parser accepts too, over many short strings of the characters that
// matter to the grammar.
func TestPlainImageRefAgreesWithParser(t *testing.T) {
	const alphabet = "ab0Z._-:/@"
	rng := rand.New(rand.NewSource(1))
	accepted := 0
	for range 200000 {
		b := make([]byte, 1+rng.Intn(10))
		for i := range b {
			b[i] = alphabet[rng.Intn(len(alphabet))]
		}
		s := string(b)
		if !plainImageRef(s) {
			continue
		}
		accepted++
		if _, err := reference.ParseAnyReference(s); err != nil {
			t.Fatalf("plainImageRef(%q) = true, but the parser says %v", s, err)
		}
	}
	if accepted < 1000 {
		t.Fatalf("only %d strings took the fast path: the test checks little", accepted)
	}
}

func FuzzPlainImageRef(f *testing.F) {
	for _, s := range []string{"busybox", "hako.local/busybox:1", "localhost:5000/a__b/c--d.e:T", "a-_b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if plainImageRef(s) {
			if _, err := reference.ParseAnyReference(s); err != nil {
				t.Fatalf("plainImageRef(%q) = true, but the parser says %v", s, err)
			}
		}
	})
}

// TestCreateRefusesBadImageRef: `hako create` with an image name the
// grammar refuses fails before any request, with docker's status 125 and
// the parser's message, whether the fast path or the parser said no.
func TestCreateRefusesBadImageRef(t *testing.T) {
	for ref, msg := range map[string]string{
		"Busybox":     "repository name (library/Busybox) must be lowercase",
		"busy box":    "invalid reference format",
		"a//b":        "invalid reference format",
		"busybox:.x":  "invalid reference format",
		"busybox@bad": "invalid reference format",
	} {
		root := &cobra.Command{Use: "hako", SilenceErrors: true, SilenceUsage: true}
		cmd := NewCreateCommand(&command.Cli{Getenv: func(string) string { return "" }})
		root.AddCommand(cmd)
		root.SetArgs([]string{"create", ref})
		err := root.Execute()
		var se command.StatusError
		if !errors.As(err, &se) || se.StatusCode != 125 || !strings.Contains(se.Error(), msg) {
			t.Errorf("create %q: %#v, want status 125 and %q", ref, err, msg)
		}
	}
}
