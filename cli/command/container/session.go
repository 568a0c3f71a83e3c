// Package container holds hako's container commands (run, create, start,
// stop, restart, kill, rm, ps, logs, exec, attach, wait), one file per
// command, each speaking only the Engine API through the moby client.
package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hako-project/hako/cli/clitrace"
	"github.com/hako-project/hako/cli/command"
	"github.com/hako-project/hako/cli/hijack"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"golang.org/x/sys/unix"
)

// attachStreams says which of the CLI's streams a session uses.
type attachStreams struct {
	stdin          bool
	stdout, stderr bool
	tty            bool
	detachKeys     string
}

// attach opens a hijacked attach connection to id and streams it in the
// background. The returned channel yields the session's end (nil, an I/O
// error, or hijack.ErrDetached); close releases the connection.
func attach(ctx context.Context, cli *command.Cli, id string, s attachStreams) (<-chan error, func(), error) {
	api, err := cli.Client()
	if err != nil {
		return nil, nil, err
	}
	actx, span := clitrace.StartAPISpan(ctx, "POST", "/v"+api.ClientVersion()+"/containers/"+id+"/attach")
	resp, err := api.ContainerAttach(actx, id, client.ContainerAttachOptions{
		Stream: true, Stdin: s.stdin, Stdout: s.stdout, Stderr: s.stderr, DetachKeys: s.detachKeys,
	})
	if err != nil {
		span.End(err)
		return nil, nil, err
	}
	errCh := make(chan error, 1)
	go func() {
		err := session(ctx, cli, s, hijack.Conn{Conn: resp.Conn, Reader: resp.Reader})
		span.End(err)
		errCh <- err
	}()
	return errCh, resp.Close, nil
}

// session wires the CLI's streams to a hijacked connection.
func session(ctx context.Context, cli *command.Cli, s attachStreams, conn hijack.Conn) error {
	h := hijack.Session{Tty: s.tty, DetachKeys: s.detachKeys, In: cli.In, Out: cli.Out, Log: cli.Log}
	if s.stdin {
		h.Stdin = cli.In
	}
	if s.stdout {
		h.Stdout = cli.Out
	}
	if s.stderr {
		if s.tty {
			h.Stderr = cli.Out
		} else {
			h.Stderr = cli.Err
		}
	}
	return h.Stream(ctx, conn)
}

// resizer resizes a container's or exec's pty.
type resizer func(ctx context.Context, height, width uint) error

// monitorTtySize sets the pty to the terminal's size now (retrying while
// the process is starting) and again on every SIGWINCH until ctx ends.
func monitorTtySize(ctx context.Context, cli *command.Cli, resize resizer) {
	h, w := cli.Out.Size()
	if h == 0 && w == 0 {
		return
	}
	go func() {
		for i := 0; i < 10; i++ {
			if err := resize(ctx, h, w); err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(i+1) * 10 * time.Millisecond):
			}
		}
	}()
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGWINCH)
	go func() {
		defer signal.Stop(sigc)
		for {
			select {
			case <-ctx.Done():
				return
			case <-sigc:
				h, w := cli.Out.Size()
				_ = resize(ctx, h, w)
			}
		}
	}()
}

func containerResizer(cli *command.Cli, id string) resizer {
	return func(ctx context.Context, h, w uint) error {
		api, err := cli.Client()
		if err != nil {
			return err
		}
		_, err = api.ContainerResize(ctx, id, client.ContainerResizeOptions{Height: h, Width: w})
		return err
	}
}

