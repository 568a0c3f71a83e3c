package image

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/docker/go-units"
	"github.com/hako-project/hako/cli/command"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

const (
	allImagesWarning = `WARNING! This will remove all images without at least one container associated to them.
Are you sure you want to continue?`
	danglingWarning = `WARNING! This will remove all dangling images.
Are you sure you want to continue?`
)

// NewPruneCommand is `hako image prune`.
func NewPruneCommand(cli *command.Cli) *cobra.Command {
	var force, all bool
	var filter command.FilterFlag
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused images",
		Args:  command.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			warning := danglingWarning
			if all {
				warning = allImagesWarning
			}
			if !force && !command.Confirm(cmd.Context(), cli.In, cli.Out, warning) {
				return nil
			}
			reclaimed, out, err := Prune(cmd, cli, all, filter.Values())
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
	fs.BoolVarP(&all, "all", "a", false, "Remove all unused images, not just dangling ones")
	fs.Var(&filter, "filter", `Provide filter values (e.g. "until=<timestamp>")`)
	fs.BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	return cmd
}

// Prune removes unused images (only untagged ones unless all) and returns
// the bytes reclaimed and what docker prints about them; system prune uses
// it too.
func Prune(cmd *cobra.Command, cli *command.Cli, all bool, filters []string) (uint64, string, error) {
	api, err := cli.Client()
	if err != nil {
		return 0, "", err
	}
	f := client.Filters{}
	for _, v := range filters {
		k, val, _ := strings.Cut(v, "=")
		f.Add(strings.ToLower(strings.TrimSpace(k)), val)
	}
	f.Add("dangling", strconv.FormatBool(!all))
	res, err := api.ImagePrune(cmd.Context(), client.ImagePruneOptions{Filters: f})
	if err != nil {
		return 0, "", err
	}
	var b strings.Builder
	if len(res.Report.ImagesDeleted) > 0 {
		b.WriteString("Deleted Images:\n")
		for _, d := range res.Report.ImagesDeleted {
			if d.Untagged != "" {
				b.WriteString("untagged: " + d.Untagged + "\n")
			} else {
				b.WriteString("deleted: " + d.Deleted + "\n")
			}
		}
	}
	return res.Report.SpaceReclaimed, b.String(), nil
}
