package cli_test

import (
	"regexp"
	"sort"
	"strings"
	"testing"
)

// cleanupNetworks removes networks by name when t ends (after the
// containers, which cleanup registered earlier and so removes later:
// t.Cleanup runs last-in first-out, so call this first).
func (s *suite) cleanupNetworks(t *testing.T, networks ...string) {
	t.Cleanup(func() {
		s.run(s.docker, "", append([]string{"network", "rm"}, networks...)...)
	})
}

// hostPorts hides the host ports the daemon picked (-p IP::PORT, -P).
func hostPorts(x string) string {
	return regexp.MustCompile(`(0\.0\.0\.0|127\.0\.0\.1|\[::\]):\d+`).ReplaceAllString(x, "$1:<port>")
}

// TestNetworkCreateLsInspectRm: a network's life through both CLIs, and
// the errors of bad input.
// reLabelList is a list of labels as list formats print them, k=v,k=v.
var reLabelList = regexp.MustCompile(`[\w.-]+=[^\s,"]*(?:,[\w.-]+=[^\s,"]*)+`)

// labelLists sorts each k=v,k=v list: the docker CLI prints .Labels in
// Go's map order, which differs from run to run.
func labelLists(x string) string {
	return reLabelList.ReplaceAllStringFunc(x, func(l string) string {
		parts := strings.Split(l, ",")
		sort.Strings(parts)
		return strings.Join(parts, ",")
	})
}

func TestNetworkCreateLsInspectRm(t *testing.T) {
	s := need(t)
	n := names{base: "clinet"}
	s.cleanupNetworks(t, n.d(), n.h())
	s.compare(t, n, "", []string{"network", "create", "--label", "suite=net", "--label", "who={}", "{}"}, ids)
	for _, args := range [][]string{
		{"network", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Scope}} {{.Internal}} {{json .Labels}} {{len .IPAM.Config}}", "{}"},
		{"network", "ls", "--filter", "label=who={}"},
		{"network", "ls", "-q", "--filter", "label=who={}"},
		{"network", "ls", "--no-trunc", "--filter", "label=who={}"},
		{"network", "ls", "--filter", "label=who={}", "--format", "{{.Name}} {{.Driver}} {{.Labels}} {{.Label \"suite\"}} {{.Internal}} {{.IPv6}}"},
		{"network", "ls", "--filter", "label=who={}", "--format", "json"},
		{"network", "ls", "--filter", "label=who={}", "--format", "table {{.Name}}\t{{.Scope}}"},
		{"network", "inspect", "--format", "{{json .Containers}}", "{}"},
		{"network", "create", "{}"},
	} {
		s.compare(t, n, "", args, ids, labelLists, func(x string) string {
			return regexp.MustCompile(`"CreatedAt":"[^"]*"`).ReplaceAllString(x, `"CreatedAt":"<t>"`)
		})
	}
	for _, args := range [][]string{
		{"network", "ls", "--filter", "foo=bar"},
		{"network", "ls", "extra"},
		{"network", "inspect", "nosuchnet"},
		{"network", "inspect", "-f", "{{.Name}}", "nosuchnet"},
		{"network", "create"},
		{"network", "create", "--subnet", "bad/24", "badnet"},
		{"network", "create", "--subnet", "10.77.0.0/24", "--gateway", "10.78.0.1", "badnet"},
		{"network", "create", "--ip-range", "10.77.0.0/25", "badnet"},
		{"network", "create", "--subnet", "10.77.0.0/24", "--subnet", "10.77.0.0/25", "badnet"},
		{"network", "create", "-d", "nosuchdriver", "badnet"},
		{"network", "rm"},
		{"network", "rm", "nosuchnet"},
		{"network", "rm", "none"},
		{"network", "connect", "nosuchnet"},
		{"network", "connect", "nosuchnet", "nosuchcontainer"},
		{"network", "disconnect", "nosuchnet", "nosuchcontainer"},
		{"network", "prune", "--filter", "nonsense"},
	} {
		d, _ := s.compare(t, names{}, "", args)
		if d.code == 0 {
			t.Errorf("%v: docker succeeded: %s", args, d)
		}
	}
	s.compare(t, names{}, "", []string{"network", "rm", "-f", "nosuchnet"})
	s.compare(t, n, "", []string{"network", "rm", "{}"})
	s.compare(t, n, "", []string{"network", "rm", "{}"})
}

