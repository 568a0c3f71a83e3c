package container

import (
	"github.com/hako-project/hako/cli/command"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// NewPauseCommand is `hako pause`.
func NewPauseCommand(cli *command.Cli) *cobra.Command {
	return &cobra.Command{
		Use:   "pause CONTAINER [CONTAINER...]",
		Short: "Pause all processes within one or more containers",
		Args:  command.MinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := cli.Client()
			if err != nil {
				return err
			}
			return command.EachPrint(cli.Out, args, func(name string) error {
				_, err := api.ContainerPause(cmd.Context(), name, client.ContainerPauseOptions{})
				return err
			})
		},
	}
}
