package main

import (
	"archive/tar"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hako-project/hako/test/hakodtest"
	"github.com/hako-project/hako/test/imagetest"
)

// Volumes, driven by the real docker CLI as for the rest of hakod: named
// and anonymous volumes, copy-up, the local driver's options, reference
// counting, prune, and bad input that must leave no volume directory and
// no mount behind.

// volumeImage imports an image with VOLUME /data whose /data holds a file
// of uid 1000 (mode 0640) and a symlink, plus busybox to look at them.
func volumeImage(t *testing.T, d *hakodtest.Daemon) string {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skip("needs /bin/busybox")
	}
	list, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	entries := []imagetest.Entry{
		{Name: "bin/", Type: tar.TypeDir}, {Name: "etc/", Type: tar.TypeDir}, {Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777},
		{Name: "bin/busybox", Mode: 0o755, Body: string(bb)},
		{Name: "etc/passwd", Body: "root:x:0:0:root:/root:/bin/sh\n"},
		{Name: "etc/group", Body: "root:x:0:\n"},
		{Name: "data/", Type: tar.TypeDir, Mode: 0o750, Uid: 1000, Gid: 1000},
		{Name: "data/file", Mode: 0o640, Uid: 1000, Gid: 1000, Body: "from the image\n"},
		{Name: "data/link", Type: tar.TypeSymlink, Linkname: "file"},
		{Name: "data/sub/", Type: tar.TypeDir, Mode: 0o700},
		{Name: "data/sub/deep", Body: "deep\n"},
	}
	for _, a := range strings.Fields(string(list)) {
		if a != "busybox" {
			entries = append(entries, imagetest.Entry{Name: "bin/" + a, Type: tar.TypeSymlink, Linkname: "busybox"})
		}
	}
	out, errs, code := d.DockerIn(imagetest.Tar(t, entries), "import", "--change", "VOLUME /data", "--change", `CMD ["sh"]`, "-", "volimg:1")
	if code != 0 {
		t.Fatalf("docker import: %s %s", out, errs)
	}
	return "volimg:1"
}

// volumeDirs lists what is under the daemon's volumes directory.
func volumeDirs(d *hakodtest.Daemon) []string {
	ents, _ := os.ReadDir(filepath.Join(d.DataRoot, "volumes"))
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

// assertVolumesClean checks that no container is left, nothing is
// mounted under the data root (volumes, root file systems) and the volumes
// directory holds exactly want.
func assertVolumesClean(t *testing.T, d *hakodtest.Daemon, want ...string) {
	t.Helper()
	if out := d.MustDocker("ps", "-aq"); out != "" {
		t.Errorf("containers left: %s", out)
	}
	if m := hakodtest.Mounts(d.DataRoot); len(m) > 0 {
		t.Errorf("mounts left: %v", m)
	}
	sort.Strings(want)
	if got := volumeDirs(d); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("volumes/ holds %v, want %v", got, want)
	}
}

// TestNamedVolumeOutlivesContainer: data written through -v NAME:/p is
// there for the next container; volume ls and inspect show it as docker
// does; the container's inspect records the mount.
func TestNamedVolumeOutlivesContainer(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	d.MustDocker("run", "--name", "writer", "-v", "data:/data", img, "sh", "-c", "echo kept > /data/f")
	mounts := d.MustDocker("inspect", "-f", "{{json .Mounts}}", "writer")
	want := `[{"Type":"volume","Name":"data","Source":"` + filepath.Join(d.DataRoot, "volumes", "data", "_data") +
		`","Destination":"/data","Driver":"local","Mode":"z","RW":true,"Propagation":""}]`
	if mounts != want {
		t.Errorf("inspect Mounts:\n got %s\nwant %s", mounts, want)
	}
	d.MustDocker("rm", "writer")
	if out := d.MustDocker("run", "--rm", "-v", "data:/d:ro", img, "sh", "-c", "cat /d/f; touch /d/x 2>&1 || true"); !strings.Contains(out, "kept") || !strings.Contains(out, "Read-only file system") {
		t.Errorf("second container: %q", out)
	}
	if out := d.MustDocker("volume", "ls"); out != "DRIVER    VOLUME NAME\nlocal     data" {
		t.Errorf("volume ls: %q", out)
	}
	var vols []map[string]any
	if err := json.Unmarshal([]byte(d.MustDocker("volume", "inspect", "data")), &vols); err != nil || len(vols) != 1 {
		t.Fatalf("volume inspect: %v %v", vols, err)
	}
	if v := vols[0]; v["Name"] != "data" || v["Driver"] != "local" || v["Scope"] != "local" ||
		v["Mountpoint"] != filepath.Join(d.DataRoot, "volumes", "data", "_data") || v["Labels"] != nil || v["Options"] != nil {
		t.Errorf("volume inspect: %v", v)
	}
	if out := d.MustDocker("volume", "inspect", "-f", "{{.Name}} {{.Driver}}", "data"); out != "data local" {
		t.Errorf("volume inspect -f: %q", out)
	}
	d.MustDocker("volume", "rm", "data")
	if v := volumeDirs(d); len(v) != 0 {
		t.Errorf("left under volumes/: %v", v)
	}
	assertVolumesClean(t, d)
}

