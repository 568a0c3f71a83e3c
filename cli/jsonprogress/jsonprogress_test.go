package jsonprogress

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const pull = `{"status":"Pulling from clitest/bb","id":"latest"}
{"status":"Pulling fs layer","progressDetail":{},"id":"4d8c9fe5e260"}
{"status":"Downloading","progressDetail":{"current":100,"total":1000},"progress":"[=>  ]","id":"4d8c9fe5e260"}
{"status":"Downloading","progressDetail":{"current":1000,"total":1000},"progress":"[===]","id":"4d8c9fe5e260"}
{"status":"Verifying Checksum","progressDetail":{},"id":"4d8c9fe5e260"}
{"status":"Download complete","progressDetail":{},"id":"4d8c9fe5e260"}
{"status":"Extracting","progressDetail":{"current":1000,"total":1000},"id":"4d8c9fe5e260"}
{"status":"Pull complete","progressDetail":{},"id":"4d8c9fe5e260"}
{"status":"Digest: sha256:abc"}
{"status":"Status: Downloaded newer image for clitest/bb:latest"}
`

// TestNonTerminal: byte counts are dropped and each status is a line,
// as docker prints a pull into a pipe.
func TestNonTerminal(t *testing.T) {
	var out bytes.Buffer
	if err := Display(strings.NewReader(pull), &out, false, nil); err != nil {
		t.Fatal(err)
	}
	want := `latest: Pulling from clitest/bb
4d8c9fe5e260: Pulling fs layer
4d8c9fe5e260: Verifying Checksum
4d8c9fe5e260: Download complete
4d8c9fe5e260: Pull complete
Digest: sha256:abc
Status: Downloaded newer image for clitest/bb:latest
`
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}
}

// TestTerminal: on a terminal the layer's line is redrawn with a bar.
func TestTerminal(t *testing.T) {
	var out bytes.Buffer
	if err := Display(strings.NewReader(pull), &out, true, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "\x1b[") || !strings.Contains(out.String(), "Downloading [=====") {
		t.Fatalf("no redrawn bar in %q", out.String())
	}
}

func TestStreamAuxAndErrors(t *testing.T) {
	var out bytes.Buffer
	var aux []string
	in := `{"stream":"Loaded image: bb:latest\n"}
{"aux":{"Tag":"latest","Digest":"sha256:1","Size":1}}
`
	if err := Display(strings.NewReader(in), &out, false, func(m json.RawMessage) { aux = append(aux, string(m)) }); err != nil {
		t.Fatal(err)
	}
	if out.String() != "Loaded image: bb:latest\n" || len(aux) != 1 {
		t.Fatalf("out %q aux %v", out.String(), aux)
	}
	for in, want := range map[string]string{
		`{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}`: "manifest unknown",
		`{"error":"legacy form"}`: "legacy form",
	} {
		err := Display(strings.NewReader(in), &out, false, nil)
		var se StreamError
		if !errors.As(err, &se) || se.Message != want {
			t.Errorf("%s: %v", in, err)
		}
	}
	if err := Display(strings.NewReader("{not json"), &out, false, nil); err == nil || !strings.Contains(err.Error(), "decode progress stream") {
		t.Fatalf("bad stream: %v", err)
	}
}
