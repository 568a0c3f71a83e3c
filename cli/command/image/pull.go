// Package image holds hako's image commands (pull, push, images, rmi,
// tag, import, save, load), one file per command, speaking only the
// Engine API.
package image

import (
	"errors"
	"fmt"

	"github.com/distribution/reference"
	"github.com/hako-project/hako/cli/command"
	"github.com/hako-project/hako/cli/jsonprogress"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

// NewPullCommand is `hako pull`.
func NewPullCommand(cli *command.Cli) *cobra.Command {
	var all, quiet bool
	var platform string
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
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
			opts := client.ImagePullOptions{All: all, RegistryAuth: cli.EncodedAuth(ref.String())}
			if platform != "" {
				p, err := parsePlatform(platform)
				if err != nil {
					return err
				}
				opts.Platforms = []ocispec.Platform{p}
			}
			api, err := cli.Client()
			if err != nil {
				return err
			}
			resp, err := api.ImagePull(cmd.Context(), reference.FamiliarString(ref), opts)
			if err != nil {
				return err
			}
			defer resp.Close()
			if quiet {
				err = jsonprogress.Display(resp, discard{}, false, nil)
			} else {
				err = jsonprogress.Display(resp, cli.Out, cli.Out.IsTerminal(), nil)
			}
			if err != nil {
				return err
			}
			command.Println(cli.Out, ref.String())
			return nil
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&all, "all-tags", "a", false, "Download all tagged images in the repository")
	fs.BoolVarP(&quiet, "quiet", "q", false, "Suppress verbose output")
	fs.StringVar(&platform, "platform", "", "Set platform if server is multi-platform capable")
	return cmd
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
