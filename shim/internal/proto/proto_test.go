package proto

import (
	"bytes"
	"encoding/binary"
	"io"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestMessageRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	in := Request{Op: OpExec, Exec: "e1", Stdin: true, Process: &specs.Process{Args: []string{"sh", "-c", "echo \"hi\""}, Cwd: "/"}}
	if err := WriteMsg(&buf, in); err != nil {
		t.Fatal(err)
	}
	if err := WriteMsg(&buf, Response{Pid: 42}); err != nil {
		t.Fatal(err)
	}
	var out Request
	if err := ReadMsg(&buf, &out); err != nil {
		t.Fatal(err)
	}
	if out.Op != OpExec || out.Exec != "e1" || !out.Stdin || out.Process.Args[2] != `echo "hi"` {
		t.Errorf("got %+v", out)
	}
	var resp Response
	if err := ReadMsg(&buf, &resp); err != nil || resp.Pid != 42 {
		t.Errorf("second message: %+v, %v", resp, err)
	}
	if err := ReadMsg(&buf, &resp); err != io.EOF {
		t.Errorf("read past the end: %v, want EOF", err)
	}
}

func TestReadMsgRejects(t *testing.T) {
	huge := make([]byte, 4)
	binary.BigEndian.PutUint32(huge, maxMessage+1)
	truncated := []byte{0, 0, 0, 10, '{'}
	garbage := append([]byte{0, 0, 0, 3}, "xyz"...)
	for name, c := range map[string]struct {
		b    []byte
		want string
	}{
		"too large": {huge, "larger than"},
		"truncated": {truncated, "read message"},
		"not JSON":  {garbage, "decode message"},
	} {
		var v Request
		err := ReadMsg(bytes.NewReader(c.b), &v)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, c.want)
		}
	}
}

func TestFrameHeader(t *testing.T) {
	h := MakeHeader(Stderr, 1234)
	got, err := ReadHeader(bytes.NewReader(h[:]))
	if err != nil || got.Stream() != Stderr || got.Len() != 1234 {
		t.Errorf("header %x: stream %d len %d err %v", h, got.Stream(), got.Len(), err)
	}
	for name, b := range map[string][]byte{
		"bad stream":  {7, 0, 0, 0, 0, 0, 0, 1},
		"nonzero pad": {1, 0, 1, 0, 0, 0, 0, 1},
		"too long":    {1, 0, 0, 0, 0, 1, 0, 1},
	} {
		if _, err := ReadHeader(bytes.NewReader(b)); err == nil {
			t.Errorf("%s: header % x accepted", name, b)
		}
	}
}
