package volume

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/docker/go-units"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/hako-project/hako/cli/command"
	"github.com/hako-project/hako/cli/opts"
)

const (
	unusedVolumesWarning = "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue?"
	allVolumesWarning    = "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue?"
)

// NewPruneCommand is `hako volume prune`.
func NewPruneCommand(cli *command.Cli) *cobra.Command {
	var all, force bool
	filters := opts.NewFilter()
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused local volumes",
		Args:  command.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			api, err := requireAPI(ctx, cli, cmd, "1.42", "all")
			if err != nil {
				return err
			}
			// Before API 1.42 the daemon removes named volumes too, and
			// docker's warning says so. A daemon that cannot be reached
			// is the newest version (the prune itself will fail), as for
			// docker.
			warning := unusedVolumesWarning
			if all {
				warning = allVolumesWarning
			} else if ok, err := api.SupportsVersion(ctx, "1.42"); err == nil && !ok {
				warning = allVolumesWarning
			}
			if all {
				if _, ok := filters.Filters["all"]; ok {
					return errors.New("conflicting options: cannot specify both --all and --filter all=1")
				}
				filters.Filters.Add("all", "true")
			}
			if !force {
				ok, err := confirm(ctx, cli.In, cli.Out, warning)
				if err != nil || !ok {
					return err // declined: docker ends quietly, with status 0
				}
			}
			res, err := api.VolumePrune(ctx, client.VolumePruneOptions{Filters: filters.Filters})
			if err != nil {
				return err
			}
			var reclaimed uint64
			if len(res.Report.VolumesDeleted) > 0 {
				var b strings.Builder
				b.WriteString("Deleted Volumes:\n")
				for _, n := range res.Report.VolumesDeleted {
					b.WriteString(n + "\n")
				}
				command.Println(cli.Out, b.String())
				reclaimed = res.Report.SpaceReclaimed
			}
			command.Println(cli.Out, "Total reclaimed space:", units.HumanSize(float64(reclaimed)))
			return nil
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&all, "all", "a", false, "Remove all unused volumes, not just anonymous ones")
	fs.BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	fs.Var(filters, "filter", `Provide filter values (e.g. "label=<label>")`)
	return cmd
}

// confirm asks message with " [y/N] " on out and reads one line of in:
// only y or Y is yes. A cancelled ctx (^C) is a no, after a newline.
func confirm(ctx context.Context, in io.Reader, out io.Writer, message string) (bool, error) {
	fmt.Fprint(out, message+" [y/N] ")
	answer := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(in)
		answer <- sc.Scan() && strings.EqualFold(strings.TrimSpace(sc.Text()), "y")
	}()
	select {
	case <-ctx.Done():
		fmt.Fprintln(out)
		return false, nil
	case ok := <-answer:
		return ok, nil
	}
}