// TestVolumeCopyUp: a new (or empty) volume gets the image's content at
// its path, with owners, modes and symlinks; nocopy and volume-nocopy
// leave it empty; a volume with content keeps it.
func TestVolumeCopyUp(t *testing.T) {
	d := hakodtest.Start(t)
	img := volumeImage(t, d)
	show := "stat -c '%n %u:%g %a' /data /data/file /data/sub; readlink /data/link; cat /data/file /data/sub/deep"
	want := "/data 1000:1000 750\n/data/file 1000:1000 640\n/data/sub 0:0 700\nfile\nfrom the image\ndeep"
	if out := d.MustDocker("run", "--rm", "-v", "cu:/data", img, "sh", "-c", show); out != want {
		t.Errorf("named volume copy-up:\n got %q\nwant %q", out, want)
	}
	// The copy is the volume's now: a change stays, no second copy.
	d.MustDocker("run", "--rm", "-v", "cu:/data", img, "sh", "-c", "rm /data/file; echo mine > /data/new")
	if out := d.MustDocker("run", "--rm", "-v", "cu:/data", img, "ls", "/data"); out != "link\nnew\nsub" {
		t.Errorf("volume with content was copied into again: %q", out)
	}
	// An existing empty volume is filled too (docker: any empty volume).
	d.MustDocker("volume", "create", "empty")
	if out := d.MustDocker("run", "--rm", "-v", "empty:/data", img, "cat", "/data/file"); out != "from the image" {
		t.Errorf("existing empty volume: %q", out)
	}
	// Copy-up of the default image's /etc into a volume mounted there.
	etcImg := d.DefaultImage()
	if out := d.MustDocker("run", "--rm", "-v", "etc:/etc", etcImg, "sh", "-c", "grep -c root /etc/passwd"); out != "1" {
		t.Errorf("/etc copy-up: %q", out)
	}
	for _, args := range [][]string{
		{"run", "--rm", "-v", "nc1:/data:nocopy", img, "ls", "-A", "/data"},
		{"run", "--rm", "--mount", "type=volume,src=nc2,dst=/data,volume-nocopy", img, "ls", "-A", "/data"},
	} {
		if out := d.MustDocker(args...); out != "" {
			t.Errorf("%v: copied %q", args, out)
		}
	}
	d.MustDocker("volume", "rm", "cu", "empty", "etc", "nc1", "nc2")
	if v := volumeDirs(d); len(v) != 0 {
		t.Errorf("left under volumes/: %v", v)
	}
	assertVolumesClean(t, d)
}

