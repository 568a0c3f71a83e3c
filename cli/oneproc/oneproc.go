// Package oneproc gives the program it is imported into one P (GOMAXPROCS=1)
// unless $GOMAXPROCS says otherwise.
//
// Why a package and not a line in main: a client that waits on a socket
// almost all of its life gains nothing from a P per CPU, while Go's scheduler
// hands its goroutines between threads at every wake-up (perf stat of
// `hako run --rm`: 41 -> 32 ms of CPU, 524 -> 375 context switches). Package
// inits run in import-path order once their imports are done, so this one,
// needing only runtime and syscall, runs before most others have spread
// work over a second P; calling runtime.GOMAXPROCS from main instead paid
// for releasing that P's caches (about 1 ms per command here).
package oneproc

import (
	"runtime"
	"syscall"
)

func init() {
	if _, set := syscall.Getenv("GOMAXPROCS"); !set {
		runtime.GOMAXPROCS(1)
	}
}
