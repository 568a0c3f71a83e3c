package system

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/docker/go-units"
	"github.com/hako-project/hako/cli/command"
	"github.com/hako-project/hako/cli/formatter"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/security"
	"github.com/spf13/cobra"
)

// InfoClient is the client part of `hako info`.
type InfoClient struct {
	Version string
	Context string
	Debug   bool
	Plugins []any
}

// Info is what info templates see: the daemon's system.Info plus the
// client's part.
type Info struct {
	*system.Info `json:",omitempty"`
	ClientInfo   *InfoClient `json:",omitempty"`
	ClientErrors []string    `json:",omitempty"`
	ServerErrors []string    `json:",omitempty"`
}

// NewInfoCommand is `hako info`.
func NewInfoCommand(cli *command.Cli) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "info [OPTIONS]",
		Short: "Display system-wide information",
		Args:  command.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := Info{ClientInfo: &InfoClient{Version: cli.Version, Context: "default", Plugins: []any{}}}
			api, err := cli.Client()
			if err != nil {
				return err
			}
			res, err := api.Info(cmd.Context(), client.InfoOptions{})
			if err != nil {
				info.ServerErrors = append(info.ServerErrors, err.Error())
			} else {
				info.Info = &res.Info
			}
			if format != "" {
				if err != nil {
					// docker ends the (empty) formatted output all the same.
					fmt.Fprintln(cli.Out)
					return err
				}
				if format == "json" {
					format = "{{json .}}"
				}
				tmpl, err := formatter.ParseTemplate(format)
				if err != nil {
					return command.StatusError{StatusCode: 64, Status: "template parsing error: " + err.Error()}
				}
				err = tmpl.Execute(cli.Out, info)
				fmt.Fprintln(cli.Out)
				return err
			}
			fmt.Fprintln(cli.Out, "Client:")
			c := info.ClientInfo
			fmt.Fprintln(cli.Out, " Version:   ", c.Version)
			fmt.Fprintln(cli.Out, " Context:   ", c.Context)
			fmt.Fprintln(cli.Out, " Debug Mode:", c.Debug)
			fmt.Fprintln(cli.Out)
			fmt.Fprintln(cli.Out, "Server:")
			if info.Info != nil {
				printServerInfo(cli.Out, cli.Err, info.Info)
			}
			for _, e := range info.ServerErrors {
				fmt.Fprintln(cli.Err, "ERROR:", e)
			}
			if len(info.ServerErrors) > 0 {
				return fmt.Errorf("errors pretty printing info")
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template")
	return cmd
}

func line(w io.Writer, a ...any) { fmt.Fprintln(w, a...) }

func printNonEmpty(w io.Writer, label, value string) {
	if value != "" {
		fmt.Fprintln(w, label, value)
	}
}

