package network

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
)

// Name resolution between containers of a user-defined network works
// through their /etc/hosts files, which hakod keeps current: every change
// of a network's members (a container attached, connected, detached)
// rewrites the hosts file of each member. See docs/networking.md for why
// this and not an embedded DNS server.

// hostsDefaults are the lines docker starts every container's hosts with.
const hostsDefaults = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"

// peer is one name-bearing endpoint on a user-defined network.
type peer struct {
	ip    string
	names []string
}

// renderHosts is a's /etc/hosts: docker's defaults, its --add-host
// entries, its own address with its hostname (as docker writes them), then
// one line per container on each of its user-defined networks (itself
// included): the address, the container's name, its aliases on that
// network and its short ID, the names docker's DNS answers for.
func renderHosts(a *Attachment, peers map[string][]peer) []byte {
	var b bytes.Buffer
	b.WriteString(hostsDefaults)
	addressed := slices.ContainsFunc(a.Endpoints, func(ep Endpoint) bool { return ep.Address.IsValid() })
	if !addressed && a.Hostname != "" {
		// lo only (--network none): the host name on a loopback address,
		// as the engine's first version of the file has it (engine:
		// etcFiles), which this one replaces.
		fmt.Fprintf(&b, "127.0.1.1\t%s\n", a.Hostname)
	}
	for _, h := range a.ExtraHosts {
		if name, ip, ok := strings.Cut(h, ":"); ok {
			fmt.Fprintf(&b, "%s\t%s\n", ip, name)
		}
	}
	for _, ep := range a.Endpoints {
		if ep.Address.IsValid() {
			fmt.Fprintf(&b, "%s\t%s\n", ep.Address.Addr(), a.Hostname)
			break
		}
	}
	for _, ep := range a.Endpoints {
		ps := peers[ep.NetworkID]
		if len(ps) == 0 {
			continue
		}
		fmt.Fprintf(&b, "# containers on network %s (kept current by hakod)\n", ep.NetworkName)
		for _, p := range ps {
			fmt.Fprintf(&b, "%s\t%s\n", p.ip, strings.Join(p.names, " "))
		}
	}
	return b.Bytes()
}

// peersOf lists the named endpoints on network id among atts, sorted by
// name then address so that files are stable.
func peersOf(id string, atts map[string]*Attachment) []peer {
	var out []peer
	for _, a := range atts {
		ep := a.endpoint(id)
		if ep == nil || !ep.Address.IsValid() {
			continue
		}
		names := []string{}
		if a.Name != "" {
			names = append(names, a.Name)
		}
		for _, al := range ep.Aliases {
			if al != "" && al != a.Name && !contains(names, al) {
				names = append(names, al)
			}
		}
		if len(a.ContainerID) >= 12 && !contains(names, a.ContainerID[:12]) {
			names = append(names, a.ContainerID[:12])
		}
		out = append(out, peer{ip: ep.Address.Addr().String(), names: names})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].names[0] != out[j].names[0] {
			return out[i].names[0] < out[j].names[0]
		}
		return out[i].ip < out[j].ip
	})
	return out
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// writeInPlace replaces the content of path without replacing the file:
// the container sees its /etc/hosts through a bind mount of this very
// inode, which a rename would leave behind. The file is overwritten, then
// cut to length, so a reader sees at worst the old lines past the end of a
// shorter new content for an instant, never an empty file.
func writeInPlace(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Truncate(int64(len(data))); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
