package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/go-units"

	"github.com/hako-project/hako/test/hakodtest"
)

// Issue 6, item 3: docker's everyday commands against hakod, driven by the
// real docker CLI.

func TestStatsAndTop(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	d.MustDocker("run", "-d", "--name", "busy", "--memory", "64m", img, "sh", "-c", "while :; do :; done")
	d.MustDocker("run", "-d", "--name", "idle", img, "sleep", "600")
	out := d.MustDocker("stats", "--no-stream", "--format", "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.PIDs}}", "busy", "idle")
	lines := strings.Split(out, "\n")
	if len(lines) != 2 {
		t.Fatalf("stats --no-stream: %q", out)
	}
	f := strings.Split(lines[0], "|")
	if f[0] != "busy" || !strings.HasSuffix(f[2], "/ 64MiB") || f[3] != "1" {
		t.Errorf("busy container's stats: %q", lines[0])
	}
	if cpu, err := strconv.ParseFloat(strings.TrimSuffix(f[1], "%"), 64); err != nil || cpu < 10 {
		t.Errorf("a busy loop shows %s CPU", f[1])
	}
	if !strings.HasPrefix(lines[1], "idle|") || strings.HasSuffix(lines[1], "/ 64MiB|1") {
		t.Errorf("idle container's stats: %q", lines[1])
	}
	// The default table, and the error for a container that is not there.
	if out := d.MustDocker("stats", "--no-stream"); !strings.HasPrefix(out, "CONTAINER ID   NAME      CPU %") || strings.Count(out, "\n") != 2 {
		t.Errorf("stats table:\n%s", out)
	}
	if _, errs, code := d.Docker("stats", "--no-stream", "nosuch"); code == 0 || !strings.Contains(errs, "No such container: nosuch") {
		t.Errorf("stats of a missing container: %d %q", code, errs)
	}
	// A stopped container: zeros, no error.
	d.MustDocker("create", "--name", "stopped", img)
	if out := d.MustDocker("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}", "stopped"); out != "-- 0B / 0B" && out != "stopped 0B / 0B" {
		t.Errorf("stats of a created container: %q", out)
	}

	top := d.MustDocker("top", "idle")
	if !strings.Contains(top, "UID") || !strings.Contains(top, "sleep 600") || strings.Count(top, "\n") != 1 {
		t.Errorf("top:\n%s", top)
	}
	pid := d.MustDocker("inspect", "-f", "{{.State.Pid}}", "idle")
	if top := d.MustDocker("top", "idle", "-o", "pid,comm"); top != "PID"+strings.Repeat(" ", 17)+"COMMAND\n"+pid+strings.Repeat(" ", 20-len(pid))+"sleep" {
		t.Errorf("top -o pid,comm:\n%q", top)
	}
	d.MustDocker("exec", "-d", "idle", "sleep", "500")
	waitInContainer(t, d, "idle", `ps | grep -q "[s]leep 500"`)
	if top := d.MustDocker("top", "idle"); !strings.Contains(top, "sleep 500") {
		t.Errorf("top misses an exec'd process:\n%s", top)
	}
	if _, errs, code := d.Docker("top", "stopped"); code == 0 || !strings.Contains(errs, "is not running") {
		t.Errorf("top of a stopped container: %d %q", code, errs)
	}
}

