// Command driver runs the OCI runtime-tools validation programs
// (validation/*/*.t, each a TAP producer) against one OCI runtime and judges
// them: it prints PASS or FAIL per program with the failing subtests, checks
// after each program that nothing was left behind on the host (containers
// in the runtime's root, mounts, cgroups) and removes what was, and
// compares the failures with an allow-list of known failures. Building the
// suite and setting up the host (the crun hybrid-cgroup workaround) is
// run.sh's job; this program only runs and judges.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the command-line settings.
type options struct {
	runtime       string
	suite         string
	pattern       *regexp.Regexp
	timeout       time.Duration
	knownFailures string
	cgroupRoots   []string // nil: every cgroup hierarchy mounted on the host
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	var pat, roots string
	fs := flag.NewFlagSet("driver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.runtime, "runtime", "", "path of the OCI runtime under test (required)")
	fs.StringVar(&o.suite, "suite", "", "runtime-tools directory holding runtimetest, rootfs-*.tar.gz and the built validation/*/*.t (required)")
	fs.StringVar(&pat, "run", "", "run only programs whose name matches this regular expression")
	fs.DurationVar(&o.timeout, "timeout", 120*time.Second, "kill a program that runs longer than this")
	fs.StringVar(&o.knownFailures, "known-failures", "", "allow-list of programs that may fail (empty: none may fail)")
	fs.StringVar(&roots, "cgroup-roots", "", "comma-separated cgroup hierarchies to watch for leaks (default: all mounted)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() != 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.runtime == "" || o.suite == "" {
		return o, errors.New("-runtime and -suite are required")
	}
	if o.timeout <= 0 {
		return o, fmt.Errorf("-timeout %s: must be positive", o.timeout)
	}
	re, err := regexp.Compile(pat)
	if err != nil {
		return o, fmt.Errorf("-run %q: %w", pat, err)
	}
	o.pattern = re
	for _, r := range strings.Split(roots, ",") {
		if r = strings.TrimSpace(r); r == "" {
			continue
		}
		if st, err := os.Stat(r); err != nil || !st.IsDir() {
			return o, fmt.Errorf("-cgroup-roots: %s is not a directory (%v)", r, err)
		}
		o.cgroupRoots = append(o.cgroupRoots, r)
	}
	abs, err := filepath.Abs(o.runtime)
	if err != nil {
		return o, fmt.Errorf("runtime %s: %w", o.runtime, err)
	}
	o.runtime = abs
	if st, err := os.Stat(o.runtime); err != nil {
		return o, fmt.Errorf("runtime %s: %w", o.runtime, err)
	} else if st.IsDir() || st.Mode()&0o111 == 0 {
		return o, fmt.Errorf("runtime %s: not an executable file", o.runtime)
	}
	for _, f := range []string{"runtimetest", "validation"} {
		if _, err := os.Stat(filepath.Join(o.suite, f)); err != nil {
			return o, fmt.Errorf("suite directory %s: %w", o.suite, err)
		}
	}
	return o, nil
}

// Program is one built validation program.
type Program struct {
	Name string // e.g. "linux_cgroups_memory"
	Path string // absolute path of the .t file
}

// Discover lists the built validation programs in suite whose name matches re.
func Discover(suite string, re *regexp.Regexp) ([]Program, error) {
	paths, err := filepath.Glob(filepath.Join(suite, "validation", "*", "*.t"))
	if err != nil {
		return nil, fmt.Errorf("list validation programs: %w", err)
	}
	var out []Program
	for _, p := range paths {
		name := strings.TrimSuffix(filepath.Base(p), ".t")
		if !re.MatchString(name) {
			continue
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("validation program %s: %w", p, err)
		}
		out = append(out, Program{Name: name, Path: abs})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	o, err := parseFlags(args, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "driver:", err)
		return 2
	}
	allow := map[string]Allowed{}
	if o.knownFailures != "" {
		f, err := os.Open(o.knownFailures)
		if err != nil {
			fmt.Fprintf(stderr, "driver: known failures: %v\n", err)
			return 2
		}
		allow, err = ParseAllowList(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(stderr, "driver: known failures %s: %v\n", o.knownFailures, err)
			return 2
		}
	}
	progs, err := Discover(o.suite, o.pattern)
	if err != nil {
		fmt.Fprintln(stderr, "driver:", err)
		return 2
	}
	if len(progs) == 0 {
		fmt.Fprintf(stderr, "driver: no validation program in %s matches %q\n", o.suite, o.pattern)
		return 2
	}
	scratch, err := os.MkdirTemp("", "hako-ocival-")
	if err == nil {
		// Containers with user namespaces (linux_uid_mappings) run as a
		// mapped uid that must be able to reach their rootfs, as in /tmp.
		err = os.Chmod(scratch, 0o755)
	}
	if err != nil {
		fmt.Fprintln(stderr, "driver: scratch directory:", err)
		return 2
	}
	mounts, err := readMounts()
	if err != nil {
		fmt.Fprintln(stderr, "driver:", err)
		return 2
	}
	host := Host{Runtime: Runtime{Path: o.runtime}, CgroupRoots: o.cgroupRoots, Scratch: scratch}
	if host.CgroupRoots == nil {
		host.CgroupRoots = CgroupRoots(mounts)
	}
	results, err := runAll(ctx, o, progs, host, allow, log, stderr)
	if rerr := RemoveTree(scratch); rerr != nil {
		log.Error("scratch directory left behind", "dir", scratch, "err", rerr)
		if err == nil {
			err = rerr
		}
	}
	ok := report(stdout, o, results, allow)
	if err != nil {
		fmt.Fprintln(stderr, "driver:", err)
		return 2
	}
	if !ok {
		return 1
	}
	return 0
}

// result pairs a program with its verdict.
type result struct {
	Program Program
	Outcome Outcome
	Verdict Verdict
	Earlier []Verdict // failed attempts before this one (racy programs only)
}

func runAll(ctx context.Context, o options, progs []Program, host Host, allow map[string]Allowed, log *slog.Logger, progress io.Writer) ([]result, error) {
	var results []result
	for _, p := range progs {
		attempts := 1
		if a, ok := allow[p.Name]; ok && a.Racy() {
			attempts = RaceAttempts
		}
		var earlier []Verdict
		for try := 1; ; try++ {
			r, err := runOne(ctx, o, p, host, log)
			if err != nil {
				return results, err
			}
			// A leak is never retried away.
			if r.Verdict.Pass || try == attempts || len(r.Outcome.Leaks) > 0 {
				r.Earlier = earlier
				results = append(results, r)
				break
			}
			earlier = append(earlier, r.Verdict)
			fmt.Fprintf(progress, "[%d/%d] %s; racy, running it again (%d of %d)\n", len(results)+1, len(progs), r.Verdict.Line(p.Name), try+1, attempts)
		}
		fmt.Fprintf(progress, "[%d/%d] %s\n", len(results), len(progs), results[len(results)-1].Verdict.Line(p.Name))
	}
	return results, nil
}

// runOne runs one program and reclaims whatever it left on the host.
func runOne(ctx context.Context, o options, p Program, host Host, log *slog.Logger) (result, error) {
	if ctx.Err() != nil {
		return result{}, fmt.Errorf("interrupted before %s: %w", p.Name, ctx.Err())
	}
	before, err := host.Snap(ctx)
	if err != nil {
		return result{}, fmt.Errorf("before %s: %w", p.Name, err)
	}
	tmp := filepath.Join(host.Scratch, p.Name)
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return result{}, fmt.Errorf("TMPDIR for %s: %w", p.Name, err)
	}
	out := RunProgram(ctx, p, o, tmp)
	// Reclaim even when interrupted: a half-run program leaves most.
	leaks, notes, err := host.Reclaim(context.WithoutCancel(ctx), before)
	out.Leaks, out.Notes = leaks, notes
	if err != nil {
		return result{}, fmt.Errorf("after %s: %w", p.Name, err)
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		out.Notes = append(out.Notes, fmt.Sprintf("%d bundle(s) left in its TMPDIR by the program itself; removed", len(left)))
	}
	if err := RemoveTree(tmp); err != nil {
		return result{}, fmt.Errorf("after %s: %w", p.Name, err)
	}
	for _, n := range out.Notes {
		log.Warn(n, "program", p.Name)
	}
	return result{Program: p, Outcome: out, Verdict: out.Judge()}, nil
}

