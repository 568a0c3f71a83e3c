// Command rtbench compares OCI runtimes (runc-compatible CLIs) on two
// workloads, interleaving the runtimes iteration by iteration so that
// machine noise hits them all alike, and measures each iteration exactly:
// wall time, CPU time of every process involved (from wait4 rusage, with
// the harness as child subreaper so orphaned container processes count
// too) and peak RSS. It prints medians, p90s and ratios to crun and runc.
// Host set-up (the crun hybrid-cgroup workaround) is run.sh's job.
package main

import (
	"bufio"
	"context"
	"encoding/json"
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
	"runtime"
	"sort"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type options struct {
	iterations int
	warmup     int
	busybox    string
	jsonOut    string
	runtimes   []Runtime
}

var nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("rtbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: rtbench [flags] NAME=PATH...")
		fs.PrintDefaults()
	}
	fs.IntVar(&o.iterations, "n", 50, "measured iterations per runtime and workload")
	fs.IntVar(&o.warmup, "warmup", 5, "unmeasured warm-up iterations before them")
	fs.StringVar(&o.busybox, "busybox", "/bin/busybox", "static busybox binary for the rootfs")
	fs.StringVar(&o.jsonOut, "json", "", "also write every sample to this JSON file")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.iterations < 1 {
		return o, fmt.Errorf("-n %d: need at least one iteration", o.iterations)
	}
	if o.warmup < 0 {
		return o, fmt.Errorf("-warmup %d: must not be negative", o.warmup)
	}
	if st, err := os.Stat(o.busybox); err != nil || !st.Mode().IsRegular() {
		return o, fmt.Errorf("-busybox %s: not a regular file (%v)", o.busybox, err)
	}
	if fs.NArg() == 0 {
		return o, errors.New("no runtimes given (NAME=PATH...)")
	}
	seen := map[string]bool{}
	for _, a := range fs.Args() {
		name, path, ok := strings.Cut(a, "=")
		if !ok || !nameRe.MatchString(name) {
			return o, fmt.Errorf("runtime %q: want NAME=PATH with NAME of letters, digits, '-', '_', '.'", a)
		}
		if seen[name] {
			return o, fmt.Errorf("runtime %s given twice", name)
		}
		seen[name] = true
		abs, err := exec.LookPath(path)
		if err == nil {
			abs, err = filepath.Abs(abs)
		}
		if err != nil {
			return o, fmt.Errorf("runtime %s: %w", name, err)
		}
		o.runtimes = append(o.runtimes, Runtime{Name: name, Path: abs})
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, nil))
	o, err := parseFlags(args, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "rtbench:", err)
		return 2
	}
	if err := becomeSubreaper(); err != nil {
		fmt.Fprintln(stderr, "rtbench:", err)
		return 2
	}
	work, err := os.MkdirTemp("", "hako-rtbench-")
	if err != nil {
		fmt.Fprintln(stderr, "rtbench: work directory:", err)
		return 2
	}
	// Container processes run as root but the rootfs must be reachable
	// whatever the runtime's user namespace settings.
	if err := os.Chmod(work, 0o755); err != nil {
		fmt.Fprintln(stderr, "rtbench: work directory:", err)
		os.RemoveAll(work)
		return 2
	}
	idPrefix := fmt.Sprintf("hkb%d-", os.Getpid())
	results, err := bench(ctx, o, work, idPrefix, stdout)
	leaks := cleanup(o.runtimes, work, idPrefix, log)
	if len(leaks) > 0 {
		// After a failed iteration these are expected (the container it
		// was working on); after a clean run they are the runtime's leaks.
		fmt.Fprintf(stdout, "\ncleanup: %d leftover(s) found and removed:\n", len(leaks))
		for _, l := range leaks {
			fmt.Fprintln(stdout, "  "+l)
		}
	} else {
		fmt.Fprintln(stdout, "\ncleanup: no leftover containers, state directories, mounts or cgroups")
	}
	if err != nil {
		fmt.Fprintln(stderr, "rtbench:", err)
		return 1
	}
	if o.jsonOut != "" {
		if err := writeJSON(o.jsonOut, results); err != nil {
			fmt.Fprintln(stderr, "rtbench:", err)
			return 1
		}
	}
	if len(leaks) > 0 {
		return 1
	}
	return 0
}

