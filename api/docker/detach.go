package docker

import (
	"fmt"
	"io"
	"strings"

	"github.com/hako-project/hako/engine"
	"github.com/hako-project/hako/errdefs"
)

// defaultDetachKeys is docker's: ctrl-p ctrl-q.
var defaultDetachKeys = []byte{16, 17}

// parseDetachKeys reads docker's --detach-keys ("ctrl-p,ctrl-q", "ctrl-x",
// "a,b") into the byte sequence.
func parseDetachKeys(s string) ([]byte, error) {
	if s == "" {
		return defaultDetachKeys, nil
	}
	var out []byte
	for _, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(k)
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case strings.HasPrefix(strings.ToLower(k), "ctrl-") && len(k) == 6:
			c := k[5]
			switch {
			case c >= 'a' && c <= 'z':
				out = append(out, c-'a'+1)
			case c >= 'A' && c <= 'Z':
				out = append(out, c-'A'+1)
			case c == '@':
				out = append(out, 0)
			case c >= '[' && c <= '_':
				out = append(out, c-'['+27)
			default:
				return nil, errdefs.Invalidf("Invalid detach keys (%s) provided", s)
			}
		default:
			return nil, errdefs.Invalidf("Invalid detach keys (%s) provided", s)
		}
	}
	return out, nil
}

// detachReader passes stdin through until the detach sequence, which ends
// the attach (engine.ErrDetach) without ending the container's stdin.
type detachReader struct {
	r        io.Reader
	keys     []byte
	matched  int    // how much of keys the latest bytes matched
	pending  []byte // input to hand out before reading more
	detached bool   // the sequence was seen: detach once pending is out
}

func (d *detachReader) Read(p []byte) (int, error) {
	for {
		if len(d.pending) > 0 {
			n := copy(p, d.pending)
			d.pending = d.pending[n:]
			return n, nil
		}
		if d.detached {
			return 0, fmt.Errorf("detach keys: %w", engine.ErrDetach)
		}
		buf := make([]byte, len(p))
		n, err := d.r.Read(buf)
		for _, b := range buf[:n] {
			if d.detached {
				break // input after the detach keys is dropped, as docker does
			}
			if b == d.keys[d.matched] {
				d.matched++
				if d.matched == len(d.keys) {
					d.detached = true
				}
				continue
			}
			// A partial match that did not complete is ordinary input.
			d.pending = append(d.pending, d.keys[:d.matched]...)
			d.matched = 0
			if b == d.keys[0] {
				d.matched = 1
				if len(d.keys) == 1 {
					d.detached = true
				}
				continue
			}
			d.pending = append(d.pending, b)
		}
		if len(d.pending) == 0 && !d.detached && err != nil {
			return 0, err
		}
	}
}
