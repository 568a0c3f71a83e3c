// Package hooks runs the OCI lifecycle hooks that execute in the runtime's
// namespace (prestart, createRuntime, poststart, poststop), each with the
// container state as JSON on its stdin and its own timeout, as the runtime
// spec asks. createContainer and startContainer hooks run inside the
// container and are carried out by the init (runtime/nsexec).
package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/internal/timerslack"
	"github.com/hako-project/hako/trace"
)

// Run runs hooks in order and stops at the first failure, whose error names
// the hook by its spec field (kind is the field name, e.g. "createRuntime").
func Run(ctx context.Context, kind string, hs []specs.Hook, st specs.State) error {
	if len(hs) == 0 {
		return nil
	}
	in, err := json.Marshal(st)
	if err != nil {
		return err
	}
	for i, h := range hs {
		if err := run(ctx, fmt.Sprintf("hooks.%s[%d]", kind, i), h, in); err != nil {
			return err
		}
	}
	return nil
}

// RunAll runs every hook even when some fail, as the spec asks for
// poststart and poststop hooks (a failure there is a warning), and returns
// the failures joined.
func RunAll(ctx context.Context, kind string, hs []specs.Hook, st specs.State) error {
	if len(hs) == 0 {
		return nil
	}
	in, err := json.Marshal(st)
	if err != nil {
		return err
	}
	var errs []error
	for i, h := range hs {
		if err := run(ctx, fmt.Sprintf("hooks.%s[%d]", kind, i), h, in); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func run(ctx context.Context, field string, h specs.Hook, state []byte) (err error) {
	_, span := trace.Start(ctx, "runtime.hooks.run", "hook", field, "path", h.Path)
	defer func() { span.End(err) }()
	if h.Timeout != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*h.Timeout)*time.Second)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, h.Path)
	if len(h.Args) > 0 {
		cmd.Args = h.Args
	}
	// A hook gets exactly the environment the spec gives it.
	cmd.Env = append([]string{}, h.Env...)
	// Files, not a reader and a buffer: with those, os/exec copies through
	// goroutines, and with the runtime's one P (internal/oneproc) they wait
	// while Wait blocks in waitid, until sysmon takes the P back, up to
	// 10 ms later. A hook that reads its state first (all of them should)
	// then waited 4-23 ms instead of ~3 (`hako-runtime --trace run` of a
	// bundle with one `hako-runtime gate` hook, five runs).
	stdin, err := memFile("hook-state", state)
	if err != nil {
		return fmt.Errorf("%s (%s): %w", field, h.Path, err)
	}
	defer stdin.Close()
	out, err := memFile("hook-output", nil)
	if err != nil {
		return fmt.Errorf("%s (%s): %w", field, h.Path, err)
	}
	defer out.Close()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, out, out
	// The hook is the user's program: the runtime's original timer slack.
	err = timerslack.Fork(cmd.Start)
	if err == nil {
		err = cmd.Wait()
	}
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("%s (%s): did not finish within its timeout of %d s", field, h.Path, *h.Timeout)
	}
	if err != nil {
		msg := strings.TrimSpace(readBack(out))
		if msg != "" {
			return fmt.Errorf("%s (%s): %w: %s", field, h.Path, err, msg)
		}
		return fmt.Errorf("%s (%s): %w", field, h.Path, err)
	}
	return nil
}

// memFile is an anonymous in-memory file holding data, read from its start.
func memFile(name string, data []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	if len(data) > 0 {
		_, err = f.Write(data)
		if err == nil {
			_, err = f.Seek(0, io.SeekStart)
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return f, nil
}

// readBack is what a hook wrote to f, at most 64 KiB.
func readBack(f *os.File) string {
	b := make([]byte, 64<<10)
	n, _ := f.ReadAt(b, 0)
	return string(b[:n])
}