func TestCopyBothWays(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	must(t, os.MkdirAll(filepath.Join(src, "sub"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "a.txt"), []byte("alpha\n"), 0o640))
	must(t, os.WriteFile(filepath.Join(src, "sub", "b.txt"), []byte("beta\n"), 0o600))
	must(t, os.Symlink("a.txt", filepath.Join(src, "link")))

	d.MustDocker("run", "-d", "--name", "running", img, "sleep", "600")
	d.MustDocker("create", "--name", "stopped", img, "true")
	for _, c := range []string{"running", "stopped"} {
		d.MustDocker("cp", src, c+":/tmp/")
		d.MustDocker("cp", filepath.Join(src, "a.txt"), c+":/renamed.txt")
		back := filepath.Join(tmp, "back-"+c)
		d.MustDocker("cp", c+":/tmp/src", back)
		for _, f := range []string{"a.txt", "sub/b.txt"} {
			want, _ := os.ReadFile(filepath.Join(src, f))
			got, err := os.ReadFile(filepath.Join(back, f))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: %s came back as %q (%v)", c, f, got, err)
			}
		}
		if fi, err := os.Stat(filepath.Join(back, "sub", "b.txt")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode not kept: %v %v", c, fi, err)
		}
		if l, err := os.Readlink(filepath.Join(back, "link")); err != nil || l != "a.txt" {
			t.Errorf("%s: symlink came back as %q (%v)", c, l, err)
		}
		d.MustDocker("cp", c+":/renamed.txt", filepath.Join(tmp, "renamed-"+c))
		if b, _ := os.ReadFile(filepath.Join(tmp, "renamed-"+c)); string(b) != "alpha\n" {
			t.Errorf("%s: single file: %q", c, b)
		}
		if _, errs, code := d.Docker("cp", c+":/nope", tmp); code == 0 || !strings.Contains(errs, "Could not find the file /nope in container "+c) {
			t.Errorf("%s: missing source: %d %q", c, code, errs)
		}
	}
	if out := d.MustDocker("exec", "running", "sh", "-c", "cat /tmp/src/a.txt /renamed.txt; stat -c %a /tmp/src/sub/b.txt"); out != "alpha\nalpha\n600" {
		t.Errorf("files copied into the running container: %q", out)
	}
	d.MustDocker("start", "stopped")
	// "-" streams a tar both ways.
	out, _, code := d.Docker("cp", "running:/etc/passwd", "-")
	if code != 0 {
		t.Fatalf("cp to stdout: %d", code)
	}
	tr := tar.NewReader(strings.NewReader(out))
	if h, err := tr.Next(); err != nil || h.Name != "passwd" {
		t.Errorf("cp to stdout: first entry %v %v", h, err)
	}
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	_ = tw.WriteHeader(&tar.Header{Name: "fromstdin", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg})
	_, _ = tw.Write([]byte("hi\n"))
	_ = tw.Close()
	if _, errs, code := d.DockerIn(tb.Bytes(), "cp", "-", "running:/tmp"); code != 0 {
		t.Fatalf("cp from stdin: %d %s", code, errs)
	}
	if out := d.MustDocker("exec", "running", "cat", "/tmp/fromstdin"); out != "hi" {
		t.Errorf("cp from stdin: %q", out)
	}
}

// escapeMarker writes a file to copy into containers, named as no host
// directory has a file: the host's /tmp must never get it.
func escapeMarker(t *testing.T) (name, path string) {
	tmp := t.TempDir()
	name = filepath.Base(tmp) + "-escape-marker"
	path = filepath.Join(tmp, name)
	must(t, os.WriteFile(path, []byte("copied\n"), 0o644))
	return name, path
}

// copyThroughLinks copies the marker into the container through dir/escape
// (a symlink to "/") and dir/up (one that climbs with ".."): both must
// land in the container's /tmp, never the host's.
func copyThroughLinks(t *testing.T, d *hakodtest.Daemon, ctr, dir, markerName, marker string) {
	t.Helper()
	d.MustDocker("cp", marker, ctr+":"+dir+"/escape/tmp/")
	d.MustDocker("cp", marker, ctr+":"+dir+"/up/tmp/"+markerName+"-2")
	for _, p := range []string{"/tmp/" + markerName, "/tmp/" + markerName + "-2"} {
		if _, err := os.Stat(p); err == nil {
			os.Remove(p)
			t.Fatalf("%s: cp through a symlink to / in %s/ wrote the host's %s", ctr, dir, p)
		}
	}
}

// TestCopyEscape is the escape regression test: a symlink in the
// container that points to "/" (or climbs with ".."), or names and links
// in the tar, must never make cp read or write the host's files.
func TestCopyEscape(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	markerName, marker := escapeMarker(t)
	hostDir := t.TempDir() // a host directory the container must not reach
	for _, state := range []string{"running", "stopped"} {
		name := "esc-" + state
		d.MustDocker("run", "-d", "--name", name, img, "sh", "-c",
			"ln -s / /escape; ln -s ../../../../../.. /up; mkdir /box; ln -s "+hostDir+" /box/hostdir; sleep 600")
		waitInContainer(t, d, name, "test -L /box/hostdir")
		if state == "stopped" {
			d.MustDocker("stop", "-t", "0", name)
		}
		// Writes through the links land in the container's /tmp.
		copyThroughLinks(t, d, name, "", markerName, marker)
		// A tar with "..", absolute names, a symlink to the host dir and a
		// file through it, and a hardlink out.
		var tb bytes.Buffer
		tw := tar.NewWriter(&tb)
		for _, h := range []*tar.Header{
			{Name: "../../../../" + hostDir[1:] + "/dotdot", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1},
			{Name: hostDir + "/absolute", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1},
			{Name: "lnk", Typeflag: tar.TypeSymlink, Linkname: hostDir},
			{Name: "lnk/through", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1},
		} {
			_ = tw.WriteHeader(h)
			if h.Size > 0 {
				_, _ = tw.Write([]byte("x"))
			}
		}
		_ = tw.Close()
		_, _, _ = d.DockerIn(tb.Bytes(), "cp", "-", name+":/box")
		_, _, _ = d.DockerIn(tb.Bytes(), "cp", "-", name+":/box/hostdir")
		if ents, _ := os.ReadDir(hostDir); len(ents) > 0 {
			t.Fatalf("%s: cp wrote on the host: %v", state, ents)
		}
		if state == "stopped" {
			d.MustDocker("start", name)
		}
		// Reads through the links read the container's files.
		out, _, code := d.Docker("cp", name+":/escape/etc/passwd", "-")
		if code != 0 || !strings.Contains(out, "nobody:x:65534") {
			t.Errorf("%s: cp through a symlink to / read %q", state, out)
		}
		if got := d.MustDocker("exec", name, "sh", "-c", "cat /tmp/"+markerName+" /tmp/"+markerName+"-2"); got != "copied\ncopied" {
			t.Errorf("%s: the copies did not land in the container: %q", state, got)
		}
	}
}

