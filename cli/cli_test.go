package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hako-project/hako/cli/command"
	"github.com/hako-project/hako/trace"
	"github.com/spf13/cobra"
)

// runMain runs Main with args and the environment env.
func runMain(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(Env{
		Args: args, Stdin: io.NopCloser(strings.NewReader("")), Stdout: &out, Stderr: &errb,
		Getenv: func(k string) string { return env[k] }, Version: "test",
	})
	return code, out.String(), errb.String()
}

// TestExitStatusWithoutDaemon: what fails before any request.
func TestExitStatusWithoutDaemon(t *testing.T) {
	noDaemon := map[string]string{"HAKO_HOST": "unix://" + filepath.Join(t.TempDir(), "none.sock")}
	for _, c := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"--version"}, 0, "hako version test\n", ""},
		{[]string{"nosuchcommand"}, 1, "", "hako: unknown command: hako nosuchcommand\n\nRun 'hako --help' for more information\n"},
		{[]string{"ps", "--foo"}, 125, "", "unknown flag: --foo\n\nUsage:  hako ps [OPTIONS]\n\nRun 'hako ps --help' for more information\n"},
		{[]string{"run", "-m", "x", "img"}, 125, "", `invalid argument "x" for "-m, --memory" flag: invalid size: 'x'`},
		{[]string{"stop"}, 1, "", "hako: 'hako stop' requires at least 1 argument"},
		{[]string{"logs", "a", "b"}, 1, "", "hako: 'hako logs' requires 1 argument"},
		{[]string{"-l", "loud", "ps"}, 125, "", "unable to parse logging level: loud"},
		{[]string{"ps"}, 1, "", "Cannot connect to the Docker daemon at unix://"},
		{[]string{"-H", "bogus", "ps"}, 1, "", `invalid daemon address "bogus"`},
		{[]string{"container", "nosuch"}, 1, "", "hako: unknown command: hako container nosuch"},
		{[]string{"--trace", "ps"}, 1, "", "cli.api  method=GET path=/v1.41/containers/json  ERROR: "},
		{[]string{"--trace", "run", "--pull", "sometimes", "img"}, 125, "", "trace: the command did not reach the daemon"},
	} {
		code, out, errs := runMain(t, noDaemon, c.args...)
		if code != c.code || out != c.stdout && c.stdout != "" || !strings.Contains(errs, c.stderr) {
			t.Errorf("%v: exit %d stdout %q stderr %q; want exit %d stdout %q stderr containing %q", c.args, code, out, errs, c.code, c.stdout, c.stderr)
		}
	}
	code, out, _ := runMain(t, noDaemon)
	if code != 0 || !strings.Contains(out, "Usage:") || !strings.Contains(out, "run") {
		t.Fatalf("no arguments: help expected, got %d %q", code, out)
	}
	code, out, _ = runMain(t, noDaemon, "container", "ls", "--help")
	if code != 0 || !strings.Contains(out, "hako container ls") || !strings.Contains(out, "ps") {
		t.Fatalf("container ls --help: %d %q", code, out)
	}
}

