package runtime

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hako-project/hako/shim/reaper"
	"github.com/hako-project/hako/trace"
)

// The tests share one reaper: the subreaper bit is per process.
var shared *reaper.Reaper

// fake returns a Runtime whose binary is a shell script that records its
// arguments and environment in dir and then runs body.
func fake(t *testing.T, body string) (*Runtime, string) {
	t.Helper()
	if shared == nil {
		r, err := reaper.New()
		if err != nil {
			t.Fatal(err)
		}
		shared = r
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "fakert")
	script := "#!/bin/sh\nprintf '%s\\n' \"$@\" > " + dir + "/args\nenv > " + dir + "/env\n" +
		"log=''; prev=''; for a in \"$@\"; do [ \"$prev\" = --log ] && log=$a; prev=$a; done\n" + body + "\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o700); err != nil {
		t.Fatal(err)
	}
	return &Runtime{Path: bin, Root: "/run/x", Args: []string{"--systemd-cgroup"}, Env: []string{"PATH=/bin:/usr/bin", "A=b"},
		ID: "c1", Dir: work, Spawn: shared.Start}, dir
}

func lines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func TestCommandLines(t *testing.T) {
	r, dir := fake(t, "exit 0")
	ctx := context.Background()
	check := func(want ...string) {
		t.Helper()
		got := lines(t, dir+"/args")
		// --root R --systemd-cgroup --log FILE --log-format json VERB ...
		if len(got) < 7 || got[0] != "--root" || got[1] != "/run/x" || got[2] != "--systemd-cgroup" || got[3] != "--log" || got[5] != "--log-format" || got[6] != "json" {
			t.Fatalf("global arguments %q", got)
		}
		if strings.Join(got[7:], " ") != strings.Join(want, " ") {
			t.Errorf("arguments %q, want %q", got[7:], want)
		}
	}
	if err := r.Create(ctx, CreateOptions{Bundle: "/b", PidFile: "/p", ConsoleSocket: "/s"}); err != nil {
		t.Fatal(err)
	}
	check("create", "--bundle", "/b", "--pid-file", "/p", "--console-socket", "/s", "c1")
	_ = r.Start(ctx)
	check("start", "c1")
	_ = r.Exec(ctx, ExecOptions{ProcessFile: "/pf", PidFile: "/pp"})
	check("exec", "--process", "/pf", "--pid-file", "/pp", "--detach", "c1")
	_ = r.Kill(ctx, 9, true)
	check("kill", "--all", "c1", "9")
	_ = r.Kill(ctx, 15, false)
	check("kill", "c1", "15")
	_ = r.Update(ctx, "/r.json")
	check("update", "--resources", "/r.json", "c1")
	_ = r.Delete(ctx, true)
	check("delete", "--force", "c1")
	_ = r.Pause(ctx)
	check("pause", "c1")
	_ = r.Resume(ctx)
	check("resume", "c1")
	env := lines(t, dir+"/env")
	if !contains(env, "A=b") || contains(env, trace.EnvParent) {
		t.Errorf("environment %q", env)
	}
	if ents, _ := os.ReadDir(r.Dir); len(ents) != 0 {
		t.Errorf("per-command log files left: %v", ents)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if strings.HasPrefix(x, s) {
			return true
		}
	}
	return false
}

func TestErrorFromJSONLog(t *testing.T) {
	r, _ := fake(t, `echo '{"level":"warning","msg":"meh","time":"x"}' >> $log
echo '{"level":"error","msg":"first problem","time":"x"}' >> $log
echo '{"level":"error","msg":"process.cwd: not absolute","time":"x"}' >> $log
echo 'runc create failed: process.cwd: not absolute' >&2
exit 1`)
	err := r.Start(context.Background())
	var re *Error
	if !errors.As(err, &re) || re.Msg != "process.cwd: not absolute" || re.Verb != "start" {
		t.Fatalf("error %#v", err)
	}
	if err.Error() != "fakert start c1: process.cwd: not absolute" {
		t.Errorf("message %q", err.Error())
	}
}

func TestErrorFromStderr(t *testing.T) {
	r, _ := fake(t, "echo 'container \"c1\" does not exist' >&2; exit 1")
	err := r.Delete(context.Background(), false)
	if err == nil || !strings.Contains(err.Error(), `container "c1" does not exist`) || !IsNotExist(err) {
		t.Fatalf("error %v", err)
	}
}

func TestErrorExitStatus(t *testing.T) {
	r, _ := fake(t, "exit 3")
	if err := r.Pause(context.Background()); err == nil || !strings.HasSuffix(err.Error(), "exit status 3") {
		t.Fatalf("error %v", err)
	}
	if IsNotExist(errors.New("does not exist")) {
		t.Error("IsNotExist of a non-runtime error")
	}
}

func TestTimeoutKills(t *testing.T) {
	r, _ := fake(t, "exec sleep 100")
	r.Timeout = 200 * time.Millisecond
	start := time.Now()
	err := r.Start(context.Background())
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("hanging runtime: %v after %v", err, time.Since(start))
	}
}

func TestTraceEnv(t *testing.T) {
	r, dir := fake(t, "exit 0")
	tracer, err := trace.New("", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, span := trace.Start(trace.WithTracer(context.Background(), tracer), "caller")
	ctx = WithTraceFile(ctx, "/tmp/trace.jsonl")
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	span.End(nil)
	env := lines(t, dir+"/env")
	var runtimeSpan trace.SpanData
	for _, s := range tracer.Spans() {
		if s.Name == "shim.runtime.start" {
			runtimeSpan = s
		}
	}
	if runtimeSpan.ParentID != span.ID() {
		t.Fatalf("shim.runtime.start span %+v, want a child of %s", runtimeSpan, span.ID())
	}
	want := trace.EnvParent + "=00-" + runtimeSpan.TraceID + "-" + runtimeSpan.SpanID + "-01"
	if !contains(env, want) || !contains(env, trace.EnvFile+"=/tmp/trace.jsonl") {
		t.Errorf("environment %q lacks %s and the trace file", env, want)
	}
}

func TestEnv(t *testing.T) {
	if env := Env([]string{"A=1"}); len(env) != 3 || !strings.HasPrefix(env[1], "PATH=") || env[2] != "GOMAXPROCS=1" {
		t.Errorf("PATH and GOMAXPROCS not added: %q", env)
	}
	if env := Env([]string{"PATH=/x", "B=2", "GOMAXPROCS=4"}); len(env) != 3 || env[0] != "PATH=/x" || env[2] != "GOMAXPROCS=4" {
		t.Errorf("given PATH or GOMAXPROCS not kept: %q", env)
	}
}
