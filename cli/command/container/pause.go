package container

import (
	"context"

	"github.com/hako-project/hako/cli/apiclient"
	"github.com/hako-project/hako/cli/command"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// NewPauseCommand is `hako pause`.
func NewPauseCommand(cli *command.Cli) *cobra.Command {
	return eachContainerCommand(cli, "pause", "Pause all processes within one or more containers",
		func(ctx context.Context, api *apiclient.Client, name string) error {
			_, err := api.ContainerPause(ctx, name, client.ContainerPauseOptions{})
			return err
		})
}

// NewUnpauseCommand is `hako unpause`.
func NewUnpauseCommand(cli *command.Cli) *cobra.Command {
	return eachContainerCommand(cli, "unpause", "Unpause all processes within one or more containers",
		func(ctx context.Context, api *apiclient.Client, name string) error {
			_, err := api.ContainerUnpause(ctx, name, client.ContainerUnpauseOptions{})
			return err
		})
}

// eachContainerCommand is a command that does one thing to each container
// named, printing each name once done and the daemon's errors after, as
// docker's pause and unpause do.
func eachContainerCommand(cli *command.Cli, name, short string, do func(context.Context, *apiclient.Client, string) error) *cobra.Command {
	return &cobra.Command{
		Use:   name + " CONTAINER [CONTAINER...]",
		Short: short,
		Args:  command.MinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := cli.Client()
			if err != nil {
				return err
			}
			return command.EachPrint(cli.Out, args, func(c string) error { return do(cmd.Context(), api, c) })
		},
	}
}
