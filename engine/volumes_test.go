package engine

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"

	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/volume"
)

func TestParseBind(t *testing.T) {
	for _, c := range []struct {
		in   string
		want bind
		err  string
	}{
		{in: "/h:/c", want: bind{source: "/h", dest: "/c"}},
		{in: "/h:/c:ro,rshared", want: bind{source: "/h", dest: "/c", readonly: true, propagation: "rshared", mode: "ro,rshared"}},
		{in: "name:/c", want: bind{source: "name", dest: "/c", volume: true}},
		{in: "name:/c:ro,nocopy,z", want: bind{source: "name", dest: "/c", volume: true, readonly: true, nocopy: true, mode: "ro,nocopy,z"}},
		{in: "name:/c:delegated", want: bind{source: "name", dest: "/c", volume: true, mode: "delegated"}},
		{in: "name:/c:bogus", err: "invalid mode: bogus"},
		{in: "name:/c:ro,rw", err: "invalid mode: ro,rw"},
		{in: "name:/c:ro,", err: "invalid mode: ro,"},
		{in: "name:/c:z,Z", err: "invalid mode: z,Z"},
		{in: "name:rel", err: `invalid volume specification: 'name:rel': invalid mount config for type "volume": invalid mount path: 'rel' mount path must be absolute`},
		{in: "/h:rel", err: `invalid mount config for type "bind": invalid mount path`},
		{in: "name:/", err: `invalid volume specification: 'name:/': invalid mount config for type "volume": invalid specification: destination can't be '/'`},
		{in: "name:/c:shared", err: `invalid mount config for type "volume": field BindOptions must not be specified`},
		{in: "/h:/c:nocopy", err: `invalid mount config for type "bind": field VolumeOptions must not be specified`},
		{in: "a:b:c:d", err: "invalid volume specification: 'a:b:c:d'"},
	} {
		got, err := parseBind(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !errdefs.IsInvalid(err) {
				t.Errorf("%s: %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: %+v %v", c.in, got, err)
		}
	}
}

func testEngine(t *testing.T) *Engine {
	t.Helper()
	vs, err := volume.Open(filepath.Join(t.TempDir(), "volumes"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Engine{volumes: vs, containers: map[string]*Container{}, names: map[string]string{}}
}

// TestPlanVolumes: docker's order and rules: binds and mounts take their
// destinations, the image's VOLUME list gets anonymous volumes elsewhere,
// --volumes-from gives way to the container's own mounts.
func TestPlanVolumes(t *testing.T) {
	e := testEngine(t)
	src := &Container{Record: Record{ID: "src1", Name: "src", HostConfig: &container.HostConfig{}, Mounts: []container.MountPoint{
		{Type: mount.TypeVolume, Name: "shared", Destination: "/shared", RW: true, Mode: "z"},
		{Type: mount.TypeVolume, Name: "over", Destination: "/over", RW: true},
		{Type: mount.TypeBind, Source: "/host", Destination: "/hb", RW: true, Propagation: "rprivate"},
		{Type: mount.TypeTmpfs, Destination: "/t"},
	}}}
	e.containers[src.ID] = src
	e.names[src.Name] = src.ID
	hc := &container.HostConfig{
		VolumesFrom: []string{"src:ro"},
		Binds:       []string{"named:/n:ro", "/tmp:/hostbind", "over:/over"},
		Mounts: []mount.Mount{
			{Type: mount.TypeVolume, Source: "m1", Target: "/m1", VolumeOptions: &mount.VolumeOptions{NoCopy: true, Labels: map[string]string{"a": "b"}}},
			{Type: mount.TypeVolume, Target: "/anon-mount"},
			{Type: mount.TypeTmpfs, Target: "/data"},
		},
		Tmpfs: map[string]string{"/run": ""},
	}
	plan, err := e.planVolumes("", hc, map[string]struct{}{"/data": {}, "/n": {}, "/image-vol": {}, "/run": {}, "/hostbind/": {}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]plannedVolume{}
	for _, p := range plan {
		got[p.dest] = p
	}
	if len(plan) != 7 {
		t.Errorf("%d volumes planned: %+v", len(plan), plan)
	}
	if p := got["/shared"]; p.inherited == nil || p.inherited.RW || p.inherited.Mode != "" {
		t.Errorf("--volumes-from ro: %+v", p.inherited)
	}
	if p := got["/hb"]; p.inherited == nil || p.inherited.Type != mount.TypeBind {
		t.Errorf("inherited bind: %+v", p)
	}
	if p := got["/over"]; p.inherited != nil || p.name != "over" || p.mode != "z" {
		t.Errorf("own mount replaces the inherited one: %+v", p)
	}
	if p := got["/n"]; p.name != "named" || p.rw || p.mode != "ro" || !p.copyData || p.anonymous {
		t.Errorf("-v named:/n:ro: %+v", p)
	}
	if p := got["/m1"]; p.name != "m1" || p.copyData || p.labels["a"] != "b" || p.mode != "z" {
		t.Errorf("--mount with volume-nocopy: %+v", p)
	}
	if p := got["/anon-mount"]; !p.anonymous || len(p.name) != 64 {
		t.Errorf("anonymous --mount: %+v", p)
	}
	if p := got["/image-vol"]; !p.anonymous || !p.rw || p.mode != "" || !p.copyData {
		t.Errorf("image VOLUME: %+v", p)
	}
	for _, d := range []string{"/data", "/run", "/hostbind", "/t"} {
		if _, ok := got[d]; ok {
			t.Errorf("%s is covered by another mount but got a volume", d)
		}
	}

	for _, c := range []struct {
		hc  container.HostConfig
		err string
	}{
		{container.HostConfig{Binds: []string{"a1:/p", "a2:/p"}}, "Duplicate mount point: /p"},
		{container.HostConfig{Binds: []string{"a1:/p"}, Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: "a2", Target: "/p"}}}, "Duplicate mount point: /p"},
		{container.HostConfig{Binds: []string{"a1:/p"}, Tmpfs: map[string]string{"/p": ""}}, "Duplicate mount point: /p"},
		{container.HostConfig{Binds: []string{"bad!:/p"}}, `create bad!: "bad!" includes invalid characters`},
		{container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: "vv", Target: "/p",
			VolumeOptions: &mount.VolumeOptions{DriverConfig: &mount.Driver{Options: map[string]string{"bogus": "1"}}}}}}, `create vv: invalid option: "bogus"`},
		{container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: "vv", Target: "/p",
			VolumeOptions: &mount.VolumeOptions{DriverConfig: &mount.Driver{Name: "nfs"}}}}}, `error looking up volume plugin nfs`},
		{container.HostConfig{VolumesFrom: []string{"nosuch"}}, "No such container: nosuch"},
		{container.HostConfig{VolumesFrom: []string{"src:bogus"}}, "invalid mode: bogus"},
	} {
		_, err := e.planVolumes("", &c.hc, nil)
		if err == nil || !strings.Contains(err.Error(), c.err) || !errdefs.IsInvalid(err) && !errdefs.IsNotFound(err) {
			t.Errorf("%+v: %v, want %q", c.hc, err, c.err)
		}
	}
	if plan, err := e.planVolumes("sandbox", &container.HostConfig{}, map[string]struct{}{"/data": {}}); err != nil || plan != nil {
		t.Errorf("a pod's container got volumes: %+v %v", plan, err)
	}
}
