package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/spf13/pflag"

	"github.com/hako-project/hako/network"
)

// NetworkConfig is the networking part of hakod's configuration (embedded
// in Config, so its TOML keys are top-level like the others). The flags
// are dockerd's.
type NetworkConfig struct {
	// Bridge is the default bridge network's Linux bridge; "none" disables
	// the default bridge network (containers get loopback only).
	Bridge string `toml:"bridge"`
	// BIP is the default bridge's gateway address and prefix length.
	BIP string `toml:"bip"`
	// CNIPluginDirs are searched for the CNI plugins.
	CNIPluginDirs []string `toml:"cni-plugin-dirs"`
	// NetworkSpares keeps network namespaces made ahead of the next
	// container (network/spare.go).
	NetworkSpares bool `toml:"network-spares"`
}

// networkFlags registers the networking flags.
func networkFlags(f *pflag.FlagSet, c *NetworkConfig) {
	f.StringVarP(&c.Bridge, "bridge", "b", "", `Linux bridge of the default "bridge" network (default hako0, or hk-ID12 under another --exec-root); "none": no default bridge network`)
	f.StringVar(&c.BIP, "bip", "", "address and prefix of the default bridge, e.g. 172.17.0.1/16 (default: the first free of docker's address pools)")
	f.BoolVar(&c.NetworkSpares, "network-spares", true, "keep network namespaces made ahead of the next containers: one attached to the default bridge, one with loopback only (false: make each container's as it starts)")
	f.StringSliceVar(&c.CNIPluginDirs, "cni-plugin-dir", []string{"/usr/lib/cni", "/opt/cni/bin"}, "directories searched for CNI plugins (Debian: apt-get install containernetworking-plugins)")
}

// applyNetworkFile takes the file's networking keys the command line did
// not set.
func applyNetworkFile(set func(string, func()), file NetworkConfig, cfg *NetworkConfig) {
	set("bridge", func() { cfg.Bridge = file.Bridge })
	set("bip", func() { cfg.BIP = file.BIP })
	set("cni-plugin-dirs", func() { cfg.CNIPluginDirs = file.CNIPluginDirs })
	set("network-spares", func() { cfg.NetworkSpares = file.NetworkSpares })
}

// openNetworks opens the network manager: the predefined networks, the
// bridges and rules of every bridge network, the attachments of the
// containers that kept running while hakod was away.
func openNetworks(ctx context.Context, cfg Config, log *slog.Logger) (*network.Manager, error) {
	var bip netip.Prefix
	if cfg.BIP != "" {
		p, err := netip.ParsePrefix(cfg.BIP)
		if err != nil || !p.Addr().Is4() || p.Addr() == p.Masked().Addr() {
			return nil, fmt.Errorf("--bip %q: want the bridge's IPv4 address and prefix length, like 172.17.0.1/16", cfg.BIP)
		}
		bip = p
	}
	if len(cfg.Bridge) > 15 {
		return nil, fmt.Errorf("--bridge %q: a Linux interface name has at most 15 characters", cfg.Bridge)
	}
	m, err := network.Open(ctx, network.Config{
		DataRoot: cfg.DataRoot, ExecRoot: cfg.ExecRoot, PluginDirs: cfg.CNIPluginDirs,
		DefaultBridge: cfg.Bridge, DefaultBIP: bip, NoSpares: !cfg.NetworkSpares, Log: log,
	})
	if err != nil {
		return nil, fmt.Errorf("networks: %w", err)
	}
	return m, nil
}