// TestTraceMergesDaemonSpans: --trace sends a traceparent, fetches the
// daemon's spans of that trace and prints one tree with both.
func TestTraceMergesDaemonSpans(t *testing.T) {
	var parent string
	mux := http.NewServeMux()
	mux.HandleFunc("/_ping", func(w http.ResponseWriter, r *http.Request) { w.Header().Set("Api-Version", "1.41") })
	mux.HandleFunc("/v1.41/containers/json", func(w http.ResponseWriter, r *http.Request) {
		parent = r.Header.Get("traceparent")
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`[{"Id":"0123456789abcdef","Names":["/web"],"Image":"bb","Command":"sleep 1","Created":1,"State":"running","Status":"Up 1 second"}]`))
	})
	mux.HandleFunc("/v1.41/hako/traces/", func(w http.ResponseWriter, r *http.Request) {
		tid, sid, err := trace.ParseTraceparent(parent)
		if err != nil || !strings.HasSuffix(r.URL.Path, "/"+tid) {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode([]trace.SpanData{
			{TraceID: tid, SpanID: "00000000000000a1", ParentID: sid, Name: "api.containers.list", Start: 1, End: 2},
			{TraceID: tid, SpanID: "00000000000000a2", ParentID: "00000000000000a1", Name: "engine.list", Start: 1, End: 2},
		})
	})
	sock := filepath.Join(t.TempDir(), "d.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	defer srv.Close()

	code, out, errs := runMain(t, map[string]string{"DOCKER_HOST": "unix://" + sock}, "ps", "--trace", "--format", "{{.Names}} {{.ID}}")
	if code != 0 || out != "web 0123456789ab\n" {
		t.Fatalf("ps: %d %q %q", code, out, errs)
	}
	for _, want := range []string{"cli.run  command=ps", "cli.api  method=GET path=/v1.41/containers/json", "api.containers.list", "engine.list"} {
		if !strings.Contains(errs, want) {
			t.Errorf("trace lacks %q:\n%s", want, errs)
		}
	}
	if strings.Contains(errs, "does not serve") {
		t.Errorf("the daemon serves spans:\n%s", errs)
	}
}

// TestPartialTreeAsWhole: a command line run with the part of the tree
// newRootCommandFor builds for it exits, prints and fails as it does with
// the whole tree.
func TestPartialTreeAsWhole(t *testing.T) {
	noDaemon := map[string]string{"HAKO_HOST": "unix://" + filepath.Join(t.TempDir(), "none.sock")}
	whole := func(c *command.Cli, g *globalFlags, _ []string) *cobra.Command { return NewRootCommand(c, g) }
	run1 := func(tree func(*command.Cli, *globalFlags, []string) *cobra.Command, args []string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(Env{
			// A copy: cobra's __complete writes to the arguments.
			Args:  append([]string(nil), args...),
			Stdin: io.NopCloser(strings.NewReader("")), Stdout: &out, Stderr: &errb,
			Getenv: func(k string) string { return noDaemon[k] }, Version: "test",
		}, tree)
		return code, out.String(), errb.String()
	}
	for _, args := range [][]string{
		nil, {"--version"}, {"-v"}, {"-v", "--"}, {"-v", "--", "ps"}, {"-v", "-l", "loud"}, {"-v", "--help"}, {"--version=false"},
		{"-v", "-H", "bogus"}, {"-Dv"}, {"-v", "nosuch"}, {"-v", "-x"}, {"-v", "ps"}, {"--version", "ps"}, {"--help"}, {"-h"}, {"--help", "ps"},
		{"help"}, {"help", "ps"}, {"ps"}, {"ps", "--help"}, {"ps", "-h"}, {"ps", "run"}, {"ps", "--foo"},
		{"-D", "ps", "-q"}, {"--debug", "ps"}, {"-l", "debug", "ps"}, {"-l", "ps", "run"}, {"--log-level", "debug", "ps"},
		{"--log-level=debug", "ps"}, {"-l=debug", "ps"}, {"-l", "loud", "ps"}, {"-H", "bogus", "ps"}, {"--host", "bogus", "ps"},
		{"--host=bogus", "ps"}, {"--config", "/nonexistent", "ps"}, {"-Dv"}, {"-Dl", "debug", "ps"}, {"-vD", "ps"},
		{"--", "ps"}, {"-", "ps"}, {"-x", "ps"}, {"--bogus", "ps"}, {"--bogus=1", "ps"}, {"PS"}, {"pss"}, {"nosuchcommand"},
		{"--trace", "false", "ps"}, {"--trace=false", "ps"}, {"-H", "bogus", "--trace=false", "ps"}, {"-H", "--trace", "ps"},
		{"container"}, {"container", "--help"}, {"container", "ls", "--help"}, {"container", "ps", "-a"}, {"container", "nosuch"},
		{"image", "ls", "-q"}, {"image", "rm"}, {"volume"}, {"volume", "list", "--help"}, {"network", "ls", "--help"},
		{"system", "df", "--help"}, {"run", "--help"}, {"run", "-m", "x", "img"}, {"run"}, {"exec", "--help"}, {"stop"},
		{"logs", "a", "b"}, {"inspect"}, {"port"}, {"version", "--help"}, {"completion"}, {"__complete", "p"},
		{"__complete", "container", ""},
		{"history", "--help"}, {"image", "history", "-H=false"}, {"events", "x"}, {"container", "inspect"}, {"image", "inspect", "--help"},
	} {
		wantCode, wantOut, wantErr := run1(whole, args)
		code, out, errs := run1(newRootCommandFor, args)
		if code != wantCode || out != wantOut || errs != wantErr {
			t.Errorf("%q: partial tree: exit %d stdout %q stderr %q; whole tree: exit %d stdout %q stderr %q",
				args, code, out, errs, wantCode, wantOut, wantErr)
		}
	}
}

// TestTopLevelNames: each command in topLevel is built under the name it
// is listed by, and every name is listed once.
func TestTopLevelNames(t *testing.T) {
	c := &command.Cli{}
	seen := map[string]bool{}
	for _, tl := range topLevel {
		cmd := tl.build(c)
		if cmd.Name() != tl.name || len(cmd.Aliases) != 0 {
			t.Errorf("topLevel lists %q; it builds %q with aliases %q", tl.name, cmd.Name(), cmd.Aliases)
		}
		if seen[tl.name] {
			t.Errorf("topLevel lists %q twice", tl.name)
		}
		seen[tl.name] = true
	}
}

// TestCommandName: where the global flags end and the command begins.
func TestCommandName(t *testing.T) {
	for _, c := range []struct {
		args []string
		name string
		ok   bool
	}{
		{nil, "", false},
		{[]string{"ps", "-a"}, "ps", true},
		{[]string{"-H", "unix:///x.sock", "run", "img"}, "run", true},
		{[]string{"--host", "ps", "run"}, "run", true},
		{[]string{"-l", "debug", "--trace", "ps"}, "ps", true},
		{[]string{"-Dl=debug", "ps"}, "ps", true},
		{[]string{"--log-level=debug", "ps"}, "ps", true},
		{[]string{"-v"}, "", false},
		{[]string{"--help", "ps"}, "", false}, // cobra adds --help later: whole tree
		{[]string{"-x", "ps"}, "", false},
		{[]string{"--", "ps"}, "", false},
		{[]string{"-H"}, "", false},
	} {
		name, ok := commandName(globalFlagSet(&globalFlags{}), c.args)
		if name != c.name || ok != c.ok {
			t.Errorf("commandName(%q) = %q, %v; want %q, %v", c.args, name, ok, c.name, c.ok)
		}
	}
}