func TestDiffCommitExport(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	d.MustDocker("run", "--name", "changer", img, "sh", "-c",
		"touch /newfile; rm /bin/cat; mkdir -p /var/x; echo more >> /etc/passwd")
	// As docker's overlay2 diff: /etc is not listed (a modified file in it
	// leaves its time alone), nor are the runtime's mount targets in it.
	want := "C /bin\nD /bin/cat\nC /etc/passwd\nA /newfile\nC /var\nA /var/x"
	if got := d.MustDocker("diff", "changer"); got != want {
		t.Errorf("diff:\n%s\nwant:\n%s", got, want)
	}
	if got := d.MustDocker("diff", d.MustDocker("create", img)); got != "" {
		t.Errorf("diff of an unchanged container: %q", got)
	}
	id := d.MustDocker("commit", "-c", `CMD ["sh", "-c", "echo from commit; ls /newfile; cat /bin/cat"]`, "-c", "ENV COMMITTED=yes", "-c", "ONBUILD RUN echo hi",
		"-m", "a message", "-a", "me", "changer", "committed:v1")
	if !strings.HasPrefix(id, "sha256:") {
		t.Errorf("commit printed %q", id)
	}
	out, _, code := d.Docker("run", "--rm", "committed:v1")
	if code != 1 || !strings.Contains(out, "from commit\n/newfile") {
		t.Errorf("run of the committed image: %d %q", code, out)
	}
	if env := d.MustDocker("run", "--rm", "committed:v1", "sh", "-c", "echo $COMMITTED"); env != "yes" {
		t.Errorf("ENV change: %q", env)
	}
	if got := d.MustDocker("image", "inspect", "-f", "{{.Comment}} {{.Author}}", "committed:v1"); got != "a message me" {
		t.Errorf("commit metadata: %q", got)
	}
	// ONBUILD, a docker extension of the config, was accepted and dropped.
	if got := d.MustDocker("image", "inspect", "-f", "{{.Config.OnBuild}}", "committed:v1"); got != "[RUN echo hi]" {
		t.Errorf("ONBUILD change: %q", got)
	}
	// A running container is paused for the commit and runs on after.
	d.MustDocker("run", "-d", "--name", "live", img, "sh", "-c", "echo data > /live; sleep 600")
	waitInContainer(t, d, "live", "test -s /live")
	d.MustDocker("commit", "live", "committed:live")
	if st := d.MustDocker("inspect", "-f", "{{.State.Status}}", "live"); st != "running" {
		t.Errorf("after commit: %s", st)
	}
	if got := d.MustDocker("run", "--rm", "committed:live", "cat", "/live"); got != "data" {
		t.Errorf("commit of a running container: %q", got)
	}
	if _, errs, code := d.Docker("commit", "-c", "RUN true", "live"); code == 0 || !strings.Contains(errs, "run is not a valid change command") {
		t.Errorf("bad change: %d %q", code, errs)
	}

	exp := filepath.Join(t.TempDir(), "exp.tar")
	d.MustDocker("export", "-o", exp, "changer")
	names := tarNames(t, exp)
	for _, n := range []string{"newfile", "var/x/", "bin/busybox", "etc/passwd"} {
		if !names[n] {
			t.Errorf("export lacks %s", n)
		}
	}
	if names["bin/cat"] {
		t.Errorf("export has the removed bin/cat")
	}
	// export to stdout is the same tar.
	out, _, _ = d.Docker("export", "changer")
	if f, _ := os.ReadFile(exp); out != string(f) {
		t.Errorf("export to stdout differs from -o (%d vs %d bytes)", len(out), len(f))
	}
}

