package shim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/internal/timerslack"
	"github.com/hako-project/hako/shim/internal/proto"
	"github.com/hako-project/hako/trace"
)

// DefaultRuntime is the runtime used when Config.Runtime is empty.
const DefaultRuntime = "hako-runtime"

// validID is what runc accepts as a container ID.
var validID = regexp.MustCompile(`^[\w+\-.]+$`)

// Start spawns a shim for cfg and has it create the container through the
// runtime; it returns once the container is created (its program has not
// started: attach first, then call Client.Start; with Config.Run it runs,
// its output held until Client.Start) or with the runtime's error, which
// names what it rejected. On error nothing is left: no shim process, no
// state directory, no container.
//
// The shim runs in a session of its own. It is the caller's child, reaped
// in the background, until the caller exits or is killed; then it is
// reparented to init, and it and the container live on. If ctx ends
// before Start returns, the shim removes the container again.
func Start(ctx context.Context, cfg Config) (_ *Client, err error) {
	ctx, span := trace.Start(ctx, "shim.Start", "id", cfg.ID)
	defer func() { span.End(err) }()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	rt, err := lookRuntime(cfg.Runtime)
	if err != nil {
		return nil, err
	}
	bin, err := lookBinary(cfg.Binary)
	if err != nil {
		return nil, err
	}
	if cfg.Traceparent == "" && span != nil && cfg.TraceFile != "" {
		cfg.Traceparent = span.Traceparent()
	}
	if err := os.MkdirAll(filepath.Dir(cfg.StateDir), 0o711); err != nil {
		return nil, fmt.Errorf("shim state directory: %w", err)
	}
	if err := os.Mkdir(cfg.StateDir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("%w: shim state directory %s exists: a shim for %s may be running (Connect to it) or have left it (Cleanup)",
				ErrConflict, cfg.StateDir, cfg.ID)
		}
		return nil, fmt.Errorf("shim state directory: %w", err)
	}
	spawned := false
	defer func() {
		// Once the shim runs, it removes the directory itself on failure.
		if err != nil && !spawned {
			os.RemoveAll(cfg.StateDir)
		}
	}()
	pc := proto.Config{ID: cfg.ID, Bundle: cfg.Bundle, Runtime: rt, RuntimeRoot: cfg.RuntimeRoot,
		RuntimeArgs: cfg.RuntimeArgs, Env: cfg.Env, Terminal: cfg.Terminal, Stdin: cfg.Stdin,
		StdinOnce: cfg.StdinOnce, Traceparent: cfg.Traceparent, TraceFile: cfg.TraceFile, Run: cfg.Run,
		Log: proto.LogConfig{Path: cfg.Log.Path, Format: cfg.Log.Format, MaxSize: cfg.Log.MaxSize, MaxFiles: cfg.Log.MaxFiles,
			Attrs: cfg.Log.Attrs}}
	b, err := json.Marshal(pc)
	if err != nil {
		return nil, fmt.Errorf("shim config: %w", err)
	}
	if err := os.WriteFile(filepath.Join(cfg.StateDir, proto.ConfigFile), b, 0o600); err != nil {
		return nil, fmt.Errorf("shim config: %w", err)
	}
	env := shimEnv(cfg.Env)
	// A spare shim, started ahead of need (Spares), has paid for its
	// process start already; otherwise one is started now.
	sync := cfg.Spares.take(bin, env)
	if sync != nil {
		if err := proto.WriteMsg(sync, proto.Assign{StateDir: cfg.StateDir}); err != nil {
			sync.Close() // it died while idle; EOF ends it if not
			sync = nil
		}
	}
	span.SetAttr("spare", strconv.FormatBool(sync != nil))
	// The next container's spare starts a while after this one is
	// created (Spares.later).
	defer cfg.Spares.later(bin, env)
	if sync != nil {
		spawned = true
		c, err := awaitReport(ctx, sync, cfg, true)
		sync.Close()
		if !errors.Is(err, errSpareLost) {
			return c, err
		}
		// The spare died before it took the container (killed while
		// idle, a moment before the assignment): nothing was done, so
		// a shim of our own does it.
		span.SetAttr("spare", "lost")
		spawned = false
	}
	logf, err := os.OpenFile(filepath.Join(cfg.StateDir, proto.LogFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("shim log: %w", err)
	}
	sync, _, err = spawn(bin, []string{"--state-dir", cfg.StateDir}, env, logf)
	logf.Close()
	if err != nil {
		return nil, err
	}
	spawned = true
	defer sync.Close()
	return awaitReport(ctx, sync, cfg, false)
}

