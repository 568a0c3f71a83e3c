package registry

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/image/reference"
)

func writeHosts(t *testing.T, dir, registry, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, registry), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, registry, "hosts.toml"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadHostsDir(t *testing.T) {
	dir := t.TempDir()
	writeHosts(t, dir, "registry.k8s.io", `server = "https://registry.k8s.io"
[host."http://127.0.0.1:5000"]
  capabilities = ["pull", "resolve"]
[host."https://mirror.example:8443"]
  capabilities = ["pull"]
[host."https://push-only.example"]
  capabilities = ["push"]
`)
	writeHosts(t, dir, "gcr.io", `server = "https://elsewhere.example"
[host."127.0.0.1:5001"]
`)
	hosts, err := LoadHostsDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := RegistryHosts{Mirrors: []string{"http://127.0.0.1:5000/", "https://mirror.example:8443/"}}
	if got := hosts["registry.k8s.io"]; !reflect.DeepEqual(got, want) {
		t.Errorf("registry.k8s.io: %+v, want %+v (file order, push-only hosts left out)", got, want)
	}
	want = RegistryHosts{Mirrors: []string{"https://127.0.0.1:5001/"}, Server: "https://elsewhere.example/"}
	if got := hosts["gcr.io"]; !reflect.DeepEqual(got, want) {
		t.Errorf("gcr.io: %+v, want %+v", got, want)
	}
	if h, err := LoadHostsDir(filepath.Join(dir, "missing")); err != nil || len(h) != 0 {
		t.Errorf("missing directory: %v %v, want nothing configured", h, err)
	}
	writeHosts(t, dir, "bad.example", "server = [")
	if _, err := LoadHostsDir(dir); !errdefs.IsInvalid(err) {
		t.Errorf("malformed hosts.toml: %v, want an invalid-argument error", err)
	}
}

func TestHostsEndpointsOrder(t *testing.T) {
	c := New(nil, Options{Hosts: map[string]RegistryHosts{
		"registry.k8s.io": {Mirrors: []string{"http://127.0.0.1:5000/"}},
		"_default":        {Mirrors: []string{"http://127.0.0.1:5002/"}, SkipServer: true},
	}})
	for _, tc := range []struct {
		ref  string
		want []string
	}{
		{"registry.k8s.io/pause:3.9", []string{"http://127.0.0.1:5000/", "registry.k8s.io"}},
		{"quay.io/x/y:1", []string{"http://127.0.0.1:5002/"}},
		{"busybox", []string{"http://127.0.0.1:5002/"}},
	} {
		r, err := reference.Parse(tc.ref)
		if err != nil {
			t.Fatal(err)
		}
		eps, err := c.endpoints(r)
		if err != nil {
			t.Fatalf("%s: %v", tc.ref, err)
		}
		var got []string
		for _, ep := range eps {
			got = append(got, ep.String())
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: endpoints %v, want %v", tc.ref, got, tc.want)
		}
	}
}
