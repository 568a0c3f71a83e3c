package cli_test

import (
	"crypto/md5"
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRunRmExitCode: the container's output on the right streams and its
// exit status as the CLI's.
func TestRunRmExitCode(t *testing.T) {
	s := need(t)
	d, _ := s.compare(t, names{}, "", []string{"run", "--rm", testImage, "sh", "-c", "echo out; echo err >&2; exit 3"})
	if d.code != 3 || d.out != "out\n" || d.err != "err\n" {
		t.Fatalf("unexpected docker result %s", d)
	}
	s.compare(t, names{}, "", []string{"run", "--rm", testImage, "true"})
	s.compare(t, names{}, "", []string{"run", "--rm", "-e", "A=1", "-e", "B", "-w", "/tmp", "-u", "nobody", "--hostname", "hh",
		testImage, "sh", "-c", "echo $A-$B; pwd; id -u; hostname"})
	s.compare(t, names{}, "", []string{"run", "--rm", "--entrypoint", "echo", testImage, "from", "entrypoint"})
}

// TestRunStdin: -i sends stdin before start and half-closes at EOF, so cat
// sees all input and ends.
func TestRunStdin(t *testing.T) {
	s := need(t)
	in := strings.Repeat("line of input\n", 2000)
	d, _ := s.compare(t, names{}, in, []string{"run", "--rm", "-i", testImage, "sh", "-c", "wc -l; exit 4"})
	if d.code != 4 || strings.TrimSpace(d.out) != "2000" {
		t.Fatalf("unexpected docker result %s", d)
	}
	s.compare(t, names{}, "abc", []string{"run", "--rm", "-i", testImage, "cat"})
	// Without -i the container's stdin is closed.
	s.compare(t, names{}, "abc", []string{"run", "--rm", testImage, "cat"})
}

// TestRunErrors: docker's messages and statuses for failures before and
// at start.
func TestRunErrors(t *testing.T) {
	s := need(t)
	cases := [][]string{
		{"run", "--rm", testImage, "nosuchcommand"},                    // 127
		{"run", "--rm", testImage, "/etc/passwd"},                      // 126
		{"run", "--rm", "127.0.0.1:1/nosuch/image:latest"},             // pull fails: 125
		{"run", "--rm", "--pull=never", "clitest/nosuch:latest"},       // no such image
		{"run", "--foo", testImage},                                    // unknown flag
		{"run", "--memory", "abc", testImage},                          // bad size
		{"run", "--cpus", "x", testImage},                              // bad rational
		{"run", "-p", "abc", testImage},                                // bad port
		{"run", "--restart", "bogus", testImage},                       // daemon-side validation
		{"run", "--pull", "sometimes", testImage},                      // bad pull policy
		{"run", "--ulimit", "nofile", testImage},                       // bad ulimit
		{"run", "-a", "stdfoo", testImage},                             // bad stream
		{"run", "--rm", "--restart", "always", testImage},              // conflict
		{"run", "--no-healthcheck", "--health-cmd", "true", testImage}, // conflict
		{"run", "--add-host", "x:notanip", testImage},                  // bad host
		{"run", "--dns", "nope", testImage},                            // bad IP
		{"run", "--device", "relative", testImage},                     // bad path
		{"run", "-v", "rel:/x:y:z", testImage},                         // bad volume
		{"run", "--mount", "type=bind", testImage},                     // no target
		{"run", "--security-opt", "seccomp", testImage},                // no value
		{"run", "Bad Name"},                                            // bad reference
		{"run"},                                                        // no image
		{"run", "-d", "-a", "stdout", testImage},                       // attach and detach
		{"run", "--rm", "-it", testImage, "true"},                      // stdin is not a tty
		{"create", "--memory", "1x", testImage},
		{"create"},
	}
	for _, c := range cases {
		d, _ := s.compare(t, names{}, "", c)
		if d.code == 0 {
			t.Fatalf("%v: docker succeeded: %s", c, d)
		}
	}
}

// TestRunNameConflict: a second container with a taken name fails with
// docker's conflict message (the ID in it differs per CLI).
func TestRunNameConflict(t *testing.T) {
	s := need(t)
	n := names{base: "conflict"}
	s.cleanup(t, n.d(), n.h())
	s.must(t, s.docker, "create", "--name", n.d(), testImage)
	s.must(t, s.docker, "create", "--name", n.h(), testImage)
	s.compare(t, n, "", []string{"run", "--name", "{}", testImage}, ids)
	s.compare(t, n, "", []string{"create", "--name", "{}", testImage}, ids)
}

// TestDetachedLifecycle: run -d, logs, logs -f, exec (plain and -it),
// stop, rm.
func TestDetachedLifecycle(t *testing.T) {
	s := need(t)
	n := names{base: "life"}
	s.cleanup(t, n.d(), n.h())
	d, h := s.compare(t, n, "", []string{"run", "-d", "--name", "{}", testImage, "sh", "-c", "echo hello; sleep 0.2; echo oops >&2; trap 'exit 0' TERM; while true; do sleep 0.1; done"}, ids)
	if !regexp.MustCompile(`^[0-9a-f]{64}\n$`).MatchString(d.out) || !regexp.MustCompile(`^[0-9a-f]{64}\n$`).MatchString(h.out) {
		t.Fatalf("run -d must print the ID:\ndocker: %q\nhako: %q", d.out, h.out)
	}
	waitLog(t, s, n.d(), "oops")
	waitLog(t, s, n.h(), "oops")
	s.compare(t, n, "", []string{"logs", "{}"})
	s.compare(t, n, "", []string{"logs", "--tail", "1", "{}"})
	s.compare(t, n, "", []string{"logs", "-n", "0", "{}"})
	s.compare(t, n, "", []string{"logs", "--since", "1h", "{}"})
	s.compare(t, n, "", []string{"logs", "-t", "--until", "2100-01-01T00:00:00Z", "{}"}, func(x string) string {
		return regexp.MustCompile(`\d{4}-\d\d-\d\dT[0-9:.]+Z`).ReplaceAllString(x, "<ts>")
	})

	// logs -f: streams until the CLI is stopped.
	for _, bin := range []struct{ cli, name string }{{s.docker, n.d()}, {s.hako, n.h()}} {
		out := followLogs(t, s, bin.cli, bin.name, "hello")
		if !strings.Contains(out, "hello") {
			t.Fatalf("%s logs -f: %q", bin.cli, out)
		}
	}

	s.compare(t, n, "", []string{"exec", "{}", "sh", "-c", "echo in exec; echo e >&2; exit 5"})
	s.compare(t, n, "", []string{"exec", "-e", "X=1", "-w", "/tmp", "-u", "nobody", "{}", "sh", "-c", "echo $X; pwd; id -u"})
	s.compare(t, n, "piped", []string{"exec", "-i", "{}", "cat"})
	s.compare(t, n, "", []string{"exec", "{}", "nosuchcommand"})
	s.compare(t, n, "", []string{"exec", "-d", "{}", "sleep", "1"})
	s.compare(t, n, "", []string{"exec", "{}"})
	s.compare(t, n, "", []string{"exec", "nosuchcontainer", "true"})
	// Without a terminal: the missing container is reported first, then
	// (for a container that runs) the missing terminal.
	s.compare(t, n, "", []string{"exec", "-it", "nosuchcontainer", "true"})
	s.compare(t, n, "", []string{"exec", "-it", "{}", "true"})
	// exec -it needs a terminal: script(1) gives the CLI one.
	dt := s.inPty(t, s.docker, "exec -it "+n.d()+" sh -c 'test -t 0 && echo tty; exit 6'")
	ht := s.inPty(t, s.hako, "exec -it "+n.h()+" sh -c 'test -t 0 && echo tty; exit 6'")
	s.requireSame(t, n, []string{"exec -it"}, dt, ht)
	if dt.code != 6 || !strings.Contains(dt.out, "tty") {
		t.Fatalf("docker exec -it: %s", dt)
	}

	s.compare(t, n, "", []string{"stop", "-t", "5", "{}"})
	s.compare(t, n, "", []string{"inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "{}"})
	s.compare(t, n, "", []string{"rm", "{}"})
	s.compare(t, n, "", []string{"rm", "{}"})
	s.compare(t, n, "", []string{"rm", "-f", "{}"})
}

// waitLog waits until the container's log holds want.
func waitLog(t *testing.T, s *suite, name, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if r := s.run(s.docker, "", "logs", name); strings.Contains(r.out+r.err, want) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("container %s never logged %q", name, want)
}

// TestRunTTY: -it under a pty: the container sees a terminal of the
// CLI's size, output comes back raw, the exit status is the container's.
func TestRunTTY(t *testing.T) {
	s := need(t)
	cmd := "run --rm -it " + testImage + " sh -c 'test -t 0 && echo tty; sleep 1; stty size; exit 5'"
	d := s.inPty(t, s.docker, cmd)
	h := s.inPty(t, s.hako, cmd)
	s.requireSame(t, names{}, []string{"run -it"}, d, h)
	if d.code != 5 || !strings.Contains(d.out, "40 120") {
		t.Fatalf("docker run -it under a 40x120 pty: %s", d)
	}
	// -t without -i: a pty, no stdin. (At API 1.41 the create request's
	// ConsoleSize is ignored: the size comes by resize after start, hence
	// the sleep above before stty.)
	cmd = "run --rm -t " + testImage + " sh -c 'echo $((1+2))'"
	s.requireSame(t, names{}, []string{"run -t"}, s.inPty(t, s.docker, cmd), s.inPty(t, s.hako, cmd))
}

// TestDetachKeys: ctrl-p ctrl-q leaves a -it container running and the
// CLI exits 0; a custom --detach-keys works the same.
func TestDetachKeys(t *testing.T) {
	s := need(t)
	n := names{base: "detach"}
	s.cleanup(t, n.d(), n.h())
	for _, c := range []struct{ bin, name string }{{s.docker, n.d()}, {s.hako, n.h()}} {
		code, out := s.ptySession(t, c.bin, []string{"run", "-it", "--name", c.name, testImage, "sh"}, "echo re$((1+1))dy\r", "re2dy", "\x10\x11")
		if code != 0 {
			t.Fatalf("%s: detach exit %d, output %q", c.bin, code, out)
		}
		if st := s.must(t, s.docker, "inspect", "-f", "{{.State.Running}}", c.name).out; st != "true\n" {
			t.Fatalf("%s: container not running after detach: %q", c.bin, st)
		}
		// attach again with other keys, then detach with them.
		code, out = s.ptySession(t, c.bin, []string{"attach", "--detach-keys", "ctrl-x", c.name}, "echo ag$((2+1))in\r", "ag3in", "\x18")
		if code == 0 && c.bin == s.docker {
			t.Logf("docker attach detach exit 0")
		}
		_ = out
	}
	s.compare(t, n, "", []string{"inspect", "-f", "{{.State.Running}}", "{}"})
	// Both CLIs create (and docker's starts) the container before the bad
	// keys are refused: remove those too.
	t.Cleanup(func() {
		if ids := strings.Fields(s.run(s.docker, "", "ps", "-aq", "--filter", "label=suite=badkeys").out); len(ids) > 0 {
			s.run(s.docker, "", append([]string{"rm", "-f"}, ids...)...)
		}
	})
	s.compare(t, n, "", []string{"run", "-l", "suite=badkeys", "--detach-keys", "ctrl-", testImage})
}

// TestSignalProxy: signals to the CLI reach the container (no tty): USR1,
// which only the proxy catches, then TERM, which the CLI also watches.
func TestSignalProxy(t *testing.T) {
	s := need(t)
	script := "trap 'echo got USR1' USR1; trap 'echo got TERM; exit 9' TERM; echo ready; while true; do sleep 0.1; done"
	for _, bin := range []string{s.docker, s.hako} {
		r := s.signalRun(t, bin, []string{"run", "--rm", testImage, "sh", "-c", script}, "ready", syscall.SIGUSR1, syscall.SIGTERM)
		if r.code != 9 || !strings.Contains(r.out, "got USR1\n") || !strings.Contains(r.out, "got TERM") {
			t.Fatalf("%s: USR1 and TERM not proxied: %s", bin, r)
		}
	}
}

// TestCreateStartAttach: create, then start -a and start -ai.
func TestCreateStartAttach(t *testing.T) {
	s := need(t)
	n := names{base: "csa"}
	s.cleanup(t, n.d(), n.h())
	s.compare(t, n, "", []string{"create", "--name", "{}", testImage, "sh", "-c", "echo started; exit 7"}, ids)
	s.compare(t, n, "", []string{"start", "-a", "{}"})
	s.compare(t, n, "", []string{"start", "{}", "nosuch"})
	s.compare(t, n, "", []string{"wait", "{}"})
	s.compare(t, n, "", []string{"rm", "{}"})
	s.compare(t, n, "", []string{"create", "-i", "--name", "{}", testImage, "sh", "-c", "cat; exit 2"}, ids)
	s.compare(t, n, "via stdin\n", []string{"start", "-ai", "{}"})
	s.compare(t, n, "", []string{"start", "-a", "{}", "{}"})
}

// TestAttach: attach to a running container follows its output and
// returns its status; attach to a stopped one fails as docker's does.
func TestAttach(t *testing.T) {
	s := need(t)
	n := names{base: "att"}
	s.cleanup(t, n.d(), n.h())
	s.compare(t, n, "", []string{"run", "-d", "--name", "{}", testImage, "sh", "-c", "sleep 3; echo done; exit 7"}, ids)
	s.compareConcurrent(t, n, "", []string{"attach", "{}"})
	s.compare(t, n, "", []string{"attach", "{}"})
	s.compare(t, n, "", []string{"attach", "nosuch"})
}

// TestStopKillRestartWait covers the verbs that act on several
// containers and print their names.
func TestStopKillRestartWait(t *testing.T) {
	s := need(t)
	n := names{base: "skrw"}
	s.cleanup(t, n.d(), n.h())
	s.compare(t, n, "", []string{"run", "-d", "--name", "{}", testImage, "sh", "-c", "trap 'exit 3' USR1; while true; do sleep 0.1; done"}, ids)
	s.compare(t, n, "", []string{"restart", "-t", "0", "{}"}, ids)
	s.compare(t, n, "", []string{"kill", "-s", "USR1", "{}"}, ids)
	s.compare(t, n, "", []string{"wait", "{}"})
	s.compare(t, n, "", []string{"kill", "{}"}, ids)
	s.compare(t, n, "", []string{"start", "{}"}, ids)
	s.compare(t, n, "", []string{"kill", "--signal", "KILL", "{}", "nosuch"}, ids)
	s.compare(t, n, "", []string{"wait", "{}", "nosuch"})
	s.compare(t, n, "", []string{"stop", "{}", "nosuch"}, ids)
	s.compare(t, n, "", []string{"stop", "-s", "KILL", "{}"}, ids)
	s.compare(t, n, "", []string{"restart", "nosuch"})
	s.compare(t, n, "", []string{"kill", "-s"})
	s.compare(t, n, "", []string{"stop"})
}

// TestNoDaemon: with no daemon at the address, docker's message and
// statuses.
func TestNoDaemon(t *testing.T) {
	s := need(t)
	env := []string{"DOCKER_HOST=unix://" + s.tmp + "/nothing-here.sock"}
	for _, args := range [][]string{
		{"ps"}, {"run", "--rm", testImage}, {"logs", "x"}, {"pull", "x"}, {"inspect", "x"}, {"images"}, {"info", "--format", "{{.ID}}"},
	} {
		d := s.runEnv(s.docker, "", env, args...)
		h := s.runEnv(s.hako, "", env, args...)
		s.requireSame(t, names{}, args, d, h)
	}
}

// TestBinaryStdin: without a terminal, stdin is data. 200 KB holding
// ctrl-p ctrl-q (the default detach keys) many times reach the program
// whole through run -i and exec -i, and its output comes back.
func TestBinaryStdin(t *testing.T) {
	s := need(t)
	in := make([]byte, 200_000)
	for i := range in {
		in[i] = byte(i * 7)
	}
	for i := 100; i+1 < len(in); i += 4099 {
		in[i], in[i+1] = 0x10, 0x11
	}
	want := fmt.Sprintf("%x  -\n", md5.Sum(in))
	n := names{base: "binin"}
	s.cleanup(t, n.d(), n.h())
	for _, c := range []struct{ bin, name string }{{s.docker, n.d()}, {s.hako, n.h()}} {
		if r := s.run(c.bin, string(in), "run", "-i", "--rm", testImage, "md5sum"); r.code != 0 || r.out != want {
			t.Errorf("%s run -i md5sum: want %q, got %s", c.bin, want, r)
		}
		s.must(t, c.bin, "run", "-d", "--name", c.name, testImage, "sleep", "1000")
		if r := s.run(c.bin, string(in), "exec", "-i", c.name, "md5sum"); r.code != 0 || r.out != want {
			t.Errorf("%s exec -i md5sum: want %q, got %s", c.bin, want, r)
		}
	}
}

// TestExecDetachKeys: ctrl-p ctrl-q ends an `exec -it` session and the
// exec's shell keeps running in the container. Unlike run and attach, the
// docker CLI ends such an exec with status 1 and "read escape sequence"
// (checked against dockerd 20.10); hako's does the same.
func TestExecDetachKeys(t *testing.T) {
	s := need(t)
	n := names{base: "xdetach"}
	s.cleanup(t, n.d(), n.h())
	for _, c := range []struct{ bin, name string }{{s.docker, n.d()}, {s.hako, n.h()}} {
		s.must(t, c.bin, "run", "-d", "--name", c.name, testImage, "sleep", "1000")
		code, out := s.ptySession(t, c.bin, []string{"exec", "-it", c.name, "sh"}, "echo x$((2+3))y\r", "x5y", "\x10\x11")
		if code != 1 || !strings.Contains(out, "read escape sequence") {
			t.Fatalf("%s: exec detach exit %d, output %q; want 1 and \"read escape sequence\"", c.bin, code, out)
		}
		if top := s.must(t, s.docker, "top", c.name).out; !regexp.MustCompile(`(?m) sh$`).MatchString(top) {
			t.Errorf("%s: the exec'd shell is gone after the detach:\n%s", c.bin, top)
		}
	}
}

// TestUnreadStdin: a program that exits without reading its stdin (4 MB
// of it) ends the session with its own status and output, through run -i
// and exec -i. (hakod used to close such a connection with the client's
// input unread, and the kernel then reported ECONNRESET to the CLI, which
// failed with status 1.)
func TestUnreadStdin(t *testing.T) {
	s := need(t)
	in := strings.Repeat("0123456789abcdef", 4<<20/16)
	n := names{base: "unread"}
	s.cleanup(t, n.d(), n.h())
	script := "head -c 10 >/dev/null; echo done; exit 3"
	for _, c := range []struct{ bin, name string }{{s.docker, n.d()}, {s.hako, n.h()}} {
		if r := s.run(c.bin, in, "run", "-i", "--rm", testImage, "sh", "-c", script); r.code != 3 || r.out != "done\n" {
			t.Errorf("%s run -i, stdin unread: want status 3 and \"done\", got %s", c.bin, r)
		}
		s.must(t, c.bin, "run", "-d", "--name", c.name, testImage, "sleep", "1000")
		if r := s.run(c.bin, in, "exec", "-i", c.name, "sh", "-c", script); r.code != 3 || r.out != "done\n" {
			t.Errorf("%s exec -i, stdin unread: want status 3 and \"done\", got %s", c.bin, r)
		}
	}
}

// TestUserGroupsWorkdir: docker's rules for the process's groups and
// working directory. The primary group is one of the supplementary groups
// too (id: groups=...), for run and for exec -u; -w creates a missing
// directory (root's, 0755) and refuses a path through a file; a
// one-character --name is refused.
func TestUserGroupsWorkdir(t *testing.T) {
	s := need(t)
	n := names{base: "ugw"}
	s.cleanup(t, n.d(), n.h())
	for _, c := range []struct {
		args []string
		out  string
	}{
		{[]string{"run", "--rm", testImage, "id"}, "uid=0(root) gid=0(root) groups=0(root)\n"},
		{[]string{"run", "--rm", "-u", "nobody", testImage, "id"}, "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n"},
		{[]string{"run", "--rm", "-u", "1000:1000", "--group-add", "5", testImage, "id"}, "uid=1000 gid=1000 groups=5,1000\n"},
		{[]string{"run", "--rm", "-u", "1000", "-w", "/new/dir", testImage, "sh", "-c", "pwd; stat -c '%U %a' /new/dir"}, "/new/dir\nroot 755\n"},
	} {
		for _, bin := range []string{s.docker, s.hako} {
			if r := s.run(bin, "", c.args...); r.code != 0 || r.out != c.out {
				t.Errorf("%s %v: want %q, got %s", bin, c.args, c.out, r)
			}
		}
	}
	for _, c := range []struct{ bin, name string }{{s.docker, n.d()}, {s.hako, n.h()}} {
		s.must(t, c.bin, "run", "-d", "--name", c.name, testImage, "sleep", "1000")
		if r := s.run(c.bin, "", "exec", "-u", "1000:1000", c.name, "id"); r.code != 0 || r.out != "uid=1000 gid=1000 groups=1000\n" {
			t.Errorf("%s exec -u 1000:1000 id: %s", c.bin, r)
		}
	}
	for _, bin := range []string{s.docker, s.hako} {
		r := s.run(bin, "", "run", "--rm", "-w", "/etc/passwd", testImage, "pwd")
		if r.code != 125 || !strings.Contains(r.err, "Cannot mkdir: /etc/passwd is not a directory") {
			t.Errorf("%s run -w /etc/passwd: want 125 and \"Cannot mkdir: /etc/passwd is not a directory\", got %s", bin, r)
		}
		r = s.run(bin, "", "create", "--name", "g", testImage, "true")
		if r.code != 1 || !strings.Contains(r.err, "Invalid container name (g)") {
			t.Errorf("%s create --name g: want 1 and \"Invalid container name (g)\", got %s", bin, r)
		}
	}
}

// TestPausedMessages: dockerd's answers around pause: an exec into a
// paused container names it as the client did; unpause of a container
// that is not paused says so, running or not.
func TestPausedMessages(t *testing.T) {
	s := need(t)
	n := names{base: "pmsg"}
	s.cleanup(t, n.d(), n.h())
	for _, c := range []struct{ bin, name string }{{s.docker, n.d()}, {s.hako, n.h()}} {
		s.must(t, c.bin, "run", "-d", "--name", c.name, testImage, "sleep", "1000")
		if r := s.run(c.bin, "", "unpause", c.name); r.code != 1 || !strings.Contains(r.err, " is not paused") {
			t.Errorf("%s unpause (running): %s", c.bin, r)
		}
		s.must(t, c.bin, "pause", c.name)
		if r := s.run(c.bin, "", "exec", c.name, "true"); r.code != 1 || !strings.Contains(r.err, "Container "+c.name+" is paused, unpause the container before exec") {
			t.Errorf("%s exec (paused): %s", c.bin, r)
		}
		s.must(t, c.bin, "unpause", c.name)
		s.must(t, c.bin, "kill", c.name)
		if r := s.run(c.bin, "", "unpause", c.name); r.code != 1 || !strings.Contains(r.err, " is not paused") {
			t.Errorf("%s unpause (exited): %s", c.bin, r)
		}
	}
}

// TestEtcMtab: /etc/mtab is a symlink to /proc/mounts where the image has
// none, as docker's init layer makes it.
func TestEtcMtab(t *testing.T) {
	s := need(t)
	for _, bin := range []string{s.docker, s.hako} {
		if r := s.run(bin, "", "run", "--rm", testImage, "readlink", "/etc/mtab"); r.code != 0 || r.out != "/proc/mounts\n" {
			t.Errorf("%s run readlink /etc/mtab: %s", bin, r)
		}
	}
}

// TestCommitExpand: commit --change applies to the container's own
// config, as dockerd's does: ENV appends, $VAR expands from the
// container's environment (${X:-default} too), WORKDIR is relative to the
// one before.
func TestCommitExpand(t *testing.T) {
	s := need(t)
	n := names{base: "cexp"}
	s.cleanup(t, n.d(), n.h())
	for _, c := range []struct{ bin, name string }{{s.docker, n.d()}, {s.hako, n.h()}} {
		s.must(t, c.bin, "run", "--name", c.name, "-e", "A=1", "-w", "/w", testImage, "true")
		img := "clitest/" + c.name + ":1"
		t.Cleanup(func() { s.run(s.docker, "", "rmi", img) })
		s.must(t, c.bin, "commit", "-c", "ENV B=$A F=${NOPE:-dflt}", "-c", "ENV PATH=$PATH:/opt", "-c", "WORKDIR sub/$A", c.name, img)
		r := s.must(t, c.bin, "inspect", "-f", "{{json .Config.Env}} {{.Config.WorkingDir}}", img)
		if !strings.HasPrefix(r.out, `["A=1","PATH=/`) || !strings.Contains(r.out, `:/opt","B=1","F=dflt"] /w/sub/1`) {
			t.Errorf("%s: committed config %q", c.bin, r.out)
		}
	}
}

// TestLogDrivers: dockerd's log drivers and options as hakod has them:
// none keeps nothing (logs refuses), local reads like json-file, an
// unknown driver and an option a driver does not take are refused; the
// json-file entries carry the attributes --log-opt labels, env and tag
// ask for (logs --details shows them), and a tail that is not a count of
// lines means all of them.
func TestLogDrivers(t *testing.T) {
	s := need(t)
	n := names{base: "logdrv"}
	s.cleanup(t, n.d(), n.h(), n.d()+"2", n.h()+"2", n.d()+"3", n.h()+"3")
	for _, c := range []struct{ bin, name string }{{s.docker, n.d()}, {s.hako, n.h()}} {
		if r := s.run(c.bin, "", "run", "--name", c.name, "--log-driver", "none", testImage, "echo", "live"); r.code != 0 || r.out != "live\n" {
			t.Errorf("%s run --log-driver none: %s", c.bin, r)
		}
		if r := s.run(c.bin, "", "logs", c.name); r.code != 1 || !strings.Contains(r.err, "configured logging driver does not support reading") {
			t.Errorf("%s logs of a none container: %s", c.bin, r)
		}
		s.must(t, c.bin, "run", "--name", c.name+"2", "--log-driver", "local", testImage, "echo", "kept")
		if r := s.must(t, c.bin, "logs", c.name+"2"); r.out != "kept\n" {
			t.Errorf("%s logs of a local container: %s", c.bin, r)
		}
		s.must(t, c.bin, "run", "--name", c.name+"3", "-l", "a=1", "-l", "b=2", "-e", "E=x%y", "--log-opt", "labels=a",
			"--log-opt", "env=E", "--log-opt", "tag={{.Name}}", testImage, "sh", "-c", "echo one; echo two")
		if r := s.must(t, c.bin, "logs", "--details", c.name+"3"); r.out != "E=x%25y,a=1,tag="+c.name+"3 one\nE=x%25y,a=1,tag="+c.name+"3 two\n" {
			t.Errorf("%s logs --details: %q", c.bin, r.out)
		}
		if r := s.must(t, c.bin, "logs", "--tail", "-5", c.name+"3"); r.out != "one\ntwo\n" {
			t.Errorf("%s logs --tail -5: %q", c.bin, r.out)
		}
	}
	for _, bin := range []string{s.docker, s.hako} {
		if r := s.run(bin, "", "run", "--rm", "--log-driver", "nosuchdriver", testImage, "true"); r.code != 125 || !strings.Contains(r.err, `plugin "nosuchdriver" not found`) {
			t.Errorf("%s run --log-driver nosuchdriver: %s", bin, r)
		}
		if r := s.run(bin, "", "run", "--rm", "--log-driver", "local", "--log-opt", "labels=a", testImage, "true"); r.code != 125 || !strings.Contains(r.err, "unknown log opt 'labels' for log driver local") {
			t.Errorf("%s run --log-driver local --log-opt labels=a: %s", bin, r)
		}
	}
}

// TestEventsRenameAnswers: dockerd's answers that the CLIs only pass on:
// events carry the older API's status, id and from; since after until is
// refused; a stream that ends at --until starts with the events kept;
// rename's failures say "Error when allocating new name".
func TestEventsRenameAnswers(t *testing.T) {
	s := need(t)
	n := names{base: "evra"}
	s.cleanup(t, n.d(), n.h(), n.d()+"2", n.h()+"2")
	for _, c := range []struct{ bin, name string }{{s.docker, n.d()}, {s.hako, n.h()}} {
		s.must(t, c.bin, "run", "--name", c.name, testImage, "true")
		s.must(t, c.bin, "create", "--name", c.name+"2", testImage, "true")
		until := fmt.Sprint(time.Now().Add(time.Second).Unix())
		r := s.must(t, c.bin, "events", "--until", until, "--filter", "container="+c.name, "--format", "{{.Status}} {{.From}} {{.ID}}")
		id := strings.TrimSpace(s.must(t, s.docker, "inspect", "-f", "{{.Id}}", c.name).out)
		if !strings.Contains(r.out, "start "+testImage+" "+id+"\n") || !strings.Contains(r.out, "die "+testImage+" "+id+"\n") {
			t.Errorf("%s events --until (no --since): %q", c.bin, r.out)
		}
		if r := s.run(c.bin, "", "events", "--since", "2", "--until", "1"); r.code != 1 || !strings.Contains(r.err, "`since` time (2) cannot be after `until` time (1)") {
			t.Errorf("%s events --since 2 --until 1: %s", c.bin, r)
		}
		if r := s.run(c.bin, "", "rename", c.name, c.name+"2"); r.code != 1 ||
			!strings.Contains(r.err, `Error when allocating new name: Conflict. The container name "/`+c.name+`2" is already in use`) {
			t.Errorf("%s rename to a name in use: %s", c.bin, r)
		}
		if r := s.run(c.bin, "", "rename", c.name, "bad/name"); r.code != 1 ||
			!strings.Contains(r.err, "Error when allocating new name: Invalid container name (/bad/name)") {
			t.Errorf("%s rename to an invalid name: %s", c.bin, r)
		}
	}
}

// TestContainerSizes: inspect -s and ps -s report the writable layer's
// size (files, each inode once) and that plus the image's, as dockerd does.
func TestContainerSizes(t *testing.T) {
	s := need(t)
	n := names{base: "sizes"}
	s.cleanup(t, n.d(), n.h())
	for _, c := range []struct{ bin, name string }{{s.docker, n.d()}, {s.hako, n.h()}} {
		s.must(t, c.bin, "run", "--name", c.name, testImage, "sh", "-c", "head -c 1000 /dev/zero >/f; mkdir /d; head -c 24 /dev/zero >/d/g")
		r := s.must(t, c.bin, "inspect", "-s", "-f", "{{.SizeRw}} {{.SizeRootFs}}", c.name)
		var rw, rootfs int64
		if _, err := fmt.Sscan(r.out, &rw, &rootfs); err != nil || rw != 1024 || rootfs < 1<<20+rw {
			t.Errorf("%s inspect -s: %q", c.bin, r.out)
		}
		if r := s.must(t, c.bin, "ps", "-a", "-s", "--filter", "name="+c.name, "--format", "{{.Size}}"); !strings.HasPrefix(r.out, "1.02kB (virtual ") {
			t.Errorf("%s ps -s: %q", c.bin, r.out)
		}
		if r := s.must(t, c.bin, "inspect", "-f", "{{.SizeRw}}", c.name); r.out != "<nil>\n" {
			t.Errorf("%s inspect without -s: %q", c.bin, r.out)
		}
	}
}