// errSpareLost is awaitReport's word for a spare that ended before it
// took its assignment: it left no log in the state directory, its first
// act once assigned (monitor.RunSpare), so it did nothing else.
var errSpareLost = errors.New("the spare shim ended before it took the container")

// spawn starts `hako-shim ARGS` (the monitor: --state-dir DIR, or a spare:
// --spare) with its end of a socket pair as fd 3, in a session of its own,
// cwd /, stdin /dev/null and stdout+stderr to log (a panic lands there;
// nil: /dev/null). It returns our end of the socket and a channel closed
// once the process has exited.
//
// The monitor is started directly, one exec, rather than by a first
// process that re-executes it and exits (containerd's shims do that): on
// this path every Go process start costs several milliseconds of page
// faults, and container start-up is the latency users see. It is the
// caller's child only while the caller lives: reap collects its exit so
// no zombie stays behind, and when the caller dies (hakod killed, or
// restarted) the monitor is reparented to init or the nearest subreaper,
// which reaps it then. Its own session keeps it out of hakod's process
// group and terminal, so signals meant for hakod do not reach it.
func spawn(bin string, args, env []string, log *os.File) (*os.File, <-chan struct{}, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("shim sync socket: %w", err)
	}
	// Non-blocking, so reads go through the poller and Close (when ctx
	// ends) interrupts them.
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, nil, fmt.Errorf("shim sync socket: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "shim-sync"), os.NewFile(uintptr(fds[1]), "shim-sync")
	defer theirs.Close()
	// Not CommandContext: the monitor outlives ctx. If ctx ends before the
	// report, awaitReport closes our end and the monitor cleans up.
	cmd := exec.Command(bin, args...)
	cmd.Dir = "/"
	cmd.Env = env
	if log != nil {
		cmd.Stdout, cmd.Stderr = log, log
	}
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// Not timerslack.Fork: the shim is ours, and takes the coarse timer
	// slack from birth, with the original in its environment (shimEnv),
	// which it hands to the runtime and so to the container.
	if err := cmd.Start(); err != nil {
		ours.Close()
		return nil, nil, fmt.Errorf("start %s: %w", bin, err)
	}
	return ours, reap(cmd), nil
}

// reap waits for the monitor to exit, in the background, and collects its
// status; the channel it returns is closed then. It waits on a pidfd
// through the runtime's poller, so a long-lived shim costs hakod a parked
// goroutine and no thread (os/exec's Wait blocks a thread in waitid for as
// long as the child lives).
func reap(cmd *exec.Cmd) <-chan struct{} {
	done := make(chan struct{})
	fd, err := unix.PidfdOpen(cmd.Process.Pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		go func() { _ = cmd.Wait(); close(done) }()
		return done
	}
	pidfd := os.NewFile(uintptr(fd), "shim-pidfd")
	go func() {
		_ = waitExit(context.Background(), pidfd)
		pidfd.Close()
		_ = cmd.Wait() // returns at once: the process has exited
		close(done)
	}()
	return done
}

// awaitReport reads the shim's report of the create. On success it
// acknowledges, which tells the shim that its container is adopted. A
// spare that ended before it took the container is errSpareLost, with the
// state directory left as Start made it.
func awaitReport(ctx context.Context, sync *os.File, cfg Config, spare bool) (*Client, error) {
	stop := context.AfterFunc(ctx, func() { sync.Close() })
	defer stop()
	var rep proto.Report
	if err := proto.ReadMsg(sync, &rep); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("start shim of %s: %w", cfg.ID, ctx.Err())
		}
		if _, serr := os.Stat(filepath.Join(cfg.StateDir, proto.LogFile)); spare && errors.Is(serr, os.ErrNotExist) {
			return nil, errSpareLost
		}
		// The shim died without a word: take what it left from its log
		// and remove the rest.
		tail := logTail(filepath.Join(cfg.StateDir, proto.LogFile))
		_, _ = Cleanup(context.WithoutCancel(ctx), cfg.StateDir)
		return nil, fmt.Errorf("shim of %s exited without reporting (%v): %s", cfg.ID, err, tail)
	}
	if rep.Error != "" {
		// The shim has removed everything and exits after its report: wait
		// for that, so that the caller sees nothing left when we return.
		var b [1]byte
		_, _ = sync.Read(b[:])
		if _, err := os.Stat(cfg.StateDir); err == nil {
			os.RemoveAll(cfg.StateDir)
		}
		return nil, &Error{Op: "create", Code: rep.Code, Msg: rep.Error}
	}
	if _, err := sync.Write([]byte{1}); err != nil {
		return nil, fmt.Errorf("start shim of %s: acknowledge: %w", cfg.ID, err)
	}
	return newClient(cfg.ID, cfg.StateDir, rep.Pid), nil
}

