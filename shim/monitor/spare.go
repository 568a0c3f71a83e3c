package monitor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/shim/internal/proto"
	"github.com/hako-project/hako/shim/reaper"
	"github.com/hako-project/hako/shim/runtime"
)

// ErrNotNeeded is RunSpare's answer when the client let the spare go
// without assigning it a container.
var ErrNotNeeded = errors.New("spare shim not needed")

// RunSpare is the life of a spare shim (`hako-shim --spare`, see
// shim.Spares): started with the Go runtime's start-up already paid, it
// waits on report for the client's proto.Assign, points its stdout and
// stderr at the assigned state directory's shim log, and is from then on
// the shim of that directory's container (Run). End-of-file before an
// assignment, its owner gone or done with it, gives ErrNotNeeded.
// assigned, if set, is told the state directory before anything else.
// With standby, the path of a runtime that has `standby`, the spare also
// starts that runtime ahead of need (runtime.Standby) once it has idled
// for standbyDelay, for the container's first command.
func RunSpare(report *os.File, assigned func(stateDir string), standby string) error {
	// Armed before the wait, not after: the subreaper bit and the SIGCHLD
	// handler are the same for every container.
	r, err := reaper.New()
	if err != nil {
		return err
	}
	warm()
	takeStandby := startStandby(standby, r)
	var a proto.Assign
	err = proto.ReadMsg(report, &a)
	sb := takeStandby()
	if err != nil {
		sb.Close()
		if errors.Is(err, io.EOF) {
			return ErrNotNeeded
		}
		return fmt.Errorf("read the assignment: %w", err)
	}
	if !filepath.IsAbs(a.StateDir) {
		err = fmt.Errorf("assigned state directory %q: not an absolute path", a.StateDir)
	} else {
		if assigned != nil {
			assigned(a.StateDir)
		}
		err = logTo(filepath.Join(a.StateDir, proto.LogFile))
	}
	if err != nil {
		// The client waits for a report, as from a shim it started.
		_ = proto.WriteMsg(report, proto.Report{ShimPid: os.Getpid(), Error: err.Error()})
		sb.Close()
		return err
	}
	return run(a.StateDir, report, r, sb)
}

// standbyDelay is how long an idle spare waits before it starts its
// standby runtime. Back to back, the next container comes within it and
// takes the spare without one: a standby started then would start beside
// that container's start and slow it (its process start-up competes for
// the CPUs, as the spare's does, see shim.Spares; bench/engine/ab.sh back
// to back on the bridge: 59.3 -> 61.6 ms without the delay, 53.9 -> 52.7
// with it). After a pause the standby is ready long before the next
// container.
const standbyDelay = 20 * time.Millisecond

// startStandby starts `RUNTIME standby` (standby: the path of a runtime
// that has it, "" for none) through r once the spare has idled for
// standbyDelay. The function it returns cancels that if it has not begun,
// waits for it if it has, and returns the standby, nil if none was
// started.
func startStandby(standby string, r *reaper.Reaper) (take func() *runtime.Standby) {
	if standby == "" {
		return func() *runtime.Standby { return nil }
	}
	var mu sync.Mutex
	var sb *runtime.Standby
	taken := false
	timer := time.AfterFunc(standbyDelay, func() {
		mu.Lock()
		defer mu.Unlock()
		if !taken {
			// Failing, it leaves the first command to start its
			// process as without one; the spare has no log to say so
			// in yet.
			sb, _ = runtime.StartStandby(standby, runtime.Env(nil), r.Start)
		}
	})
	return func() *runtime.Standby {
		timer.Stop()
		mu.Lock()
		defer mu.Unlock()
		taken = true
		return sb
	}
}

// warm runs, while the spare idles, the code an assignment runs first for
// every container: the JSON decoding of the shim's config and the bundle's
// spec (encoding/json builds its field tables per type at first use),
// the encoding of the report, the log handler. Their first run, page
// faults of code and data mostly, then is not on the container's start.
func warm() {
	var cfg proto.Config
	_ = json.Unmarshal([]byte(`{"id":"w","bundle":"/w","runtime":"/w","runtime_root":"/w","env":["A=B"],"log":{"path":"/w"},"traceparent":"","run":true}`), &cfg)
	_, _ = parseBundle([]byte(`{"process":{"terminal":false},"linux":{"namespaces":[{"type":"pid"},{"type":"network","path":"/w"}]}}`))
	_, _ = json.Marshal(proto.Report{ShimPid: 1, Pid: 1})
	var req proto.Request
	_ = json.Unmarshal([]byte(`{"op":"start"}`), &req)
	slog.New(slog.NewTextHandler(io.Discard, nil)).With("id", "w").Info("warm", "pid", 1)
}

// logTo makes path the process's stdout and stderr, where a panic is
// written, as the client does for a shim it starts with --state-dir.
func logTo(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("shim log: %w", err)
	}
	defer f.Close()
	for _, fd := range []int{1, 2} {
		if err := unix.Dup3(int(f.Fd()), fd, 0); err != nil {
			return fmt.Errorf("shim log on fd %d: %w", fd, err)
		}
	}
	return nil
}
