package container

import (
	"context"
	"errors"

	"github.com/hako-project/hako/cli/command"
	"github.com/hako-project/hako/cli/hijack"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// NewAttachCommand is `hako attach`.
func NewAttachCommand(cli *command.Cli) *cobra.Command {
	var noStdin, sigProxy bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output, and error streams to a running container",
		Args:  command.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			name := args[0]
			if detachKeys != "" {
				if _, err := hijack.ParseDetachKeys(detachKeys); err != nil {
					return err
				}
			}
			api, err := cli.Client()
			if err != nil {
				return err
			}
			// Wait first, so an exit during the attach is not missed.
			wait := api.ContainerWait(context.WithoutCancel(ctx), name, client.ContainerWaitOptions{})
			c, err := runningContainer(ctx, api, name)
			if err != nil {
				return err
			}
			if err := cli.In.CheckTty(!noStdin, c.Config.Tty); err != nil {
				return err
			}
			if sigProxy && !c.Config.Tty {
				stop := proxySignals(ctx, cli, name)
				defer stop()
			}
			errCh, closeFn, err := attach(ctx, cli, name, attachStreams{
				stdin: !noStdin && c.Config.OpenStdin, stdout: true, stderr: true,
				tty: c.Config.Tty, detachKeys: detachKeys,
			})
			if err != nil {
				return err
			}
			defer closeFn()
			// The container may have stopped between the check and the
			// attach; an attach to a stopped container would hang.
			if _, err := runningContainer(ctx, api, name); err != nil {
				return err
			}
			if c.Config.Tty && cli.Out.IsTerminal() {
				monitorTtySize(ctx, cli, containerResizer(cli, name))
			}
			if err := <-errCh; err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			select {
			case r := <-wait.Result:
				if r.Error != nil {
					return errors.New(r.Error.Message)
				}
				if r.StatusCode != 0 {
					return command.StatusError{StatusCode: int(r.StatusCode)}
				}
			case err := <-wait.Error:
				return err
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&noStdin, "no-stdin", false, "Do not attach STDIN")
	fs.BoolVar(&sigProxy, "sig-proxy", true, "Proxy all received signals to the process")
	fs.StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}

func runningContainer(ctx context.Context, api interface {
	ContainerInspect(context.Context, string, client.ContainerInspectOptions) (client.ContainerInspectResult, error)
}, name string) (*container.InspectResponse, error) {
	res, err := api.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		return nil, err
	}
	c := &res.Container
	if c.State == nil || c.Config == nil {
		return nil, errors.New("incomplete inspect reply")
	}
	switch {
	case !c.State.Running:
		return nil, attachStateError("a stopped container, start it first")
	case c.State.Paused:
		return nil, attachStateError("a paused container, unpause it first")
	case c.State.Restarting:
		return nil, attachStateError("a restarting container, wait until it is running")
	}
	return c, nil
}

// attachStateError is docker 28's refusal to attach, in its wording.
type attachStateError string

func (e attachStateError) Error() string { return "You cannot attach to " + string(e) }