// proxySignals forwards every signal the CLI receives to the container
// (--sig-proxy) until the returned stop func is called. SIGCHLD, SIGPIPE,
// SIGURG (the Go runtime's preemption signal) and SIGWINCH are the CLI's
// own business.
//
// Catching every signal takes 1.5-2.5 ms (Go enables each of the ~60 with
// a round trip to its signal thread) and letting them go 1-1.5 ms more, on
// the path of every foreground run. So both happen in the background: the
// catching while the attach and start requests are under way (the
// container's program cannot run before the start), the letting go as the
// CLI exits. SIGINT and SIGTERM are caught from the start anyway (cli.go).
func proxySignals(ctx context.Context, cli *command.Cli, id string) (stop func()) {
	sigc := make(chan os.Signal, 128)
	caught := make(chan struct{})
	go func() {
		signal.Notify(sigc)
		close(caught)
	}()
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-sigc:
				sig, ok := s.(syscall.Signal)
				if !ok || sig == syscall.SIGCHLD || sig == syscall.SIGPIPE || sig == syscall.SIGURG || sig == syscall.SIGWINCH {
					continue
				}
				api, err := cli.Client()
				if err != nil {
					continue
				}
				if _, err := api.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: signalName(sig)}); err != nil {
					cli.Log.Debug("forward signal", "signal", sig, "err", err)
				}
			}
		}
	}()
	return func() {
		cancel()
		go func() {
			<-caught
			signal.Stop(sigc)
		}()
	}
}

// signalName is the name the kill endpoint takes ("TERM"); signals
// without a name go by number.
func signalName(s syscall.Signal) string {
	if n := unix.SignalName(s); n != "" {
		return strings.TrimPrefix(n, "SIG")
	}
	return strconv.Itoa(int(s))
}

// attachAndWait opens the attach session to id (unless s is nil) and
// sends the wait request for it at once, and returns when both are
// established (the connection hijacked, the wait's header in), so that a
// start sent afterwards misses neither output nor exit: the two round
// trips overlap instead of adding up. The wait runs on waitCtx, which the
// caller cancels when done with it, an attach failure included.
func attachAndWait(ctx, waitCtx context.Context, cli *command.Cli, id string, s *attachStreams, autoRemove bool) (errCh <-chan error, closeFn func(), status <-chan int, err error) {
	// Build the client here, not in the two goroutines at once.
	if _, err := cli.Client(); err != nil {
		return nil, nil, nil, err
	}
	waited := make(chan client.ContainerWaitResult, 1)
	go func() { waited <- sendWait(waitCtx, cli, id, autoRemove) }()
	if s != nil {
		if errCh, closeFn, err = attach(ctx, cli, id, *s); err != nil {
			return nil, nil, nil, err
		}
	}
	return errCh, closeFn, exitStatus(waitCtx, cli, <-waited), nil
}

// sendWait sends the wait request for id's next exit (or removal, with
// autoRemove) and returns once the daemon has answered with its header
// (moby's ContainerWait returns then), so the wait is in place.
func sendWait(ctx context.Context, cli *command.Cli, id string, autoRemove bool) client.ContainerWaitResult {
	api, err := cli.Client()
	if err != nil {
		errc := make(chan error, 1)
		errc <- err
		return client.ContainerWaitResult{Error: errc}
	}
	cond := container.WaitConditionNextExit
	if autoRemove {
		cond = container.WaitConditionRemoved
	}
	return api.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: cond})
}

// exitStatus delivers the exit status a sent wait yields; 125 when
// waiting failed, after saying why on stderr, as docker does.
func exitStatus(ctx context.Context, cli *command.Cli, res client.ContainerWaitResult) <-chan int {
	status := make(chan int, 1)
	go func() {
		// A cancelled wait (the command is done with it) is no failure.
		defer close(status)
		select {
		case <-ctx.Done():
		case r := <-res.Result:
			if r.Error != nil {
				fmt.Fprintf(cli.Err, "Error waiting for container: %v\n", r.Error.Message)
				status <- 125
				return
			}
			status <- int(r.StatusCode)
		case err := <-res.Error:
			if errors.Is(err, context.Canceled) {
				return
			}
			fmt.Fprintf(cli.Err, "error waiting for container: %v\n", err)
			status <- 125
		}
	}()
	return status
}