func (cfg *Config) validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: shim config: %s", ErrInvalid, fmt.Sprintf(format, a...))
	}
	switch {
	case !validID.MatchString(cfg.ID):
		return bad("ID %q: want letters, digits and _+-.", cfg.ID)
	case !filepath.IsAbs(cfg.Bundle):
		return bad("Bundle %q: want an absolute path", cfg.Bundle)
	case !filepath.IsAbs(cfg.StateDir):
		return bad("StateDir %q: want an absolute path", cfg.StateDir)
	case cfg.StdinOnce && !cfg.Stdin:
		return bad("StdinOnce without Stdin")
	case cfg.Log.Format != "" && cfg.Log.Format != "json-file" && cfg.Log.Format != "cri":
		return bad("Log.Format %q: want json-file or cri", cfg.Log.Format)
	case cfg.Log.Path == "" && (cfg.Log.Format != "" || cfg.Log.MaxSize != 0 || cfg.Log.MaxFiles != 0):
		return bad("Log options without Log.Path")
	case cfg.Log.Path != "" && !filepath.IsAbs(cfg.Log.Path):
		return bad("Log.Path %q: want an absolute path", cfg.Log.Path)
	case cfg.Log.MaxSize < 0 || cfg.Log.MaxFiles < 0:
		return bad("Log.MaxSize and Log.MaxFiles must not be negative")
	case cfg.TraceFile != "" && !filepath.IsAbs(cfg.TraceFile):
		return bad("TraceFile %q: want an absolute path", cfg.TraceFile)
	}
	if cfg.Traceparent != "" {
		if _, _, err := trace.ParseTraceparent(cfg.Traceparent); err != nil {
			return bad("%v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(cfg.Bundle, "config.json")); err != nil {
		return bad("Bundle: %v", err)
	}
	return nil
}

// lookRuntime resolves the runtime to an absolute path, so a shim that
// outlives hakod does not depend on hakod's PATH.
func lookRuntime(name string) (string, error) {
	if name == "" {
		name = DefaultRuntime
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%w: runtime %q: %v", ErrInvalid, name, err)
	}
	return filepath.Abs(p)
}

// lookBinary finds hako-shim: as given, next to the running executable
// (hakod and hako-shim are installed together), or in $PATH.
func lookBinary(bin string) (string, error) {
	if bin != "" {
		p, err := exec.LookPath(bin)
		if err != nil {
			return "", fmt.Errorf("%w: shim binary %q: %v", ErrInvalid, bin, err)
		}
		return filepath.Abs(p)
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "hako-shim")
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	p, err := exec.LookPath("hako-shim")
	if err != nil {
		return "", fmt.Errorf("%w: hako-shim not found next to %s or in $PATH: set Config.Binary", ErrInvalid, os.Args[0])
	}
	return filepath.Abs(p)
}

// shimEnv is the shim's own environment: only a PATH, so that nothing of
// hakod's environment is kept alive per container, GOMAXPROCS=1: the shim
// is idle almost always, and each P costs memory, and hakod's original
// timer slack (package timerslack).
func shimEnv(env []string) []string {
	path := defaultPath
	for _, kv := range env {
		if strings.HasPrefix(kv, "PATH=") {
			path = kv
			break
		}
	}
	out := []string{path, "GOMAXPROCS=1"}
	if slack := timerslack.Env(); slack != "" {
		out = append(out, slack)
	}
	return out
}

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// logTail returns the last lines of the shim's log.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "no shim log"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, "; ")
}
