package proto

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hako-project/hako/runtime/cgroups"
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

// TestLazyFieldsSameJSON checks that Request's UnmarshalJSON and
// Response's MarshalJSON, which leave the big nested types to a second
// pass, read and write what plain encoding/json does.
func TestLazyFieldsSameJSON(t *testing.T) {
	type plainResponse Response
	limit := int64(100)
	for _, r := range []Response{
		{},
		{Error: "no", Code: CodeConflict},
		{Pid: 7, Status: "running", Exit: &Exit{Pid: 7, Code: 137, Signal: 9, At: time.Unix(5, 6).UTC(), OOMKilled: true}},
		{Stats: &cgroups.Stats{Memory: cgroups.Memory{Usage: cgroups.MemoryEntry{Usage: 42}}}},
	} {
		got, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(plainResponse(r))
		if !bytes.Equal(got, want) {
			t.Errorf("Response:\n got %s\nwant %s", got, want)
		}
	}
	type plainRequest Request
	for _, in := range []string{
		`{"op":"wait","exec":"e1"}`,
		`{"op":"exec","exec":"e2","stdin":true,"process":{"args":["sh"],"cwd":"/","env":["A=b"]},"traceparent":"tp"}`,
		`{"op":"update","resources":{"memory":{"limit":100},"pids":{"limit":5}}}`,
		`{"op":"exec","process":null,"resources":null}`,
	} {
		var got Request
		var want plainRequest
		if err := json.Unmarshal([]byte(in), &got); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(plainRequest(got), want) {
			t.Errorf("Request %s:\n got %+v\nwant %+v", in, got, want)
		}
	}
	var r Request
	if err := json.Unmarshal([]byte(`{"op":"update","resources":{"memory":{"limit":100}}}`), &r); err != nil ||
		r.Resources == nil || r.Resources.Memory == nil || *r.Resources.Memory.Limit != limit {
		t.Errorf("resources: %+v, %v", r.Resources, err)
	}
	if err := json.Unmarshal([]byte(`{"op":"exec","process":{"args":1}}`), &r); err == nil {
		t.Error("a bad process was accepted")
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
