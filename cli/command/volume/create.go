package volume

import (
	"errors"
	"fmt"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/hako-project/hako/cli/command"
	"github.com/hako-project/hako/cli/opts"
)

// clusterFlags are docker's flags for swarm cluster volumes (API 1.42).
var (
	clusterStringFlags = []string{"group", "scope", "sharing", "availability", "type", "limit-bytes", "required-bytes"}
	clusterListFlags   = []string{"secret", "topology-required", "topology-preferred"}
)

// NewCreateCommand is `hako volume create`.
func NewCreateCommand(cli *command.Cli) *cobra.Command {
	var name, driver string
	driverOpts := opts.Map{}
	labels := &opts.List{Validate: opts.ValidateLabel}
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume",
		Args:  command.MaxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if name != "" {
					return errors.New("conflicting options: cannot specify a volume-name through both --name and as a positional arg")
				}
				name = args[0]
			}
			api, err := requireAPI(cmd.Context(), cli, cmd, "1.42", append(clusterStringFlags, clusterListFlags...)...)
			if err != nil {
				return err
			}
			res, err := api.VolumeCreate(cmd.Context(), client.VolumeCreateOptions{Name: name, Driver: driver, DriverOpts: driverOpts, Labels: opts.LabelMap(labels.Values)})
			if err != nil {
				return err
			}
			fmt.Fprintln(cli.Out, res.Volume.Name)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&driver, "driver", "d", "local", "Specify volume driver name")
	fs.StringVar(&name, "name", "", "Specify volume name")
	_ = fs.MarkHidden("name")
	fs.VarP(driverOpts, "opt", "o", "Set driver specific options")
	fs.Var(labels, "label", "Set metadata for a volume")
	hiddenFlags(fs, clusterStringFlags, clusterListFlags)
	return cmd
}
