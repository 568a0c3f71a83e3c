package opts

import "testing"

func TestOptions(t *testing.T) {
	m := Map{}
	for _, s := range []string{"type=tmpfs", "o=size=1m,uid=1", "bare"} {
		if err := m.Set(s); err != nil {
			t.Fatal(err)
		}
	}
	if m["o"] != "size=1m,uid=1" || m["type"] != "tmpfs" || m["bare"] != "" {
		t.Errorf("opts %v", m)
	}
	for s, want := range map[string]string{"a=b": "", "a": "", "=x": "invalid label '=x': empty name", "bad key=v": "label 'bad key' contains whitespaces"} {
		err := ValidateLabel(s)
		if (want == "") != (err == nil) || err != nil && err.Error() != want {
			t.Errorf("label %q: %v", s, err)
		}
	}
	f := NewFilter()
	if err := f.Set("Dangling = true"); err != nil || !f.Filters["dangling"]["true"] {
		t.Errorf("filter %v %v", f.Filters, err)
	}
	if err := f.Set("nofmt"); err == nil || err.Error() != "bad format of filter (expected name=value)" {
		t.Errorf("bad filter: %v", err)
	}
}
