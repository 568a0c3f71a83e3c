package container

import (
	"github.com/hako-project/hako/cli/command"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// NewStopCommand is `hako stop`.
func NewStopCommand(cli *command.Cli) *cobra.Command {
	var signal string
	var timeout int
	cmd := &cobra.Command{
		Use:   "stop [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Stop one or more running containers",
		Args:  command.MinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := cli.Client()
			if err != nil {
				return err
			}
			opts := client.ContainerStopOptions{Signal: signal}
			if isFlagChanged(cmd.Flags(), "timeout", "time") {
				opts.Timeout = &timeout
			}
			return command.EachPrint(cli.Out, args, func(name string) error {
				_, err := api.ContainerStop(cmd.Context(), name, opts)
				return err
			})
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&signal, "signal", "s", "", "Signal to send to the container")
	fs.IntVarP(&timeout, "timeout", "t", 0, "Seconds to wait before killing the container")
	fs.IntVar(&timeout, "time", 0, "Seconds to wait before killing the container (deprecated: use --timeout)")
	_ = fs.MarkHidden("time")
	return cmd
}
