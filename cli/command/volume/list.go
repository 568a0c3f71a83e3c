package volume

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/docker/go-units"
	"github.com/fvbommel/sortorder"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/hako-project/hako/cli/command"
	"github.com/hako-project/hako/cli/formatter"
	"github.com/hako-project/hako/cli/opts"
)

const defaultListFormat = "table {{.Driver}}\t{{.Name}}"

// listHeader are the column titles docker gives volume fields.
var listHeader = map[string]string{
	"ID": "ID", "Name": "VOLUME NAME", "Group": "GROUP", "Driver": "DRIVER", "Scope": "SCOPE",
	"Availability": "AVAILABILITY", "Mountpoint": "MOUNTPOINT", "Labels": "LABELS", "Links": "LINKS",
	"Size": "SIZE", "Status": "STATUS",
}

// NewListCommand is `hako volume ls`.
func NewListCommand(cli *command.Cli) *cobra.Command {
	var quiet bool
	var format string
	filters := opts.NewFilter()
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    command.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := requireAPI(cmd.Context(), cli, cmd, "1.42", "cluster")
			if err != nil {
				return err
			}
			res, err := api.VolumeList(cmd.Context(), client.VolumeListOptions{Filters: filters.Filters})
			if err != nil {
				return err
			}
			sort.Slice(res.Items, func(i, j int) bool { return sortorder.NaturalLess(res.Items[i].Name, res.Items[j].Name) })
			rows := make([]any, len(res.Items))
			for i, v := range res.Items {
				rows[i] = &Row{v: v}
			}
			return formatter.WriteList(cli.Out, listFormat(format, quiet), listHeader, rows)
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&quiet, "quiet", "q", false, "Only display volume names")
	fs.StringVar(&format, "format", "", "Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.\nRefer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates")
	fs.VarP(filters, "filter", "f", `Provide filter values (e.g. "dangling=true")`)
	fs.Bool("cluster", false, "Display only cluster volumes, and use cluster volume list formatting")
	_ = fs.MarkHidden("cluster")
	return cmd
}

// listFormat is docker's choice of format: quiet applies to the default
// table only.
func listFormat(format string, quiet bool) formatter.Format {
	switch format {
	case "", formatter.Table:
		if quiet {
			return "{{.Name}}"
		}
		return defaultListFormat
	case formatter.Raw:
		if quiet {
			return "name: {{.Name}}"
		}
		return `name: {{.Name}}\ndriver: {{.Driver}}\n`
	}
	return formatter.Format(format)
}

// Row is one volume as `volume ls --format` sees it: the same fields as
// docker's.
type Row struct{ v volume.Volume }

// MarshalJSON is what --format json prints.
func (r *Row) MarshalJSON() ([]byte, error) { return formatter.MarshalMethods(r) }

// Name is the volume's name.
func (r *Row) Name() string { return r.v.Name }

// Driver is the volume's driver.
func (r *Row) Driver() string { return r.v.Driver }

// Scope is "local" or "global".
func (r *Row) Scope() string { return r.v.Scope }

// Mountpoint is where the volume's data is on the daemon's host.
func (r *Row) Mountpoint() string { return r.v.Mountpoint }

// Labels are KEY=VALUE pairs, sorted, comma-separated.
func (r *Row) Labels() string {
	l := make([]string, 0, len(r.v.Labels))
	for k, v := range r.v.Labels {
		l = append(l, k+"="+v)
	}
	sort.Strings(l)
	return strings.Join(l, ",")
}

// Label is one label's value.
func (r *Row) Label(name string) string { return r.v.Labels[name] }

// Links is how many containers use the volume, when the daemon says.
func (r *Row) Links() string {
	if r.v.UsageData == nil {
		return "N/A"
	}
	return strconv.FormatInt(r.v.UsageData.RefCount, 10)
}

// Size is the volume's disk usage, when the daemon says.
func (r *Row) Size() string {
	if r.v.UsageData == nil {
		return "N/A"
	}
	return units.HumanSize(float64(r.v.UsageData.Size))
}

// Group is a cluster volume's group (N/A: hakod has none).
func (r *Row) Group() string {
	if r.v.ClusterVolume == nil {
		return "N/A"
	}
	return r.v.ClusterVolume.Spec.Group
}

// Availability is a cluster volume's availability.
func (r *Row) Availability() string {
	if r.v.ClusterVolume == nil {
		return "N/A"
	}
	return string(r.v.ClusterVolume.Spec.Availability)
}

// Status is a cluster volume's state.
func (r *Row) Status() string {
	cv := r.v.ClusterVolume
	if cv == nil {
		return "N/A"
	}
	if cv.Info == nil || cv.Info.VolumeID == "" {
		return "pending creation"
	}
	switch n := len(cv.PublishStatus); n {
	case 0:
		return "created"
	case 1:
		return "in use (1 node)"
	default:
		return fmt.Sprintf("in use (%d nodes)", n)
	}
}
