package system

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/hako-project/hako/cli/command"
	"github.com/moby/moby/api/types/system"
)

type obj struct{ Name string }

func TestInspectOutputs(t *testing.T) {
	get := func(ref string) (any, []byte, error) {
		if ref == "missing" {
			return nil, nil, noSuchObject(ref)
		}
		return obj{Name: ref}, []byte(`{"Name":"` + ref + `","Extra":1}`), nil
	}
	var out bytes.Buffer
	if err := Inspect(&out, []string{"a", "b"}, "", get); err != nil {
		t.Fatal(err)
	}
	want := "[\n    {\n        \"Name\": \"a\",\n        \"Extra\": 1\n    },\n    {\n        \"Name\": \"b\",\n        \"Extra\": 1\n    }\n]\n"
	if out.String() != want {
		t.Fatalf("indented:\n%s\nwant\n%s", out.String(), want)
	}
	out.Reset()
	Inspect(&out, []string{"a"}, "json", get)
	if out.String() != `[{"Name":"a","Extra":1}]`+"\n" {
		t.Fatalf("json: %q", out.String())
	}
	out.Reset()
	// A field the typed value lacks falls back to the raw JSON.
	if err := Inspect(&out, []string{"a", "missing"}, "{{.Name}} {{.Extra}}", get); err == nil {
		t.Fatal("the missing object must fail")
	} else if err.Error() != "Error: No such object: missing" {
		t.Fatalf("err %q", err)
	}
	if out.String() != "a 1\n" {
		t.Fatalf("template: %q", out.String())
	}
	out.Reset()
	err := Inspect(&out, []string{"missing"}, "", get)
	if out.String() != "[]\n" || err == nil {
		t.Fatalf("nothing found: %q %v", out.String(), err)
	}
	err = Inspect(&out, []string{"a"}, "{{.Nope", get)
	var se command.StatusError
	if !errors.As(err, &se) || se.StatusCode != 64 || !strings.HasPrefix(se.Error(), "template parsing error: ") {
		t.Fatalf("bad template: %v", err)
	}
	out.Reset()
	err = Inspect(&out, []string{"a"}, "{{.Unknown}}", get)
	if err == nil || !strings.Contains(err.Error(), "template parsing error") {
		t.Fatalf("unknown field: %v", err)
	}
}

func TestDetailKeysSorted(t *testing.T) {
	c := system.ComponentVersion{Details: map[string]string{"b": "", "GitCommit": "", "a": ""}}
	if got := strings.Join(detailKeys(c), ","); got != "GitCommit,a,b" {
		t.Fatalf("%s", got)
	}
}

func TestPrintServerInfo(t *testing.T) {
	var out, errb bytes.Buffer
	i := &system.Info{Containers: 3, ContainersRunning: 1, ServerVersion: "x", OSType: "linux", NCPU: 2, MemTotal: 1 << 30,
		Runtimes: map[string]system.RuntimeWithStatus{"runc": {}, "crun": {}}, SecurityOptions: []string{"name=seccomp,profile=default"},
		Warnings: []string{"WARNING: careful"}}
	printServerInfo(&out, &errb, i)
	for _, want := range []string{" Containers: 3\n  Running: 1\n", " Runtimes: crun runc\n", "  seccomp\n   Profile: default\n", " Total Memory: 1GiB\n", " CPUs: 2\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("info lacks %q:\n%s", want, out.String())
		}
	}
	if errb.String() != "WARNING: careful\n" {
		t.Errorf("warnings go to stderr: %q", errb.String())
	}
}
