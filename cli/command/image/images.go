package image

import (
	"fmt"
	"strings"
	"time"

	"github.com/hako-project/hako/cli/command"
	"github.com/hako-project/hako/cli/formatter"
	"github.com/hako-project/hako/cli/runopts"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

const (
	defaultImagesFormat       = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}"
	defaultImagesDigestFormat = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}"
)

var imagesHeader = map[string]string{
	"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
	"CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
	"Containers": "CONTAINERS", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE",
}

// NewImagesCommand is `hako images`.
func NewImagesCommand(cli *command.Cli) *cobra.Command {
	var all, quiet, digests, noTrunc bool
	var format string
	filters := runopts.NewList(validateFilter)
	cmd := &cobra.Command{
		Use:   "images [OPTIONS] [REPOSITORY[:TAG]]",
		Short: "List images",
		Args:  command.MaxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := cli.Client()
			if err != nil {
				return err
			}
			f := client.Filters{}
			for _, v := range filters.Values() {
				k, val, _ := strings.Cut(v, "=")
				f.Add(strings.ToLower(strings.TrimSpace(k)), val)
			}
			if len(args) == 1 {
				f.Add("reference", args[0])
			}
			res, err := api.ImageList(cmd.Context(), client.ImageListOptions{All: all, Filters: f})
			if err != nil {
				return err
			}
			fm := imagesFormat(format, quiet, digests)
			showDigest := digests || fm.Contains("{{.Digest}}")
			now := time.Now()
			var rows []any
			for _, img := range res.Items {
				rows = append(rows, formatter.ImageContexts(img, showDigest, digests, !noTrunc, now)...)
			}
			return formatter.WriteList(cli.Out, fm, imagesHeader, rows)
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&all, "all", "a", false, "Show all images (default hides intermediate images)")
	fs.BoolVarP(&quiet, "quiet", "q", false, "Only show image IDs")
	fs.BoolVar(&digests, "digests", false, "Show digests")
	fs.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	fs.VarP(filters, "filter", "f", "Filter output based on conditions provided")
	fs.StringVar(&format, "format", "", "Format output using a custom template")
	return cmd
}

func imagesFormat(format string, quiet, digests bool) formatter.Format {
	switch format {
	case "", formatter.Table:
		switch {
		case quiet:
			return "{{.ID}}"
		case digests:
			return defaultImagesDigestFormat
		}
		return defaultImagesFormat
	case formatter.Raw:
		if quiet {
			return "image_id: {{.ID}}"
		}
		f := "repository: {{ .Repository }}\ntag: {{.Tag}}\n"
		if digests {
			f += "digest: {{.Digest}}\n"
		}
		return formatter.Format(f + "image_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n")
	}
	if quiet {
		return "{{.ID}}"
	}
	f := formatter.Format(format)
	if f.IsTable() && digests && !f.Contains("{{.Digest}}") {
		f += `\t{{.Digest}}`
	}
	return f
}

func validateFilter(s string) (string, error) {
	k, _, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return "", fmt.Errorf("bad format of filter (expected name=value)")
	}
	return s, nil
}
