// Command hako is docker's command line for the hako container stack: it
// speaks only the Docker Engine API, to hakod (unix:///run/hako/hako.sock
// by default) or to any dockerd given by -H, $HAKO_HOST or $DOCKER_HOST.
package main

import (
	"os"
	"runtime"

	"github.com/hako-project/hako/cli"
)

// version is set at build time (-X main.version=...).
var version = "dev"

func main() {
	// The CLI waits on a socket almost all of its life; with a P per CPU
	// Go's scheduler hands its goroutines between threads at every wake-up,
	// which cost 3-9 ms of CPU per `run` here (perf stat: 41 -> 32 ms
	// task-clock for `run --rm`, 524 -> 375 context switches) and CPU is
	// what many containers started at once compete for. An explicit
	// GOMAXPROCS from the environment still wins.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	os.Exit(cli.Main(cli.Env{
		Args:    os.Args[1:],
		Stdin:   os.Stdin,
		Stdout:  os.Stdout,
		Stderr:  os.Stderr,
		Getenv:  os.Getenv,
		Version: version,
	}))
}
