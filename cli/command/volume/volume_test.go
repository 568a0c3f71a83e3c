package volume

import (
	"bytes"
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/fvbommel/sortorder"
	"github.com/moby/moby/api/types/volume"

	"github.com/hako-project/hako/cli/formatter"
)

func TestNaturalLess(t *testing.T) {
	names := []string{"v10", "v2", "a", "v1", "b", "v01", "1x", "v2a", "V3"}
	sort.Slice(names, func(i, j int) bool { return sortorder.NaturalLess(names[i], names[j]) })
	want := "1x V3 a b v1 v01 v2 v2a v10"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("sorted %q, want %q", got, want)
	}
}

func TestListOutput(t *testing.T) {
	rows := []any{
		&Row{v: volume.Volume{Name: "data", Driver: "local", Scope: "local", Labels: map[string]string{"b": "2", "a": "1"}}},
		&Row{v: volume.Volume{Name: "x2", Driver: "local", Scope: "local", UsageData: &volume.UsageData{Size: 2048, RefCount: 3}}},
	}
	for _, c := range []struct {
		format string
		quiet  bool
		want   string
	}{
		{"", false, "DRIVER    VOLUME NAME\nlocal     data\nlocal     x2\n"},
		{"", true, "data\nx2\n"},
		{"{{.Name}} {{.Labels}} {{.Links}} {{.Size}} {{.Label \"b\"}}", true, "data a=1,b=2 N/A N/A 2\nx2  3 2.048kB \n"},
		{"json", false, `{"Availability":"N/A","Driver":"local","Group":"N/A","Labels":"a=1,b=2","Links":"N/A","Mountpoint":"","Name":"data","Scope":"local","Size":"N/A","Status":"N/A"}` + "\n"},
		{"raw", true, "name: data\nname: x2\n"},
	} {
		var out bytes.Buffer
		if err := formatter.Write(&out, listFormat(c.format, c.quiet), listHeader, rows); err != nil {
			t.Fatal(err)
		}
		got := out.String()
		if c.format == "json" {
			got = strings.SplitAfter(got, "\n")[0]
		}
		if got != c.want {
			t.Errorf("format %q quiet %v:\n got %q\nwant %q", c.format, c.quiet, got, c.want)
		}
	}
}

func TestConfirm(t *testing.T) {
	for in, want := range map[string]bool{"y\n": true, "Y": true, " y \n": true, "yes\n": false, "": false, "n\n": false} {
		var out bytes.Buffer
		ok, err := confirm(context.Background(), strings.NewReader(in), &out, "Sure?")
		if err != nil || ok != want || out.String() != "Sure? [y/N] " {
			t.Errorf("%q: %v %v %q", in, ok, err, out.String())
		}
	}
}
