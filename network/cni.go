package network

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/hako-project/hako/trace"
)

// cniVersion is the CNI specification version of the configurations we
// generate: the newest that Debian 12's plugins (1.1.1) speak.
const cniVersion = "1.0.0"

// PortMapping is one published port in the form of CNI's portMappings
// capability, which the portmap plugin reads.
type PortMapping struct {
	HostIP        string `json:"hostIP,omitempty"`
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol"`
}

// confList is the CNI configuration list of network n for one endpoint:
//
//   - bridge: a veth pair from the container's namespace to n's Linux
//     bridge; the bridge holds the gateway address (isGateway) unless the
//     network is internal; hairpinMode lets a container reach itself
//     through a published port. ipMasq is off: masquerading is one rule
//     per network, installed with the network (see rules.go), not one
//     chain per container as the plugin would make.
//   - host-local (bridge's IPAM): addresses from n's subnet, leases as files
//     under ipamDir, so they are ours and go with the network.
//   - portmap, only when the endpoint publishes ports: DNAT from the host's
//     ports to the container (and SNAT for hairpin and localhost traffic).
//     Left out otherwise, it costs nothing on ADD and DEL.
//
// The loopback plugin is not in the list: the namespace is created with lo
// up (createNetNS). The list's name is n's ID, unique and stable.
func confList(n *Network, ipamDir string, withPorts bool) ([]byte, error) {
	rng := map[string]string{"subnet": n.Subnet.String()}
	if n.Gateway.IsValid() {
		rng["gateway"] = n.Gateway.String()
	}
	if n.IPRange.IsValid() {
		first, last := rangeBounds(n.IPRange)
		if first == n.Gateway {
			first = first.Next()
		}
		rng["rangeStart"], rng["rangeEnd"] = first.String(), last.String()
	}
	ipam := map[string]any{
		"type":    "host-local",
		"ranges":  [][]map[string]string{{rng}},
		"dataDir": ipamDir,
	}
	if !n.Internal {
		ipam["routes"] = []map[string]string{{"dst": "0.0.0.0/0"}}
	}
	bridge := map[string]any{
		"type":         "bridge",
		"bridge":       n.Bridge,
		"isGateway":    !n.Internal,
		"ipMasq":       false,
		"hairpinMode":  true,
		"ipam":         ipam,
		"capabilities": map[string]bool{"ips": true},
	}
	if mtu := n.Options[optMTU]; mtu != "" && mtu != "0" {
		var v int
		if _, err := fmt.Sscan(mtu, &v); err == nil && v > 0 {
			bridge["mtu"] = v
		}
	}
	plugins := []any{bridge}
	if withPorts {
		plugins = append(plugins, map[string]any{
			"type":         "portmap",
			"capabilities": map[string]bool{"portMappings": true},
			"snat":         true,
		})
	}
	return json.Marshal(map[string]any{"cniVersion": cniVersion, "name": n.ID, "plugins": plugins})
}

// rangeBounds is the first and last usable address of p (the network and
// broadcast addresses excluded).
func rangeBounds(p netip.Prefix) (first, last netip.Addr) {
	p = p.Masked()
	first = p.Addr().Next()
	b := p.Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= host
	last = netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).Prev()
	return first, last
}

// cni runs CNI plugins for the manager.
type cni struct {
	conf *libcni.CNIConfig
}

// newCNI finds plugins in dirs and caches results (which DEL hands back to
// the plugins) under cacheDir, not in /var/lib/cni: everything a container's
// networking leaves on disk is below hakod's roots.
func newCNI(dirs []string, cacheDir string) *cni {
	return &cni{conf: libcni.NewCNIConfigWithCacheDir(dirs, cacheDir, &tracedExec{})}
}

// runtimeConf is what CNI is told about a's endpoint ep (ip: the address
// asked for, on ADD).
func (a *Attachment) runtimeConf(ep Endpoint, ip netip.Addr) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{ContainerID: a.cniID(), NetNS: a.NetNS, IfName: ep.IfName, Args: a.CNIArgs, CapabilityArgs: map[string]any{}}
	if len(ep.PortMappings) > 0 {
		rt.CapabilityArgs["portMappings"] = ep.PortMappings
	}
	if ip.IsValid() {
		rt.CapabilityArgs["ips"] = []string{ip.String()}
	}
	return rt
}

