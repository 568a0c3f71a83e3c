package container

import (
	"fmt"
	"strings"

	"github.com/docker/go-units"
	"github.com/hako-project/hako/cli/command"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

const pruneWarning = `WARNING! This will remove all stopped containers.
Are you sure you want to continue?`

// NewPruneCommand is `hako container prune`.
func NewPruneCommand(cli *command.Cli) *cobra.Command {
	var force bool
	var filter command.FilterFlag
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all stopped containers",
		Args:  command.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !force && !command.Confirm(cmd.Context(), cli.In, cli.Out, pruneWarning) {
				return nil // docker: a "no" ends the command quietly, status 0
			}
			reclaimed, out, err := Prune(cmd, cli, filter.Values())
			if err != nil {
				return err
			}
			if out != "" {
				fmt.Fprintln(cli.Out, out)
			}
			fmt.Fprintln(cli.Out, "Total reclaimed space:", units.HumanSize(float64(reclaimed)))
			return nil
		},
	}
	fs := cmd.Flags()
	fs.Var(&filter, "filter", `Provide filter values (e.g. "until=<timestamp>")`)
	fs.BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	return cmd
}

// Prune removes the stopped containers the filters select and returns the
// bytes reclaimed and what docker prints about it ("" when nothing went);
// system prune uses it too.
func Prune(cmd *cobra.Command, cli *command.Cli, filters []string) (uint64, string, error) {
	api, err := cli.Client()
	if err != nil {
		return 0, "", err
	}
	res, err := api.ContainerPrune(cmd.Context(), client.ContainerPruneOptions{Filters: toFilters(filters)})
	if err != nil {
		return 0, "", err
	}
	if len(res.Report.ContainersDeleted) == 0 {
		return 0, "", nil
	}
	var b strings.Builder
	b.WriteString("Deleted Containers:\n")
	for _, id := range res.Report.ContainersDeleted {
		b.WriteString(id + "\n")
	}
	return res.Report.SpaceReclaimed, b.String(), nil
}