// TestImageSizes: image sizes as dockerd gives them, the bytes of the
// files in each layer's tar once unpacked (not what the compressed layers
// weigh): images, inspect, history (each layer's own), system df, and a
// container's SizeRootFs. Checked against dockerd 20.10 side by side: the
// default image 1982357 bytes in both, a commit of a 12345-byte file
// 1994705 in both.
func TestImageSizes(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	base, err := strconv.ParseInt(d.MustDocker("image", "inspect", "-f", "{{.Size}}", img), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	// The default image is the host's busybox and a few small /etc files;
	// gzip would make it about half that.
	bb, err := os.Stat("/bin/busybox")
	if err != nil {
		t.Skip("no /bin/busybox to size the default image by")
	}
	if base < bb.Size() || base > bb.Size()+4096 {
		t.Errorf("the default image's size %d, want the busybox binary's %d and a few bytes more", base, bb.Size())
	}
	d.MustDocker("run", "--name", "sizer", img, "sh", "-c", "head -c 12345 /dev/zero > /blob; mkdir /d")
	d.MustDocker("commit", "-c", "ENV A=1", "sizer", "sized:1")
	want := strconv.FormatInt(base+12345, 10)
	if got := d.MustDocker("image", "inspect", "-f", "{{.Size}}", "sized:1"); got != want {
		t.Errorf("inspect of the commit: size %s, want %s", got, want)
	}
	if got := d.MustDocker("history", "-H=false", "--format", "{{.Size}}", "sized:1"); got != "12345\n"+strconv.FormatInt(base, 10) {
		t.Errorf("history sizes:\n%s\nwant 12345 and %d", got, base)
	}
	// As the docker CLI prints sizes: three significant digits in images,
	// four in system df.
	if got, want := d.MustDocker("images", "--format", "{{.Repository}} {{.Size}}", "sized"), "sized "+units.HumanSizeWithPrecision(float64(base+12345), 3); got != want {
		t.Errorf("images: %q, want %q", got, want)
	}
	if got := d.MustDocker("inspect", "-s", "-f", "{{.SizeRw}} {{.SizeRootFs}}", "sizer"); got != "12345 "+want {
		t.Errorf("the container's sizes: %q, want 12345 %s", got, want)
	}
	// Two images, the base layer shared: df's figure counts it once.
	if got, want := d.MustDocker("system", "df", "--format", "{{.Type}} {{.Size}}"), "Images "+units.HumanSize(float64(base+12345))+"\n"; !strings.HasPrefix(got, want) {
		t.Errorf("system df: %q, want it to begin %q", got, want)
	}

	// API 1.41's image inspect: a commit's Parent, and the fields the
	// moby types dropped (a template naming one failed on a missing key).
	baseID := d.MustDocker("image", "inspect", "-f", "{{.Id}}", img)
	sizedID := d.MustDocker("image", "inspect", "-f", "{{.Id}}", "sized:1")
	if got := d.MustDocker("image", "inspect", "-f", "[{{.Parent}}] {{.VirtualSize}} [{{.Container}}] [{{.DockerVersion}}] [{{.Author}}] [{{.Config.Hostname}}] [{{.ContainerConfig.Image}}]", "sized:1"); got != "["+baseID+"] "+want+" [] [] [] [] []" {
		t.Errorf("image inspect of the commit: %q", got)
	}
	if got := d.MustDocker("image", "inspect", "-f", "[{{.Parent}}]", img); got != "[]" {
		t.Errorf("image inspect of the default image: parent %q", got)
	}
	// History names the images up the Parent chain, one per row.
	d.MustDocker("run", "--name", "sizer2", "sized:1", "touch", "/y")
	d.MustDocker("commit", "sizer2", "sized:2")
	sized2 := d.MustDocker("image", "inspect", "-f", "{{.Id}}", "sized:2")
	if got, want := d.MustDocker("history", "--no-trunc", "--format", "{{.ID}} {{.CreatedBy}}", "sized:2"), sized2+" touch /y\n"+sizedID+" sh -c head -c 12345 /dev/zero > /blob; mkdir /d\n"+baseID; got != want {
		t.Errorf("history of a commit of a commit:\n%s\nwant:\n%s", got, want)
	}
	d.MustDocker("rm", "sizer", "sizer2")
	d.MustDocker("rmi", "sized:2", "sized:1")
}

func tarNames(t *testing.T, path string) map[string]bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]bool{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		out[h.Name] = true
	}
}

