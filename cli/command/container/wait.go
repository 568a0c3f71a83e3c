package container

import (
	"github.com/hako-project/hako/cli/command"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// NewWaitCommand is `hako wait`: block until each container stops, then
// print its exit code.
func NewWaitCommand(cli *command.Cli) *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  command.MinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := cli.Client()
			if err != nil {
				return err
			}
			var errs command.Errors
			for _, name := range args {
				res := api.ContainerWait(cmd.Context(), name, client.ContainerWaitOptions{})
				select {
				case r := <-res.Result:
					command.Println(cli.Out, r.StatusCode)
				case err := <-res.Error:
					errs.Add(err)
				}
			}
			return errs.Err()
		},
	}
}
