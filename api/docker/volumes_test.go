package docker

import (
	"testing"
	"time"

	hvolume "github.com/hako-project/hako/volume"
)

func TestVolumeFilters(t *testing.T) {
	for _, c := range []struct {
		vals       []string
		value, set bool
		err        string
	}{
		{nil, false, false, ""},
		{[]string{"true"}, true, true, ""},
		{[]string{"1"}, true, true, ""},
		{[]string{"0", "false"}, false, true, ""},
		{[]string{"true", "false"}, false, false, "Invalid filter 'dangling=[true false]'"},
		{[]string{"maybe"}, false, false, "Invalid filter 'dangling=[maybe]'"},
	} {
		f := filters{}
		if c.vals != nil {
			f["dangling"] = c.vals
		}
		v, set, err := boolFilter(f, "dangling")
		if v != c.value || set != c.set || (err == nil) != (c.err == "") || err != nil && err.Error() != c.err {
			t.Errorf("%v: %v %v %v", c.vals, v, set, err)
		}
	}
	labels := map[string]string{"a": "1", "b": ""}
	for _, c := range []struct {
		f    filters
		want bool
	}{
		{filters{}, true},
		{filters{"label": {"a"}}, true},
		{filters{"label": {"a=1", "b"}}, true},
		{filters{"label": {"a=2"}}, false},
		{filters{"label!": {"a"}}, false},
		{filters{"label!": {"a", "c"}}, true}, // excluded only when all match
		{filters{"label": {"c"}}, false},
	} {
		if got := volumeLabelsMatch(c.f, labels); got != c.want {
			t.Errorf("%v: %v", c.f, got)
		}
	}
	if volumeLabelsMatch(filters{"label": {"a"}}, nil) {
		t.Error("a volume without labels matched a label filter")
	}
	if !nameFilterMatch([]string{"^da"}, "data") || !nameFilterMatch([]string{"at"}, "data") || nameFilterMatch([]string{"x"}, "data") {
		t.Error("name filter")
	}
}

func TestAPIVolume(t *testing.T) {
	v := apiVolume(hvolume.Volume{Name: "n", Driver: "local", Mountpoint: "/m/n/_data", CreatedAt: time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC)})
	if v.Scope != "local" || v.Labels != nil || v.Options != nil || v.CreatedAt != time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC).Local().Format(time.RFC3339) {
		t.Errorf("%+v", v)
	}
}
