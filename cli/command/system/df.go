package system

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/docker/go-units"
	"github.com/hako-project/hako/cli/command"
	"github.com/hako-project/hako/cli/formatter"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

const (
	dfFormat          = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
	dfImagesFormat    = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}"
	dfContainerFormat = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}"
	dfVolumeFormat    = "table {{.Name}}\t{{.Links}}\t{{.Size}}"
	dfCacheFormat     = "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}"
)

var dfHeader = map[string]string{
	"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE",
	// verbose sections
	"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "CreatedSince": "CREATED",
	"SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE", "Containers": "CONTAINERS",
}

var dfContainerHeader = map[string]string{
	"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "LocalVolumes": "LOCAL VOLUMES",
	"Size": "SIZE", "RunningFor": "CREATED", "Status": "STATUS", "Names": "NAMES",
}

var dfVolumeHeader = map[string]string{"Name": "VOLUME NAME", "Links": "LINKS", "Size": "SIZE"}

var dfCacheHeader = map[string]string{
	"ID": "CACHE ID", "CacheType": "CACHE TYPE", "Size": "SIZE", "CreatedSince": "CREATED",
	"LastUsedSince": "LAST USED", "UsageCount": "USAGE", "Shared": "SHARED",
}

// NewDfCommand is `hako system df`.
func NewDfCommand(cli *command.Cli) *cobra.Command {
	var verbose bool
	var format string
	cmd := &cobra.Command{
		Use:   "df [OPTIONS]",
		Short: "Show docker disk usage",
		Args:  command.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := cli.Client()
			if err != nil {
				return err
			}
			du, err := api.DiskUsage(cmd.Context(), client.DiskUsageOptions{
				Verbose: verbose,
			})
			if err != nil {
				return err
			}
			if verbose {
				return dfVerbose(cli, du, format)
			}
			f := formatter.Format(format)
			switch format {
			case "", formatter.Table:
				f = dfFormat
			case formatter.Raw:
				f = "type: {{.Type}}\ntotal: {{.TotalCount}}\nactive: {{.Active}}\nsize: {{.Size}}\nreclaimable: {{.Reclaimable}}\n"
			}
			rows := []any{
				&dfRow{typ: "Images", total: du.Images.TotalCount, active: du.Images.ActiveCount, size: du.Images.TotalSize, reclaimable: du.Images.Reclaimable, pct: true},
				&dfRow{typ: "Containers", total: du.Containers.TotalCount, active: du.Containers.ActiveCount, size: du.Containers.TotalSize, reclaimable: du.Containers.Reclaimable, pct: true},
				&dfRow{typ: "Local Volumes", total: du.Volumes.TotalCount, active: du.Volumes.ActiveCount, size: du.Volumes.TotalSize, reclaimable: du.Volumes.Reclaimable, pct: true},
				&dfRow{typ: "Build Cache", total: du.BuildCache.TotalCount, active: du.BuildCache.ActiveCount, size: du.BuildCache.TotalSize, reclaimable: du.BuildCache.Reclaimable},
			}
			return writeFormat(cli, f, dfHeader, rows)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&format, "format", "", "Format output using a custom template")
	fs.BoolVarP(&verbose, "verbose", "v", false, "Show detailed information on space usage")
	return cmd
}

func writeFormat(cli *command.Cli, f formatter.Format, header map[string]string, rows []any) error {
	return formatter.WriteList(cli.Out, f, header, rows)
}

// dfVerbose is `system df -v`: a table per kind of object.
func dfVerbose(cli *command.Cli, du client.DiskUsageResult, format string) error {
	now := time.Now()
	if format != "" && format != formatter.Table {
		return errors.New("hako: --format with --verbose is not supported")
	}
	var images, ctrs, vols []any
	for _, img := range du.Images.Items {
		images = append(images, formatter.DiskUsageImage(img, true, now))
	}
	for _, c := range du.Containers.Items {
		c.SizeRootFs = 0
		ctrs = append(ctrs, formatter.NewContainerContext(c, true, now))
	}
	for _, v := range du.Volumes.Items {
		vols = append(vols, &dfVolume{v: v})
	}
	fmt.Fprint(cli.Out, "Images space usage:\n\n")
	if err := writeFormat(cli, dfImagesFormat, dfHeader, images); err != nil {
		return err
	}
	fmt.Fprint(cli.Out, "\nContainers space usage:\n\n")
	if err := writeFormat(cli, dfContainerFormat, dfContainerHeader, ctrs); err != nil {
		return err
	}
	fmt.Fprint(cli.Out, "\nLocal Volumes space usage:\n\n")
	if err := writeFormat(cli, dfVolumeFormat, dfVolumeHeader, vols); err != nil {
		return err
	}
	fmt.Fprintf(cli.Out, "\nBuild cache usage: %s\n\n", units.HumanSize(float64(du.BuildCache.TotalSize)))
	return writeFormat(cli, dfCacheFormat, dfCacheHeader, nil)
}

// dfRow is one line of `system df`; its methods are the template fields.
type dfRow struct {
	typ                              string
	total, active, size, reclaimable int64
	pct                              bool
}

// MarshalJSON is the --format json object.
func (r *dfRow) MarshalJSON() ([]byte, error) { return formatter.MarshalMethods(r) }

func (r *dfRow) Type() string       { return r.typ }
func (r *dfRow) TotalCount() string { return strconv.FormatInt(r.total, 10) }
func (r *dfRow) Active() string     { return strconv.FormatInt(r.active, 10) }
func (r *dfRow) Size() string       { return units.HumanSize(float64(r.size)) }
func (r *dfRow) Reclaimable() string {
	if r.pct && r.size > 0 {
		return fmt.Sprintf("%s (%v%%)", units.HumanSize(float64(r.reclaimable)), (r.reclaimable*100)/r.size)
	}
	return units.HumanSize(float64(r.reclaimable))
}

// dfVolume is a volume of `system df -v`.
type dfVolume struct{ v volume.Volume }

// MarshalJSON is the --format json object.
func (d *dfVolume) MarshalJSON() ([]byte, error) { return formatter.MarshalMethods(d) }

func (d *dfVolume) Name() string { return d.v.Name }
func (d *dfVolume) Links() string {
	if d.v.UsageData == nil {
		return "N/A"
	}
	return strconv.FormatInt(d.v.UsageData.RefCount, 10)
}
func (d *dfVolume) Size() string {
	if d.v.UsageData == nil {
		return "N/A"
	}
	return units.HumanSize(float64(d.v.UsageData.Size))
}
