package runopts

import (
	"encoding/csv"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// attachment is one --network value: a bare name, or docker's advanced
// form name=NET,alias=A,ip=IP,ip6=IP,mac-address=MAC,link-local-ip=IP,
// driver-opt=K=V,gw-priority=N.
type attachment struct {
	target       string
	aliases      []string
	driverOpts   map[string]string
	links        []string
	ipv4, ipv6   netip.Addr
	linkLocalIPs []netip.Addr
	mac          string
	gwPriority   int
}

// NetworkList is the repeatable --network (--net) flag.
type NetworkList struct {
	list []attachment
}

// reAdvanced tells the advanced syntax from a name, as docker does (the
// match is not anchored).
var reAdvanced = regexp.MustCompile(`\w+=\w+(,\w+=\w+)*`)

// Set parses one --network value with docker's rules: the advanced form
// is CSV, lowercased as a whole (keys and values) and trimmed.
func (n *NetworkList) Set(value string) error {
	if !reAdvanced.MatchString(value) {
		n.list = append(n.list, attachment{target: value})
		return nil
	}
	fields, err := csv.NewReader(strings.NewReader(value)).Read()
	if err != nil {
		return err
	}
	a := attachment{aliases: []string{}}
	for _, field := range fields {
		key, val, ok := strings.Cut(strings.ToLower(field), "=")
		if !ok || key == "" {
			return fmt.Errorf("invalid field %s", field)
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch key {
		case "name":
			a.target = val
		case "alias":
			a.aliases = append(a.aliases, val)
		case "ip", "ip6", "link-local-ip":
			ip, err := netip.ParseAddr(val)
			if err != nil {
				return err
			}
			switch key {
			case "ip":
				a.ipv4 = ip
			case "ip6":
				a.ipv6 = ip
			default:
				a.linkLocalIPs = append(a.linkLocalIPs, ip)
			}
		case "mac-address":
			a.mac = val
		case "driver-opt":
			k, v, ok := strings.Cut(val, "=")
			if k = strings.TrimSpace(k); !ok || k == "" {
				return errors.New("invalid key value pair format in driver options")
			}
			if a.driverOpts == nil {
				a.driverOpts = map[string]string{}
			}
			a.driverOpts[k] = strings.TrimSpace(v)
		case "gw-priority":
			p, err := strconv.Atoi(val)
			if err != nil {
				var numErr *strconv.NumError
				if errors.As(err, &numErr) {
					err = numErr.Err
				}
				return fmt.Errorf("invalid gw-priority (%s): %w", val, err)
			}
			a.gwPriority = p
		default:
			return errors.New("invalid field key " + key)
		}
	}
	if a.target == "" {
		return errors.New("network name/id is not specified")
	}
	n.list = append(n.list, a)
	return nil
}

func (n *NetworkList) String() string { return "" }

// Type names the value in help.
func (n *NetworkList) Type() string { return "network" }

// mode is the HostConfig.NetworkMode: the first network, "default"
// when none is given, as docker sends.
func (n *NetworkList) mode() string {
	if len(n.list) == 0 {
		return "default"
	}
	return n.list[0].target
}

// validateLink checks --link NAME[:ALIAS] as docker's opts.ParseLink.
func validateLink(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty string specified for links")
	}
	if strings.Count(s, ":") > 1 {
		return "", errors.New("bad format for links: " + s)
	}
	return s, nil
}

// IPFlag parses an address flag ("" is none) with pflag's wording for
// a bad one.
func IPFlag(name, v string) (netip.Addr, error) {
	if v == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("invalid argument %q for \"--%s\" flag: invalid string being converted to IP address: %s", v, name, v)
	}
	return a, nil
}

