package image

import (
	"bufio"
	"errors"
	"io"
	"os"

	"github.com/hako-project/hako/cli/command"
	"github.com/hako-project/hako/cli/jsonprogress"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

// NewLoadCommand is `hako load`.
func NewLoadCommand(cli *command.Cli) *cobra.Command {
	var input, platform string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Load an image from a tar archive or STDIN",
		Args:  command.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var in io.Reader = cli.In
			if input != "" {
				f, err := os.Open(input)
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			} else if cli.In.IsTerminal() {
				return errors.New("requested load from stdin, but stdin is empty")
			}
			// Without a terminal to draw on, docker asks the daemon for
			// the short form.
			opts := []client.ImageLoadOption{client.ImageLoadWithQuiet(quiet || !cli.Out.IsTerminal())}
			if platform != "" {
				p, err := parsePlatform(platform)
				if err != nil {
					return err
				}
				opts = append(opts, client.ImageLoadWithPlatforms([]ocispec.Platform{p}...))
			}
			api, err := cli.Client()
			if err != nil {
				return err
			}
			rc, err := api.ImageLoad(cmd.Context(), in, opts...)
			if err != nil {
				return err
			}
			defer rc.Close()
			br := bufio.NewReader(rc)
			if b, err := br.Peek(1); err == nil && b[0] == '{' {
				return jsonprogress.Display(br, cli.Out, cli.Out.IsTerminal(), nil)
			}
			_, err = io.Copy(cli.Out, br)
			return err
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&input, "input", "i", "", "Read from tar archive file, instead of STDIN")
	fs.BoolVarP(&quiet, "quiet", "q", false, "Suppress the load output")
	fs.StringVar(&platform, "platform", "", "Load only the given platform variant")
	return cmd
}
