package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// A bridge network's Linux bridge is made by hakod when the network is
// created, with the gateway address on it and up, not by the CNI bridge
// plugin at the first container: the address then marks the subnet as
// taken for other daemons from the start (see pickSubnet), and a network
// without containers is visible as docker's are (br-..., docker0). The
// plugin finds the bridge and only adds the veths.

// ensureBridge creates the bridge name if it does not exist, gives it
// gateway/bits unless gateway is invalid (an internal network), and brings
// it up.
func ensureBridge(name string, gateway netip.Addr, bits, mtu int) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return fmt.Errorf("find bridge %s: %w", name, err)
		}
		la := netlink.NewLinkAttrs()
		la.Name = name
		if mtu > 0 {
			la.MTU = mtu
		}
		br := &netlink.Bridge{LinkAttrs: la}
		if err := netlink.LinkAdd(br); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create bridge %s: %w", name, err)
		}
		if l, err = netlink.LinkByName(name); err != nil {
			return fmt.Errorf("find bridge %s: %w", name, err)
		}
	}
	if _, ok := l.(*netlink.Bridge); !ok {
		return fmt.Errorf("%s exists and is not a bridge (%s)", name, l.Type())
	}
	if gateway.IsValid() {
		ipn := &net.IPNet{IP: gateway.AsSlice(), Mask: net.CIDRMask(bits, 32)}
		if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: ipn}); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("give bridge %s the address %s: %w", name, ipn, err)
		}
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("bring bridge %s up: %w", name, err)
	}
	return nil
}

// deleteBridge deletes the bridge name; a missing one is no error.
func deleteBridge(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("find bridge %s: %w", name, err)
	}
	if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete bridge %s: %w", name, err)
	}
	return nil
}

// bridgeAddrs lists the IPv4 addresses on the link name (nil if it does
// not exist).
func bridgeAddrs(name string) []netip.Prefix {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil
	}
	addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
	for i := 0; i < 10 && errors.Is(err, netlink.ErrDumpInterrupted); i++ {
		addrs, err = netlink.AddrList(l, netlink.FAMILY_V4)
	}
	if err != nil {
		return nil
	}
	var out []netip.Prefix
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP.To4())
		if !ok {
			continue
		}
		ones, _ := a.Mask.Size()
		out = append(out, netip.PrefixFrom(ip, ones))
	}
	return out
}

// Per-network firewall rules, one set per network rather than per
// container, each tagged with the comment hako-<network ID, 12 digits> so
// that removal and clean-up find exactly ours:
//
//	nat POSTROUTING  -s SUBNET ! -o BRIDGE -j MASQUERADE   egress (not for internal networks,
//	                                                      nor with enable_ip_masquerade=false)
//	filter FORWARD   -i BRIDGE -j ACCEPT                  forwarding even under a DROP policy
//	filter FORWARD   -o BRIDGE -j ACCEPT                  (which dockerd may set)
//	filter HAKO-ISOLATION-STAGE-1  -i BRIDGE ! -o BRIDGE -j HAKO-ISOLATION-STAGE-2
//	filter HAKO-ISOLATION-STAGE-2  -o BRIDGE -m conntrack ! --ctstate DNAT -j DROP
//	                                                      isolation from the other networks
//	filter FORWARD   -i BRIDGE ! -o BRIDGE -j DROP        internal networks instead: no way out,
//	filter FORWARD   -o BRIDGE ! -i BRIDGE -j DROP        and no way in
//
// Isolation is docker's two stages: a packet that leaves a network's
// bridge for another interface goes to stage 2, which drops it if that
// interface is the bridge of another network, unless the packet belongs to
// a connection to a published port (portmap's DNAT: docker lets containers
// reach other networks' published ports through a host address). The
// chains are the machine's, not one daemon's: every hakod on the machine
// puts its networks' rules into them, so the networks of two hakods are
// isolated from each other as two networks of one are. FORWARD jumps to
// stage 1 before any ACCEPT of ours (see installRules); the jump and the
// chains go when the last network's rules go.
//
// The rules of FORWARD and POSTROUTING are inserted at the head of their
// chains (FORWARD's right after the isolation jump), so rules appended by
// others (a REJECT at the end of FORWARD) do not shadow them. iptables is
// the command on PATH: on Debian 12 iptables-nft, which writes nftables
// rules in the iptables-compatible tables, the same backend the CNI
// plugins (portmap) use through the same command.
type rule struct {
	table, chain string
	args         []string
}

const (
	isolationStage1 = "HAKO-ISOLATION-STAGE-1"
	isolationStage2 = "HAKO-ISOLATION-STAGE-2"
)

// isolationJump is FORWARD's rule that sends every forwarded packet
// through the isolation chains.
var isolationJump = []string{"-j", isolationStage1}

func ruleComment(n *Network) string { return "hako-" + n.ID[:12] }

func networkRules(n *Network) []rule {
	c := []string{"-m", "comment", "--comment", ruleComment(n)}
	if n.Internal {
		return []rule{
			{"filter", "FORWARD", append([]string{"-i", n.Bridge, "!", "-o", n.Bridge, "-j", "DROP"}, c...)},
			{"filter", "FORWARD", append([]string{"-o", n.Bridge, "!", "-i", n.Bridge, "-j", "DROP"}, c...)},
		}
	}
	rs := []rule{
		{"filter", isolationStage2, append([]string{"-o", n.Bridge, "-m", "conntrack", "!", "--ctstate", "DNAT", "-j", "DROP"}, c...)},
		{"filter", isolationStage1, append([]string{"-i", n.Bridge, "!", "-o", n.Bridge, "-j", isolationStage2}, c...)},
		{"filter", "FORWARD", append([]string{"-i", n.Bridge, "-j", "ACCEPT"}, c...)},
		{"filter", "FORWARD", append([]string{"-o", n.Bridge, "-j", "ACCEPT"}, c...)},
	}
	if n.Options[optMasquerade] != "false" {
		rs = append(rs, rule{"nat", "POSTROUTING", append([]string{"-s", n.Subnet.Masked().String(), "!", "-o", n.Bridge, "-j", "MASQUERADE"}, c...)})
	}
	return rs
}

