package monitor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/shim/internal/proto"
	"github.com/hako-project/hako/shim/reaper"
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
func RunSpare(report *os.File, assigned func(stateDir string)) error {
	// Armed before the wait, not after: the subreaper bit and the SIGCHLD
	// handler are the same for every container.
	r, err := reaper.New()
	if err != nil {
		return err
	}
	warm()
	var a proto.Assign
	if err := proto.ReadMsg(report, &a); err != nil {
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
		return err
	}
	return run(a.StateDir, report, r)
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
