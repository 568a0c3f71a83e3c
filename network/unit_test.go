package network

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
)

func TestConfList(t *testing.T) {
	n := &Network{ID: strings.Repeat("a", 64), Bridge: "hk-aaaaaaaaaaaa", Subnet: netip.MustParsePrefix("10.1.0.0/16"),
		Gateway: netip.MustParseAddr("10.1.0.1"), IPRange: netip.MustParsePrefix("10.1.5.0/24"), Options: map[string]string{optMTU: "1400"}}
	b, err := confList(n, "/run/x/ipam", true)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		CNIVersion string `json:"cniVersion"`
		Name       string
		Plugins    []map[string]any
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if c.CNIVersion != cniVersion || c.Name != n.ID || len(c.Plugins) != 2 {
		t.Fatalf("conf list %s", b)
	}
	br := c.Plugins[0]
	if br["type"] != "bridge" || br["bridge"] != n.Bridge || br["isGateway"] != true || br["ipMasq"] != false || br["mtu"] != float64(1400) {
		t.Errorf("bridge plugin %v", br)
	}
	ipam := br["ipam"].(map[string]any)
	rng := ipam["ranges"].([]any)[0].([]any)[0].(map[string]any)
	if ipam["type"] != "host-local" || ipam["dataDir"] != "/run/x/ipam" || rng["rangeStart"] != "10.1.5.1" || rng["rangeEnd"] != "10.1.5.254" || rng["gateway"] != "10.1.0.1" {
		t.Errorf("ipam %v", ipam)
	}
	if pm := c.Plugins[1]; pm["type"] != "portmap" || pm["snat"] != true {
		t.Errorf("portmap plugin %v", pm)
	}
	// Without ports, no portmap; internal: no gateway on the bridge, no route.
	n.Internal = true
	b, _ = confList(n, "/d", false)
	if strings.Contains(string(b), "portmap") || strings.Contains(string(b), `"routes"`) || !strings.Contains(string(b), `"isGateway":false`) {
		t.Errorf("internal, no ports: %s", b)
	}
}

func TestRangeBounds(t *testing.T) {
	for _, c := range []struct{ p, first, last string }{
		{"172.17.0.0/16", "172.17.0.1", "172.17.255.254"},
		{"10.0.0.128/25", "10.0.0.129", "10.0.0.254"},
		{"10.0.0.0/30", "10.0.0.1", "10.0.0.2"},
	} {
		f, l := rangeBounds(netip.MustParsePrefix(c.p))
		if f.String() != c.first || l.String() != c.last {
			t.Errorf("%s: %s-%s", c.p, f, l)
		}
	}
}

func TestDefaultPools(t *testing.T) {
	p := defaultPools()
	if p[0].String() != "172.17.0.0/16" || p[14].String() != "172.31.0.0/16" || p[15].String() != "192.168.0.0/20" || p[30].String() != "192.168.240.0/20" {
		t.Errorf("pools %v", p)
	}
	taken := []netip.Prefix{netip.MustParsePrefix("172.16.0.0/12")}
	if !overlapsAny(p[3], taken) || overlapsAny(p[20], taken) {
		t.Errorf("overlaps")
	}
}

func TestParseHostPort(t *testing.T) {
	for _, c := range []struct {
		in     string
		lo, hi int
		bad    bool
	}{
		{"", 0, 0, false}, {"8080", 8080, 8080, false}, {"8000-8010", 8000, 8010, false},
		{"abc", 0, 0, true}, {"10-5", 0, 0, true}, {"70000", 0, 0, true},
	} {
		lo, hi, err := ParseHostPort(c.in)
		if (err != nil) != c.bad || lo != c.lo || hi != c.hi {
			t.Errorf("%q: %d %d %v", c.in, lo, hi, err)
		}
	}
	if _, _, err := ParseHostPort("x"); err == nil || err.Error() != `invalid port specification: "x"` {
		t.Errorf("message: %v", err)
	}
}

