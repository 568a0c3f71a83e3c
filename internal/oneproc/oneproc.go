// Package oneproc gives the program it is imported into one P (GOMAXPROCS=1)
// unless $GOMAXPROCS says otherwise.
//
// For short-lived commands that mostly wait: the hako CLI (on its socket)
// and hako-runtime (on the container's init). They gain nothing from a P
// per CPU, while Go's scheduler hands their goroutines between threads at
// every wake-up (perf stat of `hako run --rm`: 41 -> 32 ms of CPU, 524 ->
// 375 context switches; bench/runtime: -35% wall for hako-runtime on a
// 2-CPU machine).
//
// Why a package and not a line in main: package inits run in import-path
// order once their imports are done, so this one, needing only runtime and
// syscall, runs before most others have spread work over a second P;
// calling runtime.GOMAXPROCS from main instead paid for releasing that P's
// caches (perf record: 5-7% of each command's own CPU).
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
