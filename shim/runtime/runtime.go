// Package runtime drives one container through an OCI runtime binary with
// runc's command line (hako-runtime, runc, crun, or any other), the way
// containerd's shim does: one process per verb, errors read from the last
// "level":"error" line of a JSON --log file, the caller's trace handed on
// in HAKO_TRACEPARENT and HAKO_TRACE_FILE.
//
// It does not reap: the shim's reaper starts each command (Spawn) and
// reports its exit, because the shim is a subreaper that waits for any
// child and os/exec's Wait would race with it.
package runtime

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/shim/reaper"
	"github.com/hako-project/hako/trace"
)

// Runtime is one container's OCI runtime.
type Runtime struct {
	// Path is the runtime binary.
	Path string
	// Root is its --root ("" leaves the runtime's default).
	Root string
	// Args are extra global arguments, before the verb
	// (e.g. --systemd-cgroup).
	Args []string
	// Env is the runtime's whole environment.
	Env []string
	// ID is the container's ID.
	ID string
	// Dir is a private directory for the per-command log files.
	Dir string
	// Spawn starts a command and returns its pid and its exit
	// (reaper.Reaper.Start).
	Spawn func(*exec.Cmd) (int, <-chan reaper.Exit, error)
	// Timeout, if set, kills a command that runs longer: a runtime that
	// hangs must not hang the shim, nor hold the runtime's lock on the
	// container so that even delete waits forever.
	Timeout time.Duration

	seq     atomic.Uint64
	standby atomic.Pointer[Standby]
}

// UseStandby gives r a runtime process started ahead of need for its first
// command, if that is create or run and s fits (Standby); r lets it go
// otherwise.
func (r *Runtime) UseStandby(s *Standby) {
	if old := r.standby.Swap(s); old != nil {
		old.Close()
	}
}

// IO is the standard I/O a command gets; nil means /dev/null, except that
// a nil Stderr is captured for the error message.
type IO struct {
	Stdin, Stdout, Stderr *os.File
}

// Error is a runtime command that failed.
type Error struct {
	Runtime string // the binary's base name
	Verb    string
	ID      string
	// Msg is the runtime's last error log line, or its stderr, or its
	// exit status.
	Msg string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s %s %s: %s", e.Runtime, e.Verb, e.ID, e.Msg)
}

type traceFileKey struct{}

// WithTraceFile names the file the runtime's spans go to, for commands run
// with ctx while ctx carries a span.
func WithTraceFile(ctx context.Context, path string) context.Context {
	return context.WithValue(ctx, traceFileKey{}, path)
}

// CreateOptions are create's arguments.
type CreateOptions struct {
	Bundle        string
	PidFile       string
	ConsoleSocket string // set when the process has a terminal
	// IO is passed through to the container's init when it has no
	// terminal (runc's pass-through mode).
	IO IO
}

// Create runs `create`: the container's init waits for Start.
func (r *Runtime) Create(ctx context.Context, o CreateOptions) error {
	args := []string{"--bundle", o.Bundle, "--pid-file", o.PidFile}
	if o.ConsoleSocket != "" {
		args = append(args, "--console-socket", o.ConsoleSocket)
	}
	return r.run(ctx, "create", o.IO, append(args, r.ID)...)
}

// Run runs `run --detach`: create and start in one command; it returns
// once the container's program runs.
func (r *Runtime) Run(ctx context.Context, o CreateOptions) error {
	args := []string{"--detach", "--bundle", o.Bundle, "--pid-file", o.PidFile}
	if o.ConsoleSocket != "" {
		args = append(args, "--console-socket", o.ConsoleSocket)
	}
	return r.run(ctx, "run", o.IO, append(args, r.ID)...)
}

// Start runs `start`: the init execs the container's program.
func (r *Runtime) Start(ctx context.Context) error {
	return r.run(ctx, "start", IO{}, r.ID)
}

// ExecOptions are exec's arguments.
type ExecOptions struct {
	ProcessFile   string // a runtime-spec process as JSON
	PidFile       string
	ConsoleSocket string
	IO            IO
}

// Exec runs `exec --detach`: it returns once the process runs.
func (r *Runtime) Exec(ctx context.Context, o ExecOptions) error {
	args := []string{"--process", o.ProcessFile, "--pid-file", o.PidFile, "--detach"}
	if o.ConsoleSocket != "" {
		args = append(args, "--console-socket", o.ConsoleSocket)
	}
	return r.run(ctx, "exec", o.IO, append(args, r.ID)...)
}

// Kill sends sig to the init, or with all to every process.
func (r *Runtime) Kill(ctx context.Context, sig syscall.Signal, all bool) error {
	var args []string
	if all {
		args = append(args, "--all")
	}
	return r.run(ctx, "kill", IO{}, append(args, r.ID, strconv.Itoa(int(sig)))...)
}

// Pause freezes the container.
func (r *Runtime) Pause(ctx context.Context) error { return r.run(ctx, "pause", IO{}, r.ID) }

// Resume thaws the container.
func (r *Runtime) Resume(ctx context.Context) error { return r.run(ctx, "resume", IO{}, r.ID) }

// Update applies the linux.resources JSON in file.
func (r *Runtime) Update(ctx context.Context, file string) error {
	return r.run(ctx, "update", IO{}, "--resources", file, r.ID)
}

