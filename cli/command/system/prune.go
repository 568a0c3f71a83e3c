package system

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/docker/go-units"
	"github.com/fvbommel/sortorder"
	"github.com/hako-project/hako/cli/command"
	"github.com/hako-project/hako/cli/command/container"
	"github.com/hako-project/hako/cli/command/image"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// NewPruneCommand is `hako system prune`: stopped containers, unused
// networks, (with --volumes) unused anonymous volumes, dangling (or with
// -a all unused) images and the build cache, in docker's order and words.
func NewPruneCommand(cli *command.Cli) *cobra.Command {
	var force, all, volumes bool
	var filter command.FilterFlag
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused data",
		Args:  command.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			values := filter.Values()
			if volumes && hasFilter(values, "until") {
				return errors.New(`ERROR: The "until" filter is not supported with "--volumes"`)
			}
			if !force && !command.Confirm(cmd.Context(), cli.In, cli.Out, pruneWarning(all, volumes, values)) {
				return nil
			}
			api, err := cli.Client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			f := client.Filters{}
			for _, v := range values {
				k, val, _ := strings.Cut(v, "=")
				f.Add(strings.ToLower(strings.TrimSpace(k)), val)
			}
			var total uint64
			report := func(space uint64, out string) {
				total += space
				if out != "" {
					fmt.Fprintln(cli.Out, out)
				}
			}
			space, out, err := container.Prune(cmd, cli, values)
			if err != nil {
				return err
			}
			report(space, out)
			nets, err := api.NetworkPrune(ctx, client.NetworkPruneOptions{Filters: f})
			if err != nil {
				return err
			}
			report(0, deletedList("Deleted Networks:", nets.Report.NetworksDeleted))
			if volumes {
				vols, err := api.VolumePrune(ctx, client.VolumePruneOptions{Filters: f})
				if err != nil {
					return err
				}
				report(vols.Report.SpaceReclaimed, deletedList("Deleted Volumes:", vols.Report.VolumesDeleted))
			}
			space, out, err = image.Prune(cmd, cli, all, values)
			if err != nil {
				return err
			}
			report(space, out)
			cache, err := api.BuildCachePrune(ctx, client.BuildCachePruneOptions{All: all, Filters: f})
			if err != nil {
				return err
			}
			report(cache.Report.SpaceReclaimed, deletedList("Deleted build cache objects:", cache.Report.CachesDeleted))
			fmt.Fprintln(cli.Out, "Total reclaimed space:", units.HumanSize(float64(total)))
			return nil
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&all, "all", "a", false, "Remove all unused images not just dangling ones")
	fs.Var(&filter, "filter", `Provide filter values (e.g. "label=<key>=<value>")`)
	fs.BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	fs.BoolVar(&volumes, "volumes", false, "Prune anonymous volumes")
	return cmd
}

func hasFilter(values []string, name string) bool {
	for _, v := range values {
		if k, _, _ := strings.Cut(v, "="); strings.EqualFold(strings.TrimSpace(k), name) {
			return true
		}
	}
	return false
}

// deletedList is "TITLE\nname\n..." or "" for none.
func deletedList(title string, names []string) string {
	if len(names) == 0 {
		return ""
	}
	return title + "\n" + strings.Join(names, "\n") + "\n"
}

// pruneWarning is docker's confirmation text: what goes, and the filters
// that limit it.
func pruneWarning(all, volumes bool, filters []string) string {
	var b strings.Builder
	b.WriteString("WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n")
	if volumes {
		b.WriteString("  - all anonymous volumes not used by at least one container\n")
	}
	if all {
		b.WriteString("  - all images without at least one container associated to them\n  - all build cache\n")
	} else {
		b.WriteString("  - all dangling images\n  - unused build cache\n")
	}
	var shown []string
	for _, name := range []string{"label", "label!", "until"} {
		for _, v := range filters {
			if k, val, _ := strings.Cut(v, "="); strings.ToLower(strings.TrimSpace(k)) == name {
				shown = append(shown, name+"="+val)
			}
		}
	}
	sort.Slice(shown, func(i, j int) bool { return sortorder.NaturalLess(shown[i], shown[j]) })
	if len(shown) > 0 {
		b.WriteString("\n  Items to be pruned will be filtered with:\n")
		for _, s := range shown {
			b.WriteString("  - " + s + "\n")
		}
	}
	b.WriteString("\nAre you sure you want to continue?")
	return b.String()
}