// RunProgram runs one validation program the way runtime-tools' Makefile
// does (cwd in the suite, RUNTIME in the environment) with its own TMPDIR,
// in its own process group so that a timeout kills everything it started.
func RunProgram(ctx context.Context, p Program, o options, tmpdir string) Outcome {
	out := Outcome{Name: p.Name, ExitCode: -1}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.Path)
	cmd.Dir = o.suite
	cmd.Env = append(os.Environ(), "RUNTIME="+o.runtime, "TMPDIR="+tmpdir)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if cmd.Process != nil {
		// Whatever the program started and left running in its group.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		out.ExitCode = 0
	case ctx.Err() == context.DeadlineExceeded:
		out.TimedOut = o.timeout
	case errors.As(err, &ee):
		out.ExitCode = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			out.Signal = ws.Signal().String()
		}
	default:
		out.StartErr = err
	}
	out.Stderr = se.String()
	out.Stream, out.ParseErr = ParseTAP(&so)
	return out
}

// report prints the per-program lines, the allow-list accounting and, as
// the very last line, "N passed, N failed". It returns whether the run is
// acceptable: every failure is allowed and no program leaked.
func report(w io.Writer, o options, results []result, allow map[string]Allowed) bool {
	fmt.Fprintf(w, "OCI runtime-tools validation of %s: %d programs, timeout %s each\n", o.runtime, len(results), o.timeout)
	passed, failed := 0, 0
	var unexpected, allowedHost, allowedOther, stale []string
	for _, r := range results {
		fmt.Fprintln(w, r.Verdict.Line(r.Program.Name))
		for _, d := range r.Verdict.Details {
			fmt.Fprintln(w, "    "+d)
		}
		for i, e := range r.Earlier {
			fmt.Fprintf(w, "    attempt %d of %d: %s\n", i+1, len(r.Earlier)+1, e.Line(r.Program.Name))
			for _, d := range e.Details {
				fmt.Fprintln(w, "        "+d)
			}
		}
		a, listed := allow[r.Program.Name]
		if r.Verdict.Pass {
			passed++
			if listed && !a.Racy() {
				stale = append(stale, a.Name)
			}
			continue
		}
		failed++
		switch {
		case !listed || a.Racy() || len(r.Outcome.Leaks) > 0:
			// A leak is never excused: the runtime must clean up even
			// when the host keeps it from doing its job. A racy program
			// that failed every attempt is not excused either.
			unexpected = append(unexpected, r.Program.Name)
		case a.HostLimit():
			allowedHost = append(allowedHost, fmt.Sprintf("%s (%s)", a.Name, a.Reason))
		default:
			allowedOther = append(allowedOther, fmt.Sprintf("%s (%s)", a.Name, a.Reason))
		}
	}
	if len(allowedHost) > 0 {
		fmt.Fprintf(w, "Allowed failures caused by host limits (%d):\n", len(allowedHost))
		for _, s := range allowedHost {
			fmt.Fprintln(w, "    "+s)
		}
	}
	if len(allowedOther) > 0 {
		fmt.Fprintf(w, "Allowed failures for other known reasons (%d):\n", len(allowedOther))
		for _, s := range allowedOther {
			fmt.Fprintln(w, "    "+s)
		}
	}
	if len(stale) > 0 {
		fmt.Fprintf(w, "Listed as known failures but passed (consider removing): %s\n", strings.Join(stale, " "))
	}
	if len(unexpected) > 0 {
		fmt.Fprintf(w, "Failures not covered by the allow-list (%d): %s\n", len(unexpected), strings.Join(unexpected, " "))
	} else if failed > 0 {
		fmt.Fprintln(w, "Every failure is covered by the allow-list.")
	}
	fmt.Fprintf(w, "%d passed, %d failed\n", passed, failed)
	return len(unexpected) == 0
}
