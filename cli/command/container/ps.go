package container

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hako-project/hako/cli/command"
	"github.com/hako-project/hako/cli/formatter"
	"github.com/hako-project/hako/cli/runopts"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

const defaultPsFormat = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"

var psHeader = map[string]string{
	"ID": "CONTAINER ID", "Names": "NAMES", "Image": "IMAGE", "Command": "COMMAND",
	"CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE",
	"Status": "STATUS", "Size": "SIZE", "Labels": "LABELS", "Mounts": "MOUNTS",
	"LocalVolumes": "LOCAL VOLUMES", "Networks": "NETWORKS",
}

// NewPsCommand is `hako ps`.
func NewPsCommand(cli *command.Cli) *cobra.Command {
	var (
		all, quiet, latest, noTrunc, size bool
		last                              int
		format                            string
	)
	filters := runopts.NewList(validateFilter)
	cmd := &cobra.Command{
		Use:   "ps [OPTIONS]",
		Short: "List containers",
		Args:  command.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := cli.Client()
			if err != nil {
				return err
			}
			opts := client.ContainerListOptions{All: all, Limit: last, Size: size, Filters: toFilters(filters.Values())}
			if latest && last == -1 {
				opts.Limit = 1
			}
			f := psFormat(format, quiet, size)
			if !size && f.Contains(".Size") {
				opts.Size = true
			}
			res, err := api.ContainerList(cmd.Context(), opts)
			if err != nil {
				return err
			}
			now := time.Now()
			rows := make([]any, len(res.Items))
			for i, c := range res.Items {
				rows[i] = formatter.NewContainerContext(c, !noTrunc, now)
			}
			if err := formatter.Write(cli.Out, f, psHeader, rows); err != nil {
				var ee formatter.ExecError
				if errors.As(err, &ee) {
					return fmt.Errorf("failed to execute template: %w", ee.Err)
				}
				return err
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	fs.BoolVarP(&quiet, "quiet", "q", false, "Only display container IDs")
	fs.BoolVarP(&latest, "latest", "l", false, "Show the latest created container (includes all states)")
	fs.IntVarP(&last, "last", "n", -1, "Show n last created containers (includes all states)")
	fs.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	fs.BoolVarP(&size, "size", "s", false, "Display total file sizes")
	fs.VarP(filters, "filter", "f", "Filter output based on conditions provided")
	fs.StringVar(&format, "format", "", "Format output using a custom template")
	return cmd
}

func psFormat(format string, quiet, size bool) formatter.Format {
	switch format {
	case "", formatter.Table:
		if quiet {
			return "{{.ID}}"
		}
		if size {
			return defaultPsFormat + `\t{{.Size}}`
		}
		return defaultPsFormat
	case formatter.Raw:
		if quiet {
			return "container_id: {{.ID}}"
		}
		f := "container_id: {{.ID}}\nimage: {{.Image}}\ncommand: {{.Command}}\ncreated_at: {{.CreatedAt}}\n" +
			"state: {{- pad .State 1 0}}\nstatus: {{- pad .Status 1 0}}\nnames: {{.Names}}\n" +
			"labels: {{- pad .Labels 1 0}}\nports: {{- pad .Ports 1 0}}\n"
		if size {
			f += `size: {{.Size}}\n`
		}
		return formatter.Format(f)
	}
	if quiet {
		return "{{.ID}}"
	}
	return formatter.Format(format)
}

// validateFilter checks a --filter value is NAME=VALUE.
func validateFilter(s string) (string, error) {
	k, _, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return "", fmt.Errorf("bad format of filter (expected name=value)")
	}
	return s, nil
}

// toFilters turns NAME=VALUE strings into the API's filter map.
func toFilters(values []string) client.Filters {
	f := client.Filters{}
	for _, v := range values {
		k, val, _ := strings.Cut(v, "=")
		f.Add(strings.ToLower(strings.TrimSpace(k)), val)
	}
	return f
}
