package container

import (
	"fmt"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/hako-project/hako/cli/command"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// NewRmCommand is `hako rm`.
func NewRmCommand(cli *command.Cli) *cobra.Command {
	var opts client.ContainerRemoveOptions
	cmd := &cobra.Command{
		Use:   "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Remove one or more containers",
		Args:  command.MinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := cli.Client()
			if err != nil {
				return err
			}
			var errs command.Errors
			for i, err := range command.Parallel(args, func(name string) error {
				name = strings.Trim(name, "/")
				if name == "" {
					return fmt.Errorf("container name cannot be empty")
				}
				_, err := api.ContainerRemove(cmd.Context(), name, opts)
				return err
			}) {
				if err != nil {
					// -f reports what does not exist, but it is no failure.
					if opts.Force && cerrdefs.IsNotFound(err) {
						fmt.Fprintln(cli.Err, err)
						continue
					}
					errs.Add(err)
					continue
				}
				command.Println(cli.Out, args[i])
			}
			return errs.Err()
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&opts.Force, "force", "f", false, "Force the removal of a running container (uses SIGKILL)")
	fs.BoolVarP(&opts.RemoveVolumes, "volumes", "v", false, "Remove anonymous volumes associated with the container")
	fs.BoolVarP(&opts.RemoveLinks, "link", "l", false, "Remove the specified link")
	return cmd
}
