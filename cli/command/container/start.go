package container

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hako-project/hako/cli/command"
	"github.com/hako-project/hako/cli/hijack"
	"github.com/hako-project/hako/cli/streams"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// NewStartCommand is `hako start`.
func NewStartCommand(cli *command.Cli) *cobra.Command {
	var attachF, interactive bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  command.MinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			api, err := cli.Client()
			if err != nil {
				return err
			}
			if !attachF && !interactive {
				// One after the other, each failure said at once.
				var failed []string
				for _, name := range args {
					if _, err := api.ContainerStart(ctx, name, client.ContainerStartOptions{}); err != nil {
						fmt.Fprintln(cli.Err, err)
						failed = append(failed, name)
						continue
					}
					command.Println(cli.Out, name)
				}
				if len(failed) > 0 {
					return fmt.Errorf("%s: failed to start containers: %s", "Error", strings.Join(failed, ", "))
				}
				return nil
			}
			if len(args) > 1 {
				return errors.New("you cannot start and attach multiple containers at once")
			}
			res, err := api.ContainerInspect(ctx, args[0], client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			c := res.Container
			if c.Config == nil || c.HostConfig == nil {
				return fmt.Errorf("container %s: incomplete inspect reply", args[0])
			}
			if c.Config.Tty && interactive && !cli.In.IsTerminal() {
				return streams.ErrNotTTY
			}
			if detachKeys != "" {
				if _, err := hijack.ParseDetachKeys(detachKeys); err != nil {
					return err
				}
			}
			if !c.Config.Tty {
				stop := proxySignals(ctx, cli, c.ID)
				defer stop()
			}
			waitCtx, cancelWait := context.WithCancel(ctx)
			defer cancelWait()
			errCh, closeFn, status, err := attachAndWait(ctx, waitCtx, cli, c.ID, &attachStreams{
				stdin: interactive && c.Config.OpenStdin, stdout: true, stderr: true,
				tty: c.Config.Tty, detachKeys: detachKeys,
			}, c.HostConfig.AutoRemove)
			if err != nil {
				return err
			}
			defer closeFn()
			if _, err := api.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
				closeFn()
				<-errCh
				return err
			}
			if c.Config.Tty && cli.Out.IsTerminal() {
				monitorTtySize(ctx, cli, containerResizer(cli, c.ID))
			}
			if err := <-errCh; err != nil {
				if errors.Is(err, hijack.ErrDetached) {
					return nil
				}
				return err
			}
			if s := <-status; s != 0 {
				return command.StatusError{StatusCode: s}
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&attachF, "attach", "a", false, "Attach STDOUT/STDERR and forward signals")
	fs.BoolVarP(&interactive, "interactive", "i", false, "Attach container's STDIN")
	fs.StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}