// printServerInfo lays the daemon's info out as docker info does.
func printServerInfo(w, errw io.Writer, i *system.Info) {
	line(w, " Containers:", i.Containers)
	line(w, "  Running:", i.ContainersRunning)
	line(w, "  Paused:", i.ContainersPaused)
	line(w, "  Stopped:", i.ContainersStopped)
	line(w, " Images:", i.Images)
	printNonEmpty(w, " Server Version:", i.ServerVersion)
	printNonEmpty(w, " Storage Driver:", i.Driver)
	for _, p := range i.DriverStatus {
		fmt.Fprintf(w, "  %s: %s\n", p[0], p[1])
	}
	for _, p := range i.SystemStatus {
		fmt.Fprintf(w, " %s: %s\n", p[0], p[1])
	}
	printNonEmpty(w, " Logging Driver:", i.LoggingDriver)
	printNonEmpty(w, " Cgroup Driver:", i.CgroupDriver)
	printNonEmpty(w, " Cgroup Version:", i.CgroupVersion)
	line(w, " Plugins:")
	line(w, "  Volume:", strings.Join(i.Plugins.Volume, " "))
	line(w, "  Network:", strings.Join(i.Plugins.Network, " "))
	if len(i.Plugins.Authorization) > 0 {
		line(w, "  Authorization:", strings.Join(i.Plugins.Authorization, " "))
	}
	line(w, "  Log:", strings.Join(i.Plugins.Log, " "))
	if len(i.CDISpecDirs) > 0 {
		line(w, " CDI spec directories:")
		for _, d := range i.CDISpecDirs {
			fmt.Fprintf(w, "  %s\n", d)
		}
	}
	line(w, " Swarm:", i.Swarm.LocalNodeState)
	if i.Swarm.LocalNodeState != "inactive" && i.Swarm.LocalNodeState != "locked" {
		line(w, "  NodeID:", i.Swarm.NodeID)
		if i.Swarm.Error != "" {
			line(w, "  Error:", i.Swarm.Error)
		}
	}
	if len(i.Runtimes) > 0 {
		names := make([]string, 0, len(i.Runtimes))
		for n := range i.Runtimes {
			names = append(names, n)
		}
		sort.Strings(names)
		line(w, " Runtimes:", strings.Join(names, " "))
		line(w, " Default Runtime:", i.DefaultRuntime)
	}
	if i.OSType == "linux" {
		line(w, " Init Binary:", i.InitBinary)
		line(w, " containerd version:", i.ContainerdCommit.ID)
		line(w, " runc version:", i.RuncCommit.ID)
		line(w, " init version:", i.InitCommit.ID)
		if so := security.DecodeOptions(i.SecurityOptions); len(so) > 0 {
			line(w, " Security Options:")
			for _, o := range so {
				line(w, "  "+o.Name)
				for _, kv := range o.Options {
					if kv.Key == "profile" {
						line(w, "   Profile:", kv.Value)
					}
				}
			}
		}
	}
	printNonEmpty(w, " Kernel Version:", i.KernelVersion)
	printNonEmpty(w, " Operating System:", i.OperatingSystem)
	printNonEmpty(w, " OSType:", i.OSType)
	printNonEmpty(w, " Architecture:", i.Architecture)
	line(w, " CPUs:", i.NCPU)
	line(w, " Total Memory:", units.BytesSize(float64(i.MemTotal)))
	printNonEmpty(w, " Name:", i.Name)
	printNonEmpty(w, " ID:", i.ID)
	line(w, " Docker Root Dir:", i.DockerRootDir)
	line(w, " Debug Mode:", i.Debug)
	if i.Debug {
		line(w, "  File Descriptors:", i.NFd)
		line(w, "  Goroutines:", i.NGoroutines)
		line(w, "  System Time:", i.SystemTime)
		line(w, "  EventsListeners:", i.NEventsListener)
	}
	printNonEmpty(w, " HTTP Proxy:", i.HTTPProxy)
	printNonEmpty(w, " HTTPS Proxy:", i.HTTPSProxy)
	printNonEmpty(w, " No Proxy:", i.NoProxy)
	if len(i.Labels) > 0 {
		line(w, " Labels:")
		for _, l := range i.Labels {
			line(w, "  "+l)
		}
	}
	line(w, " Experimental:", i.ExperimentalBuild)
	if rc := i.RegistryConfig; rc != nil && (len(rc.InsecureRegistryCIDRs) > 0 || len(rc.IndexConfigs) > 0) {
		line(w, " Insecure Registries:")
		names := make([]string, 0, len(rc.IndexConfigs))
		for _, ic := range rc.IndexConfigs {
			if !ic.Secure {
				names = append(names, ic.Name)
			}
		}
		sort.Strings(names)
		for _, n := range names {
			line(w, "  "+n)
		}
		for _, c := range rc.InsecureRegistryCIDRs {
			fmt.Fprintf(w, "  %s\n", c)
		}
	}
	if rc := i.RegistryConfig; rc != nil && len(rc.Mirrors) > 0 {
		line(w, " Registry Mirrors:")
		for _, m := range rc.Mirrors {
			line(w, "  "+m)
		}
	}
	line(w, " Live Restore Enabled:", i.LiveRestoreEnabled)
	if i.ProductLicense != "" {
		line(w, " Product License:", i.ProductLicense)
	}
	if len(i.DefaultAddressPools) > 0 {
		line(w, " Default Address Pools:")
		for _, p := range i.DefaultAddressPools {
			fmt.Fprintf(w, "   Base: %s, Size: %d\n", p.Base, p.Size)
		}
	}
	line(w)
	for _, warn := range i.Warnings {
		line(errw, warn)
	}
}