func TestRenderHosts(t *testing.T) {
	user := "1111111111111111111111111111111111111111111111111111111111111111"
	a := &Attachment{ContainerID: strings.Repeat("c", 64), Name: "web", Hostname: "h1", ExtraHosts: []string{"db.local:10.9.9.9"},
		Endpoints: []Endpoint{{NetworkID: user, NetworkName: "app", Address: netip.MustParsePrefix("10.1.0.2/16"), Aliases: []string{"www"}}}}
	b := &Attachment{ContainerID: strings.Repeat("d", 64), Name: "api", Hostname: "h2",
		Endpoints: []Endpoint{{NetworkID: user, NetworkName: "app", Address: netip.MustParsePrefix("10.1.0.3/16")}}}
	atts := map[string]*Attachment{a.ContainerID: a, b.ContainerID: b}
	got := string(renderHosts(a, map[string][]peer{user: peersOf(user, atts)}))
	want := hostsDefaults + "10.9.9.9\tdb.local\n10.1.0.2\th1\n# containers on network app (kept current by hakod)\n" +
		"10.1.0.3\tapi dddddddddddd\n10.1.0.2\tweb www cccccccccccc\n"
	if got != want {
		t.Errorf("hosts:\n%s\nwant:\n%s", got, want)
	}
	// Without peers (the default bridge): docker's layout.
	got = string(renderHosts(b, nil))
	if got != hostsDefaults+"10.1.0.3\th2\n" {
		t.Errorf("hosts without peers:\n%s", got)
	}
	// lo only (--network none): the host name on a loopback address, as
	// the engine's first version of the file.
	got = string(renderHosts(&Attachment{ContainerID: strings.Repeat("e", 64), Hostname: "h3", ExtraHosts: []string{"x:10.0.0.9"}}, nil))
	if got != hostsDefaults+"127.0.1.1\th3\n10.0.0.9\tx\n" {
		t.Errorf("hosts of a namespace with lo only:\n%s", got)
	}
}

func TestWithSbinPath(t *testing.T) {
	env := withSbinPath([]string{"A=1", "PATH=/usr/bin:/bin"})
	if env[1] != "PATH=/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin" {
		t.Errorf("%v", env)
	}
	if env := withSbinPath([]string{"A=1"}); !strings.HasPrefix(env[1], "PATH=") {
		t.Errorf("no PATH: %v", env)
	}
}

func TestWithOneProc(t *testing.T) {
	if env := withOneProc([]string{"A=1"}); len(env) != 2 || env[1] != "GOMAXPROCS=1" {
		t.Errorf("%v", env)
	}
	if env := withOneProc([]string{"GOMAXPROCS=4"}); len(env) != 1 || env[0] != "GOMAXPROCS=4" {
		t.Errorf("a caller's GOMAXPROCS must stay: %v", env)
	}
}

func TestNetworkRules(t *testing.T) {
	n := &Network{ID: strings.Repeat("e", 64), Bridge: "hk-x", Subnet: netip.MustParsePrefix("10.2.0.0/24"), Options: map[string]string{}}
	var got []string
	for _, r := range networkRules(n) {
		got = append(got, r.table+" "+r.chain+" "+strings.Join(r.args, " "))
	}
	want := []string{
		"filter HAKO-ISOLATION-STAGE-2 -o hk-x -m conntrack ! --ctstate DNAT -j DROP -m comment --comment hako-eeeeeeeeeeee",
		"filter HAKO-ISOLATION-STAGE-1 -i hk-x ! -o hk-x -j HAKO-ISOLATION-STAGE-2 -m comment --comment hako-eeeeeeeeeeee",
		"filter FORWARD -i hk-x -j ACCEPT -m comment --comment hako-eeeeeeeeeeee",
		"filter FORWARD -o hk-x -j ACCEPT -m comment --comment hako-eeeeeeeeeeee",
		"nat POSTROUTING -s 10.2.0.0/24 ! -o hk-x -j MASQUERADE -m comment --comment hako-eeeeeeeeeeee",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rules:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	n.Options[optMasquerade] = "false"
	if rs := networkRules(n); len(rs) != 4 || rs[3].table != "filter" {
		t.Errorf("masquerade off: %v", rs)
	}
	// Internal networks are cut off by their own DROPs, in FORWARD: no
	// isolation rules, no ACCEPT.
	n.Internal = true
	for _, r := range networkRules(n) {
		if r.chain != "FORWARD" || !strings.Contains(strings.Join(r.args, " "), "-j DROP") {
			t.Errorf("internal rule %v", r)
		}
	}
	if !hasComment(strings.Fields(`-A FORWARD -i hk-x -m comment --comment "hako-eeeeeeeeeeee" -j ACCEPT`), "hako-eeeeeeeeeeee") {
		t.Errorf("hasComment")
	}
}

func TestRuleNumber(t *testing.T) {
	listing := "-P FORWARD ACCEPT\n" +
		"-A FORWARD -j DOCKER-USER\n" +
		"-A FORWARD -j HAKO-ISOLATION-STAGE-1\n" +
		"-A FORWARD -o hk-x -m comment --comment hako-eeeeeeeeeeee -j ACCEPT\n"
	if n := ruleNumber(listing, "FORWARD", isolationJump); n != 2 {
		t.Errorf("jump at %d, want 2", n)
	}
	if n := ruleNumber("-P FORWARD ACCEPT\n-A FORWARD -j HAKO-ISOLATION-STAGE-10\n", "FORWARD", isolationJump); n != 0 {
		t.Errorf("jump found at %d in a listing without it", n)
	}
}