// TestAnonymousVolumes: the image's VOLUME gets an anonymous volume (with
// the image's content) unless something is mounted there; rm -v and --rm
// remove it, rm alone does not.
func TestAnonymousVolumes(t *testing.T) {
	d := hakodtest.Start(t)
	img := volumeImage(t, d)
	d.MustDocker("create", "--name", "a1", img)
	mounts := d.MustDocker("inspect", "-f", `{{range .Mounts}}{{.Type}} {{len .Name}} {{.Destination}} {{.Mode}} {{.RW}}{{end}}`, "a1")
	if mounts != "volume 64 /data  true" {
		t.Errorf("anonymous mount: %q", mounts)
	}
	name := d.MustDocker("inspect", "-f", `{{range .Mounts}}{{.Name}}{{end}}`, "a1")
	if lbl := d.MustDocker("volume", "inspect", "-f", `{{json .Labels}}`, name); lbl != `{"com.docker.volume.anonymous":""}` {
		t.Errorf("labels %s", lbl)
	}
	if out := d.MustDocker("start", "-a", "a1"); out != "" {
		t.Errorf("start: %q", out)
	}
	if b, err := os.ReadFile(filepath.Join(d.DataRoot, "volumes", name, "_data", "file")); err != nil || string(b) != "from the image\n" {
		t.Errorf("anonymous volume content: %q %v", b, err)
	}
	d.MustDocker("rm", "-v", "a1")
	if v := volumeDirs(d); len(v) != 0 {
		t.Errorf("rm -v left %v", v)
	}
	// --rm takes its anonymous volumes along; -v /path is one too.
	d.MustDocker("run", "--rm", "-v", "/extra", img, "true")
	if v := volumeDirs(d); len(v) != 0 {
		t.Errorf("--rm left %v", v)
	}
	// A mount at the VOLUME's path replaces the anonymous volume.
	d.MustDocker("run", "--rm", "--tmpfs", "/data", img, "true")
	d.MustDocker("run", "--rm", "-v", "named:/data", img, "true")
	if v := volumeDirs(d); len(v) != 1 || v[0] != "named" {
		t.Errorf("volumes after mounts over /data: %v", v)
	}
	// rm without -v keeps it, as docker does; a named volume survives -v.
	d.MustDocker("create", "--name", "a2", "-v", "named:/n", img)
	d.MustDocker("rm", "-v", "a2")
	d.MustDocker("create", "--name", "a3", img)
	d.MustDocker("rm", "a3")
	if v := volumeDirs(d); len(v) != 2 {
		t.Errorf("volumes after rm without -v: %v", v)
	}
	// A file where the image's VOLUME is: docker's refusal, nothing made.
	d.MustDocker("volume", "prune", "-f")
	if _, errs, code := d.Docker("run", "--rm", "-v", "/etc/passwd", img, "true"); code != 125 || !strings.Contains(errs, "cannot mount volume over existing file, file exists") {
		t.Errorf("anonymous volume over a file: %d %q", code, errs)
	}
	if v := volumeDirs(d); len(v) != 0 {
		t.Errorf("left: %v", v)
	}
	assertVolumesClean(t, d)
}

// TestVolumeInUse: a volume a container uses (running or not) cannot be
// removed, also after hakod restarts; prune leaves it; once the container
// is gone it can.
func TestVolumeInUse(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	id := d.MustDocker("create", "-v", "busy:/b", img, "true")
	check := func(when string) {
		t.Helper()
		_, errs, code := d.Docker("volume", "rm", "busy")
		if want := "Error response from daemon: remove busy: volume is in use - [" + id + "]"; code != 1 || strings.TrimSpace(errs) != want {
			t.Errorf("%s: volume rm: %d %q, want %q", when, code, errs, want)
		}
		if _, errs, code := d.Docker("volume", "rm", "-f", "busy"); code != 1 || !strings.Contains(errs, "volume is in use") {
			t.Errorf("%s: volume rm -f: %d %q", when, code, errs)
		}
		if out := d.MustDocker("volume", "ls", "-q", "--filter", "dangling=false"); out != "busy" {
			t.Errorf("%s: dangling=false: %q", when, out)
		}
	}
	check("created")
	d.Stop()
	d.Restart()
	check("after a restart of hakod")
	d.MustDocker("volume", "prune", "-f")
	if v := volumeDirs(d); len(v) != 1 {
		t.Errorf("prune removed a volume in use: %v", v)
	}
	d.MustDocker("rm", id)
	if out := d.MustDocker("volume", "ls", "-q", "--filter", "dangling=true"); out != "busy" {
		t.Errorf("dangling=true: %q", out)
	}
	d.MustDocker("volume", "rm", "busy")
	assertVolumesClean(t, d)
}