func TestUpdateChangesCgroup(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	read := "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max"
	d.MustDocker("run", "-d", "--name", "upd", "--memory", "64m", img, "sleep", "600")
	if out := d.MustDocker("exec", "upd", "sh", "-c", read); out != strconv.Itoa(64<<20)+"\nmax" {
		t.Fatalf("before update: %q", out)
	}
	if out := d.MustDocker("update", "--memory", "100m", "--pids-limit", "40", "--restart", "on-failure:3", "upd"); out != "upd" {
		t.Errorf("update printed %q", out)
	}
	if out := d.MustDocker("exec", "upd", "sh", "-c", read); out != strconv.Itoa(100<<20)+"\n40" {
		t.Errorf("after update: %q", out)
	}
	if out := d.MustDocker("inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}", "upd"); out != strconv.Itoa(100<<20)+" on-failure:3" {
		t.Errorf("inspect after update: %q", out)
	}
	// The new limits are kept for the next start.
	d.MustDocker("restart", "-t", "0", "upd")
	if out := d.MustDocker("exec", "upd", "sh", "-c", read); out != strconv.Itoa(100<<20)+"\n40" {
		t.Errorf("after restart: %q", out)
	}
	if _, errs, code := d.Docker("update", "--memory", "1k", "upd"); code == 0 || !strings.Contains(errs, "Minimum memory limit allowed is 6MB") {
		t.Errorf("update below the minimum: %d %q", code, errs)
	}
}

func TestHealthCheck(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	evs := watchHealthEvents(t, d)
	d.MustDocker("run", "-d", "--name", "hc", "--health-cmd", "test -e /tmp/ok", "--health-interval", "300ms",
		"--health-retries", "2", img, "sleep", "600")
	waitFor(t, d, "hc", "{{.State.Health.Status}}", "unhealthy")
	if out := d.MustDocker("ps", "--filter", "health=unhealthy", "--format", "{{.Names}} {{.Status}}"); !strings.HasPrefix(out, "hc Up") || !strings.HasSuffix(out, "(unhealthy)") {
		t.Errorf("ps of an unhealthy container: %q", out)
	}
	d.MustDocker("exec", "hc", "touch", "/tmp/ok")
	waitFor(t, d, "hc", "{{.State.Health.Status}} {{.State.Health.FailingStreak}}", "healthy 0")
	time.Sleep(200 * time.Millisecond)
	if got, want := evs.String(), "health_status: unhealthy hc\nhealth_status: healthy hc\n"; got != want {
		t.Errorf("health events:\n%s\nwant:\n%s", got, want)
	}
	// hakod killed and started again: the check goes on from where it was.
	d.Kill()
	d.Restart()
	evs = watchHealthEvents(t, d)
	if st := d.MustDocker("inspect", "-f", "{{.State.Health.Status}}", "hc"); st != "healthy" {
		t.Errorf("after a hakod restart: %q", st)
	}
	d.MustDocker("exec", "hc", "rm", "/tmp/ok")
	waitFor(t, d, "hc", "{{.State.Health.Status}}", "unhealthy")
	if n := d.MustDocker("inspect", "-f", "{{len .State.Health.Log}}", "hc"); n != "5" {
		t.Errorf("health log keeps %s results, want the last 5", n)
	}

	// HEALTHCHECK from the image (made by commit), and --no-healthcheck.
	d.MustDocker("commit", "-c", `HEALTHCHECK --interval=300ms --timeout=1s CMD ["true"]`, "hc", "withhealth:1")
	d.MustDocker("run", "-d", "--name", "fromimage", "withhealth:1")
	waitFor(t, d, "fromimage", "{{.State.Health.Status}}", "healthy")
	d.MustDocker("run", "-d", "--name", "nohc", "--no-healthcheck", "withhealth:1")
	if out := d.MustDocker("inspect", "-f", "{{.State.Health}} {{json .Config.Healthcheck}}", "nohc"); out != `<nil> {"Test":["NONE"]}` {
		t.Errorf("--no-healthcheck: %q", out)
	}
	// A probe that outlives its timeout fails with docker's words.
	d.MustDocker("run", "-d", "--name", "slow", "--health-cmd", "sleep 5", "--health-interval", "300ms", "--health-timeout", "200ms", img, "sleep", "600")
	waitFor(t, d, "slow", "{{.State.Health.Status}}", "unhealthy")
	if out := d.MustDocker("inspect", "-f", "{{(index .State.Health.Log 0).Output}} {{(index .State.Health.Log 0).ExitCode}}", "slow"); out != "Health check exceeded timeout (200ms) -1" {
		t.Errorf("timed-out probe: %q", out)
	}
	time.Sleep(200 * time.Millisecond)
	got := evs.String()
	for _, want := range []string{"health_status: unhealthy hc\n", "health_status: healthy fromimage\n", "health_status: unhealthy slow\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("events lack %q:\n%s", want, got)
		}
	}
}

// watchHealthEvents follows docker events for health_status until the
// test ends (or hakod goes).
func watchHealthEvents(t *testing.T, d *hakodtest.Daemon) *syncBuffer {
	t.Helper()
	cmd := exec.Command("docker", "events", "--filter", "event=health_status", "--format", "{{.Action}} {{.Actor.Attributes.name}}")
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.Host)
	evs := &syncBuffer{}
	cmd.Stdout = evs
	must(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	time.Sleep(200 * time.Millisecond) // subscribed before anything happens
	return evs
}

