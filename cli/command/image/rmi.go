package image

import (
	"fmt"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/hako-project/hako/cli/command"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// NewRmiCommand is `hako rmi`.
func NewRmiCommand(cli *command.Cli) *cobra.Command {
	var force, noPrune bool
	cmd := &cobra.Command{
		Use:   "rmi [OPTIONS] IMAGE [IMAGE...]",
		Short: "Remove one or more images",
		Args:  command.MinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := cli.Client()
			if err != nil {
				return err
			}
			var errs command.Errors
			for _, img := range args {
				res, err := api.ImageRemove(cmd.Context(), img, client.ImageRemoveOptions{Force: force, PruneChildren: !noPrune})
				if err != nil {
					// -f reports what does not exist, but it is no failure.
					if force && cerrdefs.IsNotFound(err) {
						fmt.Fprintln(cli.Err, err)
						continue
					}
					errs.Add(err)
					continue
				}
				for _, d := range res.Items {
					if d.Deleted != "" {
						fmt.Fprintf(cli.Out, "Deleted: %s\n", d.Deleted)
					} else {
						fmt.Fprintf(cli.Out, "Untagged: %s\n", d.Untagged)
					}
				}
			}
			return errs.Err()
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&force, "force", "f", false, "Force removal of the image")
	fs.BoolVar(&noPrune, "no-prune", false, "Do not delete untagged parents")
	return cmd
}