// add runs ADD for one endpoint and reads the container's address, gateway
// and MAC from the result.
func (c *cni) add(ctx context.Context, conf []byte, rt *libcni.RuntimeConf) (addr netip.Prefix, gw netip.Addr, mac string, err error) {
	ctx, span := trace.Start(ctx, "network.cni.add", "ifname", rt.IfName)
	defer func() { span.End(err) }()
	list, err := libcni.ConfListFromBytes(conf)
	if err != nil {
		return addr, gw, "", fmt.Errorf("CNI configuration: %w", err)
	}
	res, err := c.conf.AddNetworkList(ctx, list, rt)
	if err != nil {
		return addr, gw, "", err
	}
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return addr, gw, "", fmt.Errorf("CNI result: %w", err)
	}
	for _, ip := range r.IPs {
		if ip.Address.IP.To4() == nil {
			continue
		}
		a, _ := netip.AddrFromSlice(ip.Address.IP.To4())
		ones, _ := ip.Address.Mask.Size()
		addr = netip.PrefixFrom(a, ones)
		if ip.Gateway != nil {
			gw, _ = netip.AddrFromSlice(ip.Gateway.To4())
		}
		if ip.Interface != nil && *ip.Interface < len(r.Interfaces) {
			mac = r.Interfaces[*ip.Interface].Mac
		}
		break
	}
	if mac == "" {
		for _, itf := range r.Interfaces {
			if itf.Sandbox != "" && itf.Name == rt.IfName {
				mac = itf.Mac
			}
		}
	}
	if !addr.IsValid() {
		return addr, gw, mac, fmt.Errorf("CNI gave interface %s no IPv4 address", rt.IfName)
	}
	return addr, gw, mac, nil
}

// del runs DEL for one endpoint: the plugins release the address, delete
// the veth pair and the port mappings. The namespace may be gone already
// (the plugins then clean up what is outside it).
func (c *cni) del(ctx context.Context, conf []byte, rt *libcni.RuntimeConf) (err error) {
	ctx, span := trace.Start(ctx, "network.cni.del", "ifname", rt.IfName)
	defer func() { span.End(err) }()
	list, err := libcni.ConfListFromBytes(conf)
	if err != nil {
		return fmt.Errorf("CNI configuration: %w", err)
	}
	return c.conf.DelNetworkList(ctx, list, rt)
}

// tracedExec executes CNI plugins like libcni's default, with a span per
// plugin, and with the sbin directories on PATH: the plugins run iptables
// by name, and hakod may have been started with a user's PATH.
type tracedExec struct {
	raw invoke.RawExec
}

func (e *tracedExec) ExecPlugin(ctx context.Context, pluginPath string, stdin []byte, environ []string) (out []byte, err error) {
	cmd := "?"
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "CNI_COMMAND="); ok {
			cmd = v
		}
	}
	ctx, span := trace.Start(ctx, "network.cni.exec", "plugin", filepath.Base(pluginPath), "command", cmd)
	defer func() { span.End(err) }()
	return e.raw.ExecPlugin(ctx, pluginPath, stdin, withOneProc(withSbinPath(environ)))
}

// withOneProc sets GOMAXPROCS=1 unless the environment sets it. The
// standard plugins are Go programs that live a few milliseconds, doing
// netlink calls one after the other; with one P the runtime starts fewer
// threads, which cost each run 13% of its CPU time here (the bridge
// plugin's VERSION: 10.8 ms task-clock, 9.4 with one P, `perf stat -r 30`).
// Four plugin runs come with every container on a CNI network (bridge and
// host-local on ADD and DEL). bridge hands its environment on to its IPAM
// plugin.
func withOneProc(environ []string) []string {
	for _, kv := range environ {
		if strings.HasPrefix(kv, "GOMAXPROCS=") {
			return environ
		}
	}
	return append(environ, "GOMAXPROCS=1")
}

func (e *tracedExec) FindInPath(plugin string, paths []string) (string, error) {
	return invoke.FindInPath(plugin, paths)
}

func (e *tracedExec) Decode(b []byte) (version.PluginInfo, error) {
	return (&version.PluginDecoder{}).Decode(b)
}

// withSbinPath returns environ with /usr/sbin and /sbin on PATH.
func withSbinPath(environ []string) []string {
	out := make([]string, 0, len(environ)+1)
	found := false
	for _, kv := range environ {
		if p, ok := strings.CutPrefix(kv, "PATH="); ok {
			found = true
			for _, d := range []string{"/usr/local/sbin", "/usr/sbin", "/sbin"} {
				if !strings.Contains(":"+p+":", ":"+d+":") {
					p += ":" + d
				}
			}
			kv = "PATH=" + p
		}
		out = append(out, kv)
	}
	if !found {
		out = append(out, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	return out
}

// pluginsPresent checks that the plugins hakod uses are installed.
func pluginsPresent(dirs []string) error {
	for _, p := range []string{"bridge", "host-local", "portmap"} {
		if _, err := invoke.FindInPath(p, dirs); err != nil {
			return fmt.Errorf("CNI plugin %s not found in %s (apt-get install containernetworking-plugins): %w", p, strings.Join(dirs, ", "), err)
		}
	}
	return nil
}

// ensureDirs creates the directories the CNI side needs.
func ensureDirs(dirs ...string) error {
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	return nil
}