// waitFor waits until inspect's format gives want.
func waitFor(t *testing.T, d *hakodtest.Daemon, name, format, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := d.MustDocker("inspect", "-f", format, name)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s is %q, want %q", name, format, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestPruneAndDiskUsage(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	d.MustDocker("run", "-d", "--name", "keep", img, "sleep", "600")
	d.MustDocker("run", "--name", "gone1", img, "sh", "-c", "head -c 100000 /dev/zero > /big")
	d.MustDocker("create", "--name", "gone2", "-l", "k=v", img)
	d.MustDocker("create", "--name", "labelled", "-l", "keep=yes", img)
	if out := d.MustDocker("system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}}"); out != "Images 1 1\nContainers 4 1\nLocal Volumes 0 0\nBuild Cache 0 0" {
		t.Errorf("system df: %q", out)
	}
	if out := d.MustDocker("system", "df", "-v"); !strings.Contains(out, "hako.local/busybox   latest") || !strings.Contains(out, "gone1") {
		t.Errorf("system df -v:\n%s", out)
	}
	out := d.MustDocker("container", "prune", "-f", "--filter", "label!=keep=yes")
	if !strings.HasPrefix(out, "Deleted Containers:\n") || strings.Count(out, "\n") != 4 || !strings.HasSuffix(out, "Total reclaimed space: 100kB") {
		t.Errorf("container prune:\n%s", out)
	}
	if ps := d.MustDocker("ps", "-a", "--format", "{{.Names}}"); ps != "labelled\nkeep" {
		t.Errorf("left after prune: %q", ps)
	}
	// An untagged image (a commit without a name) goes with image prune;
	// the tagged one only with -a, and not while a container uses it.
	d.MustDocker("commit", "labelled")
	d.MustDocker("commit", "labelled", "tagged:1")
	out = d.MustDocker("image", "prune", "-f")
	if !strings.HasPrefix(out, "Deleted Images:\ndeleted: sha256:") {
		t.Errorf("image prune:\n%s", out)
	}
	if imgs := d.MustDocker("images", "--format", "{{.Repository}}"); imgs != "tagged\nhako.local/busybox" {
		t.Errorf("images after a dangling prune: %q", imgs)
	}
	out = d.MustDocker("image", "prune", "-a", "-f")
	if !strings.Contains(out, "untagged: tagged:1\ndeleted: sha256:") {
		t.Errorf("image prune -a:\n%s", out)
	}
	if imgs := d.MustDocker("images", "--format", "{{.Repository}}"); imgs != "hako.local/busybox" {
		t.Errorf("images after prune -a: %q (the image in use must stay)", imgs)
	}
	out, _, _ = d.DockerIn([]byte("n\n"), "system", "prune")
	if !strings.HasPrefix(out, "WARNING! This will remove:\n  - all stopped containers") {
		t.Errorf("system prune prompt: %q", out)
	}
	out = d.MustDocker("system", "prune", "-f")
	if !strings.Contains(out, "Deleted Containers:\n") || !strings.HasSuffix(out, "Total reclaimed space: 0B") {
		t.Errorf("system prune:\n%s", out)
	}
}

