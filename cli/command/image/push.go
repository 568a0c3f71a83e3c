package image

import (
	"errors"
	"fmt"

	"github.com/distribution/reference"
	"github.com/hako-project/hako/cli/command"
	"github.com/hako-project/hako/cli/jsonprogress"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// NewPushCommand is `hako push`.
func NewPushCommand(cli *command.Cli) *cobra.Command {
	var all, quiet bool
	var platform string
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Upload an image to a registry",
		Args:  command.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := reference.ParseNormalizedNamed(args[0])
			if err != nil {
				return err
			}
			switch {
			case all && !reference.IsNameOnly(ref):
				return errors.New("tag can't be used with --all-tags/-a")
			case !all && reference.IsNameOnly(ref):
				ref = reference.TagNameOnly(ref)
				if t, ok := ref.(reference.Tagged); ok && !quiet {
					fmt.Fprintln(cli.Out, "Using default tag:", t.Tag())
				}
			}
			opts := client.ImagePushOptions{All: all, RegistryAuth: cli.EncodedAuth(ref.String())}
			if platform != "" {
				p, err := parsePlatform(platform)
				if err != nil {
					return err
				}
				opts.Platform = &p
			}
			api, err := cli.Client()
			if err != nil {
				return err
			}
			resp, err := api.ImagePush(cmd.Context(), reference.FamiliarString(ref), opts)
			if err != nil {
				return err
			}
			defer resp.Close()
			if quiet {
				if err := jsonprogress.Display(resp, discard{}, false, nil); err != nil {
					return err
				}
				command.Println(cli.Out, ref.String())
				return nil
			}
			return jsonprogress.Display(resp, cli.Out, cli.Out.IsTerminal(), nil)
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&all, "all-tags", "a", false, "Push all tags of an image to the repository")
	fs.BoolVarP(&quiet, "quiet", "q", false, "Suppress verbose output")
	fs.StringVar(&platform, "platform", "", "Push a platform-specific manifest as a single-platform image to the registry")
	return cmd
}
