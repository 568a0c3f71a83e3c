package container

import (
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/hako-project/hako/cli/command"
	"github.com/spf13/cobra"
)

func TestStartErrorStatus(t *testing.T) {
	cmd := &cobra.Command{Use: "run"}
	root := &cobra.Command{Use: "hako"}
	root.AddCommand(cmd)
	for msg, code := range map[string]int{
		`exec: "nosuch": executable file not found in $PATH: unknown`: 127,
		`open /x: no such file or directory`:                          127,
		`exec: "/etc/passwd": permission denied: unknown`:             126,
		`exec: "/": is a directory`:                                   126,
		`Conflict. The container name "/x" is already in use`:         125,
	} {
		err := startError(cmd, errors.New(msg))
		var se command.StatusError
		if !errors.As(err, &se) || se.StatusCode != code || !strings.HasPrefix(se.Error(), "hako: "+msg) ||
			!strings.HasSuffix(se.Error(), "Run 'hako run --help' for more information") {
			t.Errorf("%q: %#v, want status %d", msg, err, code)
		}
	}
}

func TestSignalName(t *testing.T) {
	if signalName(syscall.SIGTERM) != "TERM" || signalName(syscall.SIGUSR1) != "USR1" || signalName(syscall.Signal(40)) != "40" {
		t.Fatalf("%s %s %s", signalName(syscall.SIGTERM), signalName(syscall.SIGUSR1), signalName(syscall.Signal(40)))
	}
}

func TestParsePlatformAndNames(t *testing.T) {
	p, err := parsePlatform("linux/arm64/v8")
	if err != nil || p.OS != "linux" || p.Architecture != "arm64" || p.Variant != "v8" {
		t.Fatalf("%+v %v", p, err)
	}
	if p, err := parsePlatform(""); p != nil || err != nil {
		t.Fatal("empty platform means none")
	}
	for _, bad := range []string{"/amd64", "a/b/c/d"} {
		if _, err := parsePlatform(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if familiarWithTag("docker.io/library/busybox") != "busybox:latest" || familiarWithTag("127.0.0.1:5000/a/b:t") != "127.0.0.1:5000/a/b:t" {
		t.Fatal("familiar names")
	}
	if !imageNotFound(errors.New("No such image: x:latest")) || imageNotFound(errors.New("network foo not found")) {
		t.Fatal("imageNotFound")
	}
}

func TestPsFormatAndFilters(t *testing.T) {
	if psFormat("", true, false) != "{{.ID}}" || psFormat("{{.Names}}", true, false) != "{{.ID}}" {
		t.Fatal("quiet wins")
	}
	if !psFormat("", false, true).Contains("{{.Size}}") || psFormat("table", false, false) != defaultPsFormat {
		t.Fatal("table formats")
	}
	if _, err := validateFilter("novalue"); err == nil {
		t.Fatal("filter without = accepted")
	}
	f := toFilters([]string{"name=a", "Name=b", "status=running"})
	if !f["name"]["a"] || !f["name"]["b"] || !f["status"]["running"] {
		t.Fatalf("filters %v", f)
	}
}