// Delete removes the container; force kills it first if it runs.
func (r *Runtime) Delete(ctx context.Context, force bool) error {
	args := []string{r.ID}
	if force {
		args = []string{"--force", r.ID}
	}
	return r.run(ctx, "delete", IO{}, args...)
}

// run runs one verb and waits for it. ctx ending kills the runtime.
func (r *Runtime) run(ctx context.Context, verb string, io IO, args ...string) (err error) {
	ctx, span := trace.Start(ctx, "shim.runtime."+verb, "id", r.ID, "runtime", filepath.Base(r.Path))
	defer func() { span.End(err) }()
	if r.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.Timeout)
		defer cancel()
	}

	logPath := filepath.Join(r.Dir, fmt.Sprintf("runtime-%s-%d.log", verb, r.seq.Add(1)))
	defer os.Remove(logPath)
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("runtime %s log: %w", verb, err)
	}
	stderr := io.Stderr
	if stderr == nil {
		// The runtime appends its JSON log to the same file: one file
		// holds everything it said, in order.
		stderr = logFile
	}
	full := make([]string, 0, len(r.Args)+len(args)+6)
	if r.Root != "" {
		full = append(full, "--root", r.Root)
	}
	full = append(full, r.Args...)
	full = append(full, "--log", logPath, "--log-format", "json", verb)
	full = append(full, args...)

	cmd := exec.Command(r.Path, full...)
	cmd.Dir = "/"
	cmd.Env = r.Env
	if span != nil {
		if tf, _ := ctx.Value(traceFileKey{}).(string); tf != "" {
			cmd.Env = append(append([]string(nil), r.Env...), trace.EnvParent+"="+span.Traceparent(), trace.EnvFile+"="+tf)
		}
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = io.Stdin, io.Stdout, stderr
	var pid int
	var done <-chan reaper.Exit
	if s := r.standby.Swap(nil); s != nil {
		if (verb == "create" || verb == "run") && s.fits(r.Path, r.Env) {
			if pid, done, err = s.hand(cmd); err == nil {
				span.SetAttr("standby", "true")
			}
		} else {
			s.Close()
		}
	}
	if done == nil {
		pid, done, err = r.Spawn(cmd)
	}
	logFile.Close()
	if err != nil {
		return fmt.Errorf("run %s %s: %w", r.Path, verb, err)
	}
	var exit reaper.Exit
	select {
	case exit = <-done:
	case <-ctx.Done():
		// It has not been reaped (done has not fired), so pid is still
		// ours. Never signal pid <= 0: that means a process group or,
		// for -1, every process.
		if pid > 0 {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
		<-done
		return fmt.Errorf("%s %s %s: %w", filepath.Base(r.Path), verb, r.ID, ctx.Err())
	}
	if exit.Code() == 0 {
		return nil
	}
	return &Error{Runtime: filepath.Base(r.Path), Verb: verb, ID: r.ID, Msg: errorMessage(logPath, exit)}
}

// errorMessage picks what to tell about a failed command: the last
// "level":"error" message of its JSON log (containerd reads the same), else
// the text it wrote to stderr, else its exit status.
func errorMessage(logPath string, exit reaper.Exit) string {
	b, _ := os.ReadFile(logPath)
	var last string
	var text []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var entry struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if line[0] == '{' && json.Unmarshal(line, &entry) == nil && entry.Level != "" {
			if entry.Level == "error" || entry.Level == "fatal" {
				last = entry.Msg
			}
			continue
		}
		text = append(text, string(line))
	}
	if last != "" {
		return last
	}
	if len(text) > 10 {
		text = text[len(text)-10:]
	}
	if len(text) > 0 {
		return strings.Join(text, "; ")
	}
	if exit.Signal() != 0 {
		return fmt.Sprintf("killed by %v", exit.Signal())
	}
	return fmt.Sprintf("exit status %d", exit.Code())
}

// IsNotExist reports whether err is a runtime saying the container does not
// exist (runc, crun and hako-runtime word it so).
func IsNotExist(err error) bool {
	var re *Error
	if !errors.As(err, &re) {
		return false
	}
	m := strings.ToLower(re.Msg)
	return strings.Contains(m, "does not exist") || strings.Contains(m, "not found") || strings.Contains(m, "no such file")
}

// Env is the runtime's environment, for every command the shim (or
// shim.Cleanup) runs: what the client gave, plus a
// PATH if it gave none (runc looks up nothing, hooks may) and GOMAXPROCS=1
// if it gave none. A runtime command is short and waits on its child most
// of its life; hako-runtime (and runc) are Go programs, and one P from the
// environment is set before their start, where hako-runtime's own setting
// (internal/oneproc) stops the world to change it: perf stat -r 100 of
// `hako-runtime state`, three rounds, 9.9-10.0 ms with the setting, 8.5-9.4
// with the variable. A C runtime (crun) ignores it. The container's
// processes get the environment of the spec, not this one.
func Env(extra []string) []string {
	env := append([]string(nil), extra...)
	var path, procs bool
	for _, kv := range env {
		path = path || strings.HasPrefix(kv, "PATH=")
		procs = procs || strings.HasPrefix(kv, "GOMAXPROCS=")
	}
	if !path {
		env = append(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	if !procs {
		env = append(env, "GOMAXPROCS=1")
	}
	return env
}