// iptables runs the iptables command, waiting for the xtables lock.
func iptables(args ...string) (string, error) {
	cmd := exec.Command("iptables", append([]string{"-w"}, args...)...)
	cmd.Env = withSbinPath(os.Environ())
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("iptables %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// installRules adds n's rules that are missing, FORWARD's right after
// the isolation jump (made first if missing), so that the jump comes
// before every ACCEPT of ours whatever the order networks are made in.
// It holds the firewall lock: the chains and the jump are shared by the
// machine's hakods.
func installRules(n *Network) error {
	unlock, err := firewallLock()
	if err != nil {
		return err
	}
	defer unlock()
	jump, err := ensureIsolation()
	if err != nil {
		return fmt.Errorf("install the rules of network %s: %w", n.Name, err)
	}
	for _, r := range networkRules(n) {
		if _, err := iptables(append([]string{"-t", r.table, "-C", r.chain}, r.args...)...); err == nil {
			continue
		}
		at := 1
		if r.chain == "FORWARD" {
			at = jump + 1
		}
		if _, err := iptables(append([]string{"-t", r.table, "-I", r.chain, strconv.Itoa(at)}, r.args...)...); err != nil {
			return fmt.Errorf("install the rules of network %s: %w", n.Name, err)
		}
	}
	return nil
}

// ensureIsolation creates the isolation chains and FORWARD's jump to them
// (at the head) if missing, and returns the jump's rule number in FORWARD.
func ensureIsolation() (int, error) {
	for _, chain := range []string{isolationStage2, isolationStage1} {
		if _, err := iptables("-t", "filter", "-S", chain); err == nil {
			continue
		}
		if _, err := iptables("-t", "filter", "-N", chain); err != nil {
			return 0, err
		}
	}
	out, err := iptables("-t", "filter", "-S", "FORWARD")
	if err != nil {
		return 0, err
	}
	if i := ruleNumber(out, "FORWARD", isolationJump); i > 0 {
		return i, nil
	}
	if _, err := iptables(append([]string{"-t", "filter", "-I", "FORWARD", "1"}, isolationJump...)...); err != nil {
		return 0, err
	}
	return 1, nil
}

// ruleNumber is the number (from 1) of the rule chain -A args in the
// output of iptables -S, 0 if it is not there.
func ruleNumber(listing, chain string, args []string) int {
	want := strings.Join(append([]string{"-A", chain}, args...), " ")
	n := 0
	for _, line := range strings.Split(listing, "\n") {
		if !strings.HasPrefix(line, "-A ") {
			continue
		}
		n++
		if strings.TrimSpace(line) == want {
			return n
		}
	}
	return 0
}

// removeRules deletes every rule tagged with n's comment, whatever its
// form (a rule of an older hakod included), then the isolation chains and
// their jump if no network of any hakod uses them any more.
func removeRules(n *Network) error {
	unlock, err := firewallLock()
	if err != nil {
		return err
	}
	defer unlock()
	return errors.Join(removeTagged(ruleComment(n)), removeIsolationIfUnused())
}

// removeIsolationIfUnused deletes FORWARD's jump and the isolation chains
// when the chains hold no rule.
func removeIsolationIfUnused() error {
	for _, chain := range []string{isolationStage1, isolationStage2} {
		out, err := iptables("-t", "filter", "-S", chain)
		if err == nil && strings.Contains(out, "-A "+chain+" ") {
			return nil
		}
	}
	var errs []error
	for i := 0; i < 10; i++ {
		if _, err := iptables(append([]string{"-t", "filter", "-C", "FORWARD"}, isolationJump...)...); err != nil {
			break
		}
		if _, err := iptables(append([]string{"-t", "filter", "-D", "FORWARD"}, isolationJump...)...); err != nil {
			errs = append(errs, err)
			break
		}
	}
	for _, chain := range []string{isolationStage1, isolationStage2} {
		if _, err := iptables("-t", "filter", "-S", chain); err != nil {
			continue // gone already
		}
		if _, err := iptables("-t", "filter", "-X", chain); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeTagged deletes the rules of the filter and nat tables whose
// comment is tag.
func removeTagged(tag string) error {
	var errs []error
	for _, table := range []string{"filter", "nat"} {
		out, err := iptables("-t", table, "-S")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) < 3 || f[0] != "-A" || !hasComment(f, tag) {
				continue
			}
			args := append([]string{"-t", table, "-D"}, unquote(f[1:])...)
			if _, err := iptables(args...); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func hasComment(fields []string, tag string) bool {
	for i := 0; i+1 < len(fields); i++ {
		if fields[i] == "--comment" && strings.Trim(fields[i+1], `"`) == tag {
			return true
		}
	}
	return false
}

// unquote strips the quotes iptables -S puts around comments (ours have no
// spaces, so a field is a whole argument).
func unquote(fields []string) []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = strings.Trim(f, `"`)
	}
	return out
}
