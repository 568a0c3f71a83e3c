package network

import (
	"sort"
	"strconv"
	"strings"

	"github.com/fvbommel/sortorder"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/hako-project/hako/cli/command"
	"github.com/hako-project/hako/cli/formatter"
	"github.com/hako-project/hako/cli/opts"
)

const defaultListFormat = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"

// listHeader are the column titles docker gives network fields.
var listHeader = map[string]string{
	"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv4": "IPV4", "IPv6": "IPV6",
	"Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT",
}

// NewListCommand is `hako network ls`.
func NewListCommand(cli *command.Cli) *cobra.Command {
	var quiet, noTrunc bool
	var format string
	filters := opts.NewFilter()
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    command.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := cli.Client()
			if err != nil {
				return err
			}
			res, err := api.NetworkList(cmd.Context(), client.NetworkListOptions{Filters: filters.Filters})
			if err != nil {
				return err
			}
			sort.Slice(res.Items, func(i, j int) bool { return sortorder.NaturalLess(res.Items[i].Name, res.Items[j].Name) })
			rows := make([]any, len(res.Items))
			for i, n := range res.Items {
				rows[i] = &Row{n: n, trunc: !noTrunc}
			}
			return formatter.WriteList(cli.Out, listFormat(format, quiet), listHeader, rows)
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&quiet, "quiet", "q", false, "Only display network IDs")
	fs.BoolVar(&noTrunc, "no-trunc", false, "Do not truncate the output")
	fs.StringVar(&format, "format", "", "Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.\nRefer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates")
	fs.VarP(filters, "filter", "f", `Provide filter values (e.g. "driver=bridge")`)
	return cmd
}

// listFormat is docker's choice of format: quiet applies to the default
// table only.
func listFormat(format string, quiet bool) formatter.Format {
	switch format {
	case "", formatter.Table:
		if quiet {
			return "{{.ID}}"
		}
		return defaultListFormat
	case formatter.Raw:
		if quiet {
			return "network_id: {{.ID}}"
		}
		return "network_id: {{.ID}}\nname: {{.Name}}\ndriver: {{.Driver}}\nscope: {{.Scope}}\n"
	}
	return formatter.Format(format)
}

// Row is one line of `hako network ls`; its methods are the template
// fields and the keys of --format json.
type Row struct {
	n     network.Summary
	trunc bool
}

// MarshalJSON is the --format json object.
func (r *Row) MarshalJSON() ([]byte, error) { return formatter.MarshalMethods(r) }

func (r *Row) ID() string {
	if r.trunc {
		return formatter.TruncateID(r.n.ID)
	}
	return r.n.ID
}

func (r *Row) Name() string     { return r.n.Name }
func (r *Row) Driver() string   { return r.n.Driver }
func (r *Row) Scope() string    { return r.n.Scope }
func (r *Row) IPv4() string     { return strconv.FormatBool(r.n.EnableIPv4) }
func (r *Row) IPv6() string     { return strconv.FormatBool(r.n.EnableIPv6) }
func (r *Row) Internal() string { return strconv.FormatBool(r.n.Internal) }

func (r *Row) Labels() string {
	var l []string
	for k, v := range r.n.Labels {
		l = append(l, k+"="+v)
	}
	sort.Strings(l)
	return strings.Join(l, ",")
}

func (r *Row) Label(name string) string { return r.n.Labels[name] }

func (r *Row) CreatedAt() string { return r.n.Created.String() }
