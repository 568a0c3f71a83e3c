package formatter

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
)

func TestTruncateIDAndEllipsis(t *testing.T) {
	for in, want := range map[string]string{
		"sha256:0123456789abcdef0123": "0123456789ab",
		"0123456789abcdef":            "0123456789ab",
		"short":                       "short",
	} {
		if got := TruncateID(in); got != want {
			t.Errorf("TruncateID(%q) = %q, want %q", in, got, want)
		}
	}
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"sleep 100", 20, "sleep 100"},
		{"sh -c 'echo a very long line'", 20, "sh -c 'echo a very …"},
		{"héllo wörld", 5, "héll…"},
		{"abc", 1, "a"},
		{"abc", 0, ""},
	} {
		if got := Ellipsis(c.in, c.n); got != c.want {
			t.Errorf("Ellipsis(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}

func TestPorts(t *testing.T) {
	ip := netip.MustParseAddr("0.0.0.0")
	ports := []container.PortSummary{
		{PrivatePort: 81, Type: "tcp"},
		{PrivatePort: 80, Type: "tcp"},
		{PrivatePort: 90, Type: "udp"},
		{IP: ip, PrivatePort: 443, PublicPort: 8443, Type: "tcp"},
		{IP: ip, PrivatePort: 22, PublicPort: 22, Type: "tcp"},
		{IP: ip, PrivatePort: 23, PublicPort: 23, Type: "tcp"},
		{PrivatePort: 85, Type: "tcp"},
	}
	want := "80-81/tcp, 0.0.0.0:22-23->22-23/tcp, 85/tcp, 90/udp, 0.0.0.0:8443->443/tcp"
	if got := Ports(ports); got != want {
		t.Fatalf("Ports = %q\nwant    %q", got, want)
	}
	if got := Ports(nil); got != "" {
		t.Fatalf("no ports: %q", got)
	}
}

func TestFormatTemplate(t *testing.T) {
	for in, want := range map[Format]string{
		"table":                    "",
		"json":                     "{{json .}}",
		`table {{.ID}}\t{{.Name}}`: "{{.ID}}\t{{.Name}}",
		`  {{.ID}}\n  `:            "{{.ID}}\n",
	} {
		if got := in.Template(); got != want {
			t.Errorf("%q.Template() = %q, want %q", in, got, want)
		}
	}
}

type row struct{ id, name string }

func (r *row) ID() string                   { return r.id }
func (r *row) Name() string                 { return r.name }
func (r *row) Label(string) string          { return "not in json" }
func (r *row) MarshalJSON() ([]byte, error) { return MarshalMethods(r) }

func TestWriteTable(t *testing.T) {
	var buf bytes.Buffer
	rows := []any{&row{"1", "first"}, &row{"22", "<second>"}}
	if err := Write(&buf, `table {{.ID}}\t{{.Name}}`, map[string]string{"ID": "ID", "Name": "NAME"}, rows); err != nil {
		t.Fatal(err)
	}
	want := "ID        NAME\n1         first\n22        <second>\n"
	if buf.String() != want {
		t.Fatalf("table:\n%q\nwant\n%q", buf.String(), want)
	}
	buf.Reset()
	if err := Write(&buf, "json", nil, rows); err != nil {
		t.Fatal(err)
	}
	want = `{"ID":"1","Name":"first"}` + "\n" + `{"ID":"22","Name":"\u003csecond\u003e"}` + "\n"
	if buf.String() != want {
		t.Fatalf("json:\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestWriteErrors(t *testing.T) {
	var buf bytes.Buffer
	err := Write(&buf, "{{.ID", nil, []any{&row{}})
	if err == nil || !strings.HasPrefix(err.Error(), "template parsing error: ") {
		t.Fatalf("bad template: %v", err)
	}
	err = Write(&buf, "{{.Nope}}", nil, []any{&row{}})
	var ee ExecError
	if !errors.As(err, &ee) || !strings.Contains(err.Error(), "can't evaluate field Nope") {
		t.Fatalf("missing field: %v", err)
	}
}

func TestTemplateFunctions(t *testing.T) {
	tmpl, err := ParseTemplate(`{{json .}}|{{join .L ","}}|{{upper "a"}}|{{lower "B"}}|{{title "hello world"}}|{{pad "x" 1 2}}|{{pad "" 1 1}}|{{truncate "abcdef" 3}}|{{split "a:b" ":"}}|{{join .M "+"}}`)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	data := struct {
		L []int
		M map[string]string
	}{[]int{1, 2}, map[string]string{"z": "2", "a": "1"}}
	if err := tmpl.Execute(&buf, data); err != nil {
		t.Fatal(err)
	}
	want := `{"L":[1,2],"M":{"a":"1","z":"2"}}|1,2|A|b|Hello World| x  ||abc|[a b]|1+2`
	if buf.String() != want {
		t.Fatalf("got  %s\nwant %s", buf.String(), want)
	}
	if _, err := join(3, ","); err == nil {
		t.Fatal("join of an int must fail")
	}
}

func TestContainerContext(t *testing.T) {
	now := time.Unix(1700000100, 0)
	c := container.Summary{
		ID: "0123456789abcdef0123", Names: []string{"/web", "/other/alias"}, Image: "docker.io/library/busybox@sha256:" + strings.Repeat("a", 64),
		ImageID: "sha256:" + strings.Repeat("b", 64), Command: "sh -c 'sleep 1000000000'", Created: 1700000000,
		Labels: map[string]string{"b": "2", "a": "1"}, SizeRw: 1000, SizeRootFs: 2000000, State: "running", Status: "Up 2 minutes",
	}
	r := NewContainerContext(c, true, now)
	got := []string{r.ID(), r.Names(), r.Image(), r.Command(), r.RunningFor(), r.Labels(), r.Size(), r.Label("b")}
	want := []string{"0123456789ab", "web", "busybox", `"sh -c 'sleep 100000…"`, "About a minute ago", "a=1,b=2", "1kB (virtual 2MB)", "2"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("field %d = %q, want %q", i, got[i], want[i])
		}
	}
	full := NewContainerContext(c, false, now)
	if full.Names() != "web,other/alias" || full.ID() != c.ID || full.Image() != c.Image {
		t.Errorf("untruncated: %q %q %q", full.Names(), full.ID(), full.Image())
	}
	if r.Platform() != nil {
		t.Error("no descriptor: no platform")
	}
}

func TestImageContexts(t *testing.T) {
	now := time.Unix(1700000000, 0)
	img := image.Summary{
		ID: "sha256:" + strings.Repeat("c", 64), Size: 1984230, Created: 1600000000, Containers: -1, SharedSize: -1,
		RepoTags:    []string{"busybox:latest", "busybox:1", "localhost:5000/bb:x"},
		RepoDigests: []string{"busybox@sha256:" + strings.Repeat("d", 64), "other@sha256:" + strings.Repeat("e", 64)},
	}
	rows := ImageContexts(img, false, false, true, now)
	var got []string
	for _, r := range rows {
		ic := r.(*imageContext)
		got = append(got, ic.Repository()+":"+ic.Tag()+"@"+ic.Digest()+" "+ic.ID()+" "+ic.Size())
	}
	want := []string{
		"busybox:latest@<none> cccccccccccc 1.98MB",
		"busybox:1@<none> cccccccccccc 1.98MB",
		"localhost:5000/bb:x@<none> cccccccccccc 1.98MB",
		"other:<none>@ cccccccccccc 1.98MB",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("rows:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	withDigests := ImageContexts(img, true, true, true, now)
	if d := withDigests[0].(*imageContext).Digest(); d != "sha256:"+strings.Repeat("d", 64) {
		t.Fatalf("digest row: %q", d)
	}
	dangling := ImageContexts(image.Summary{ID: "sha256:1"}, false, false, true, now)
	if ic := dangling[0].(*imageContext); ic.Repository() != "<none>" || ic.Tag() != "<none>" || ic.Containers() != "0" {
		t.Fatalf("dangling: %q %q %q", ic.Repository(), ic.Tag(), ic.Containers())
	}
}
