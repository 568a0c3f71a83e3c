package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/hako-project/hako/api/cri"
	"github.com/hako-project/hako/engine"
	"github.com/hako-project/hako/image/registry"
	"github.com/hako-project/hako/network"
)

// CRIConfig is the CRI part of hakod's configuration (embedded in Config,
// so its TOML keys are top-level like the others).
type CRIConfig struct {
	// CRISocket serves CRI v1 ("" disables it). Unset, it is cri.sock in
	// the exec root: /run/hako/cri.sock by default, and a hakod with
	// another exec root (tests) does not take the default one's.
	CRISocket *string `toml:"cri-socket"`
	// CRIStreamAddress is the exec/attach/port-forward server's address.
	CRIStreamAddress string `toml:"cri-stream-address"`
	// CRISandboxImage runs the pause process of pods that share a PID
	// namespace.
	CRISandboxImage string `toml:"cri-sandbox-image"`
	// RegistryConfigPath holds per-registry hosts, containerd's layout:
	// DIR/<registry>/hosts.toml (mirrors for registry.k8s.io and others).
	RegistryConfigPath string `toml:"registry-config-path"`
	// CRINetwork is the network pods join ("" = the default bridge).
	CRINetwork string `toml:"cri-network"`
	// CNIConfDir, when set, gives pods the first CNI network
	// configuration in it instead (containerd's and kubelet's way).
	CNIConfDir string `toml:"cni-conf-dir"`
}

// criFlags registers the CRI flags.
func criFlags(f *pflag.FlagSet, c *CRIConfig) {
	f.Func("cri-socket", "unix socket to serve the CRI (kubelet, crictl) on; empty disables it (default EXEC-ROOT/cri.sock)", func(v string) error {
		c.CRISocket = &v
		return nil
	})
	f.StringVar(&c.CRIStreamAddress, "cri-stream-address", "127.0.0.1:0", "address of the CRI streaming server (exec, attach, port-forward)")
	f.StringVar(&c.CRISandboxImage, "cri-sandbox-image", cri.DefaultSandboxImage, "pause image of pods that share a PID namespace")
	f.StringVar(&c.CRINetwork, "cri-network", "", `network pods join (default: the default "bridge" network; with --bridge none pods get loopback only)`)
	f.StringVar(&c.CNIConfDir, "cni-conf-dir", "", "directory whose first CNI network configuration (*.conflist, *.conf, *.json by name) pods use, read at each pod's start, as containerd and kubelet do (e.g. /etc/cni/net.d); instead of --cri-network")
	f.StringVar(&c.RegistryConfigPath, "registry-config-path", "", "directory of per-registry hosts.toml files (containerd's certs.d layout): mirrors for any registry")
}

// applyCRIFile takes the file's CRI keys the command line did not set.
func applyCRIFile(set func(string, func()), file CRIConfig, cfg *CRIConfig) {
	set("cri-socket", func() { cfg.CRISocket = file.CRISocket })
	set("cri-stream-address", func() { cfg.CRIStreamAddress = file.CRIStreamAddress })
	set("cri-sandbox-image", func() { cfg.CRISandboxImage = file.CRISandboxImage })
	set("registry-config-path", func() { cfg.RegistryConfigPath = file.RegistryConfigPath })
	set("cri-network", func() { cfg.CRINetwork = file.CRINetwork })
	set("cni-conf-dir", func() { cfg.CNIConfDir = file.CNIConfDir })
}

// registryHosts loads --registry-config-path.
func registryHosts(c CRIConfig) (map[string]registry.RegistryHosts, error) {
	h, err := registry.LoadHostsDir(c.RegistryConfigPath)
	if err != nil {
		return nil, fmt.Errorf("--registry-config-path: %w", err)
	}
	return h, nil
}

// startCRI serves the CRI until ctx ends; it returns a stop function.
// Without a socket it does nothing.
func startCRI(ctx context.Context, cfg Config, eng *engine.Engine, reg *registry.Client, nets *network.Manager, log *slog.Logger) (func(), error) {
	socket := filepath.Join(cfg.ExecRoot, "cri.sock")
	if cfg.CRISocket != nil {
		socket = *cfg.CRISocket
	}
	if socket == "" {
		return func() {}, nil
	}
	var podNet cri.Network
	switch {
	case cfg.CNIConfDir != "" && cfg.CRINetwork != "":
		return nil, fmt.Errorf("--cni-conf-dir and --cri-network: pods join one network, choose one")
	case nets == nil:
	case cfg.CNIConfDir != "":
		podNet = cri.ConfDirNetwork{Manager: nets, Dir: cfg.CNIConfDir}
	case cfg.CRINetwork != "" || cfg.Bridge != "none":
		podNet = cri.CNINetwork{Manager: nets, Network: cfg.CRINetwork}
	}
	srv, err := cri.New(eng, cri.Config{
		Network: podNet,
		Version: version, Puller: reg, StreamAddress: cfg.CRIStreamAddress, SandboxImage: cfg.CRISandboxImage,
		TraceAll: cfg.OTLPEndpoint != "", Log: log,
	})
	if err != nil {
		return nil, err
	}
	l, err := cri.Listen(socket)
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("--cri-socket: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ctx, l); err != nil {
			log.Error("CRI server", "socket", socket, "err", err)
		}
	}()
	log.Info("CRI listening", "socket", socket, "stream-server", srv.StreamURL())
	return func() {
		cancel()
		<-done
		srv.Close()
	}, nil
}
