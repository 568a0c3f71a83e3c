package system

import (
	"fmt"
	"runtime"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/hako-project/hako/cli/apiclient"
	"github.com/hako-project/hako/cli/command"
	"github.com/hako-project/hako/cli/formatter"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// versionTemplate prints what docker version prints, with docker's
// layout (the engine's details first, other components' details sorted).
const versionTemplate = `{{with .Client -}}
Client:{{if .Platform.Name}} {{.Platform.Name}}{{end}}
 Version:	{{.Version}}
 API version:	{{.APIVersion}}{{if ne .APIVersion .DefaultAPIVersion}} (downgraded from {{.DefaultAPIVersion}}){{end}}
 Go version:	{{.GoVersion}}
 Git commit:	{{.GitCommit}}
 Built:	{{.BuildTime}}
 OS/Arch:	{{.Os}}/{{.Arch}}
 Context:	{{.Context}}
{{- end}}
{{- if .ServerOK}}{{with .Server}}

Server:{{if .Platform.Name}} {{.Platform.Name}}{{end}}
 {{- range $c := .Components}}
 {{$c.Name}}:
  {{- if eq $c.Name "Engine"}}
  Version:	{{$c.Version}}
  API version:	{{index $c.Details "ApiVersion"}} (minimum version {{index $c.Details "MinAPIVersion"}})
  Go version:	{{index $c.Details "GoVersion"}}
  Git commit:	{{index $c.Details "GitCommit"}}
  Built:	{{index $c.Details "BuildTime"}}
  OS/Arch:	{{index $c.Details "Os"}}/{{index $c.Details "Arch"}}
  Experimental:	{{index $c.Details "Experimental"}}
  {{- else}}
  Version:	{{$c.Version}}
  {{- range $k := detailKeys $c}}
  {{$k}}:	{{index $c.Details $k}}
  {{- end}}
  {{- end}}
 {{- end}}
{{- end}}{{end}}
`

// ClientVersion is the client half of `hako version`.
type ClientVersion struct {
	Platform          struct{ Name string }
	Version           string
	APIVersion        string `json:"ApiVersion"`
	DefaultAPIVersion string `json:"DefaultAPIVersion,omitempty"`
	GitCommit         string
	GoVersion         string
	Os                string
	Arch              string
	BuildTime         string `json:",omitempty"`
	Context           string
}

// ServerVersion is the server half, as the daemon reports it.
type ServerVersion struct {
	Platform      struct{ Name string }
	Components    []system.ComponentVersion
	Version       string
	APIVersion    string `json:"ApiVersion"`
	MinAPIVersion string `json:"MinAPIVersion,omitempty"`
	Os            string
	Arch          string
	Experimental  bool `json:",omitempty"`
}

// VersionInfo is what version templates see.
type VersionInfo struct {
	Client ClientVersion
	Server *ServerVersion
}

// ServerOK reports whether the daemon answered.
func (v VersionInfo) ServerOK() bool { return v.Server != nil }

// NewVersionCommand is `hako version`.
func NewVersionCommand(cli *command.Cli) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version [OPTIONS]",
		Short: "Show the hako version information",
		Args:  command.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tmplText := versionTemplate
			switch format {
			case "":
			case "json":
				tmplText = "{{json .}}"
			default:
				tmplText = format
			}
			tmpl, err := formatter.NamedTemplate("version", map[string]any{"detailKeys": detailKeys}, tmplText)
			if err != nil {
				return command.StatusError{StatusCode: 64, Status: "template parsing error: " + err.Error()}
			}
			api, err := cli.Client()
			if err != nil {
				return err
			}
			v := VersionInfo{Client: ClientVersion{
				Version: cli.Version, DefaultAPIVersion: apiclient.DefaultAPIVersion, GoVersion: runtime.Version(),
				GitCommit: cli.Version, Os: runtime.GOOS, Arch: runtime.GOARCH, Context: "default",
			}}
			v.Client.Platform.Name = "hako"
			sv, serr := api.ServerVersion(cmd.Context(), client.ServerVersionOptions{})
			v.Client.APIVersion = api.ClientVersion()
			if serr == nil {
				for i, c := range sv.Components {
					// docker shows the build time as time.ANSIC.
					if bt, ok := c.Details["BuildTime"]; ok {
						if t, err := time.Parse(time.RFC3339Nano, bt); err == nil {
							sv.Components[i].Details["BuildTime"] = t.Format(time.ANSIC)
						}
					}
				}
				s := &ServerVersion{
					Components: sv.Components, Version: sv.Version, APIVersion: sv.APIVersion,
					MinAPIVersion: sv.MinAPIVersion, Os: sv.Os, Arch: sv.Arch, Experimental: sv.Experimental,
				}
				s.Platform.Name = sv.Platform.Name
				v.Server = s
			}
			out := cli.Out
			if format == "" {
				tw := tabwriter.NewWriter(out, 20, 1, 1, ' ', 0)
				err = tmpl.Execute(tw, v)
				tw.Flush()
			} else {
				err = tmpl.Execute(out, v)
				fmt.Fprintln(out)
			}
			if err != nil {
				return err
			}
			return serr
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template")
	return cmd
}

// detailKeys lists a component's details sorted, as docker does.
func detailKeys(c system.ComponentVersion) []string {
	keys := make([]string, 0, len(c.Details))
	for k := range c.Details {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
