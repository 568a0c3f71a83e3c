package network

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/errdefs"
)

// defaultPools are docker's default address pools, in docker's order:
// 172.17.0.0/16 to 172.31.0.0/16, then 192.168.0.0/20 to 192.168.240.0/20.
// The default bridge takes the first free one (172.17.0.0/16 on a machine
// without docker), user networks the next ones.
func defaultPools() []netip.Prefix {
	var out []netip.Prefix
	for i := 17; i <= 31; i++ {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(i), 0, 0}), 16))
	}
	for i := 0; i < 16; i++ {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(i * 16), 0}), 20))
	}
	return out
}

// errNoPool is docker's message when every default pool is taken.
var errNoPool = errdefs.Forbiddenf("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")

// hostPrefixes lists the IPv4 networks the host already uses: the
// destinations of its routes (but the default route) and the networks of
// its interfaces' addresses, whatever their state. Links named in own are
// skipped: they are our bridges, whose networks are ours to reuse.
func hostPrefixes(own map[string]bool) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var err error
	// A dump the kernel interrupts because the tables changed meanwhile
	// (other daemons make links all the time) is simply taken again.
	for i := 0; i < 10; i++ {
		if out, err = hostPrefixesOnce(own); !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return out, err
}

func hostPrefixesOnce(own map[string]bool) ([]netip.Prefix, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	skip := map[int]bool{}
	for _, l := range links {
		if own[l.Attrs().Name] {
			skip[l.Attrs().Index] = true
		}
	}
	var out []netip.Prefix
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst == nil || skip[r.LinkIndex] {
			continue
		}
		a, ok := netip.AddrFromSlice(r.Dst.IP.To4())
		if !ok {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		if ones == 0 {
			continue
		}
		out = append(out, netip.PrefixFrom(a, ones).Masked())
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	for _, ad := range addrs {
		if skip[ad.LinkIndex] || ad.IPNet == nil {
			continue
		}
		a, ok := netip.AddrFromSlice(ad.IP.To4())
		if !ok || a.IsLoopback() {
			continue
		}
		ones, _ := ad.Mask.Size()
		out = append(out, netip.PrefixFrom(a, ones).Masked())
	}
	return out, nil
}

// overlapsAny reports whether p overlaps one of list.
func overlapsAny(p netip.Prefix, list []netip.Prefix) bool {
	for _, q := range list {
		if p.Overlaps(q) {
			return true
		}
	}
	return false
}

// pickSubnet returns the first default pool that overlaps neither taken
// (our networks) nor the host's networks.
func pickSubnet(taken []netip.Prefix, own map[string]bool) (netip.Prefix, error) {
	host, err := hostPrefixes(own)
	if err != nil {
		return netip.Prefix{}, err
	}
	for _, p := range defaultPools() {
		if !overlapsAny(p, taken) && !overlapsAny(p, host) {
			return p, nil
		}
	}
	return netip.Prefix{}, errNoPool
}

// hostLock serializes choosing a subnet and creating its bridge among all
// hakods on the machine (tests run several side by side): the bridge's
// address is what tells the next one the subnet is taken, so both steps
// happen under one flock of a host-wide file.
func hostLock() (unlock func(), err error) { return flockHost("hako-network.lock") }

// firewallLock serializes the changes to the isolation chains shared by
// the machine's hakods (their jump's position, their removal when unused).
// It is taken last, under hostLock or not, and held for iptables commands
// only.
func firewallLock() (unlock func(), err error) { return flockHost("hako-firewall.lock") }

// flockHost takes an exclusive flock of the host-wide file name in
// /run/lock.
func flockHost(name string) (unlock func(), err error) {
	dir := "/run/lock"
	if _, err := os.Stat(dir); err != nil {
		dir = os.TempDir()
	}
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the host's lock %s: %w", name, err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock the host's lock %s: %w", name, err)
	}
	return func() { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
}

// gatewayOf is the first address of p, docker's default gateway.
func gatewayOf(p netip.Prefix) netip.Addr { return p.Masked().Addr().Next() }
