package system

import (
	"github.com/hako-project/hako/cli/command"
	"github.com/spf13/cobra"
)

// NewContainerInspectCommand is `hako container inspect`. It lives here,
// with the inspectors, because package system imports package container.
func NewContainerInspectCommand(cli *command.Cli) *cobra.Command {
	return typedInspect(cli, "container", &cobra.Command{
		Use:   "inspect [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Display detailed information on one or more containers",
	})
}
