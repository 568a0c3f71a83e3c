package shim

import (
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hako-project/hako/shim/runtime"
)

// Spares keeps one hako-shim started ahead of need, so that a container's
// start does not wait for a shim's process start: on the machines hako is
// measured on, starting a Go process is ~8 ms of page faults, a tenth of
// `hako run --rm`. The spare (`hako-shim --spare`) runs the Go runtime's
// start-up and then blocks reading its sync socket; Start hands it the
// container's state directory (proto.Assign) and it carries on as
// `hako-shim --state-dir DIR` would. It has no state directory, socket or
// container until then, so there is nothing of it to adopt or clean up
// after a crash: when its owner exits, killed or not, the kernel closes
// the socket, and the spare reads end-of-file and exits.
//
// One spare at most, started once no Start has run for spareDelay:
// sequential starts each find one ready, and a burst of parallel starts
// uses it for the first and starts shims as before for the rest. Its cost
// is one idle shim once a container has been started, not one per
// container.
//
// With Standby set, the spare also starts that runtime ahead of need
// (`RUNTIME standby`, runtime.Standby) once its own start-up is done, and
// the container's create or run is handed to it: a second process start
// off the container's start, for the price of one more idle process while
// the spare waits.
//
// The zero value is ready to use; a nil *Spares never has a spare. Close
// it when its owner stops.
type Spares struct {
	// Standby is the path of a runtime that has `standby`
	// (runtime.HasStandby), usually the default one; "" for none. Set it
	// before the first Start.
	Standby string

	mu      sync.Mutex
	cur     *spare
	filling bool
	closed  bool
	timer   *time.Timer // a refill to come (later)
	wg      sync.WaitGroup
}

// StandbyRuntime is the path of runtime name (as Config.Runtime: a path or
// a name on $PATH, "" for DefaultRuntime) if it has `standby`
// (runtime.HasStandby: it runs `RUNTIME features` once), else "": what
// Spares.Standby wants.
func StandbyRuntime(name string) string {
	path, err := lookRuntime(name)
	if err != nil || !runtime.HasStandby(path) {
		return ""
	}
	return path
}

// spareDelay is how long after the last Start the next spare starts. A
// spare started at once starts beside the container just created: its
// program, and for a short one like `run --rm IMG true` its exit and
// removal, which come within this time. On this VM process start-ups slow
// each other well beyond their CPU time (page faults mostly; nice 19 for
// the spare did not help), so that container paid for most of what the
// spare saves the next one. Started later, the spare's start-up falls in
// the pause before the next start, when there is one; back to back it
// slows the next start either way. Figures and the command in
// docs/shim.md.
const spareDelay = 30 * time.Millisecond

// spareRoom is the length of the blank argument a spare is started with,
// room in its command line for the `--state-dir DIR` it shows once
// assigned (cmd/hako-shim's retitle): "--state-dir " and a state
// directory of hakod's (its exec root, "shims/" and a 64-hex ID) fit.
const spareRoom = 256

// spare is one idle shim.
type spare struct {
	bin  string
	file runtime.BinaryID // bin as it was when the spare started
	env  string           // its environment, joined
	sync *os.File
	done <-chan struct{} // closed when the process has exited
}

// take returns the sync socket of the spare if it was started from bin
// with env and is alive; nil otherwise (and an unfit spare is let go).
func (s *Spares) take(bin string, env []string) *os.File {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	sp := s.cur
	s.cur = nil
	s.mu.Unlock()
	if sp == nil {
		return nil
	}
	if sp.fits(bin, strings.Join(env, "\x00")) {
		return sp.sync
	}
	sp.sync.Close() // it reads EOF and exits
	return nil
}

func (sp *spare) fits(bin, env string) bool {
	select {
	case <-sp.done:
		return false
	default:
	}
	id, ok := runtime.StatBinary(bin)
	return ok && sp.bin == bin && sp.env == env && id == sp.file
}

// later starts a spare from bin with env once no Start has called later
// for spareDelay (refill).
func (s *Spares) later(bin string, env []string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	s.timer = time.AfterFunc(spareDelay, func() { s.refill(bin, env) })
}

// refill starts a spare from bin with env in the background, unless one is
// there or on its way, or s is closed.
func (s *Spares) refill(bin string, env []string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.filling || s.cur != nil {
		return
	}
	s.filling = true
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		sp := startSpare(bin, env, s.Standby)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.filling = false
		if sp != nil {
			s.cur = sp // Close, if it has begun, waits for this and ends it
		}
	}()
}

// startSpare starts `hako-shim --spare` (with --standby-runtime, if
// standby is set); nil if it cannot be started (the next Start then starts
// its shim itself and says why if that fails too).
func startSpare(bin string, env []string, standby string) *spare {
	id, ok := runtime.StatBinary(bin)
	if !ok {
		return nil
	}
	args := []string{"--spare"}
	if standby != "" {
		args = append(args, "--standby-runtime", standby)
	}
	sync, done, err := spawn(bin, append(args, strings.Repeat(" ", spareRoom)), env, nil)
	if err != nil {
		return nil
	}
	return &spare{bin: bin, file: id, env: strings.Join(env, "\x00"), sync: sync, done: done}
}

// Close ends the spare, if any, and waits (a few seconds at most) until it
// has exited; later Starts start their shims themselves.
func (s *Spares) Close() {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.closed = true
	if s.timer != nil {
		s.timer.Stop() // a refill it has begun sees closed
	}
	s.mu.Unlock()
	s.wg.Wait() // a spare on its way
	s.mu.Lock()
	sp := s.cur
	s.cur = nil
	s.mu.Unlock()
	if sp == nil {
		return
	}
	sp.sync.Close()
	select {
	case <-sp.done:
	case <-time.After(5 * time.Second):
	}
}
