package container

import (
	"context"
	"errors"

	"github.com/hako-project/hako/cli/command"
	"github.com/hako-project/hako/cli/hijack"
	"github.com/hako-project/hako/cli/runopts"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

type runFlags struct {
	detach     bool
	sigProxy   bool
	detachKeys string
}

// NewRunCommand is `hako run`: create, attach and wait (at once), start,
// and exit with the container's status (attach and wait are in place
// before start so no output and no exit is missed).
func NewRunCommand(cli *command.Cli) *cobra.Command {
	var opts *runopts.Options
	var rf runFlags
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  command.MinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRun(cmd, cli, opts, rf, args)
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&rf.detach, "detach", "d", false, "Run container in background and print container ID")
	fs.BoolVar(&rf.sigProxy, "sig-proxy", true, "Proxy received signals to the process")
	fs.StringVar(&rf.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	opts = runopts.AddFlags(fs)
	return cmd
}

func runRun(cmd *cobra.Command, cli *command.Cli, opts *runopts.Options, rf runFlags, args []string) error {
	req, err := parseRequest(cmd, cli, opts, args)
	if err != nil {
		return err
	}
	cfg := req.Config
	if rf.detach {
		if cmd.Flags().Changed("attach") {
			return errConflictAttachDetach
		}
		cfg.AttachStdin, cfg.AttachStdout, cfg.AttachStderr, cfg.StdinOnce = false, false, false, false
	} else if err := cli.In.CheckTty(cfg.AttachStdin, cfg.Tty); err != nil {
		return err
	}
	// Like docker's, run leaves --detach-keys to the daemon to validate.

	ctx := cmd.Context()
	id, err := createContainer(ctx, cli, req, opts)
	if err != nil {
		return startError(cmd, err)
	}
	attached := cfg.AttachStdin || cfg.AttachStdout || cfg.AttachStderr
	// As docker's CLI, only a run that stays attached proxies signals: one
	// with -d returns once the container starts.
	if rf.sigProxy && !cfg.Tty && attached {
		stop := proxySignals(ctx, cli, id)
		defer stop()
	}
	// The streams outlive a cancelled command context: they end when the
	// container's output ends.
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()

	var streams *attachStreams
	if attached {
		streams = &attachStreams{
			stdin: cfg.AttachStdin, stdout: cfg.AttachStdout, stderr: cfg.AttachStderr,
			tty: cfg.Tty, detachKeys: rf.detachKeys,
		}
	}
	statusCtx, cancelStatus := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelStatus()
	errCh, closeFn, status, err := attachAndWait(ctx, statusCtx, cli, id, streams, opts.AutoRemove)
	if err != nil {
		return err
	}
	if attached {
		defer closeFn()
	}

	api, err := cli.Client()
	if err != nil {
		return err
	}
	if !attached {
		// docker prints the ID while the start request is in flight.
		command.Println(cli.Out, id)
	}
	if _, err := api.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		if attached {
			cancel()
			<-errCh
		}
		if opts.AutoRemove {
			<-status
		}
		return startError(cmd, err)
	}
	if !attached {
		return nil
	}
	if cfg.Tty && cli.Out.IsTerminal() {
		monitorTtySize(ctx, cli, containerResizer(cli, id))
	}

	select {
	case err := <-errCh:
		if err != nil {
			if errors.Is(err, hijack.ErrDetached) {
				return nil
			}
			return err
		}
		if s := <-status; s != 0 {
			return command.StatusError{StatusCode: s}
		}
	case s := <-status:
		// Output may still be in flight: keep streaming to its end, unless
		// only stdin was attached.
		if !cfg.AttachStdout && !cfg.AttachStderr {
			cancel()
		}
		<-errCh
		if s != 0 {
			return command.StatusError{StatusCode: s}
		}
	}
	return nil
}
