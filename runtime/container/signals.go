package container

import (
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
)

// signalCatcher catches every signal the runtime receives, for `run` and
// `exec` without --detach to pass on to the container's process.
//
// Catching all of them with signal.Notify takes 1.5-2.5 ms, and letting
// them go again with signal.Stop another 1-1.5 ms (a five-line Go program
// here): the Go runtime enables each of the ~60 signals with a round trip
// to its signal thread, and perf sched shows a thread switch for each.
// So the signals a terminal or a supervisor sends to stop a program are
// caught before the container exists, as before, and the rest in the
// background while the container starts, which takes longer.
type signalCatcher struct {
	C    chan os.Signal
	done chan struct{} // closed once every signal is caught
}

// stopSignals are caught at once: what ^C, ^\, kill, a closed terminal and
// the usual reload and dump requests send.
var stopSignals = []os.Signal{unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2}

func catchSignals() *signalCatcher {
	s := &signalCatcher{C: make(chan os.Signal, 64), done: make(chan struct{})}
	signal.Notify(s.C, stopSignals...)
	go func() {
		signal.Notify(s.C)
		close(s.done)
	}()
	return s
}

// all waits until every signal is caught; call it before waiting for the
// container's process, so that none is missed from then on.
func (s *signalCatcher) all() { <-s.done }

// release gives the signals back. The runtime exits right after it (run
// and exec are its last act), so signal.Stop runs in the background rather
// than delay the exit by a millisecond or more; if the process goes on, a
// signal that comes before Stop is done is dropped instead of acted on.
func (s *signalCatcher) release() {
	go func() {
		<-s.done
		signal.Stop(s.C)
	}()
}
