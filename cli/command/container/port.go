package container

import (
	"fmt"
	"net"
	"sort"
	"strings"

	"github.com/fvbommel/sortorder"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/hako-project/hako/cli/command"
)

// NewPortCommand is `hako port`: the container's published ports, or the
// host addresses of one of them, as docker prints them.
func NewPortCommand(cli *command.Cli) *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List port mappings or a specific mapping for the container",
		Args:  command.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := cli.Client()
			if err != nil {
				return err
			}
			res, err := api.ContainerInspect(cmd.Context(), args[0], client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			var ports network.PortMap
			if res.Container.NetworkSettings != nil {
				ports = res.Container.NetworkSettings.Ports
			}
			var out []string
			if len(args) == 2 {
				p, err := parsePortArg(args[1])
				if err != nil {
					return err
				}
				bindings := ports[p]
				if len(bindings) == 0 {
					return fmt.Errorf("Error: No public port '%s' published for %s", args[1], args[0])
				}
				for _, b := range bindings {
					out = append(out, net.JoinHostPort(b.HostIP.String(), b.HostPort))
				}
			} else {
				for p, bindings := range ports {
					for _, b := range bindings {
						out = append(out, fmt.Sprintf("%s -> %s", p, net.JoinHostPort(b.HostIP.String(), b.HostPort)))
					}
				}
			}
			if len(out) > 0 {
				sort.Slice(out, func(i, j int) bool { return sortorder.NaturalLess(out[i], out[j]) })
				command.Println(cli.Out, strings.Join(out, "\n"))
			}
			return nil
		},
	}
}

// parsePortArg reads PRIVATE_PORT[/PROTO] with docker 28's message.
func parsePortArg(s string) (network.Port, error) {
	num, proto, _ := strings.Cut(s, "/")
	p, err := network.ParsePort(s)
	if err != nil {
		var n uint64
		if _, serr := fmt.Sscan(num, &n); serr != nil || n > 65535 {
			return network.Port{}, fmt.Errorf("Error: invalid port (%s): strconv.ParseUint: parsing %q: invalid syntax", num, num)
		}
		return network.Port{}, fmt.Errorf("Error: invalid port (%s/%s): %w", num, proto, err)
	}
	return p, nil
}
