// Command hako-shim watches over one container for hakod: it creates the
// container through an OCI runtime, holds its stdio, writes its log, reaps
// its processes and records its exit, and serves hakod over a unix socket
// in the container's shim state directory (see package shim/monitor).
//
// hakod does not run it by hand: package shim's Start writes the
// configuration into the state directory and runs
//
//	hako-shim --state-dir DIR
//
// with the sync socket as fd 3, in a session of its own, and reaps it if it
// exits while hakod lives; when hakod dies the shim is reparented to init
// and outlives it. hakod also keeps one `hako-shim --spare` started ahead
// of need (shim.Spares), which waits on fd 3 to be told its DIR.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/internal/timerslack"
	"github.com/hako-project/hako/shim/monitor"
)

// version is set by the build (-ldflags -X main.version=...).
var version = "0.1.0-dev"

// reportFD is where the client hands over its end of the sync socket.
const reportFD = 3

func init() {
	// One shim runs per container and never profiles: sampling
	// allocations would only cost memory.
	runtime.MemProfileRate = 0
}

func main() {
	// The runtime, and through it the container, get the slack the shim
	// was started with (shim/reaper starts them with timerslack.Fork).
	timerslack.Coarsen()
	// Copies: a spare rewrites os.Args' memory (retitle).
	args := make([]string, len(os.Args)-1)
	for i, a := range os.Args[1:] {
		args[i] = strings.Clone(a)
	}
	os.Exit(run(args))
}

func run(args []string) int {
	// Descriptors that hakod leaked to us (any it did not mark
	// close-on-exec) must not reach the monitor, the runtime or the
	// container: close them at our next exec. 0-2 and the report socket
	// stay.
	_ = unix.CloseRange(reportFD+1, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	fs := flag.NewFlagSet("hako-shim", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	stateDir := fs.String("state-dir", "", "the container's shim state directory (holds config.json)")
	spare := fs.Bool("spare", false, "start as a spare: wait on fd 3 for the state directory to serve")
	standby := fs.String("standby-runtime", "", "with --spare: start this runtime ahead of need too (`RUNTIME standby`)")
	showVersion := fs.Bool("version", false, "print the version")
	help := fs.Bool("help", false, "show help")
	fs.BoolVar(help, "h", false, "show help")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(os.Stderr, "hako-shim: %v\n", err)
		usage(os.Stderr, fs)
		return 2
	}
	switch {
	case *showVersion:
		fmt.Printf("hako-shim version %s\ngo: %s\n", version, runtime.Version())
		return 0
	case *help:
		usage(os.Stdout, fs)
		return 0
	case *spare && (*stateDir != "" || fs.NArg() > 1 || strings.TrimSpace(fs.Arg(0)) != ""):
		fmt.Fprintln(os.Stderr, "hako-shim: --spare takes no --state-dir and no arguments (but room: blanks)")
		usage(os.Stderr, fs)
		return 2
	case !*spare && *standby != "":
		fmt.Fprintln(os.Stderr, "hako-shim: --standby-runtime goes with --spare")
		usage(os.Stderr, fs)
		return 2
	case *standby != "" && !filepath.IsAbs(*standby):
		fmt.Fprintln(os.Stderr, "hako-shim: --standby-runtime wants an absolute path")
		usage(os.Stderr, fs)
		return 2
	case !*spare && (*stateDir == "" || !filepath.IsAbs(*stateDir) || fs.NArg() != 0):
		fmt.Fprintln(os.Stderr, "hako-shim: want --state-dir with an absolute path and no arguments")
		usage(os.Stderr, fs)
		return 2
	}
	report, err := reportSocket()
	if err != nil {
		fmt.Fprintf(os.Stderr, "hako-shim: %v\n", err)
		return 2
	}
	// The heap of an idle shim is a few hundred KiB; collecting at 25%
	// growth (a 1 MiB minimum goal instead of 4 MiB) lets the scavenger
	// give back what a burst of output used.
	debug.SetGCPercent(25)
	if *spare {
		err = monitor.RunSpare(report, func(dir string) {
			// Named for its container from here on, as if started so.
			retitle(os.Args, "--state-dir", dir)
		}, *standby)
		if errors.Is(err, monitor.ErrNotNeeded) {
			return 0
		}
	} else {
		err = monitor.Run(*stateDir, report)
	}
	if err != nil {
		return 1
	}
	return 0
}

// reportSocket checks that fd 3 is the client's sync socket.
func reportSocket() (*os.File, error) {
	var st unix.Stat_t
	if err := unix.Fstat(reportFD, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return nil, errors.New("fd 3 is not a socket: hako-shim is started by hakod (package shim), not by hand")
	}
	unix.CloseOnExec(reportFD)
	return os.NewFile(reportFD, "report"), nil
}

func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "hako-shim: the per-container monitor between hakod and the OCI runtime\n\n"+
		"Usage: hako-shim --state-dir DIR   (run by hakod, with its sync socket as fd 3)\n"+
		"       hako-shim --spare            (the same, told DIR on fd 3 when a container needs it)\n\nFlags:\n")
	fs.VisitAll(func(f *flag.Flag) {
		fmt.Fprintf(w, "  --%-10s %s\n", f.Name, f.Usage)
	})
}
