package network

import (
	"errors"
	"net/netip"
	"strings"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/hako-project/hako/cli/command"
	"github.com/hako-project/hako/cli/runopts"
)

// NewConnectCommand is `hako network connect`.
func NewConnectCommand(cli *command.Cli) *cobra.Command {
	var ip, ip6 string
	var aliases, links, linkLocal, driverOpts []string
	var gwPriority int
	cmd := &cobra.Command{
		Use:   "connect [OPTIONS] NETWORK CONTAINER",
		Short: "Connect a container to a network",
		Args:  command.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := map[string]string{}
			for _, o := range driverOpts {
				k, v, ok := strings.Cut(o, "=")
				if k = strings.TrimSpace(k); !ok || k == "" {
					return errors.New("invalid key/value pair format in driver options")
				}
				opts[k] = strings.TrimSpace(v)
			}
			ipam := &network.EndpointIPAMConfig{}
			var err error
			if ipam.IPv4Address, err = ipFlag("ip", ip); err != nil {
				return err
			}
			if ipam.IPv6Address, err = ipFlag("ip6", ip6); err != nil {
				return err
			}
			for _, l := range linkLocal {
				a, err := ipFlag("link-local-ip", l)
				if err != nil {
					return err
				}
				ipam.LinkLocalIPs = append(ipam.LinkLocalIPs, a)
			}
			api, err := cli.Client()
			if err != nil {
				return err
			}
			_, err = api.NetworkConnect(cmd.Context(), args[0], client.NetworkConnectOptions{
				Container: args[1],
				EndpointConfig: &network.EndpointSettings{
					IPAMConfig: ipam, Links: links, Aliases: aliases, DriverOpts: opts, GwPriority: gwPriority,
				},
			})
			return err
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&ip, "ip", "", `IPv4 address (e.g., "172.30.100.104")`)
	fs.StringVar(&ip6, "ip6", "", `IPv6 address (e.g., "2001:db8::33")`)
	fs.StringSliceVar(&links, "link", []string{}, "Add link to another container")
	fs.StringSliceVar(&aliases, "alias", []string{}, "Add network-scoped alias for the container")
	fs.StringSliceVar(&linkLocal, "link-local-ip", []string{}, "Add a link-local address for the container")
	fs.StringSliceVar(&driverOpts, "driver-opt", []string{}, "driver options for the network")
	fs.IntVar(&gwPriority, "gw-priority", 0, "Highest gw-priority provides the default gateway. Accepts positive and negative values.")
	return cmd
}

// NewDisconnectCommand is `hako network disconnect`.
func NewDisconnectCommand(cli *command.Cli) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "disconnect [OPTIONS] NETWORK CONTAINER",
		Short: "Disconnect a container from a network",
		Args:  command.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := cli.Client()
			if err != nil {
				return err
			}
			_, err = api.NetworkDisconnect(cmd.Context(), args[0], client.NetworkDisconnectOptions{Container: args[1], Force: force})
			return err
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the container to disconnect from a network")
	return cmd
}

// ipFlag is runopts.IPFlag with IPv4-mapped IPv6 addresses unmapped.
func ipFlag(name, v string) (netip.Addr, error) {
	a, err := runopts.IPFlag(name, v)
	return a.Unmap(), err
}
