package cli_test

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Issue 6, item 3: stats, top, cp, diff, commit, export, update, prune,
// system df and health checks, docker's CLI and hako's side by side.

var (
	reNumber  = regexp.MustCompile(`\d+(\.\d+)?([kMGT]i?B|B)?`)
	reReclaim = regexp.MustCompile(`Total reclaimed space: \S+`)
)

// numbers hides every number and size (usage figures, pids, times of
// day): a size's unit changes with it.
func numbers(s string) string { return reNumber.ReplaceAllString(s, "N") }

// sortLines sorts the output's lines: dockerd 20.10 lists a container's
// changes in no fixed order.
func sortLines(s string) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	sort.Strings(l)
	return strings.Join(l, "\n")
}

// reclaimed hides the size a prune reports (layers compress differently).
func reclaimed(s string) string {
	return reReclaim.ReplaceAllString(s, "Total reclaimed space: <size>")
}

// TestStatsTop: stats --no-stream in its forms, top with and without ps
// options, and their errors.
func TestStatsTop(t *testing.T) {
	s := need(t)
	n := names{base: "stats"}
	s.cleanup(t, n.d(), n.h())
	s.compare(t, n, "", []string{"run", "-d", "--name", "{}", "--memory", "64m", testImage, "sleep", "600"}, ids)
	s.compare(t, n, "", []string{"stats", "--no-stream", "{}"}, ids, numbers, times)
	s.compare(t, n, "", []string{"stats", "--no-stream", "--format", "{{.Name}} {{.Container}} {{.PIDs}}", "{}"})
	s.compare(t, n, "", []string{"stats", "--no-stream", "--format", "json", "{}"}, ids, numbers)
	s.compare(t, n, "", []string{"stats", "--no-stream", "nosuch"})
	s.compare(t, n, "", []string{"stats", "--no-stream", "--format", "{{.Bogus}}", "{}"})
	s.compare(t, n, "", []string{"top", "{}", "-o", "comm"})
	s.compare(t, n, "", []string{"top", "{}"}, numbers, times)
	s.compare(t, n, "", []string{"top", "nosuch"})
	s.compare(t, n, "", []string{"top"})
	s.compare(t, n, "", []string{"stop", "-t", "0", "{}"})
	s.compare(t, n, "", []string{"top", "{}"}, ids)
}

