package container

import (
	"io"

	"github.com/hako-project/hako/cli/command"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// NewLogsCommand is `hako logs`.
func NewLogsCommand(cli *command.Cli) *cobra.Command {
	opts := client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true}
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  command.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := cli.Client()
			if err != nil {
				return err
			}
			// The container's Tty decides whether the log is framed.
			c, err := api.ContainerInspect(cmd.Context(), args[0], client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			rc, err := api.ContainerLogs(cmd.Context(), c.Container.ID, opts)
			if err != nil {
				return err
			}
			defer rc.Close()
			if c.Container.Config != nil && c.Container.Config.Tty {
				_, err = io.Copy(cli.Out, rc)
			} else {
				_, err = stdcopy.StdCopy(cli.Out, cli.Err, rc)
			}
			return err
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&opts.Details, "details", false, "Show extra details provided to logs")
	fs.BoolVarP(&opts.Follow, "follow", "f", false, "Follow log output")
	fs.StringVar(&opts.Since, "since", "", `Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)`)
	fs.StringVarP(&opts.Tail, "tail", "n", "all", `Number of lines to show from the end of the logs`)
	fs.BoolVarP(&opts.Timestamps, "timestamps", "t", false, "Show timestamps")
	fs.StringVar(&opts.Until, "until", "", `Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)`)
	return cmd
}
