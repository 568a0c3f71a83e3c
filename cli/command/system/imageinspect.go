package system

import (
	"github.com/hako-project/hako/cli/command"
	"github.com/spf13/cobra"
)

// NewImageInspectCommand is `hako image inspect`. It lives here, with
// the inspectors, because package system imports package image.
func NewImageInspectCommand(cli *command.Cli) *cobra.Command {
	return typedInspect(cli, "image", &cobra.Command{
		Use:   "inspect [OPTIONS] IMAGE [IMAGE...]",
		Short: "Display detailed information on one or more images",
	})
}
