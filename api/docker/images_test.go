package docker

import (
	"reflect"
	"testing"
)

// TestRefFilter: a reference filter keeps only the matching names of an
// image, as dockerd's image list does.
func TestRefFilter(t *testing.T) {
	refs := []string{"docker.io/clitest/tagged-d:v1", "docker.io/clitest/tagged-h:v1", "docker.io/library/busybox:1.36", "127.0.0.1:5000/x/y:2"}
	for _, c := range []struct {
		pats []string
		want []string
	}{
		{nil, refs},
		{[]string{"clitest/tagged-d"}, []string{"docker.io/clitest/tagged-d:v1"}},
		{[]string{"clitest/tagged-h:v1"}, []string{"docker.io/clitest/tagged-h:v1"}},
		{[]string{"clitest/*"}, refs[:2]},
		{[]string{"busybox"}, []string{"docker.io/library/busybox:1.36"}},
		{[]string{"busy*:1.*"}, []string{"docker.io/library/busybox:1.36"}},
		{[]string{"127.0.0.1:5000/x/y"}, []string{"127.0.0.1:5000/x/y:2"}},
		{[]string{"nomatch", "busybox:1.36"}, []string{"docker.io/library/busybox:1.36"}},
		{[]string{"nomatch"}, nil},
	} {
		f := filters{}
		if c.pats != nil {
			f["reference"] = c.pats
		}
		if got := refFilter(f, refs); !reflect.DeepEqual(got, c.want) {
			t.Errorf("reference=%v: got %v, want %v", c.pats, got, c.want)
		}
	}
}
