package cli_test

import (
	"bytes"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pause, unpause, rename, events, history and the typed inspects
// (container inspect, image inspect), docker's CLI and hako's side by
// side.

var (
	reEventTime = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d)`)
	reJSONTime  = regexp.MustCompile(`"(time|timeNano)":\d+`)
)

// eventTimes hides the times of events (each CLI's objects have their
// own).
func eventTimes(s string) string {
	s = reEventTime.ReplaceAllString(s, "<time>")
	return reJSONTime.ReplaceAllString(s, `"$1":<n>`)
}

// reStamp is an RFC 3339 time to the second, as history -H=false prints.
var reStamp = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)`)

// stamps hides those times.
func stamps(s string) string { return reStamp.ReplaceAllString(s, "<stamp>") }

// apiTime is t as the API's "SECONDS.NANOSECONDS" (for --since, --until).
func apiTime(t time.Time) string { return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond()) }

// TestPauseUnpause: pause and unpause, one and several containers, with
// the daemon's errors for a missing container, a paused one and one that
// is not paused.
func TestPauseUnpause(t *testing.T) {
	s := need(t)
	n := names{base: "pause"}
	s.cleanup(t, n.d(), n.h())
	s.compare(t, n, "", []string{"run", "-d", "--name", "{}", testImage, "sleep", "600"}, ids)
	s.compare(t, n, "", []string{"pause", "{}"})
	s.compare(t, n, "", []string{"container", "inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "{}"})
	s.compare(t, n, "", []string{"pause", "{}"}, ids)
	s.compare(t, n, "", []string{"unpause", "nosuch", "{}"})
	s.compare(t, n, "", []string{"unpause", "{}"}, ids)
	s.compare(t, n, "", []string{"container", "pause", "{}", "nosuch"})
	s.compare(t, n, "", []string{"container", "unpause", "{}"})
	s.compare(t, n, "", []string{"container", "inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "{}"})
	s.compare(t, n, "", []string{"pause"})
	s.compare(t, n, "", []string{"container", "unpause"})
	s.compare(t, n, "", []string{"pause", "--bogus", "{}"})
}

// TestRename: rename under both names, and docker's errors: a name in
// use, the same name, an empty one, a missing container.
func TestRename(t *testing.T) {
	s := need(t)
	n := names{base: "rename"}
	s.cleanup(t, n.d(), n.h(), n.d()+"-new", n.h()+"-new", n.d()+"-other", n.h()+"-other")
	s.compare(t, n, "", []string{"run", "-d", "--name", "{}", testImage, "sleep", "600"}, ids)
	s.compare(t, n, "", []string{"create", "--name", "{}-other", testImage}, ids)
	s.compare(t, n, "", []string{"rename", "{}", "{}-new"})
	s.compare(t, n, "", []string{"container", "inspect", "-f", "{{.Name}}", "{}-new"})
	s.compare(t, n, "", []string{"inspect", "{}"})
	s.compare(t, n, "", []string{"rename", "{}-new", "{}-other"}, ids)
	s.compare(t, n, "", []string{"rename", "{}-new", "{}-new"})
	s.compare(t, n, "", []string{"rename", "{}-new", " "})
	s.compare(t, n, "", []string{"rename", "{}-new", "bad/name"})
	s.compare(t, n, "", []string{"rename", "nosuch", "{}-x"})
	s.compare(t, n, "", []string{"rename", "{}-new"})
	s.compare(t, n, "", []string{"container", "rename", "{}-new", "{}"})
	s.compare(t, n, "", []string{"ps", "-a", "--filter", "name={}", "--format", "{{.Names}} {{.State}}"})
}

// TestEvents: a container's life, read back with --since and --until
// (which ends the stream) in docker's line format, filtered, and with
// templates; the errors of bad flags; ^C ends a stream with status 130.
func TestEvents(t *testing.T) {
	s := need(t)
	n := names{base: "events"}
	s.cleanup(t, n.d(), n.h(), n.d()+"-r", n.h()+"-r")
	since := time.Now()
	s.compare(t, n, "", []string{"run", "-d", "--name", "{}", testImage, "sleep", "600"}, ids)
	s.compare(t, n, "", []string{"pause", "{}"})
	s.compare(t, n, "", []string{"unpause", "{}"})
	s.compare(t, n, "", []string{"rename", "{}", "{}-r"})
	s.compare(t, n, "", []string{"rename", "{}-r", "{}"})
	s.compare(t, n, "", []string{"kill", "{}"})
	s.compare(t, n, "", []string{"wait", "{}"})
	time.Sleep(100 * time.Millisecond)
	until := time.Now()
	window := []string{"--since", apiTime(since), "--until", apiTime(until)}
	ev := func(args ...string) []string {
		return append(append([]string{"events"}, window...), args...)
	}
	d, _ := s.compare(t, n, "", ev("-f", "container={}", "-f", "type=container"), ids, eventTimes)
	for _, a := range []string{"create", "start", "pause", "unpause", "rename", "kill", "die"} {
		if !strings.Contains(d.out, " container "+a+" ") {
			t.Errorf("docker events: no %s event in\n%s", a, d.out)
		}
	}
	s.compare(t, n, "", ev("--filter", "container={}", "--filter", "event=pause", "--filter", "event=unpause"), ids, eventTimes)
	s.compare(t, n, "", ev("-f", "container={}", "-f", "event=die", "--format", "{{json .}}"), ids, eventTimes)
	s.compare(t, n, "", ev("-f", "container={}", "-f", "event=kill", "--format", "json"), ids, eventTimes)
	s.compare(t, n, "", ev("-f", "container={}", "-f", "type=container", "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}"))
	s.compare(t, n, "", append([]string{"system"}, ev("-f", "container={}", "-f", "event=start", "--format", "{{.Action}} {{.Scope}}")...))
	// A duration, an RFC 3339 time and Unix seconds as --since; nothing
	// matches the filter, and --until in the past ends the stream.
	for _, v := range []string{"10m", since.UTC().Format(time.RFC3339), fmt.Sprint(since.Unix())} {
		s.compare(t, n, "", []string{"events", "--since", v, "--until", apiTime(until), "-f", "container=nosuch"})
	}
	s.compare(t, n, "", []string{"events", "--since", "foo"})
	s.compare(t, n, "", []string{"events", "--until", "2020-13-01"})
	s.compare(t, n, "", []string{"events", "--format", "{{.Bogus}}"})
	s.compare(t, n, "", []string{"events", "--format", "{{.Action"})
	s.compare(t, n, "", []string{"events", "-f", "foo"})
	s.compare(t, n, "", []string{"events", "extra"})
	s.compare(t, n, "", []string{"events", "--since", "2", "--until", "1"})

	// ^C: docker exits 130 and prints nothing.
	interrupt := func(bin string) result {
		cmd := exec.Command(bin, "events", "-f", "container=nosuch")
		cmd.Env = s.cmdEnv()
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
		return result{out: out.String(), err: errb.String(), code: cmd.ProcessState.ExitCode()}
	}
	d, h := interrupt(s.docker), interrupt(s.hako)
	s.requireSame(t, names{}, []string{"events", "(^C)"}, d, h)
	if d.code != 130 {
		t.Errorf("docker events, ^C: %s", d)
	}
}

// TestHistory: an image's history in docker's table, its flags and
// formats, for the test image and for one committed from a container.
func TestHistory(t *testing.T) {
	s := need(t)
	n := names{base: "history"}
	s.cleanup(t, n.d(), n.h())
	t.Cleanup(func() { s.run(s.docker, "", "rmi", "-f", "clitest/"+n.d(), "clitest/"+n.h()) })
	for _, img := range []string{testImage, "clitest/{}"} {
		if img != testImage {
			s.compare(t, n, "", []string{"run", "--name", "{}", testImage, "sh", "-c", "echo hi > /hello"})
			s.compare(t, n, "", []string{"commit", "-m", "a\tmessage", "-c", "CMD [\"sh\"]", "{}", img}, ids)
		}
		if d, _ := s.compare(t, n, "", []string{"history", img}, ids, times); !strings.HasPrefix(d.out, "IMAGE ") || strings.Count(d.out, "\n") < 2 {
			t.Errorf("docker history %s: %s", img, d)
		}
		s.compare(t, n, "", []string{"history", "--no-trunc", img}, ids, times)
		s.compare(t, n, "", []string{"history", "-q", img}, ids)
		s.compare(t, n, "", []string{"history", "-q", "--no-trunc", img}, ids)
		// Each CLI commits its own image: their times may be a second apart.
		s.compare(t, n, "", []string{"history", "-H=false", img}, ids, times, stamps)
		s.compare(t, n, "", []string{"image", "history", "--human=false", "--format", "{{.ID}}|{{.CreatedAt}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}", img}, ids, stamps)
		s.compare(t, n, "", []string{"history", "--format", "table {{.ID}}\t{{.Size}}\t{{.Comment}}", img}, ids, times)
		s.compare(t, n, "", []string{"history", "--format", "json", img}, ids, times, stamps)
		s.compare(t, n, "", []string{"history", "-q", "--format", "{{.CreatedBy}}", img})
	}
	s.compare(t, n, "", []string{"history", "--format", "{{.Bogus}}", testImage})
	s.compare(t, n, "", []string{"history", "--format", "{{.ID", testImage})
	s.compare(t, n, "", []string{"history", "nosuch"})
	s.compare(t, n, "", []string{"history"})
	s.compare(t, n, "", []string{"history", "--host", "x", testImage})
}

// TestTypedInspect: container inspect and image inspect, their formats,
// and the errors for an object of the other type or none.
func TestTypedInspect(t *testing.T) {
	s := need(t)
	n := names{base: "tinspect"}
	s.cleanup(t, n.d(), n.h())
	s.compare(t, n, "", []string{"run", "-d", "--name", "{}", testImage, "sleep", "600"}, ids)
	s.compare(t, n, "", []string{"container", "inspect", "-f", "{{.Name}} {{.State.Status}} {{.Config.Image}} {{.Config.Cmd}}", "{}"})
	s.compare(t, n, "", []string{"container", "inspect", "--format", "{{.Name}}", "{}", "nosuch"})
	s.compare(t, n, "", []string{"container", "inspect", "-s", "-f", "{{if .SizeRootFs}}sized{{end}}", "{}"})
	s.compare(t, n, "", []string{"container", "inspect", "-f", "{{if .SizeRootFs}}sized{{end}}", "{}"})
	s.compare(t, n, "", []string{"container", "inspect", "-f", "{{json .Config.Labels}}", "{}"})
	s.compare(t, n, "", []string{"container", "inspect", "-f", "{{.Bogus", "{}"})
	s.compare(t, n, "", []string{"container", "inspect", testImage})
	s.compare(t, n, "", []string{"container", "inspect"})
	s.compare(t, n, "", []string{"image", "inspect", "-f", "{{.Config.Cmd}} {{.Config.Env}} {{.Os}} {{.Architecture}}", testImage})
	s.compare(t, n, "", []string{"image", "inspect", "--format", "json", testImage})
	s.compare(t, n, "", []string{"image", "inspect", "-f", "{{.Bogus}}", testImage})
	s.compare(t, n, "", []string{"image", "inspect", "-f", "{{.Os}}", testImage, "nosuch"})
	s.compare(t, n, "", []string{"image", "inspect", "{}"})
	s.compare(t, n, "", []string{"image", "inspect", "-s", testImage})
	s.compare(t, n, "", []string{"inspect", "--type", "container", testImage})
	s.compare(t, n, "", []string{"inspect", "--type", "image", "{}"})
}
