// Command hako-runtime is hako's OCI runtime: runc's command line over
// config.json bundles, so containerd, docker and podman can drive it as they
// drive runc.
//
// The command line is parsed with the standard flag package rather than
// cobra: this binary starts once per container operation, and cobra's
// start-up costs ~5 ms and ~2 MiB per call on the machines we measure
// (bench/runtime).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	_ "github.com/hako-project/hako/internal/oneproc" // one P: see the package
	"github.com/hako-project/hako/internal/timerslack"
	"github.com/hako-project/hako/runtime/container"
	"github.com/hako-project/hako/runtime/nsexec" // the container init runs in its constructor
	"github.com/hako-project/hako/runtime/state"
	"github.com/hako-project/hako/trace"
)

// version is set by the build (-ldflags -X main.version=...).
var version = "0.1.0-dev"

// globals are runc's global flags, plus hako's tracing.
type globals struct {
	root        string
	log         string
	logFormat   string
	debug       bool
	systemd     bool
	rootless    string
	criu        string
	trace       bool
	traceFile   string
	traceparent string
}

// env is what every command gets: the runtime and a context carrying the
// trace.
type env struct {
	g       *globals
	rt      *container.Runtime
	ctx     context.Context
	traceTo *os.File // the file spans go to, for the init as well
}

type command struct {
	name    string
	summary string
	usage   string // arguments after the flags
	flags   func(fs *flag.FlagSet) func(e *env, args []string) error
}

var commands []command

func register(c command) { commands = append(commands, c) }

func main() {
	// A short-lived process: collecting garbage would cost more than it
	// frees. (One P comes from internal/oneproc.)
	debug.SetGCPercent(-1)
	// The container's processes and the hooks get the slack the runtime
	// was started with (timerslack.Fork in runtime/nsexec and
	// runtime/hooks); the constructor made it coarse before Go started.
	timerslack.CoarsenFrom(nsexec.OriginalTimerSlack())
	if len(os.Args) == 2 && os.Args[1] == "standby" {
		os.Exit(standby())
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	g := &globals{}
	fs := flag.NewFlagSet("hako-runtime", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&g.root, "root", state.DefaultRoot, "root directory for container state")
	fs.StringVar(&g.log, "log", "", "append log lines to this file (default: stderr)")
	fs.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	fs.BoolVar(&g.debug, "debug", false, "log debug messages")
	fs.BoolVar(&g.systemd, "systemd-cgroup", false, "cgroupsPath is systemd's slice:prefix:name")
	fs.StringVar(&g.rootless, "rootless", "auto", "rootless mode: true, false or auto")
	fs.StringVar(&g.criu, "criu", "criu", "path to criu (accepted for runc compatibility; checkpoint is not supported)")
	fs.BoolVar(&g.trace, "trace", false, "print the tree of steps with timings on stderr when done")
	fs.StringVar(&g.traceFile, "trace-file", os.Getenv(trace.EnvFile), "append trace spans to this file as JSON lines")
	fs.StringVar(&g.traceparent, "traceparent", os.Getenv(trace.EnvParent), "W3C traceparent of the caller's span")
	showVersion := fs.Bool("version", false, "print the version")
	fs.BoolVar(showVersion, "v", false, "print the version")
	help := fs.Bool("help", false, "show help")
	fs.BoolVar(help, "h", false, "show help")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(os.Stderr, "hako-runtime: %v\n", err)
		usage(os.Stderr, fs)
		return 2
	}
	rootSet := false
	fs.Visit(func(f *flag.Flag) { rootSet = rootSet || f.Name == "root" })
	if !rootSet && os.Geteuid() != 0 {
		// An unprivileged user cannot write /run: use their runtime dir.
		g.root = rootlessRoot()
	}
	if *showVersion {
		printVersion(os.Stdout)
		return 0
	}
	rest := fs.Args()
	if *help || len(rest) == 0 || rest[0] == "help" {
		usage(os.Stdout, fs)
		if len(rest) == 0 && !*help {
			return 2
		}
		return 0
	}
	var cmd *command
	for i := range commands {
		if commands[i].name == rest[0] {
			cmd = &commands[i]
		}
	}
	if cmd == nil {
		fmt.Fprintf(os.Stderr, "hako-runtime: unknown command %q\n", rest[0])
		usage(os.Stderr, fs)
		return 2
	}
	cfs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	cfs.SetOutput(io.Discard)
	action := cmd.flags(cfs)
	chelp := cfs.Bool("help", false, "show help")
	cfs.BoolVar(chelp, "h", false, "show help")
	if err := cfs.Parse(rest[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "hako-runtime %s: %v\n", cmd.name, err)
		cmdUsage(os.Stderr, cmd, cfs)
		return 2
	}
	if *chelp {
		cmdUsage(os.Stdout, cmd, cfs)
		return 0
	}

	e, finish, err := setup(g, cmd.name)
	if err != nil {
		fmt.Fprintf(os.Stderr, "hako-runtime: %v\n", err)
		return 1
	}
	err = action(e, cfs.Args())
	finish(err)
	var ec exitCode
	if errors.As(err, &ec) {
		return int(ec)
	}
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(os.Stderr, "hako-runtime %s: %v\n", cmd.name, err)
			cmdUsage(os.Stderr, cmd, cfs)
			return 2
		}
		slog.Error(err.Error())
		if g.log != "" {
			fmt.Fprintf(os.Stderr, "hako-runtime: %v\n", err)
		}
		return 1
	}
	return 0
}

