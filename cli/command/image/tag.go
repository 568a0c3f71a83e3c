package image

import (
	"errors"
	"fmt"

	"github.com/distribution/reference"
	"github.com/hako-project/hako/cli/command"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// NewTagCommand is `hako tag`.
func NewTagCommand(cli *command.Cli) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		Args:  command.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			// docker's own checks and wording, before the daemon's.
			if _, err := reference.ParseAnyReference(args[0]); err != nil {
				return fmt.Errorf("%s parsing reference: %q is not a valid repository/tag: %w", "Error", args[0], err)
			}
			ref, err := reference.ParseNormalizedNamed(args[1])
			if err != nil {
				return fmt.Errorf("%s parsing reference: %q is not a valid repository/tag: %w", "Error", args[1], err)
			}
			if _, ok := ref.(reference.Canonical); ok {
				return errors.New("refusing to create a tag with a digest reference")
			}
			api, err := cli.Client()
			if err != nil {
				return err
			}
			_, err = api.ImageTag(cmd.Context(), client.ImageTagOptions{Source: args[0], Target: args[1]})
			return err
		},
	}
}
