package container

import (
	"fmt"

	"github.com/hako-project/hako/cli/command"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// NewDiffCommand is `hako diff`: what a container changed in its
// filesystem, one "A|C|D PATH" line per change.
func NewDiffCommand(cli *command.Cli) *cobra.Command {
	return &cobra.Command{
		Use:   "diff CONTAINER",
		Short: "Inspect changes to files or directories on a container's filesystem",
		Args:  command.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := cli.Client()
			if err != nil {
				return err
			}
			res, err := api.ContainerDiff(cmd.Context(), args[0], client.ContainerDiffOptions{})
			if err != nil {
				return err
			}
			for _, c := range res.Changes {
				fmt.Fprintf(cli.Out, "%s %s\n", c.Kind, c.Path)
			}
			return nil
		},
	}
}