// bench prepares a bundle and a state root per runtime, then runs every
// workload with the runtimes interleaved: warm-ups and measured iterations
// alike go A B C A B C ...
func bench(ctx context.Context, o options, work, idPrefix string, stdout io.Writer) (map[string][]Result, error) {
	for i := range o.runtimes {
		r := &o.runtimes[i]
		dir := filepath.Join(work, r.Name)
		r.Root = filepath.Join(dir, "root")
		r.Bundle = filepath.Join(dir, "bundle")
		if err := os.MkdirAll(r.Root, 0o700); err != nil {
			return nil, fmt.Errorf("%s: state root: %w", r.Name, err)
		}
		if err := MakeRootfs(filepath.Join(r.Bundle, "rootfs"), o.busybox); err != nil {
			return nil, fmt.Errorf("%s: %w", r.Name, err)
		}
		if err := GenerateSpec(r.Path, r.Bundle); err != nil {
			return nil, fmt.Errorf("%s: %w", r.Name, err)
		}
		if err := AdaptSpec(filepath.Join(r.Bundle, "config.json")); err != nil {
			return nil, fmt.Errorf("%s: %w", r.Name, err)
		}
	}
	sp, err := NewSpawner(filepath.Join(work, "stderr"))
	if err != nil {
		return nil, err
	}
	defer sp.Close()

	var names []string
	for _, r := range o.runtimes {
		names = append(names, fmt.Sprintf("%s (%s)", r.Name, version(r.Path)))
	}
	fmt.Fprintf(stdout, "runtimes, interleaved in this order: %s\n", strings.Join(names, ", "))
	fmt.Fprintf(stdout, "%d measured iterations after %d warm-ups per runtime and workload; %d CPUs; busybox rootfs from %s\n",
		o.iterations, o.warmup, runtime.NumCPU(), o.busybox)

	all := map[string][]Result{}
	for _, wl := range Workloads() {
		results := make([]Result, len(o.runtimes))
		for i, r := range o.runtimes {
			results[i].Runtime = r.Name
		}
		for it := 0; it < o.warmup+o.iterations; it++ {
			for i, r := range o.runtimes {
				if err := ctx.Err(); err != nil {
					return all, fmt.Errorf("interrupted: %w", err)
				}
				id := fmt.Sprintf("%s%s-%s-%d", idPrefix, wl.Name, r.Name, it)
				u, err := wl.Do(sp, r, id)
				if err != nil {
					return all, fmt.Errorf("%s, %s, iteration %d: %w", wl.Name, r.Name, it, err)
				}
				if it >= o.warmup {
					results[i].Samples = append(results[i].Samples, u)
				}
			}
		}
		all[wl.Name] = results
		PrintTable(stdout, wl.Title, results, []string{"crun", "runc"})
	}
	return all, nil
}

func version(path string) string {
	out, err := exec.Command(path, "--version").Output()
	if err != nil {
		return "no --version"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// cleanup removes everything the run made and returns what it had to
// remove beyond the work directory: containers still listed in a state
// root, cgroups named after our container IDs, mounts below the work
// directory. Each is a leak of the runtime (or of an aborted run).
func cleanup(rts []Runtime, work, idPrefix string, log *slog.Logger) []string {
	var leaks []string
	for _, r := range rts {
		if r.Root == "" {
			continue
		}
		if _, err := os.Stat(r.Root); err != nil {
			continue
		}
		out, err := exec.Command(r.Path, "--root", r.Root, "list", "-q").Output()
		if err != nil {
			leaks = append(leaks, fmt.Sprintf("%s: list -q failed: %v", r.Name, err))
		}
		for _, id := range strings.Fields(string(out)) {
			msg := fmt.Sprintf("%s: container %s", r.Name, id)
			if out, err := exec.Command(r.Path, "--root", r.Root, "delete", "--force", id).CombinedOutput(); err != nil {
				msg += fmt.Sprintf(" (delete --force failed: %v: %s)", err, strings.TrimSpace(string(out)))
			}
			leaks = append(leaks, msg)
		}
	}
	var none Usage
	ReapStragglers(&none)
	mounts, err := readMountInfo()
	if err != nil {
		leaks = append(leaks, err.Error())
	}
	var below []string
	for _, m := range mounts {
		if m.point == work || strings.HasPrefix(m.point, work+"/") {
			below = append(below, m.point)
		}
	}
	sort.Slice(below, func(i, j int) bool { return len(below[i]) > len(below[j]) })
	for _, p := range below {
		leaks = append(leaks, "mount "+p)
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil {
			leaks = append(leaks, fmt.Sprintf("unmount %s: %v", p, err))
		}
	}
	for _, m := range mounts {
		if m.fstype != "cgroup" && m.fstype != "cgroup2" {
			continue
		}
		var found []string
		_ = filepath.WalkDir(m.point, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() && strings.Contains(d.Name(), idPrefix) {
				found = append(found, p)
			}
			return nil
		})
		sort.Slice(found, func(i, j int) bool { return len(found[i]) > len(found[j]) })
		for _, p := range found {
			leaks = append(leaks, "cgroup "+p)
			if err := syscall.Rmdir(p); err != nil {
				leaks = append(leaks, fmt.Sprintf("rmdir %s: %v", p, err))
			}
		}
	}
	if mounts, err := readMountInfo(); err == nil {
		for _, m := range mounts {
			if m.point == work || strings.HasPrefix(m.point, work+"/") {
				// Never delete recursively through a mount.
				log.Error("work directory kept: still mounted below it", "mount", m.point)
				return append(leaks, "work directory "+work+" kept: "+m.point+" is still mounted")
			}
		}
	}
	if err := os.RemoveAll(work); err != nil {
		leaks = append(leaks, fmt.Sprintf("remove %s: %v", work, err))
	}
	return leaks
}

type mountEntry struct{ point, fstype string }

func readMountInfo() ([]mountEntry, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("mountinfo: %w", err)
	}
	defer f.Close()
	var out []mountEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		for i, x := range fields {
			if x == "-" && i+1 < len(fields) && len(fields) > 4 {
				out = append(out, mountEntry{point: fields[4], fstype: fields[i+1]})
				break
			}
		}
	}
	return out, sc.Err()
}

type jsonSample struct {
	WallNS   int64 `json:"wall_ns"`
	CPUNS    int64 `json:"cpu_ns"`
	MaxRSSKB int64 `json:"max_rss_kb"`
	Procs    int   `json:"procs"`
}

func writeJSON(path string, all map[string][]Result) error {
	out := map[string]map[string][]jsonSample{}
	for wl, rs := range all {
		out[wl] = map[string][]jsonSample{}
		for _, r := range rs {
			for _, s := range r.Samples {
				out[wl][r.Runtime] = append(out[wl][r.Runtime], jsonSample{int64(s.Wall), int64(s.CPU), s.MaxRSSKB, s.Procs})
			}
		}
	}
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return fmt.Errorf("encode samples: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write samples: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write samples: %w", err)
	}
	return nil
}