// networking returns the endpoint settings as docker's parseNetworkOpts
// does: the container-wide flags (--network-alias, --link, --ip, --ip6,
// --mac-address, --link-local-ip) apply to the first network (or to
// "default" when none is given); a single network without options gets
// no endpoint, the default network always an (empty) one.
func (o *Options) networking() (*network.NetworkingConfig, error) {
	ipv4, err := IPFlag("ip", o.ipv4)
	if err != nil {
		return nil, err
	}
	ipv6, err := IPFlag("ip6", o.ipv6)
	if err != nil {
		return nil, err
	}
	var linkLocal []netip.Addr
	for _, l := range o.linkLocalIPs.Values() {
		a, err := IPFlag("link-local-ip", l)
		if err != nil {
			return nil, err
		}
		linkLocal = append(linkLocal, a)
	}
	common := attachment{
		aliases: o.aliases.Values(), links: o.links.Values(),
		ipv4: ipv4, ipv6: ipv6, linkLocalIPs: linkLocal, mac: o.macAddress,
	}

	eps := map[string]*network.EndpointSettings{}
	nets := o.networks.list
	if len(nets) == 0 {
		a := attachment{target: "default"}
		if err := a.apply(common); err != nil {
			return nil, err
		}
		ep, err := a.endpoint()
		if err != nil {
			return nil, err
		}
		eps["default"] = ep
	}
	var userDefined, other bool
	for i, a := range nets {
		if container.NetworkMode(a.target).IsUserDefined() {
			userDefined = true
		} else {
			other = true
		}
		if i == 0 {
			if err := a.apply(common); err != nil {
				return nil, err
			}
		}
		ep, err := a.endpoint()
		if err != nil {
			return nil, err
		}
		if _, ok := eps[a.target]; ok {
			return nil, fmt.Errorf("network %q is specified multiple times", a.target)
		}
		if i == 0 && len(nets) == 1 && reflect.ValueOf(*ep).IsZero() {
			continue
		}
		eps[a.target] = ep
	}
	if userDefined && other {
		return nil, errors.New("conflicting options: cannot attach both user-defined and non-user-defined network-modes")
	}
	return &network.NetworkingConfig{EndpointsConfig: eps}, nil
}

// apply puts the container-wide flags c on a, refusing them next to the
// same per-network option.
func (a *attachment) apply(c attachment) error {
	for _, x := range []struct {
		both bool
		msg  string
	}{
		{len(a.aliases) > 0 && len(c.aliases) > 0, "--network-alias and per-network alias"},
		{len(a.links) > 0 && len(c.links) > 0, "--link and per-network links"},
		{a.ipv4.IsValid() && c.ipv4.IsValid(), "--ip and per-network IPv4 address"},
		{a.ipv6.IsValid() && c.ipv6.IsValid(), "--ip6 and per-network IPv6 address"},
		{a.mac != "" && c.mac != "", "--mac-address and per-network MAC address"},
		{len(a.linkLocalIPs) > 0 && len(c.linkLocalIPs) > 0, "--link-local-ip and per-network link-local IP addresses"},
	} {
		if x.both {
			return errors.New("conflicting options: cannot specify both " + x.msg)
		}
	}
	if len(c.aliases) > 0 {
		a.aliases = c.aliases
	}
	// On a user-defined network --link is an endpoint option (an alias);
	// on the default bridge it is a legacy link (HostConfig.Links only).
	if container.NetworkMode(a.target).IsUserDefined() && len(c.links) > 0 {
		a.links = c.links
	}
	if c.ipv4.IsValid() {
		a.ipv4 = c.ipv4
	}
	if c.ipv6.IsValid() {
		a.ipv6 = c.ipv6
	}
	if c.mac != "" {
		a.mac = c.mac
	}
	if len(c.linkLocalIPs) > 0 {
		a.linkLocalIPs = c.linkLocalIPs
	}
	return nil
}

// endpoint is a's EndpointSettings, with docker's checks.
func (a *attachment) endpoint() (*network.EndpointSettings, error) {
	if strings.TrimSpace(a.target) == "" {
		return nil, errors.New("no name set for network")
	}
	if !container.NetworkMode(a.target).IsUserDefined() {
		if len(a.aliases) > 0 {
			return nil, errors.New("network-scoped aliases are only supported for user-defined networks")
		}
		if len(a.links) > 0 {
			return nil, errors.New("links are only supported for user-defined networks")
		}
	}
	ep := &network.EndpointSettings{GwPriority: a.gwPriority, DriverOpts: a.driverOpts}
	ep.Aliases = append(ep.Aliases, a.aliases...)
	if len(a.links) > 0 {
		ep.Links = a.links
	}
	if a.ipv4.IsValid() || a.ipv6.IsValid() || len(a.linkLocalIPs) > 0 {
		ep.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: a.ipv4, IPv6Address: a.ipv6, LinkLocalIPs: a.linkLocalIPs}
	}
	if a.mac != "" {
		mac, err := parseMAC(a.mac)
		if err != nil {
			return nil, err
		}
		ep.MacAddress = mac
	}
	return ep, nil
}

// parseMAC reads a MAC address with docker's message for a bad one.
func parseMAC(s string) (network.HardwareAddr, error) {
	m, err := net.ParseMAC(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("%s is not a valid mac address", s)
	}
	return network.HardwareAddr(m), nil
}