// TestCp copies both ways, to a running and to a stopped container, and
// checks docker's rules for where things land and its errors.
func TestCp(t *testing.T) {
	s := need(t)
	n := names{base: "cp"}
	s.cleanup(t, n.d(), n.h(), n.d()+"-stopped", n.h()+"-stopped")
	src := filepath.Join(s.tmp, "cpsrc")
	if err := os.MkdirAll(filepath.Join(src, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for f, body := range map[string]string{"a.txt": "alpha\n", "sub/b.txt": "beta\n"} {
		if err := os.WriteFile(filepath.Join(src, f), []byte(body), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	_ = os.Symlink("a.txt", filepath.Join(src, "link"))
	mtime := time.Unix(1700000000, 0)
	for _, f := range []string{"a.txt", "sub/b.txt", "sub", ""} {
		_ = os.Chtimes(filepath.Join(src, f), mtime, mtime)
	}
	s.compare(t, n, "", []string{"run", "-d", "--name", "{}", testImage, "sleep", "600"}, ids)
	s.compare(t, n, "", []string{"create", "--name", "{}-stopped", testImage, "sleep", "600"}, ids)
	out := filepath.Join(s.tmp, "cpout")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, ctr := range []string{"{}", "{}-stopped"} {
		s.compare(t, n, "", []string{"cp", src, ctr + ":/tmp/"})
		s.compare(t, n, "", []string{"cp", src + "/a.txt", ctr + ":/renamed"})
		s.compare(t, n, "", []string{"cp", src + "/.", ctr + ":/tmp/dotcopy"})
		s.compare(t, n, "", []string{"cp", ctr + ":/etc/passwd", "-"})
		s.compare(t, n, "", []string{"cp", ctr + ":/tmp/cpsrc", out + "/" + ctr})
		s.compare(t, n, "", []string{"cp", ctr + ":/renamed", out + "/" + ctr + "/renamed"})
		s.compare(t, n, "", []string{"cp", ctr + ":/nope", out})
		s.compare(t, n, "", []string{"cp", ctr + ":/etc", "/nonexistent/dir/x"})
		s.compare(t, n, "", []string{"cp", ctr + ":/tmp/cpsrc", out + "/" + ctr + "/renamed"})
	}
	s.compare(t, n, "", []string{"start", "{}-stopped"})
	for _, ctr := range []string{"{}", "{}-stopped"} {
		s.compare(t, n, "", []string{"exec", ctr, "sh", "-c", "ls -lnR /tmp/cpsrc /tmp/dotcopy; cat /renamed"})
	}
	for _, ctr := range []string{"", "-stopped"} {
		if d, h := tree(t, filepath.Join(out, n.d()+ctr)), tree(t, filepath.Join(out, n.h()+ctr)); d != h {
			t.Errorf("copied out of the container%s: docker's\n%s\nhako's\n%s", ctr, d, h)
		}
	}
	s.compare(t, n, "", []string{"cp", "a", "b"})
	s.compare(t, n, "", []string{"cp", "{}:/a", "{}:/b"})
	s.compare(t, n, "", []string{"cp", "/nonexistent", "{}:/tmp"})
	s.compare(t, n, "", []string{"cp", "nosuch:/etc/passwd", "-"})
	s.compare(t, n, "", []string{"cp", "{}"})
}

// tree lists a directory: names, modes, sizes, link targets, contents.
func tree(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	_ = filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			lines = append(lines, "error "+err.Error())
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		l := rel + " " + fi.Mode().String()
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			l += " -> " + target
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			l += " " + string(b)
		}
		lines = append(lines, l)
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestDiffCommitExport: a container's changes, an image made of them, its
// filesystem as a tar.
func TestDiffCommitExport(t *testing.T) {
	s := need(t)
	n := names{base: "dce"}
	s.cleanup(t, n.d(), n.h())
	t.Cleanup(func() {
		s.run(s.docker, "", "rmi", "-f", "clitest/committed:"+n.d(), "clitest/committed:"+n.h())
	})
	s.compare(t, n, "", []string{"run", "--name", "{}", testImage, "sh", "-c", "echo new > /newfile; rm /bin/cat; mkdir -p /tmp/d/e"})
	s.compare(t, n, "", []string{"diff", "{}"}, sortLines)
	s.compare(t, n, "", []string{"diff", "nosuch"})
	s.compare(t, n, "", []string{"diff"})
	s.compare(t, n, "", []string{"commit", "-c", `CMD ["cat", "/newfile"]`, "-c", "LABEL committed={}", "-c", "ENV A=1 B=2",
		"-m", "msg", "-a", "someone", "{}", "clitest/committed:{}"}, ids)
	s.compare(t, n, "", []string{"run", "--rm", "clitest/committed:{}"})
	s.compare(t, n, "", []string{"run", "--rm", "clitest/committed:{}", "sh", "-c", "echo $A $B; ls /tmp/d"})
	s.compare(t, n, "", []string{"inspect", "--type", "image", "-f", "{{.Config.Cmd}} {{.Config.Labels}} {{.Comment}} {{.Author}}", "clitest/committed:{}"})
	s.compare(t, n, "", []string{"commit", "-c", "RUN true", "{}"})
	s.compare(t, n, "", []string{"commit", "nosuch"})
	s.compare(t, n, "", []string{"commit", "{}", "Bad:Name"})
	s.compare(t, n, "", []string{"export", "nosuch"})
	s.compare(t, n, "", []string{"export", "-o", filepath.Join(s.tmp, "{}.tar"), "{}"})
	d, h := tarList(t, filepath.Join(s.tmp, n.d()+".tar")), tarList(t, filepath.Join(s.tmp, n.h()+".tar"))
	if d != h {
		t.Errorf("export: docker's tar\n%s\nhako's\n%s", d, h)
	}
	for _, want := range []string{"newfile 4", "tmp/d/e/ 0"} {
		if !strings.Contains(d, want+"\n") {
			t.Errorf("export lacks %q", want)
		}
	}
}

// tarList lists a tar's entries (name, size), leaving out what the daemons
// add at run time (docker's .dockerenv and mount points).
func tarList(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch h.Name {
		case ".dockerenv", "etc/hostname", "etc/hosts", "etc/resolv.conf", "etc/mtab", "dev/console", "dev/pts/", "dev/shm/":
			continue
		}
		out = append(out, h.Name+" "+strconv.FormatInt(h.Size, 10))
	}
	sort.Strings(out)
	return strings.Join(out, "\n") + "\n"
}

// TestUpdate: new limits and restart policy, and docker's refusals.
func TestUpdate(t *testing.T) {
	s := need(t)
	n := names{base: "upd"}
	s.cleanup(t, n.d(), n.h())
	s.compare(t, n, "", []string{"run", "-d", "--name", "{}", "--memory", "64m", testImage, "sleep", "600"}, ids)
	s.compare(t, n, "", []string{"update", "--memory", "100m", "--pids-limit", "40", "--restart", "on-failure:2", "{}"})
	s.compare(t, n, "", []string{"inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy}}", "{}"})
	s.compare(t, n, "", []string{"update", "{}"})
	s.compare(t, n, "", []string{"update", "--memory", "1k", "{}"})
	s.compare(t, n, "", []string{"update", "--cpus", "0.5", "{}", "nosuch"})
	s.compare(t, n, "", []string{"update", "--restart", "bogus", "{}"})
	s.compare(t, n, "", []string{"update", "--memory", "abc", "{}"})
}

// TestPrune: container and image prune limited to this test's objects by
// labels, the confirmation prompts, system prune's warning and refusals.
func TestPrune(t *testing.T) {
	s := need(t)
	n := names{base: "prune"}
	s.cleanup(t, n.d(), n.h(), n.d()+"-img", n.h()+"-img")
	t.Cleanup(func() {
		s.run(s.docker, "", "rmi", "-f", "clitest/pruned:"+n.d(), "clitest/pruned:"+n.h())
	})
	s.compare(t, n, "", []string{"create", "--name", "{}", "-l", "prune={}", testImage}, ids)
	s.compare(t, n, "n\n", []string{"container", "prune", "--filter", "label=prune={}"})
	s.compare(t, n, "", []string{"inspect", "-f", "{{.State.Status}}", "{}"})
	s.compare(t, n, "y\n", []string{"container", "prune", "--filter", "label=prune={}"}, ids, reclaimed)
	s.compare(t, n, "", []string{"inspect", "-f", "{{.State.Status}}", "{}"})
	s.compare(t, n, "", []string{"container", "prune", "-f", "--filter", "label=prune={}"})
	s.compare(t, n, "", []string{"container", "prune", "-f", "--filter", "bogus=1"})
	s.compare(t, n, "", []string{"container", "prune", "--filter", "x"})

	s.compare(t, n, "", []string{"create", "--name", "{}-img", testImage}, ids)
	s.compare(t, n, "", []string{"commit", "-c", "LABEL pruneimg={}", "{}-img", "clitest/pruned:{}"}, ids)
	s.compare(t, n, "", []string{"rm", "{}-img"})
	s.compare(t, n, "", []string{"image", "prune", "-f", "--filter", "label=pruneimg={}"})
	s.compare(t, n, "n\n", []string{"image", "prune", "-a", "--filter", "label=pruneimg={}"})
	s.compare(t, n, "", []string{"image", "prune", "-a", "-f", "--filter", "label=pruneimg={}"}, ids, reclaimed)
	s.compare(t, n, "", []string{"images", "-q", "clitest/pruned:{}"})
	s.compare(t, n, "", []string{"image", "prune", "-f", "--filter", "bogus=1"})

	s.compare(t, n, "n\n", []string{"system", "prune"})
	s.compare(t, n, "n\n", []string{"system", "prune", "-a", "--filter", "until=1h", "--filter", "label=b", "--filter", "label=a"})
	s.compare(t, n, "n\n", []string{"system", "prune", "--volumes", "--filter", "until=1h"})
	s.compare(t, n, "n\n", []string{"system", "prune", "--volumes"})
	s.compare(t, n, "", []string{"system", "prune", "extra"})
}

// TestSystemDF: the summary, its formats, and the verbose tables.
func TestSystemDF(t *testing.T) {
	s := need(t)
	n := names{base: "df"}
	s.cleanup(t, n.d(), n.h())
	s.compare(t, n, "", []string{"create", "--name", "{}", testImage}, ids)
	s.compare(t, names{}, "", []string{"system", "df"})
	s.compare(t, names{}, "", []string{"system", "df", "--format", "{{.Type}}: {{.TotalCount}} {{.Active}} {{.Size}} {{.Reclaimable}}"})
	s.compare(t, names{}, "", []string{"system", "df", "--format", "json"})
	s.compare(t, names{}, "", []string{"system", "df", "-v"}, ids, times)
	s.compare(t, names{}, "", []string{"system", "df", "extra"})
}

// TestHealth: a health check from run's flags going healthy, as ps and
// inspect show it, and the health filter.
func TestHealth(t *testing.T) {
	s := need(t)
	n := names{base: "health"}
	s.cleanup(t, n.d(), n.h())
	s.compare(t, n, "", []string{"run", "-d", "--name", "{}", "--health-cmd", "test -e /tmp/ok", "--health-interval", "200ms",
		"--health-retries", "1", testImage, "sleep", "600"}, ids)
	for _, c := range []string{n.d(), n.h()} {
		waitInspect(t, s, c, "{{.State.Health.Status}}", "unhealthy")
	}
	s.compare(t, n, "", []string{"ps", "--filter", "name={}", "--filter", "health=unhealthy", "--format", "{{.Names}} {{.Status}}"}, times)
	s.compare(t, n, "", []string{"exec", "{}", "touch", "/tmp/ok"})
	for _, c := range []string{n.d(), n.h()} {
		waitInspect(t, s, c, "{{.State.Health.Status}}", "healthy")
	}
	s.compare(t, n, "", []string{"ps", "--filter", "name={}", "--filter", "health=healthy", "--format", "{{.Names}} {{.Status}}"}, times)
	s.compare(t, n, "", []string{"inspect", "-f", "{{.State.Health.Status}} {{.State.Health.FailingStreak}} {{json .Config.Healthcheck}}", "{}"})
	s.compare(t, n, "", []string{"ps", "--filter", "health=bogus"})
	s.compare(t, n, "", []string{"ps", "--filter", "bogus=1"})
}

// waitInspect waits until docker inspect's format gives want.
func waitInspect(t *testing.T, s *suite, name, format, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if r := s.run(s.docker, "", "inspect", "-f", format, name); strings.TrimSpace(r.out) == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: %s never became %q", name, format, want)
}

// TestCpVolumes copies into and out of a container's volumes and bind
// mounts, running and stopped: docker mounts them for a copy, so a path in
// a volume reads and writes the volume's data; a read-only volume and a
// read-only root refuse a copy into them with docker's messages; a copy of
// a directory holding a mount point has the mount's content; a symlink in
// a volume resolves in the container's view.
func TestCpVolumes(t *testing.T) {
	s := need(t)
	n := names{base: "cpvol"}
	s.cleanup(t, n.d(), n.h(), n.d()+"-stopped", n.h()+"-stopped", n.d()+"-rofs", n.h()+"-rofs")
	t.Cleanup(func() {
		for _, x := range []string{n.d(), n.h()} {
			s.run(s.docker, "", "rm", "-fv", x, x+"-stopped", x+"-rofs")
			s.run(s.docker, "", "volume", "rm", "-f", x+"-vol", x+"-ro", x+"-nested")
		}
	})
	src := filepath.Join(s.tmp, "cpvolsrc")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "a.txt"), []byte("alpha\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bind := filepath.Join(s.tmp, "cpvolbind-{}")
	mounts := []string{"-v", "{}-vol:/data", "-v", bind + ":/bind", "-v", "{}-ro:/ro:ro",
		"--mount", "type=volume,dst=/anon", "--tmpfs", "/tmpfs", "-v", "{}-nested:/outer/vol"}
	setup := "mkdir -p /outer/dir && echo outer > /outer/f && echo nested > /outer/vol/n && echo live > /tmpfs/t && ln -s /etc /data/etclink && ln -s / /data/rootlink"
	s.compare(t, n, "", append(append([]string{"run", "-d", "--name", "{}"}, mounts...), testImage, "sleep", "600"), ids)
	s.compare(t, n, "", append(append([]string{"run", "-d", "--name", "{}-stopped"}, mounts...), testImage, "sleep", "600"), ids)
	for _, ctr := range []string{"{}", "{}-stopped"} {
		s.compare(t, n, "", []string{"exec", ctr, "sh", "-c", setup})
	}
	s.compare(t, n, "", []string{"kill", "{}-stopped"})
	out := filepath.Join(s.tmp, "cpvolout")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	// dockerd's answers: a read-only volume refuses; a tmpfs is not part
	// of a copy's view, so a copy into it lands under it, and what the
	// container wrote in it is not found.
	const roErr = "Error response from daemon: mounted volume is marked read-only\n"
	for _, ctr := range []string{"{}", "{}-stopped"} {
		for _, dst := range []string{"/data/", "/bind/", "/anon/", "/tmpfs/", "/outer/vol/", "/data/rootlink/data/", "/ro/", "/ro/x", "/", "/outer/"} {
			d, _ := s.compare(t, n, "", []string{"cp", src + "/a.txt", ctr + ":" + dst})
			if want := map[string]string{"/ro/": roErr, "/ro/x": roErr}[dst]; d.err != want || (d.code == 0) != (want == "") {
				t.Errorf("cp a.txt %s:%s: %s, want %q", ctr, dst, d, want)
			}
		}
		for _, p := range []string{"/data/a.txt", "/bind/a.txt", "/anon/a.txt", "/tmpfs/t", "/tmpfs/a.txt", "/data/etclink/passwd",
			"/data/rootlink/etc/passwd", "/data/rootlink/data/a.txt"} {
			d, _ := s.compare(t, n, "", []string{"cp", ctr + ":" + p, "-"})
			if want := p != "/tmpfs/t"; (d.code == 0) != want ||
				!want && !strings.HasPrefix(d.err, "Error response from daemon: Could not find the file /tmpfs/t in container ") {
				t.Errorf("cp %s:%s -: %s", ctr, p, d)
			}
		}
		s.compare(t, n, "", []string{"cp", ctr + ":/outer", out + "/" + ctr})
		s.compare(t, n, "", []string{"cp", "-L", ctr + ":/data/etclink", out + "/" + ctr + "/etc"})
	}
	for _, ctr := range []string{"", "-stopped"} {
		// The copy of /etc has the container's /etc/hostname (its short
		// id) and /etc/hosts, as docker mounts them for a copy; hosts
		// differs by the container's address.
		for _, x := range []string{n.d(), n.h()} {
			_ = os.Remove(filepath.Join(out, x+ctr, "etc", "hosts"))
		}
		d := reID12.ReplaceAllString(tree(t, filepath.Join(out, n.d()+ctr)), "ID")
		h := reID12.ReplaceAllString(tree(t, filepath.Join(out, n.h()+ctr)), "ID")
		if d != h {
			t.Errorf("copied out of the container%s: docker's\n%s\nhako's\n%s", ctr, d, h)
		}
	}
	// What landed where: the volumes, seen by a new container, and the bind
	// mount's host directory.
	for _, ctr := range []string{"{}", "{}-stopped"} {
		d, _ := s.compare(t, n, "", []string{"run", "--rm", "--volumes-from", ctr, testImage, "sh", "-c",
			"ls /data /bind /anon /outer/vol /ro; cat /data/a.txt"})
		t.Logf("volumes of %s: %s", ctr, d)
	}
	s.compare(t, n, "", []string{"exec", "{}", "sh", "-c", "ls /tmpfs /outer; cat /tmpfs/t"})
	// A read-only root: a copy into a volume is allowed, into the root not.
	s.compare(t, n, "", []string{"create", "--read-only", "--name", "{}-rofs", "-v", "{}-vol:/data", testImage}, ids)
	for _, dst := range []string{"/data/", "/"} {
		d, _ := s.compare(t, n, "", []string{"cp", src + "/a.txt", "{}-rofs:" + dst})
		t.Logf("cp a.txt rofs:%s: %s", dst, d)
	}
	s.compare(t, n, "", []string{"start", "{}-stopped"})
	s.compare(t, n, "", []string{"exec", "{}-stopped", "sh", "-c", "ls /tmpfs /outer; cat /data/a.txt"})
	for _, x := range []string{n.d(), n.h()} {
		b, err := os.ReadFile(filepath.Join(s.tmp, "cpvolbind-"+x, "a.txt"))
		if err != nil || string(b) != "alpha\n" {
			t.Errorf("the bind mount's host directory of %s: %q, %v", x, b, err)
		}
	}
}
