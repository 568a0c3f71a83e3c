package container

import (
	"fmt"

	"github.com/hako-project/hako/cli/command"
	"github.com/hako-project/hako/cli/runopts"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// NewCommitCommand is `hako commit`: a new image from a container's
// changes; prints its ID.
func NewCommitCommand(cli *command.Cli) *cobra.Command {
	var opts client.ContainerCommitOptions
	pause := true
	changes := runopts.NewList(nil)
	cmd := &cobra.Command{
		Use:   "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create a new image from a container's changes",
		Args:  command.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				opts.Reference = args[1]
			}
			opts.Changes = changes.Values()
			opts.NoPause = !pause
			api, err := cli.Client()
			if err != nil {
				return err
			}
			res, err := api.ContainerCommit(cmd.Context(), args[0], opts)
			if err != nil {
				return err
			}
			fmt.Fprintln(cli.Out, res.ID)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.SetInterspersed(false)
	fs.StringVarP(&opts.Author, "author", "a", "", `Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")`)
	fs.VarP(changes, "change", "c", "Apply Dockerfile instruction to the created image")
	fs.StringVarP(&opts.Comment, "message", "m", "", "Commit message")
	fs.BoolVarP(&pause, "pause", "p", true, "Pause container during commit")
	return cmd
}
