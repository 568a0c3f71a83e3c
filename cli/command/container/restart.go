package container

import (
	"github.com/hako-project/hako/cli/command"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// NewRestartCommand is `hako restart`.
func NewRestartCommand(cli *command.Cli) *cobra.Command {
	var signal string
	var timeout int
	cmd := &cobra.Command{
		Use:   "restart [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Restart one or more containers",
		Args:  command.MinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := cli.Client()
			if err != nil {
				return err
			}
			opts := client.ContainerRestartOptions{Signal: signal}
			if isFlagChanged(cmd.Flags(), "timeout", "time") {
				opts.Timeout = &timeout
			}
			var errs command.Errors
			// docker restarts one after the other.
			for _, name := range args {
				if _, err := api.ContainerRestart(cmd.Context(), name, opts); err != nil {
					errs.Add(err)
					continue
				}
				command.Println(cli.Out, name)
			}
			return errs.Err()
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&signal, "signal", "s", "", "Signal to send to the container")
	fs.IntVarP(&timeout, "timeout", "t", 0, "Seconds to wait before killing the container")
	fs.IntVar(&timeout, "time", 0, "Seconds to wait before killing the container (deprecated: use --timeout)")
	_ = fs.MarkHidden("time")
	return cmd
}
