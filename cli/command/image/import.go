package image

import (
	"os"
	"strings"

	"github.com/hako-project/hako/cli/command"
	"github.com/hako-project/hako/cli/jsonprogress"
	"github.com/hako-project/hako/cli/runopts"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// NewImportCommand is `hako import`: a tarball (file, URL or "-" for
// stdin) becomes a one-layer image.
func NewImportCommand(cli *command.Cli) *cobra.Command {
	changes := runopts.NewList(nil)
	var message, platform string
	cmd := &cobra.Command{
		Use:   "import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
		Short: "Import the contents from a tarball to create a filesystem image",
		Args:  command.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			src := client.ImageImportSource{SourceName: args[0]}
			switch {
			case args[0] == "-":
				src.Source = cli.In
			case strings.HasPrefix(args[0], "http://") || strings.HasPrefix(args[0], "https://"):
				// The daemon fetches URLs itself.
			default:
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				src = client.ImageImportSource{Source: f, SourceName: "-"}
			}
			ref := ""
			if len(args) == 2 {
				ref = args[1]
			}
			opts := client.ImageImportOptions{Message: message, Changes: changes.Values()}
			if platform != "" {
				p, err := parsePlatform(platform)
				if err != nil {
					return err
				}
				opts.Platform = p
			}
			api, err := cli.Client()
			if err != nil {
				return err
			}
			resp, err := api.ImageImport(cmd.Context(), src, ref, opts)
			if err != nil {
				return err
			}
			defer resp.Close()
			return jsonprogress.Display(resp, cli.Out, cli.Out.IsTerminal(), nil)
		},
	}
	fs := cmd.Flags()
	fs.VarP(changes, "change", "c", "Apply Dockerfile instruction to the created image")
	fs.StringVarP(&message, "message", "m", "", "Set commit message for imported image")
	fs.StringVar(&platform, "platform", "", "Set platform if server is multi-platform capable")
	return cmd
}