// TestVolumePrune: at API 1.41 prune removes every unused local volume,
// named or anonymous, except those with options, honours label filters,
// and reports the space.
func TestVolumePrune(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	d.MustDocker("volume", "create", "--label", "keep=yes", "kept")
	d.MustDocker("volume", "create", "p1")
	d.MustDocker("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "withopts")
	d.MustDocker("run", "--rm", "-v", "p1:/p", img, "sh", "-c", "printf 12345 > /p/f")
	d.MustDocker("create", "--name", "user", "-v", "used:/u", img)
	anon := d.MustDocker("volume", "create")
	out := d.MustDocker("volume", "prune", "-f", "--filter", "label!=keep=yes")
	want := "Deleted Volumes:\n" + strings.Join(sortedStrings(anon, "p1"), "\n") + "\n\nTotal reclaimed space: 5B"
	if out != want {
		t.Errorf("prune:\n got %q\nwant %q", out, want)
	}
	if v := volumeDirs(d); strings.Join(v, " ") != "kept used withopts" {
		t.Errorf("after prune: %v", v)
	}
	if out := d.MustDocker("volume", "prune", "-f"); out != "Deleted Volumes:\nkept\n\nTotal reclaimed space: 0B" {
		t.Errorf("second prune: %q", out)
	}
	if _, errs, code := d.Docker("volume", "prune", "-f", "--filter", "dangling=true"); code != 1 || !strings.Contains(errs, "Invalid filter 'dangling'") {
		t.Errorf("bad prune filter: %d %q", code, errs)
	}
	d.MustDocker("rm", "user")
	d.MustDocker("volume", "rm", "used", "withopts")
	assertVolumesClean(t, d)
}

func sortedStrings(s ...string) []string {
	sort.Strings(s)
	return s
}

// TestVolumeOptionsMounted: a local volume with tmpfs options is a tmpfs
// while containers use it, shared by them, readonly where asked
// (--mount readonly, volume-opt), and unmounted when the last one stops.
func TestVolumeOptionsMounted(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	data := filepath.Join(d.DataRoot, "volumes", "shm", "_data")
	d.MustDocker("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", "o=size=10m", "shm")
	d.MustDocker("run", "-d", "--name", "wr", "-v", "shm:/s", img, "sh", "-c", "echo shared > /s/f; sleep 60")
	d.MustDocker("exec", "wr", "true")
	if out := d.MustDocker("run", "--rm", "--mount", "type=volume,src=shm,dst=/r,readonly", img, "sh", "-c",
		"cat /r/f; df -k /r | tail -1; touch /r/x 2>&1 || true"); !strings.Contains(out, "shared") || !strings.Contains(out, "10240") || !strings.Contains(out, "Read-only") {
		t.Errorf("second user: %q", out)
	}
	if !isMounted(data) {
		t.Errorf("tmpfs volume unmounted while w uses it")
	}
	d.MustDocker("rm", "-f", "wr")
	if isMounted(data) {
		t.Errorf("tmpfs volume still mounted with no user")
	}
	// volume-opt creates the volume with options on first use.
	if out := d.MustDocker("run", "--rm", "--mount", "type=volume,src=vo,dst=/v,volume-opt=type=tmpfs,volume-opt=device=tmpfs,volume-opt=o=size=2m,volume-label=l=v",
		img, "sh", "-c", "df -k /v | tail -1"); !strings.Contains(out, "2048") {
		t.Errorf("volume-opt: %q", out)
	}
	if out := d.MustDocker("volume", "inspect", "-f", "{{json .Options}} {{json .Labels}}", "vo"); out != `{"device":"tmpfs","o":"size=2m","type":"tmpfs"} {"l":"v"}` {
		t.Errorf("volume-opt volume: %s", out)
	}
	// A device that is not there: docker's message at start, nothing mounted.
	d.MustDocker("volume", "create", "--opt", "type=none", "--opt", "o=bind", "--opt", "device=/no/such/dir", "broken")
	_, errs, code := d.Docker("run", "--rm", "-v", "broken:/b", img, "true")
	if code == 0 || !strings.Contains(errs, "failed to mount local volume: mount /no/such/dir:") {
		t.Errorf("broken device: %d %q", code, errs)
	}
	d.MustDocker("volume", "rm", "shm", "vo", "broken")
	if v := volumeDirs(d); len(v) != 0 {
		t.Errorf("left: %v", v)
	}
	assertVolumesClean(t, d)
}

// TestVolumesFrom: --volumes-from shares another container's volumes and
// binds, read-only with :ro.
func TestVolumesFrom(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	host := t.TempDir()
	d.MustDocker("run", "--name", "src", "-v", "vf:/a", "-v", host+":/b", img, "sh", "-c", "echo a > /a/f; echo b > /b/f")
	if out := d.MustDocker("run", "--rm", "--volumes-from", "src", img, "sh", "-c", "cat /a/f /b/f"); out != "a\nb" {
		t.Errorf("--volumes-from: %q", out)
	}
	if out := d.MustDocker("run", "--rm", "--volumes-from", "src:ro", img, "sh", "-c", "touch /a/x 2>&1; touch /b/x 2>&1; true"); strings.Count(out, "Read-only") != 2 {
		t.Errorf("--volumes-from :ro: %q", out)
	}
	_, errs, code := d.Docker("volume", "rm", "vf")
	if code != 1 || !strings.Contains(errs, "volume is in use") {
		t.Errorf("volume of src: %d %q", code, errs)
	}
	d.MustDocker("rm", "src")
	d.MustDocker("volume", "rm", "vf")
	assertVolumesClean(t, d)
}

// TestVolumeBadInput: docker's status and message for each, and nothing
// half-made: no volume directory, no container, no mount.
func TestVolumeBadInput(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	for _, c := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"volume", "create", "bad name"}, `create bad name: "bad name" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`, 1},
		{[]string{"volume", "create", "x"}, "create x: volume name is too short, names should be at least two alphanumeric characters", 1},
		{[]string{"volume", "create", "-o", "bogus=1", "vv"}, `create vv: invalid option: "bogus"`, 1},
		{[]string{"volume", "create", "-o", "type=tmpfs", "vv"}, `create vv: missing required option: "device"`, 1},
		{[]string{"volume", "create", "-d", "nfs", "vv"}, `create vv: error looking up volume plugin nfs: plugin "nfs" not found`, 1},
		{[]string{"volume", "inspect", "nosuch"}, "get nosuch: no such volume", 1},
		{[]string{"volume", "rm", "nosuch"}, "get nosuch: no such volume", 1},
		{[]string{"volume", "ls", "-f", "bogus=1"}, "Invalid filter 'bogus'", 1},
		{[]string{"volume", "ls", "-f", "dangling=maybe"}, "Invalid filter 'dangling=[maybe]'", 1},
		{[]string{"run", "--rm", "-v", "bad!:/p", img, "true"}, `create bad!: "bad!" includes invalid characters`, 125},
		{[]string{"run", "--rm", "-v", "vv:/p:bogus", img, "true"}, "invalid mode: bogus", 125},
		{[]string{"run", "--rm", "-v", "vv:rel", img, "true"}, `invalid mount config for type "volume": invalid mount path: 'rel' mount path must be absolute`, 125},
		{[]string{"run", "--rm", "-v", "vv:/p:shared", img, "true"}, `field BindOptions must not be specified`, 125},
		{[]string{"run", "--rm", "-v", "vv:/", img, "true"}, `destination can't be '/'`, 125},
		{[]string{"run", "--rm", "-v", "v1:/p", "-v", "v2:/p", img, "true"}, "Duplicate mount point: /p", 125},
		{[]string{"run", "--rm", "-v", "v1:/p", "--tmpfs", "/p", img, "true"}, "Duplicate mount point: /p", 125},
		{[]string{"run", "--rm", "--mount", "type=volume,dst=/p,readonly", img, "true"}, "must not set ReadOnly mode when using anonymous volumes", 125},
		{[]string{"run", "--rm", "--mount", "type=volume,src=vv,dst=/p,volume-opt=bogus=1", img, "true"}, `create vv: invalid option: "bogus"`, 125},
		{[]string{"run", "--rm", "--mount", "type=volume,src=vv,dst=/p,volume-driver=nfs", img, "true"}, `error looking up volume plugin nfs`, 125},
		{[]string{"run", "--rm", "--mount", "type=bind,src=/no/such/dir,dst=/p", img, "true"}, "invalid mount config for type \"bind\": bind source path does not exist: /no/such/dir", 125},
		{[]string{"run", "--rm", "--mount", "type=volume,target", img, "true"}, "invalid field 'target' must be a key=value pair", 125},
		{[]string{"run", "--rm", "--mount", "type=volume,src=vv", img, "true"}, "target is required", 125},
		{[]string{"run", "--rm", "--mount", "type=tmpfs,dst=/p,volume-nocopy", img, "true"}, "cannot mix 'volume-*' options with mount type 'tmpfs'", 125},
		{[]string{"run", "--rm", "--volumes-from", "nosuch", img, "true"}, "No such container: nosuch", 125},
		// A good volume beside a bad one is not made either.
		{[]string{"run", "--rm", "-v", "good:/a", "-v", "bad!:/b", img, "true"}, "includes invalid characters", 125},
		// A start that fails to mount: the --rm container is gone, the
		// volume is not mounted.
		{[]string{"run", "--rm", "--mount", "type=volume,src=nodev,dst=/p,volume-opt=type=none,volume-opt=o=bind,volume-opt=device=/no/such/dir", img, "true"}, "failed to mount local volume", 127},
	} {
		_, errs, code := d.Docker(c.args...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("%v: code %d stderr %q (want %d, %q)", c.args, code, errs, c.code, c.want)
		}
	}
	d.MustDocker("volume", "rm", "nodev") // created by its --mount, as docker does
	if v := volumeDirs(d); len(v) != 0 {
		t.Errorf("volume directories left: %v", v)
	}
	// An API client sees docker's status codes.
	for _, c := range []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/v1.41/volumes/create", `{"Name":"bad name"}`, 400},
		{"POST", "/v1.41/volumes/create", `{"Name":"vv","Driver":"nfs"}`, 404},
		{"GET", "/v1.41/volumes/nosuch", "", 404},
		{"DELETE", "/v1.41/volumes/nosuch", "", 404},
		{"DELETE", "/v1.41/volumes/nosuch?force=1", "", 204},
		{"POST", "/v1.41/containers/create", `{"Image":"` + img + `","HostConfig":{"VolumesFrom":["nosuch"]}}`, 400},
	} {
		if got := apiStatus(t, d, c.method, c.path, c.body); got != c.status {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, got, c.status)
		}
	}
	d.MustDocker("create", "--name", "holder", "-v", "held:/h", img)
	if got := apiStatus(t, d, "DELETE", "/v1.41/volumes/held?force=1", ""); got != 409 {
		t.Errorf("in use: %d, want 409", got)
	}
	d.MustDocker("rm", "-v", "holder")
	d.MustDocker("volume", "rm", "held")
	if v := volumeDirs(d); len(v) != 0 {
		t.Errorf("volume directories left: %v", v)
	}
	assertVolumesClean(t, d)
}

// apiStatus sends one request to the daemon's socket and returns the
// status code.
func apiStatus(t *testing.T, d *hakodtest.Daemon, method, path, body string) int {
	t.Helper()
	hc := apiClient(d)
	req, err := http.NewRequest(method, "http://hako"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// isMounted reports whether path is a mount point of ours.
func isMounted(path string) bool {
	for _, m := range hakodtest.Mounts(filepath.Dir(path)) {
		if m == path {
			return true
		}
	}
	return false
}

// apiClient is an HTTP client for the daemon's socket.
func apiClient(d *hakodtest.Daemon) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.Socket)
	}}}
}

// apiJSON GETs path from the daemon and decodes its JSON answer.
func apiJSON(t *testing.T, d *hakodtest.Daemon, path string) any {
	t.Helper()
	resp, err := apiClient(d).Get("http://hako" + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	var v any
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, %v", path, resp.StatusCode, err)
	}
	return v
}
