package network

import (
	"strings"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/hako-project/hako/cli/command"
)

const pruneWarning = "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?"

// NewPruneCommand is `hako network prune`.
func NewPruneCommand(cli *command.Cli) *cobra.Command {
	var force bool
	var filters command.FilterFlag
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all unused networks",
		Args:  command.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !force && !command.Confirm(cmd.Context(), cli.In, cli.Out, pruneWarning) {
				return nil
			}
			api, err := cli.Client()
			if err != nil {
				return err
			}
			f := client.Filters{}
			for _, v := range filters.Values() {
				k, val, _ := strings.Cut(v, "=")
				f.Add(strings.ToLower(strings.TrimSpace(k)), val)
			}
			res, err := api.NetworkPrune(cmd.Context(), client.NetworkPruneOptions{Filters: f})
			if err != nil {
				return err
			}
			if len(res.Report.NetworksDeleted) > 0 {
				var out strings.Builder
				out.WriteString("Deleted Networks:\n")
				for _, n := range res.Report.NetworksDeleted {
					out.WriteString(n + "\n")
				}
				command.Println(cli.Out, out.String())
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	fs.Var(&filters, "filter", `Provide filter values (e.g. "until=<timestamp>")`)
	return cmd
}