func TestRunOptionsReachContainer(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	out := d.MustDocker("run", "--rm", "--add-host", "foo:10.1.2.3", "--dns", "10.9.9.9", "--dns-search", "example.com",
		"--dns-option", "ndots:2", "--ulimit", "nofile=100:200", "--device", "/dev/null:/dev/mynull",
		"--group-add", "1234", "--group-add", "nobody", "--sysctl", "net.ipv4.ip_forward=1", img, "sh", "-c",
		"grep foo /etc/hosts; cat /etc/resolv.conf; ulimit -n; ulimit -Hn; stat -c %t,%T /dev/mynull; id -G; cat /proc/sys/net/ipv4/ip_forward")
	want := "10.1.2.3\tfoo\nsearch example.com\nnameserver 10.9.9.9\noptions ndots:2\n100\n200\n1,3\n0 1234 65534\n1"
	if out != want {
		t.Errorf("run options inside the container:\n%s\nwant:\n%s", out, want)
	}
	if _, errs, code := d.Docker("run", "--rm", "--device", "/dev/nonexist", img, "true"); code == 0 || !strings.Contains(errs, `error gathering device information while adding custom device "/dev/nonexist"`) {
		t.Errorf("missing device: %d %q", code, errs)
	}
	if _, errs, code := d.Docker("run", "--rm", "--group-add", "nosuchgroup", img, "true"); code == 0 || !strings.Contains(errs, "Unable to find group nosuchgroup") {
		t.Errorf("unknown group: %d %q", code, errs)
	}
	// --log-opt: names checked at create, values at start, rotation.
	if _, errs, code := d.Docker("run", "--rm", "--log-opt", "foo=bar", img, "true"); code != 125 || !strings.Contains(errs, "unknown log opt 'foo' for json-file log driver") {
		t.Errorf("unknown log opt: %d %q", code, errs)
	}
	if _, errs, code := d.Docker("run", "--rm", "--log-opt", "max-size=abc", img, "true"); code == 0 || !strings.Contains(errs, "failed to initialize logging driver: invalid size: 'abc'") {
		t.Errorf("bad max-size: %d %q", code, errs)
	}
	d.MustDocker("run", "--name", "rot", "--log-opt", "max-size=1k", "--log-opt", "max-file=2", img, "sh", "-c",
		"i=0; while [ $i -lt 300 ]; do echo line $i; i=$((i+1)); done")
	logs := strings.Split(d.MustDocker("logs", "rot"), "\n")
	if n := len(logs); n >= 300 || n < 10 || logs[n-1] != "line 299" {
		t.Errorf("rotated logs: %d lines, last %q", n, logs[n-1])
	}
	id := d.MustDocker("inspect", "-f", "{{.Id}}", "rot")
	if _, err := os.Stat(filepath.Join(d.DataRoot, "containers", id, id+"-json.log.1")); err != nil {
		t.Errorf("no rotated log file: %v", err)
	}
	// Filters on ps.
	d.MustDocker("run", "-d", "--name", "f1", "-l", "tier=web", img, "sleep", "600")
	d.MustDocker("create", "--name", "f2", "-l", "tier=db", img)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--filter", "label=tier=web"}, "f1"},
		{[]string{"--filter", "name=^/f2$"}, "f2"},
		{[]string{"--filter", "status=created"}, "f2"},
		{[]string{"--filter", "health=none", "--filter", "name=f"}, "f2\nf1"},
		{[]string{"--filter", "is-task=true"}, ""},
		{[]string{"--filter", "ancestor=" + img, "--filter", "label=tier"}, "f2\nf1"},
		{[]string{"--filter", "since=f1"}, "f2"},
		{[]string{"--filter", "before=f2", "--filter", "label=tier"}, "f1"},
	} {
		if got := d.MustDocker(append([]string{"ps", "-a", "--format", "{{.Names}}"}, c.args...)...); got != c.want {
			t.Errorf("ps %v: %q, want %q", c.args, got, c.want)
		}
	}
	if _, errs, code := d.Docker("ps", "--filter", "bogus=1"); code == 0 || !strings.Contains(errs, "Invalid filter 'bogus'") {
		t.Errorf("unknown filter: %d %q", code, errs)
	}
}

// syncBuffer is a bytes.Buffer a process writes while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// TestCopyVolumes: docker cp reads and writes a container's volumes and
// bind mounts, running or stopped, so what it copies lands in the volume's
// directory on the host; a read-only volume refuses; a symlink in a volume
// that points to "/" (or climbs with "..") resolves in the container's
// view, never the host's.
func TestCopyVolumes(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	tmp := t.TempDir()
	markerName, marker := escapeMarker(t)
	for _, state := range []string{"running", "stopped"} {
		name, vol, bind := "vol-"+state, "data-"+state, filepath.Join(tmp, "bind-"+state)
		d.MustDocker("run", "-d", "--name", name, "-v", vol+":/data", "-v", bind+":/bind", "-v", vol+"-ro:/ro:ro",
			"-v", vol+"-nested:/outer/vol", img, "sh", "-c",
			"ln -s / /data/escape; ln -s ../../../../../.. /data/up; echo nested > /outer/vol/n; echo in-root > /tmp/root-only; sleep 600")
		waitInContainer(t, d, name, "test -s /tmp/root-only")
		if state == "stopped" {
			d.MustDocker("stop", "-t", "0", name)
		}
		d.MustDocker("cp", marker, name+":/data/")
		d.MustDocker("cp", marker, name+":/bind/")
		volData := filepath.Join(d.DataRoot, "volumes", vol, "_data")
		for _, p := range []string{filepath.Join(volData, markerName), filepath.Join(bind, markerName)} {
			if b, err := os.ReadFile(p); err != nil || string(b) != "copied\n" {
				t.Errorf("%s: the copy did not land in %s: %q %v", state, p, b, err)
			}
		}
		if _, errs, code := d.Docker("cp", marker, name+":/ro/"); code == 0 || !strings.Contains(errs, "mounted volume is marked read-only") {
			t.Errorf("%s: cp into a read-only volume: %d %q", state, code, errs)
		}
		// Through the volume's links: the container's /tmp, not the host's.
		copyThroughLinks(t, d, name, "/data", markerName, marker)
		out, _, code := d.Docker("cp", name+":/data/escape/tmp/root-only", "-")
		if code != 0 || !strings.Contains(out, "in-root") {
			t.Errorf("%s: cp through a symlink in a volume read %q", state, out)
		}
		// A directory holding a mount point: the mount's files are in the tar.
		out, _, code = d.Docker("cp", name+":/outer", "-")
		var names []string
		tr := tar.NewReader(strings.NewReader(out))
		for h, err := tr.Next(); err == nil; h, err = tr.Next() {
			names = append(names, h.Name)
		}
		if code != 0 || strings.Join(names, " ") != "outer/ outer/vol/ outer/vol/n" {
			t.Errorf("%s: cp of a directory holding a volume: %d %v", state, code, names)
		}
		if state == "stopped" {
			d.MustDocker("start", name)
		}
		if got := d.MustDocker("exec", name, "sh", "-c", "cat /tmp/"+markerName+" /tmp/"+markerName+"-2 /data/"+markerName); got != "copied\ncopied\ncopied" {
			t.Errorf("%s: the copies did not land in the container: %q", state, got)
		}
	}
}

