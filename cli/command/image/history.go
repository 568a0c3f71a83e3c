package image

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/hako-project/hako/cli/command"
	"github.com/hako-project/hako/cli/formatter"
	"github.com/moby/moby/api/types/image"
	"github.com/spf13/cobra"
)

const (
	defaultHistoryFormat  = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
	nonHumanHistoryFormat = "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
)

var historyHeader = map[string]string{
	"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
	"CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT",
}

// NewHistoryCommand is `hako history`.
func NewHistoryCommand(cli *command.Cli) *cobra.Command {
	var human, quiet, noTrunc bool
	var format, host string
	cmd := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show the history of an image",
		Args:  command.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("host") {
				return command.FlagError(cmd, errors.New("unknown flag: --host"))
			}
			api, err := cli.Client()
			if err != nil {
				return err
			}
			res, err := api.ImageHistory(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			now := time.Now()
			rows := make([]any, len(res.Items))
			for i, h := range res.Items {
				rows[i] = &historyContext{h: h, trunc: !noTrunc, human: human, now: now}
			}
			return formatter.WriteList(cli.Out, historyFormat(format, quiet, human), historyHeader, rows)
		},
	}
	fs := cmd.Flags()
	// -H is --human here, as in docker, not the global --host (which
	// cobra would add to every command with its -H): a local "host" keeps
	// it out, and like docker's history, refuses to be set.
	fs.StringVar(&host, "host", "", "")
	_ = fs.MarkHidden("host")
	fs.BoolVarP(&human, "human", "H", true, "Print sizes and dates in human readable format")
	fs.BoolVarP(&quiet, "quiet", "q", false, "Only show image IDs")
	fs.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	fs.StringVar(&format, "format", "", "Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.\nRefer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates")
	return cmd
}

// historyFormat is docker's: -q and -H=false choose among the default
// tables and are ignored with any other --format.
func historyFormat(format string, quiet, human bool) formatter.Format {
	if format != "" && format != formatter.Table {
		return formatter.Format(format)
	}
	switch {
	case quiet:
		return "{{.ID}}"
	case !human:
		return nonHumanHistoryFormat
	}
	return defaultHistoryFormat
}

// historyContext is a row of `hako history`; the type's name is
// docker's, which its template errors show ("in type
// *image.historyContext").
type historyContext struct {
	h     image.HistoryResponseItem
	trunc bool
	human bool
	now   time.Time
}

func (c *historyContext) MarshalJSON() ([]byte, error) { return formatter.MarshalMethods(c) }

func (c *historyContext) ID() string {
	if c.trunc {
		return formatter.TruncateID(c.h.ID)
	}
	return c.h.ID
}

func (c *historyContext) CreatedAt() string {
	return time.Unix(c.h.Created, 0).Format(time.RFC3339)
}

// epoch: creation times before it are shown as N/A (-H).
var epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).Unix()

func (c *historyContext) CreatedSince() string {
	switch {
	case !c.human:
		return c.CreatedAt()
	case c.h.Created <= epoch:
		return "N/A"
	}
	return formatter.Ago(c.h.Created, c.now)
}

func (c *historyContext) CreatedBy() string {
	by := strings.ReplaceAll(c.h.CreatedBy, "\t", " ")
	if c.trunc {
		return formatter.Ellipsis(by, 45)
	}
	return by
}

func (c *historyContext) Size() string {
	if c.human {
		return formatter.Size(c.h.Size)
	}
	return strconv.FormatInt(c.h.Size, 10)
}

func (c *historyContext) Comment() string { return c.h.Comment }
