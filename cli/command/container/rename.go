package container

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hako-project/hako/cli/command"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// NewRenameCommand is `hako rename`. Like docker 28, it prints the
// daemon's error and then names the container it failed to rename.
func NewRenameCommand(cli *command.Cli) *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  command.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			oldName, newName := strings.TrimSpace(args[0]), strings.TrimSpace(args[1])
			if oldName == "" || newName == "" {
				return errors.New("Error: Neither old nor new names may be empty")
			}
			api, err := cli.Client()
			if err != nil {
				return err
			}
			if _, err := api.ContainerRename(cmd.Context(), oldName, client.ContainerRenameOptions{NewName: newName}); err != nil {
				command.Println(cli.Err, err)
				return fmt.Errorf("Error: failed to rename container named %s", oldName)
			}
			return nil
		},
	}
}