// waitInContainer waits until cond (a shell test run in the container)
// holds: what the container's command sets up before the test goes on,
// however slow the machine.
func waitInContainer(t *testing.T, d *hakodtest.Daemon, name, cond string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, errs, code := d.Docker("exec", name, "sh", "-c", cond)
		if code == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %q did not come true in 20 s (exit %d: %s)", name, cond, code, errs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAPI141Fields: fields API 1.41 has and the moby types hakod builds on
// dropped, which clients of 1.41 read: info's kernel memory and bridge
// netfilter flags, version's GitCommit and BuildTime, images' and df's
// VirtualSize, df's BuilderSize; and a container's ExecIDs, the execs not
// yet ended (hakod left it null).
func TestAPI141Fields(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	has := func(what string, m any, keys ...string) {
		t.Helper()
		obj, _ := m.(map[string]any)
		for _, k := range keys {
			if _, ok := obj[k]; !ok {
				t.Errorf("%s lacks %s: %v", what, k, m)
			}
		}
	}
	has("info", apiJSON(t, d, "/v1.41/info"), "KernelMemory", "KernelMemoryTCP", "BridgeNfIptables", "BridgeNfIp6tables")
	has("version", apiJSON(t, d, "/v1.41/version"), "GitCommit", "BuildTime")
	imgs, _ := apiJSON(t, d, "/v1.41/images/json").([]any)
	if len(imgs) != 1 {
		t.Fatalf("images: %v", imgs)
	}
	has("an image in images/json", imgs[0], "VirtualSize")
	if m := imgs[0].(map[string]any); m["VirtualSize"] != m["Size"] {
		t.Errorf("VirtualSize %v, Size %v", m["VirtualSize"], m["Size"])
	}
	df := apiJSON(t, d, "/v1.41/system/df")
	has("system/df", df, "BuilderSize")
	has("an image in system/df", df.(map[string]any)["Images"].([]any)[0], "VirtualSize")

	d.MustDocker("run", "-d", "--name", "execd", img, "sleep", "600")
	if got := d.MustDocker("inspect", "-f", "{{json .ExecIDs}}", "execd"); got != "null" {
		t.Errorf("ExecIDs without an exec: %s", got)
	}
	d.MustDocker("exec", "-d", "execd", "sleep", "601")
	d.MustDocker("exec", "execd", "true") // ends at once
	ids := d.MustDocker("inspect", "-f", "{{range .ExecIDs}}{{.}} {{end}}", "execd")
	if f := strings.Fields(ids); len(f) != 1 || len(f[0]) != 64 {
		t.Fatalf("ExecIDs with one exec running and one ended: %q", ids)
	}
	// Its host pid from exec inspect, as docker gives it.
	x, _ := apiJSON(t, d, "/v1.41/exec/"+strings.TrimSpace(ids)+"/json").(map[string]any)
	pid, _ := x["Pid"].(float64)
	if pid <= 0 || syscall.Kill(int(pid), syscall.SIGKILL) != nil {
		t.Fatalf("kill the exec's process %v", x["Pid"])
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if got := d.MustDocker("inspect", "-f", "{{json .ExecIDs}}", "execd"); got == "null" {
			break
		} else if time.Now().After(deadline) {
			t.Errorf("ExecIDs once the exec ended: %s", got)
			break
		}
	}
	if st := d.MustDocker("inspect", "-f", "{{.State.Status}}", "execd"); st != "running" {
		t.Errorf("the container after its exec was killed: %s", st)
	}
	d.MustDocker("rm", "-f", "execd")
}