// exitCode makes run exit with the container process's own code.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// usageError is a wrong command line.
type usageError struct{ error }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// setup opens the log and the trace and returns what the commands share,
// plus a function to call when the command is done.
func setup(g *globals, name string) (*env, func(error), error) {
	rt := &container.Runtime{Root: g.root, Systemd: g.systemd, LogJSON: g.logFormat == "json"}
	switch g.rootless {
	case "true":
		rt.Rootless = true
	case "false":
	case "auto", "":
		rt.Rootless = os.Geteuid() != 0
	default:
		return nil, nil, fmt.Errorf("--rootless %q: want true, false or auto", g.rootless)
	}
	if g.logFormat != "text" && g.logFormat != "json" {
		return nil, nil, fmt.Errorf("--log-format %q: want text or json", g.logFormat)
	}
	logOut := io.Writer(os.Stderr)
	if g.log != "" {
		f, err := os.OpenFile(g.log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("--log %s: %w", g.log, err)
		}
		rt.Log = f
		logOut = f
	}
	level := slog.LevelInfo
	if g.debug {
		level = slog.LevelDebug
	}
	slog.SetDefault(slog.New(newLogHandler(logOut, rt.LogJSON, level)))

	e := &env{g: g, rt: rt, ctx: context.Background()}
	var tracer *trace.Tracer
	var root *trace.Span
	if g.trace || g.traceFile != "" {
		var err error
		if g.traceFile != "" {
			e.traceTo, err = os.OpenFile(g.traceFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		} else {
			e.traceTo, err = traceMemfd()
		}
		if err != nil {
			return nil, nil, fmt.Errorf("trace: %w", err)
		}
		tracer, err = trace.New(g.traceparent, e.traceTo)
		if err != nil {
			return nil, nil, fmt.Errorf("--traceparent: %w", err)
		}
		e.ctx, root = trace.Start(trace.WithTracer(e.ctx, tracer), "hako-runtime."+name)
		if standbyUsed {
			root.SetAttr("standby", "true")
		}
	}
	finish := func(err error) {
		if root == nil {
			return
		}
		var ec exitCode
		if errors.As(err, &ec) {
			root.SetAttr("exit_code", fmt.Sprint(int(ec)))
			err = nil
		}
		root.End(err)
		if g.trace {
			if _, serr := e.traceTo.Seek(0, io.SeekStart); serr == nil {
				if g.traceFile != "" {
					e.traceTo, _ = os.Open(g.traceFile)
				}
				spans, _ := trace.ReadSpans(e.traceTo)
				var mine []trace.SpanData
				for _, s := range spans {
					if s.TraceID == tracer.TraceID() {
						mine = append(mine, s)
					}
				}
				trace.Render(os.Stderr, mine)
			}
		}
	}
	return e, finish, nil
}

// traceMemfd makes the file --trace (without a file) collects spans in:
// the runtime's and, inherited, the container init's. O_APPEND because a
// memfd, unlike a file opened by path, has no atomic file position shared
// between processes: the init's last spans and the runtime's runtime.start
// are written at the same moment, and without it both writes could land at
// the same offset and spoil each other's lines (TestTraceTree lacked
// runtime.start, runtime.init.execve and runtime.init about once in 300
// runs on a busy host).
func traceMemfd() (*os.File, error) {
	fd, err := unix.MemfdCreate("hako-trace", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd: %w", err)
	}
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err == nil {
		_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl|unix.O_APPEND)
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("memfd: O_APPEND: %w", err)
	}
	return os.NewFile(uintptr(fd), "hako-trace"), nil
}

