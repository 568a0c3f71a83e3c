package container

import (
	"context"
	"errors"
	"fmt"

	"github.com/hako-project/hako/cli/clitrace"
	"github.com/hako-project/hako/cli/command"
	"github.com/hako-project/hako/cli/hijack"
	"github.com/hako-project/hako/cli/runopts"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

type execFlags struct {
	detach      bool
	detachKeys  string
	env         *runopts.List
	envFile     *runopts.List
	interactive bool
	privileged  bool
	tty         bool
	user        string
	workdir     string
}

// NewExecCommand is `hako exec`.
func NewExecCommand(cli *command.Cli) *cobra.Command {
	f := execFlags{env: runopts.NewList(nil), envFile: runopts.NewList(nil)}
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running container",
		Args:  command.MinArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runExec(cmd.Context(), cli, f, args[0], args[1:])
		},
	}
	fs := cmd.Flags()
	fs.SetInterspersed(false)
	fs.BoolVarP(&f.detach, "detach", "d", false, "Detached mode: run command in the background")
	fs.StringVar(&f.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	fs.VarP(f.env, "env", "e", "Set environment variables")
	fs.Var(f.envFile, "env-file", "Read in a file of environment variables")
	fs.BoolVarP(&f.interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	fs.BoolVar(&f.privileged, "privileged", false, "Give extended privileges to the command")
	fs.BoolVarP(&f.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	fs.StringVarP(&f.user, "user", "u", "", "Username or UID (format: \"<name|uid>[:<group|gid>]\")")
	fs.StringVarP(&f.workdir, "workdir", "w", "", "Working directory inside the container")
	return cmd
}

func runExec(ctx context.Context, cli *command.Cli, f execFlags, ctr string, argv []string) error {
	env, err := runopts.ReadEnv(f.envFile.Values(), f.env.Values(), func(k string) (string, bool) {
		v := cli.Getenv(k)
		return v, v != ""
	})
	if err != nil {
		return err
	}
	if f.detachKeys != "" {
		if _, err := hijack.ParseDetachKeys(f.detachKeys); err != nil {
			return err
		}
	}
	opts := client.ExecCreateOptions{
		User: f.user, Privileged: f.privileged, TTY: f.tty, AttachStdin: f.interactive,
		AttachStdout: !f.detach, AttachStderr: !f.detach, DetachKeys: f.detachKeys,
		Env: env, WorkingDir: f.workdir, Cmd: argv,
	}
	if f.detach {
		opts.AttachStdin = false
	}
	api, err := cli.Client()
	if err != nil {
		return err
	}
	// docker's CLI inspects the container first, only to fail early; the
	// exec create that follows fails with the same status and message for
	// a missing, stopped or paused container, so hako saves the round trip
	// (2 of exec's ~50 ms). Only the order of the errors needs it: a
	// missing container is reported before a missing terminal.
	if !f.detach {
		if err := cli.In.CheckTty(opts.AttachStdin, opts.TTY); err != nil {
			if _, ierr := api.ContainerInspect(ctx, ctr, client.ContainerInspectOptions{}); ierr != nil {
				return ierr
			}
			return err
		}
	}
	if opts.TTY {
		h, w := cli.Out.Size()
		opts.ConsoleSize = client.ConsoleSize{Height: h, Width: w}
	}
	res, err := api.ExecCreate(ctx, ctr, opts)
	if err != nil {
		return err
	}
	if res.ID == "" {
		return errors.New("exec ID empty")
	}
	if f.detach {
		_, err := api.ExecStart(ctx, res.ID, client.ExecStartOptions{Detach: true, TTY: opts.TTY, ConsoleSize: opts.ConsoleSize})
		return err
	}

	actx, span := clitrace.StartAPISpan(ctx, "POST", "/v"+api.ClientVersion()+"/exec/"+res.ID+"/start")
	resp, err := api.ExecAttach(actx, res.ID, client.ExecAttachOptions{TTY: opts.TTY, ConsoleSize: opts.ConsoleSize})
	if err != nil {
		span.End(err)
		return err
	}
	defer resp.Close()
	errCh := make(chan error, 1)
	go func() {
		err := session(ctx, cli, attachStreams{
			stdin: opts.AttachStdin, stdout: opts.AttachStdout, stderr: opts.AttachStderr,
			tty: opts.TTY, detachKeys: f.detachKeys,
		}, hijack.Conn{Conn: resp.Conn, Reader: resp.Reader})
		span.End(err)
		errCh <- err
	}()
	if opts.TTY && cli.Out.IsTerminal() {
		mctx, cancel := context.WithCancel(ctx)
		defer cancel()
		monitorTtySize(mctx, cli, func(ctx context.Context, h, w uint) error {
			_, err := api.ExecResize(ctx, res.ID, client.ExecResizeOptions{Height: h, Width: w})
			return err
		})
	}
	if err := <-errCh; err != nil {
		return err
	}
	ins, err := api.ExecInspect(ctx, res.ID, client.ExecInspectOptions{})
	if err != nil {
		if client.IsErrConnectionFailed(err) {
			return command.StatusError{StatusCode: -1}
		}
		return fmt.Errorf("inspect exec %s: %w", res.ID, err)
	}
	if ins.ExitCode != 0 {
		return command.StatusError{StatusCode: ins.ExitCode}
	}
	return nil
}
