package docker

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/hako-project/hako/engine"
)

func TestParseDetachKeys(t *testing.T) {
	for in, want := range map[string]string{"": "\x10\x11", "ctrl-p,ctrl-q": "\x10\x11", "ctrl-x": "\x18", "a,ctrl-[": "a\x1b"} {
		got, err := parseDetachKeys(in)
		if err != nil || string(got) != want {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"ctrl-", "ctrl-1", "abc"} {
		if _, err := parseDetachKeys(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestDetachReader(t *testing.T) {
	cases := []struct {
		in, out  string
		detached bool
	}{
		{"hello", "hello", false},
		{"ab\x10\x11cd", "ab", true},       // detach; what follows is dropped
		{"a\x10b\x10\x11", "a\x10b", true}, // a lone first key is input
		{"\x10\x10\x11", "\x10", true},     // a repeated first key
		{"x\x10", "x", false},              // an unfinished sequence at EOF is dropped
	}
	for _, c := range cases {
		d := &detachReader{r: strings.NewReader(c.in), keys: []byte{16, 17}}
		got, err := io.ReadAll(d)
		detached := errors.Is(err, engine.ErrDetach)
		if string(got) != c.out || detached != c.detached {
			t.Errorf("%q: got %q detached=%v (err %v), want %q detached=%v", c.in, got, detached, err, c.out, c.detached)
		}
	}
}
