package network

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hako-project/hako/cli/command"
	"github.com/hako-project/hako/cli/opts"
)

// createRequest is POST /networks/create as docker's CLI 28 sends it:
// the addresses as strings, so that a malformed subnet reaches the daemon
// and gets its message, as it does with docker's CLI.
type createRequest struct {
	Name           string
	CheckDuplicate bool
	Driver         string
	Scope          string
	EnableIPv6     *bool `json:",omitempty"`
	IPAM           *ipam
	Internal       bool
	Attachable     bool
	Ingress        bool
	ConfigOnly     bool
	ConfigFrom     *configReference `json:",omitempty"`
	Options        map[string]string
	Labels         map[string]string
}

type ipam struct {
	Driver  string
	Options map[string]string
	Config  []ipamConfig
}

type ipamConfig struct {
	Subnet     string            `json:",omitempty"`
	IPRange    string            `json:",omitempty"`
	Gateway    string            `json:",omitempty"`
	AuxAddress map[string]string `json:"AuxiliaryAddresses,omitempty"`
}

type configReference struct{ Network string }

// NewCreateCommand is `hako network create`.
func NewCreateCommand(cli *command.Cli) *cobra.Command {
	var o struct {
		driver, scope, ipamDriver, configFrom           string
		internal, ipv6, attachable, ingress, configOnly bool
		subnets, ipRanges, gateways                     []string
	}
	driverOpts, ipamOpts, aux := opts.Map{}, opts.Map{}, opts.Map{}
	labels := &opts.List{Validate: opts.ValidateLabel}
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a network",
		Args:  command.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := ipamConfigs(o.subnets, o.ipRanges, o.gateways, aux)
			if err != nil {
				return err
			}
			api, err := cli.Client()
			if err != nil {
				return err
			}
			req := createRequest{
				Name: args[0], CheckDuplicate: true, Driver: o.driver, Scope: o.scope,
				IPAM:     &ipam{Driver: o.ipamDriver, Options: ipamOpts, Config: cfg},
				Internal: o.internal, Attachable: o.attachable, Ingress: o.ingress, ConfigOnly: o.configOnly,
				Options: driverOpts, Labels: opts.LabelMap(labels.Values),
			}
			if cmd.Flags().Changed("ipv6") {
				req.EnableIPv6 = &o.ipv6
			}
			if o.configFrom != "" {
				req.ConfigFrom = &configReference{Network: o.configFrom}
			}
			var resp struct {
				ID      string `json:"Id"`
				Warning string
			}
			if err := api.PostJSON(cmd.Context(), "/networks/create", req, &resp); err != nil {
				return err
			}
			command.Println(cli.Out, resp.ID)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&o.driver, "driver", "d", "bridge", "Driver to manage the Network")
	fs.VarP(driverOpts, "opt", "o", "Set driver specific options")
	fs.Var(labels, "label", "Set metadata on a network")
	fs.BoolVar(&o.internal, "internal", false, "Restrict external access to the network")
	fs.BoolVar(&o.ipv6, "ipv6", false, "Enable or disable IPv6 address assignment")
	fs.BoolVar(&o.attachable, "attachable", false, "Enable manual container attachment")
	fs.BoolVar(&o.ingress, "ingress", false, "Create swarm routing-mesh network")
	fs.StringVar(&o.scope, "scope", "", "Control the network's scope")
	fs.BoolVar(&o.configOnly, "config-only", false, "Create a configuration only network")
	fs.StringVar(&o.configFrom, "config-from", "", "The network from which to copy the configuration")
	fs.StringVar(&o.ipamDriver, "ipam-driver", "default", "IP Address Management Driver")
	fs.StringSliceVar(&o.subnets, "subnet", []string{}, "Subnet in CIDR format that represents a network segment")
	fs.StringSliceVar(&o.ipRanges, "ip-range", []string{}, "Allocate container ip from a sub-range")
	fs.StringSliceVar(&o.gateways, "gateway", []string{}, "IPv4 or IPv6 Gateway for the master subnet")
	fs.Var(aux, "aux-address", "Auxiliary IPv4 or IPv6 addresses used by Network driver")
	fs.Var(ipamOpts, "ipam-opt", "Set IPAM driver specific options")
	return cmd
}

// ipamConfigs checks --subnet, --ip-range, --gateway and --aux-address
// against each other as docker's CLI 28 does, with its messages, and
// groups them per subnet.
func ipamConfigs(subnets, ranges, gateways []string, aux map[string]string) ([]ipamConfig, error) {
	if len(subnets) < len(ranges) || len(subnets) < len(gateways) {
		return nil, errors.New("every ip-range or gateway must have a corresponding subnet")
	}
	byNet := map[string]*ipamConfig{}
	for _, s := range subnets {
		for k := range byNet {
			ok1, err := subnetMatches(s, k)
			if err != nil {
				return nil, err
			}
			ok2, err := subnetMatches(k, s)
			if err != nil {
				return nil, err
			}
			if ok1 || ok2 {
				return nil, errors.New("multiple overlapping subnet configuration is not supported")
			}
		}
		byNet[s] = &ipamConfig{Subnet: s, AuxAddress: map[string]string{}}
	}
	for _, r := range ranges {
		match := false
		for _, s := range subnets {
			ok, err := subnetMatches(s, r)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			if byNet[s].IPRange != "" {
				return nil, fmt.Errorf("cannot configure multiple ranges (%s, %s) on the same subnet (%s)", r, byNet[s].IPRange, s)
			}
			byNet[s].IPRange, match = r, true
		}
		if !match {
			return nil, fmt.Errorf("no matching subnet for range %s", r)
		}
	}
	for _, g := range gateways {
		match := false
		for _, s := range subnets {
			ok, err := subnetMatches(s, g)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			if byNet[s].Gateway != "" {
				return nil, fmt.Errorf("cannot configure multiple gateways (%s, %s) for the same subnet (%s)", g, byNet[s].Gateway, s)
			}
			byNet[s].Gateway, match = g, true
		}
		if !match {
			return nil, fmt.Errorf("no matching subnet for gateway %s", g)
		}
	}
	for name, a := range aux {
		match := false
		for _, s := range subnets {
			ok, err := subnetMatches(s, a)
			if err != nil {
				return nil, err
			}
			if ok {
				byNet[s].AuxAddress[name], match = a, true
			}
		}
		if !match {
			return nil, fmt.Errorf("no matching subnet for aux-address %s", a)
		}
	}
	out := []ipamConfig{}
	for _, s := range subnets {
		out = append(out, *byNet[s])
	}
	return out, nil
}

// subnetMatches reports whether data (an address or a CIDR) lies in
// subnet.
func subnetMatches(subnet, data string) (bool, error) {
	_, s, err := net.ParseCIDR(subnet)
	if err != nil {
		return false, fmt.Errorf("invalid subnet: %w", err)
	}
	var ip net.IP
	if strings.Contains(data, "/") {
		if ip, _, err = net.ParseCIDR(data); err != nil {
			return false, err
		}
	} else {
		ip = net.ParseIP(data)
	}
	return s.Contains(ip), nil
}
