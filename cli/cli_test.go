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

	"github.com/hako-project/hako/trace"
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
		{[]string{"--trace", "ps"}, 1, "", "cli.api  method=HEAD path=/_ping  ERROR: "},
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
	mux.HandleFunc("/_ping", func(w http.ResponseWriter, r *http.Request) { w.Header().Set("Api-Version", "1.47") })
	mux.HandleFunc("/v1.47/containers/json", func(w http.ResponseWriter, r *http.Request) {
		parent = r.Header.Get("traceparent")
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`[{"Id":"0123456789abcdef","Names":["/web"],"Image":"bb","Command":"sleep 1","Created":1,"State":"running","Status":"Up 1 second"}]`))
	})
	mux.HandleFunc("/v1.47/hako/traces/", func(w http.ResponseWriter, r *http.Request) {
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
	for _, want := range []string{"cli.run  command=ps", "cli.api  method=GET path=/v1.47/containers/json", "api.containers.list", "engine.list"} {
		if !strings.Contains(errs, want) {
			t.Errorf("trace lacks %q:\n%s", want, errs)
		}
	}
	if strings.Contains(errs, "does not serve") {
		t.Errorf("the daemon serves spans:\n%s", errs)
	}
}
