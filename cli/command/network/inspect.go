package network

import (
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/hako-project/hako/cli/command"
	"github.com/hako-project/hako/cli/command/system"
)

// NewInspectCommand is `hako network inspect`.
func NewInspectCommand(cli *command.Cli) *cobra.Command {
	var format string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NETWORK [NETWORK...]",
		Short: "Display detailed information on one or more networks",
		Args:  command.MinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := cli.Client()
			if err != nil {
				return err
			}
			return system.Inspect(cli.Out, args, format, func(ref string) (any, []byte, error) {
				r, err := api.NetworkInspect(cmd.Context(), ref, client.NetworkInspectOptions{Verbose: verbose})
				return r.Network, r.Raw, err
			})
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&format, "format", "f", "", "Format output using a custom template:\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.\nRefer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates")
	fs.BoolVarP(&verbose, "verbose", "v", false, "Verbose output for diagnostics")
	return cmd
}
