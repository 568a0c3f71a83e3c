package container

import (
	"github.com/hako-project/hako/cli/command"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// NewUnpauseCommand is `hako unpause`.
func NewUnpauseCommand(cli *command.Cli) *cobra.Command {
	return &cobra.Command{
		Use:   "unpause CONTAINER [CONTAINER...]",
		Short: "Unpause all processes within one or more containers",
		Args:  command.MinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := cli.Client()
			if err != nil {
				return err
			}
			return command.EachPrint(cli.Out, args, func(name string) error {
				_, err := api.ContainerUnpause(cmd.Context(), name, client.ContainerUnpauseOptions{})
				return err
			})
		},
	}
}