func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "hako-runtime: an OCI runtime with runc's command line\n\nUsage: hako-runtime [global flags] COMMAND [flags] [arguments]\n\nCommands:\n")
	sorted := append([]command(nil), commands...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	for _, c := range sorted {
		if c.summary != "" {
			fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
		}
	}
	fmt.Fprintf(w, "\nGlobal flags:\n")
	printFlags(w, fs)
}

func cmdUsage(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: hako-runtime %s [flags] %s\n\n%s\n\nFlags:\n", c.name, c.usage, c.summary)
	printFlags(w, fs)
}

func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-"
		}
		def := ""
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			def = " (default " + f.DefValue + ")"
		}
		fmt.Fprintf(w, "  %s%-18s %s%s\n", dash, f.Name, f.Usage, def)
	})
}

func printVersion(w io.Writer) {
	fmt.Fprintf(w, "hako-runtime version %s\nspec: %s\ngo: %s\n", version, specVersion(), runtime.Version())
	if v := libseccompVersion(); v != "" {
		fmt.Fprintf(w, "libseccomp: %s\n", v)
	}
}

// rootlessRoot is the state root of an unprivileged user:
// $XDG_RUNTIME_DIR/hako-runtime, else /tmp/hako-runtime-<uid>.
func rootlessRoot() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return d + "/hako-runtime"
	}
	return fmt.Sprintf("/tmp/hako-runtime-%d", os.Geteuid())
}

// oneID checks for exactly one container ID argument.
func oneID(args []string) (string, error) {
	if len(args) != 1 {
		return "", usagef("want exactly one container ID, got %d arguments", len(args))
	}
	return args[0], nil
}

// logHandler formats log lines as runc's logrus does, which callers parse:
// containerd reads the last `"level":"error"` line of a JSON --log.
type logHandler struct {
	w     io.Writer
	json  bool
	level slog.Level
	attrs []slog.Attr
}

func newLogHandler(w io.Writer, json bool, level slog.Level) slog.Handler {
	return &logHandler{w: w, json: json, level: level}
}

func (h *logHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *logHandler) WithAttrs(a []slog.Attr) slog.Handler {
	n := *h
	n.attrs = append(append([]slog.Attr(nil), h.attrs...), a...)
	return &n
}

func (h *logHandler) WithGroup(string) slog.Handler { return h }

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	level := strings.ToLower(r.Level.String())
	if level == "warn" {
		level = "warning"
	}
	ts := r.Time.UTC().Format(time.RFC3339Nano)
	var b strings.Builder
	attrs := append([]slog.Attr(nil), h.attrs...)
	r.Attrs(func(a slog.Attr) bool { attrs = append(attrs, a); return true })
	if h.json {
		fmt.Fprintf(&b, `{"level":%q,"msg":%q,"time":%q`, level, r.Message, ts)
		for _, a := range attrs {
			fmt.Fprintf(&b, `,%q:%q`, a.Key, a.Value.String())
		}
		b.WriteString("}\n")
	} else {
		fmt.Fprintf(&b, "time=%q level=%s msg=%q", ts, level, r.Message)
		for _, a := range attrs {
			fmt.Fprintf(&b, " %s=%q", a.Key, a.Value.String())
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(h.w, b.String())
	return err
}