// TestRunNetwork: containers on a user-defined network, by name, and
// connect/disconnect.
func TestRunNetwork(t *testing.T) {
	s := need(t)
	n := names{base: "clirun"}
	s.cleanupNetworks(t, n.d(), n.h())
	s.cleanup(t, n.d(), n.h(), n.d()+"-peer", n.h()+"-peer")
	for _, name := range []string{n.d(), n.h()} {
		s.must(t, s.docker, "network", "create", name)
		s.must(t, s.docker, "run", "-d", "--name", name+"-peer", "--network", name, testImage, "sleep", "300")
	}
	s.compare(t, n, "", []string{"run", "--rm", "--network", "{}", testImage, "sh", "-c",
		"ip -o link show eth0 | wc -l; ip route | grep -c ^default; ping -c1 -W2 {}-peer >/dev/null && echo peer-ok"})
	s.compare(t, n, "", []string{"run", "--rm", "--network", "none", testImage, "sh", "-c", "ip -o link | wc -l"})
	s.compare(t, names{}, "", []string{"run", "--rm", "--network", "nosuchnet", testImage, "true"})
	s.compare(t, n, "", []string{"inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{len $v.IPAddress}}{{end}} {{.HostConfig.NetworkMode}}", "{}-peer"},
		func(x string) string { return regexp.MustCompile(` \d+ `).ReplaceAllString(x, " <len> ") })
	s.compare(t, n, "", []string{"network", "inspect", "-f", "{{len .Containers}}", "{}"})
	s.compare(t, n, "", []string{"network", "rm", "{}"}, ids)
	s.compare(t, n, "", []string{"network", "disconnect", "{}", "{}-peer"})
	s.compare(t, n, "", []string{"network", "disconnect", "{}", "{}-peer"}, ids)
	s.compare(t, n, "", []string{"network", "connect", "{}", "{}-peer"})
	s.compare(t, n, "", []string{"network", "connect", "{}", "{}-peer"})
	s.compare(t, n, "", []string{"exec", "{}-peer", "sh", "-c", "ip -o link show eth0 >/dev/null && echo has-eth0"})
}

// TestPort: published ports as port and ps show them.
func TestPort(t *testing.T) {
	s := need(t)
	n := names{base: "cliport"}
	s.cleanupNetworks(t, n.d(), n.h())
	s.cleanup(t, n.d(), n.h())
	for _, name := range []string{n.d(), n.h()} {
		s.must(t, s.docker, "network", "create", name)
		s.must(t, s.docker, "run", "-d", "--name", name, "--network", name, "-p", "127.0.0.1::80", "--expose", "90", testImage, "httpd", "-f", "-p", "80")
	}
	for _, args := range [][]string{
		{"port", "{}"},
		{"port", "{}", "80"},
		{"port", "{}", "80/tcp"},
		{"port", "{}", "81"},
		{"port", "{}", "90"},
		{"port", "{}", "abc"},
		{"ps", "--filter", "name={}", "--format", "{{.Ports}}"},
		{"container", "port", "{}", "80"},
	} {
		s.compare(t, n, "", args, hostPorts)
	}
	for _, args := range [][]string{
		{"port"},
		{"port", "nosuchcontainer"},
		{"port", "a", "b", "c"},
	} {
		s.compare(t, names{}, "", args)
	}
}

// TestRunNetworkAddressFlags: --ip, --network-alias and the advanced
// --network syntax on one user network (its subnet in 10.88.0.0/16), and
// the errors of bad input.
func TestRunNetworkAddressFlags(t *testing.T) {
	s := need(t)
	n := names{base: "cliaddr"}
	net, plain := "cliaddr-net", "cliaddr-plain"
	s.cleanupNetworks(t, net, plain)
	s.cleanup(t, n.d(), n.h())
	s.must(t, s.docker, "network", "create", "--subnet", "10.88.41.0/24", net)
	s.must(t, s.docker, "network", "create", plain)
	show := []string{testImage, "sh", "-c", "ip -o -4 addr show eth0 | awk '{print $4}'"}
	for _, args := range [][]string{
		append([]string{"run", "--rm", "--network", net, "--ip", "10.88.41.5"}, show...),
		append([]string{"run", "--rm", "--network", "name=" + net + ",ip=10.88.41.6"}, show...),
		append([]string{"run", "--rm", "--net", "name=" + net + ",alias=x,ip=10.88.41.7"}, show...),
	} {
		s.compare(t, names{}, "", args)
	}
	s.compare(t, n, "", []string{"run", "-d", "--name", "{}", "--network", net, "--network-alias", "{}-al", testImage, "sleep", "300"}, ids)
	s.compare(t, n, "", []string{"run", "--rm", "--network", net, testImage, "sh", "-c", "ping -c1 -W2 {}-al >/dev/null && echo alias-ok"})
	for _, args := range [][]string{
		{"run", "--rm", "--network", plain, "--ip", "10.88.41.20", testImage, "true"},
		{"run", "--rm", "--network", net, "--ip", "10.88.99.5", testImage, "true"},
		{"run", "--rm", "--network", "name=" + net + ",alias=a", "--network-alias", "b", testImage, "true"},
		{"run", "--rm", "--network", "name=" + net + ",ip=10.88.41.22", "--ip", "10.88.41.23", testImage, "true"},
		{"run", "--rm", "--network", "name=" + net + ",foo=bar", testImage, "true"},
		{"run", "--rm", "--network", "alias=a", testImage, "true"},
		{"run", "--rm", "--network", "bridge", "--network-alias", "a", testImage, "true"},
		{"run", "--rm", "--network", net, "--network", net, testImage, "true"},
		{"run", "--rm", "--network", "host", "--network", net, testImage, "true"},
		{"create", "--network", net, "--mac-address", "zz", testImage},
	} {
		d, _ := s.compare(t, names{}, "", args)
		if d.code == 0 {
			t.Errorf("%v: docker succeeded: %s", args, d)
		}
	}
}
