package network

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// needRoot skips tests that make namespaces, bridges and rules.
func needRoot(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
	if os.Getuid() != 0 {
		t.Skip("integration test: needs root (namespaces, bridges, iptables)")
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		t.Skip("needs the CNI plugins (apt-get install containernetworking-plugins)")
	}
}

// openTest opens a manager on temporary roots, without the spare endpoint
// (TestSpareEndpoint turns it on with opts); cleanup purges it and checks
// the host is as before.
func openTest(t *testing.T, opts ...func(*Config)) (*Manager, Config) {
	t.Helper()
	needRoot(t)
	dir := t.TempDir()
	cfg := Config{DataRoot: filepath.Join(dir, "data"), ExecRoot: filepath.Join(dir, "run"), NoSpares: true}
	for _, o := range opts {
		o(&cfg)
	}
	m, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Close()
		nets := m.List()
		if err := Purge(context.Background(), cfg); err != nil {
			t.Errorf("purge: %v", err)
		}
		for _, n := range nets {
			if n.Bridge != "" && linkExists(n.Bridge) {
				t.Errorf("bridge %s left after purge", n.Bridge)
			}
			if out := rulesTagged(ruleComment(&n)); out != "" {
				t.Errorf("rules of %s left after purge:\n%s", n.Name, out)
			}
		}
		if err := isolationUnused(); err != nil {
			t.Error(err)
		}
	})
	return m, cfg
}

// isolationUnused checks that the isolation chains are gone unless
// someone (another hakod of the machine) still has rules in them, and
// that FORWARD jumps to them exactly when they exist.
func isolationUnused() error {
	out, err := exec.Command("iptables", "-w", "-S", isolationStage1).Output()
	b, _ := exec.Command("iptables", "-w", "-S", "FORWARD").Output()
	jump := ruleNumber(string(b), "FORWARD", isolationJump) > 0
	switch {
	case err != nil && jump:
		return fmt.Errorf("FORWARD jumps to %s, which does not exist", isolationStage1)
	case err == nil && !jump:
		return fmt.Errorf("%s exists without FORWARD's jump", isolationStage1)
	case err == nil && !strings.Contains(string(out), "-A "):
		return fmt.Errorf("%s left empty", isolationStage1)
	}
	return nil
}

func linkExists(name string) bool {
	return exec.Command("ip", "link", "show", name).Run() == nil
}

// rulesTagged lists the iptables rules (filter and nat) mentioning s.
func rulesTagged(s string) string {
	var out []string
	for _, table := range []string{"filter", "nat"} {
		b, _ := exec.Command("iptables", "-w", "-t", table, "-S").Output()
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, s) {
				out = append(out, table+": "+l)
			}
		}
	}
	return strings.Join(out, "\n")
}

// inNS runs a command in the namespace pinned at path.
func inNS(path string, args ...string) (string, error) {
	out, err := exec.Command("nsenter", append([]string{"--net=" + path}, args...)...).CombinedOutput()
	return string(out), err
}

func TestAttachDetach(t *testing.T) {
	m, _ := openTest(t)
	def, ok := m.Default()
	if !ok || def.Subnet.Bits() == 0 || !def.Subnet.Contains(def.Gateway) {
		t.Fatalf("default network %+v", def)
	}
	id := strings.Repeat("ab", 32)
	hosts := filepath.Join(t.TempDir(), "hosts")
	start := time.Now()
	att, err := m.Attach(context.Background(), AttachRequest{
		ContainerID: id, Name: "c1", Hostname: "h1", HostsPath: hosts,
		Networks: []EndpointRequest{{Network: "bridge"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("attach: %v", time.Since(start))
	ep := att.Endpoints[0]
	if !def.Subnet.Contains(ep.Address.Addr()) || ep.Gateway != def.Gateway || ep.MAC == "" {
		t.Errorf("endpoint %+v", ep)
	}
	if out, err := inNS(att.NetNS, "busybox", "ping", "-c1", "-W2", def.Gateway.String()); err != nil {
		t.Errorf("ping the gateway: %v\n%s", err, out)
	}
	if out, err := inNS(att.NetNS, "ip", "-o", "link", "show", "lo"); err != nil || !strings.Contains(out, "UP") {
		t.Errorf("lo: %v %s", err, out)
	}
	assertIPv6(t, att.NetNS, false)
	b, _ := os.ReadFile(hosts)
	if !strings.Contains(string(b), ep.Address.Addr().String()+"\th1\n") {
		t.Errorf("hosts:\n%s", b)
	}
	hostVeth := vethsOn(def.Bridge)
	if len(hostVeth) != 1 {
		t.Errorf("veths on %s: %v", def.Bridge, hostVeth)
	}
	start = time.Now()
	if err := m.Detach(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	t.Logf("detach: %v", time.Since(start))
	m.Settle()
	t.Logf("detach settled: %v", time.Since(start))
	assertNoLeftovers(t, m, id, ep.Address.Addr())
}

// assertIPv6 checks eth0 in the namespace pinned at netns: on hakod's
// networks (IPv4 only) it has IPv6 disabled and no IPv6 address, while lo
// keeps ::1; with a caller's CNI configuration (want true) IPv6 is left
// as the kernel has it.
func assertIPv6(t *testing.T, netns string, want bool) {
	t.Helper()
	if _, err := os.Stat("/proc/sys/net/ipv6"); err != nil {
		t.Log("no IPv6 in this kernel: not checked")
		return
	}
	out, err := inNS(netns, "cat", "/proc/sys/net/ipv6/conf/eth0/disable_ipv6")
	if got := strings.TrimSpace(out) == "0"; err != nil || got != want {
		t.Errorf("IPv6 on eth0 = %v (disable_ipv6 %q, err %v), want %v", got, strings.TrimSpace(out), err, want)
	}
	out, err = inNS(netns, "ip", "-o", "-6", "addr", "show", "dev", "eth0")
	if err != nil || strings.Contains(out, "inet6") != want {
		t.Errorf("eth0's IPv6 addresses (want some: %v): %v %q", want, err, out)
	}
	if out, err := inNS(netns, "ip", "-o", "-6", "addr", "show", "dev", "lo"); err != nil || !strings.Contains(out, "::1/128") {
		t.Errorf("lo lost ::1: %v %q", err, out)
	}
}

// vethsOn lists the interfaces enslaved to bridge.
func vethsOn(bridge string) []string {
	out, _ := exec.Command("ip", "-o", "link", "show", "master", bridge).Output()
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(l); len(f) > 1 {
			names = append(names, strings.TrimSuffix(strings.Split(f[1], "@")[0], ":"))
		}
	}
	return names
}

// assertNoLeftovers checks that container id left nothing: no namespace
// file, no attachment, no lease, no veth on our bridges, no rule naming it
// or its address.
func assertNoLeftovers(t *testing.T, m *Manager, id string, ip netip.Addr) {
	t.Helper()
	if fileExists(m.NetNSPath(id)) {
		t.Errorf("netns %s left", m.NetNSPath(id))
	}
	if _, ok := m.Attachment(id); ok {
		t.Errorf("attachment of %s left", id)
	}
	if fileExists(m.store.attachmentPath(id)) {
		t.Errorf("attachment file of %s left", id)
	}
	leases, _ := filepath.Glob(filepath.Join(m.ipamDir, "*", "*"))
	for _, l := range leases {
		base := filepath.Base(l)
		if base == "lock" || strings.HasPrefix(base, "last_reserved_ip") {
			continue
		}
		if b, _ := os.ReadFile(l); strings.Contains(string(b), id) {
			t.Errorf("lease left: %s", l)
		}
	}
	// The container's end of a veth goes with its namespace, which the
	// kernel destroys in the background: give it a moment. (Veths are
	// checked when no container is attached any more, and no spare
	// endpoint either.)
	m.mu.Lock()
	spare := m.spares[spareEndpoint].att != nil || m.spares[spareEndpoint].making
	m.mu.Unlock()
	for _, n := range m.List() {
		if n.Bridge == "" || len(m.Attachments()) > 0 || (n.Default && spare) {
			continue
		}
		deadline := time.Now().Add(5 * time.Second)
		for len(vethsOn(n.Bridge)) > 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if v := vethsOn(n.Bridge); len(v) > 0 {
			t.Errorf("veths left on %s: %v", n.Bridge, v)
			if os.Getenv("NETDEBUG") != "" {
				out, _ := exec.Command("sh", "-c", "ip -o link show master "+n.Bridge+"; for t in /proc/"+fmt.Sprint(os.Getpid())+"/task/*; do echo $t $(readlink $t/ns/net); done; ip netns list-id; lsns -t net").CombinedOutput()
				t.Logf("%s", out)
			}
		}
	}
	for _, s := range []string{id, ip.String() + "/", ip.String() + ":"} {
		if ip.IsValid() || s == id {
			if out := rulesTagged(s); out != "" {
				t.Errorf("rules mentioning %s left:\n%s", s, out)
			}
		}
	}
}

func TestPortsAndConflicts(t *testing.T) {
	m, _ := openTest(t)
	ctx := context.Background()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port
	id1, id2 := strings.Repeat("1", 64), strings.Repeat("2", 64)
	_, err = m.Attach(ctx, AttachRequest{ContainerID: id1, Name: "c1", Networks: []EndpointRequest{{Network: "bridge"}},
		Ports: []PortSpec{{HostIP: "127.0.0.1", HostPortStart: busy, HostPortEnd: busy, ContainerPort: 80, Protocol: "tcp"}}})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("Bind for 127.0.0.1:%d failed: port is already allocated", busy)) {
		t.Fatalf("port held by a host program: %v", err)
	}
	assertNoLeftovers(t, m, id1, netip.Addr{})
	// A range skips the busy port; an ephemeral one comes from the kernel.
	att, err := m.Attach(ctx, AttachRequest{ContainerID: id1, Name: "c1", Networks: []EndpointRequest{{Network: "bridge"}},
		Ports: []PortSpec{{HostPortStart: busy, HostPortEnd: busy + 1, ContainerPort: 80, Protocol: "tcp"}, {ContainerPort: 53, Protocol: "udp"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(att.Ports) != 2 || att.Ports[0].HostPort != busy+1 || att.Ports[1].HostPort == 0 || att.Ports[1].Protocol != "udp" {
		t.Errorf("ports %+v", att.Ports)
	}
	if out := rulesTagged(id1); !strings.Contains(out, "DNAT") {
		t.Errorf("no DNAT rules for %s:\n%s", id1, out)
	}
	// The same port for another container: refused, nothing made.
	_, err = m.Attach(ctx, AttachRequest{ContainerID: id2, Name: "c2", Networks: []EndpointRequest{{Network: "bridge"}},
		Ports: []PortSpec{{HostPortStart: busy + 1, HostPortEnd: busy + 1, ContainerPort: 80, Protocol: "tcp"}}})
	if err == nil || !strings.Contains(err.Error(), "port is already allocated") {
		t.Errorf("a port another container publishes: %v", err)
	}
	assertNoLeftovers(t, m, id2, netip.Addr{})
	ip := att.Endpoints[0].Address.Addr()
	if err := m.Detach(ctx, id1); err != nil {
		t.Fatal(err)
	}
	// The port is free once the detach is done, and a new container
	// publishing it waits for that.
	att2, err := m.Attach(ctx, AttachRequest{ContainerID: id2, Name: "c2", Networks: []EndpointRequest{{Network: "bridge"}},
		Ports: []PortSpec{{HostPortStart: busy + 1, HostPortEnd: busy + 1, ContainerPort: 80, Protocol: "tcp"}}})
	if err != nil {
		t.Fatalf("port of a detached container: %v", err)
	}
	if err := m.Detach(ctx, id2); err != nil {
		t.Fatal(err)
	}
	m.Settle()
	assertNoLeftovers(t, m, id1, ip)
	assertNoLeftovers(t, m, id2, att2.Endpoints[0].Address.Addr())
}

func TestNetworksCreateRemove(t *testing.T) {
	m, _ := openTest(t)
	ctx := context.Background()
	n, err := m.Create(ctx, CreateRequest{Name: "blue", Subnet: "10.213.40.0/24", Labels: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	if !linkExists(n.Bridge) || n.Gateway.String() != "10.213.40.1" || rulesTagged(ruleComment(&n)) == "" {
		t.Errorf("network %+v: bridge or rules missing", n)
	}
	for _, c := range []struct {
		req  CreateRequest
		want string
	}{
		{CreateRequest{Name: "green", Subnet: "10.213.40.128/25"}, "Pool overlaps with other one on this address space"},
		{CreateRequest{Name: "blue"}, "network with name blue already exists"},
		{CreateRequest{Name: "x", Subnet: "nonsense"}, "Invalid subnet nonsense : invalid CIDR address: nonsense"},
		{CreateRequest{Name: "x", Subnet: "10.213.41.0/24", Gateway: "10.213.42.1"}, "failed to allocate gateway (10.213.42.1): Requested address is out of range"},
		{CreateRequest{Name: "x", Driver: "macvlan"}, `plugin "macvlan" not found`},
		{CreateRequest{Name: "x", Options: map[string]string{optBridgeName: "a-name-far-too-long"}}, "longer than 15 characters"},
	} {
		before := m.List()
		if _, err := m.Create(ctx, c.req); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v (want %q)", c.req, err, c.want)
		}
		if len(m.List()) != len(before) {
			t.Errorf("%+v: a network was recorded", c.req)
		}
	}
	id := strings.Repeat("3", 64)
	if _, err := m.Attach(ctx, AttachRequest{ContainerID: id, Name: "c", Networks: []EndpointRequest{{Network: "blue", IPv4: netip.MustParseAddr("10.213.40.77")}}}); err != nil {
		t.Fatal(err)
	}
	if a, _ := m.Attachment(id); a.Endpoints[0].Address.Addr().String() != "10.213.40.77" {
		t.Errorf("--ip: %+v", a.Endpoints)
	}
	if err := m.Remove(ctx, "blue"); err == nil || !strings.Contains(err.Error(), "has active endpoints") {
		t.Errorf("remove with an endpoint: %v", err)
	}
	if err := m.Remove(ctx, "bridge"); err == nil || err.Error() != "bridge is a pre-defined network and cannot be removed" {
		t.Errorf("remove bridge: %v", err)
	}
	if err := m.Detach(ctx, id); err != nil {
		t.Fatal(err)
	}
	// Remove waits for the detach under way.
	if err := m.Remove(ctx, "blue"); err != nil {
		t.Fatal(err)
	}
	if linkExists(n.Bridge) || rulesTagged(ruleComment(&n)) != "" || fileExists(filepath.Join(m.ipamDir, n.ID)) {
		t.Errorf("network removed but its bridge, rules or leases are left")
	}
	if _, err := m.Get("blue"); err == nil {
		t.Errorf("removed network still there")
	}
}

func TestConnectDisconnect(t *testing.T) {
	m, _ := openTest(t)
	ctx := context.Background()
	if _, err := m.Create(ctx, CreateRequest{Name: "side"}); err != nil {
		t.Fatal(err)
	}
	id, peerID := strings.Repeat("4", 64), strings.Repeat("5", 64)
	dir := t.TempDir()
	peerHosts := filepath.Join(dir, "peer-hosts")
	if _, err := m.Attach(ctx, AttachRequest{ContainerID: peerID, Name: "peer", Hostname: "p", HostsPath: peerHosts, Networks: []EndpointRequest{{Network: "side"}}}); err != nil {
		t.Fatal(err)
	}
	att, err := m.Attach(ctx, AttachRequest{ContainerID: id, Name: "box", Hostname: "b", HostsPath: filepath.Join(dir, "hosts"), Networks: []EndpointRequest{{Network: "bridge"}}})
	if err != nil {
		t.Fatal(err)
	}
	ep, err := m.Connect(ctx, id, EndpointRequest{Network: "side", Aliases: []string{"boxy"}})
	if err != nil {
		t.Fatal(err)
	}
	if ep.IfName != "eth1" {
		t.Errorf("ifname %s", ep.IfName)
	}
	if out, err := inNS(att.NetNS, "busybox", "ping", "-c1", "-W2", ep.Gateway.String()); err != nil {
		t.Errorf("ping side's gateway: %v %s", err, out)
	}
	if b, _ := os.ReadFile(peerHosts); !strings.Contains(string(b), "\tbox boxy 444444444444\n") {
		t.Errorf("peer's hosts lacks box:\n%s", b)
	}
	if _, err := m.Connect(ctx, id, EndpointRequest{Network: "side"}); err == nil || !strings.Contains(err.Error(), "already exists in network side") {
		t.Errorf("connect twice: %v", err)
	}
	if err := m.Disconnect(ctx, id, ep.NetworkID); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(peerHosts); strings.Contains(string(b), "box") {
		t.Errorf("peer's hosts still has box:\n%s", b)
	}
	if out, _ := inNS(att.NetNS, "ip", "link", "show", "eth1"); !strings.Contains(out, "does not exist") {
		t.Errorf("eth1 after disconnect: %s", out)
	}
	for _, c := range []string{id, peerID} {
		if err := m.Detach(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	m.Settle()
	assertNoLeftovers(t, m, id, netip.Addr{})
	assertNoLeftovers(t, m, peerID, netip.Addr{})
}

// TestParallelAttach: twenty containers attached at once, then detached.
func TestParallelAttach(t *testing.T) {
	m, _ := openTest(t)
	ctx := context.Background()
	const n = 20
	errs := make(chan error, n)
	start := time.Now()
	for i := 0; i < n; i++ {
		go func() {
			_, err := m.Attach(ctx, AttachRequest{ContainerID: fmt.Sprintf("%064d", i), Name: fmt.Sprintf("c%d", i), Networks: []EndpointRequest{{Network: "bridge"}}})
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	t.Logf("%d attaches in parallel: %v", n, time.Since(start))
	seen := map[netip.Addr]bool{}
	for _, a := range m.Attachments() {
		ip := a.Endpoints[0].Address.Addr()
		if seen[ip] {
			t.Errorf("address %s given twice", ip)
		}
		seen[ip] = true
	}
	for i := 0; i < n; i++ {
		if err := m.Detach(ctx, fmt.Sprintf("%064d", i)); err != nil {
			t.Error(err)
		}
	}
	m.Settle()
	for i := 0; i < n; i++ {
		assertNoLeftovers(t, m, fmt.Sprintf("%064d", i), netip.Addr{})
	}
}

// TestReopen: attachments survive the manager (a hakod restart), their
// ports are reserved again, and Close takes idle bridges away.
func TestReopen(t *testing.T) {
	m, cfg := openTest(t)
	ctx := context.Background()
	id := strings.Repeat("6", 64)
	att, err := m.Attach(ctx, AttachRequest{ContainerID: id, Name: "c", Networks: []EndpointRequest{{Network: "bridge"}}, Ports: []PortSpec{{ContainerPort: 80, Protocol: "tcp"}}})
	if err != nil {
		t.Fatal(err)
	}
	def, _ := m.Default()
	m.Close()
	if !linkExists(def.Bridge) {
		t.Fatalf("Close removed a bridge with a container on it")
	}
	m2, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := m2.Attachment(id); !ok || a.Endpoints[0].Address != att.Endpoints[0].Address {
		t.Fatalf("attachment after reopen: %+v", a)
	}
	if d2, _ := m2.Default(); d2.ID != def.ID || d2.Subnet != def.Subnet {
		t.Errorf("default network changed: %+v vs %+v", d2, def)
	}
	if _, err := net.Listen("tcp", fmt.Sprintf(":%d", att.Ports[0].HostPort)); err == nil {
		t.Errorf("port %d not reserved again", att.Ports[0].HostPort)
	}
	if err := m2.Detach(ctx, id); err != nil {
		t.Fatal(err)
	}
	m2.Settle()
	assertNoLeftovers(t, m2, id, att.Endpoints[0].Address.Addr())
	m2.Close()
	if linkExists(def.Bridge) || rulesTagged(ruleComment(&def)) != "" {
		t.Errorf("idle bridge or its rules left after Close")
	}
	// openTest's clean-up purges the closed m, which finds nothing left.
	m3, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !linkExists(def.Bridge) {
		t.Errorf("Open did not make the bridge again")
	}
	m3.Close()
}

// TestIsolation: containers of two networks (and of the default one) do
// not reach each other by address, but reach their own network, the
// host, and the other network's published ports through a host address;
// a container connected to both reaches both. Removing the networks takes
// their isolation rules away.
func TestIsolation(t *testing.T) {
	m, _ := openTest(t)
	ctx := context.Background()
	red, err := m.Create(ctx, CreateRequest{Name: "red"})
	if err != nil {
		t.Fatal(err)
	}
	green, err := m.Create(ctx, CreateRequest{Name: "green"})
	if err != nil {
		t.Fatal(err)
	}
	if out := rulesTagged(ruleComment(&green)); !strings.Contains(out, "-A "+isolationStage1+" ") || !strings.Contains(out, "-A "+isolationStage2+" ") {
		t.Errorf("no isolation rules for green:\n%s", out)
	}
	if b, _ := exec.Command("iptables", "-w", "-S", "FORWARD").Output(); ruleNumber(string(b), "FORWARD", isolationJump) == 0 {
		t.Errorf("no jump to %s in FORWARD:\n%s", isolationStage1, b)
	}
	attach := func(c, net string, ports ...PortSpec) Attachment {
		t.Helper()
		a, err := m.Attach(ctx, AttachRequest{ContainerID: strings.Repeat(c, 64), Name: "c" + c, Networks: []EndpointRequest{{Network: net}}, Ports: ports})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	r1, r2 := attach("a", "red"), attach("b", "red")
	g1 := attach("c", "green", PortSpec{ContainerPort: 80, Protocol: "tcp"})
	d1 := attach("d", "bridge")
	ip := func(a Attachment) string { return a.Endpoints[0].Address.Addr().String() }
	reach := func(from Attachment, to string) bool {
		_, err := inNS(from.NetNS, "busybox", "ping", "-c1", "-W1", to)
		return err == nil
	}
	www := t.TempDir()
	if err := os.WriteFile(filepath.Join(www, "index.html"), []byte("green\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	httpd := exec.Command("nsenter", "--net="+g1.NetNS, "busybox", "httpd", "-f", "-p", "80", "-h", www)
	if err := httpd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { httpd.Process.Kill(); httpd.Wait() }()
	// GET / from addr (the host's busybox wget crashes, nc does not).
	get := func(from Attachment, addr string) string {
		host, port, _ := strings.Cut(addr, ":")
		var last string
		for i := 0; i < 10; i++ { // httpd starting
			out, _ := inNS(from.NetNS, "sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 2 "+host+" "+port)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if last = strings.TrimSpace(lines[len(lines)-1]); last == "green" {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		return last
	}
	if got := get(g1, "127.0.0.1:80"); got != "green" {
		t.Fatalf("httpd in green does not answer: %q", got)
	}
	if !reach(r1, ip(r2)) {
		t.Errorf("red to red: no")
	}
	for _, c := range []struct {
		from Attachment
		to   string
		what string
	}{{r1, ip(g1), "red to green"}, {g1, ip(r1), "green to red"}, {r1, ip(d1), "red to bridge"}, {d1, ip(g1), "bridge to green"}} {
		if reach(c.from, c.to) {
			t.Errorf("%s: reached %s", c.what, c.to)
		}
	}
	if out, err := inNS(r1.NetNS, "sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 2 "+ip(g1)+" 80"); err == nil || strings.Contains(out, "green") {
		t.Errorf("red reached green's httpd by its address")
	}
	// The host, through any of its addresses: another network's gateway
	// included.
	if !reach(r1, green.Gateway.String()) || !reach(d1, red.Gateway.String()) {
		t.Errorf("a container does not reach the host's addresses")
	}
	// A published port, through the host (the container's gateway).
	hp := g1.Ports[0].HostPort
	if got := get(r1, fmt.Sprintf("%s:%d", red.Gateway, hp)); got != "green" {
		t.Errorf("red to green's published port through its gateway: %q", got)
	}
	if got := get(d1, fmt.Sprintf("%s:%d", green.Gateway, hp)); got != "green" {
		t.Errorf("bridge to green's published port through green's gateway: %q", got)
	}
	// Connected to green too: red's container reaches green's.
	// (green's reaches it by its address on green, not on red).
	ep, err := m.Connect(ctx, r1.ContainerID, EndpointRequest{Network: "green"})
	if err != nil {
		t.Fatal(err)
	}
	if !reach(r1, ip(g1)) || !reach(r1, ip(r2)) || !reach(g1, ep.Address.Addr().String()) {
		t.Errorf("connected to both: red's container and green's do not reach each other")
	}
	if reach(g1, ip(r1)) {
		t.Errorf("green reached a red address")
	}
	httpd.Process.Kill()
	for _, a := range []Attachment{r1, r2, g1, d1} {
		if err := m.Detach(ctx, a.ContainerID); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"red", "green"} {
		if err := m.Remove(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []Network{red, green} {
		if out := rulesTagged(ruleComment(&n)); out != "" {
			t.Errorf("rules of %s left:\n%s", n.Name, out)
		}
	}
}

// TestAttachCallersNetNS attaches a namespace the caller made and pinned,
// owned by a user namespace of its own as a CRI pod's is: the endpoint is
// made in it, and Detach, after a reopen, and Purge delete the veth and
// the lease but leave the namespace, pinned, to its owner.
func TestAttachCallersNetNS(t *testing.T) {
	m, cfg := openTest(t)
	ctx := context.Background()
	// The owner: a process in new user and network namespaces, whose
	// network namespace is pinned as the engine pins a pod's.
	owner := exec.Command("sleep", "1000")
	owner.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 65536}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 65536}},
	}
	if err := owner.Start(); err != nil {
		t.Fatal(err)
	}
	pin := filepath.Join(t.TempDir(), "net")
	if err := os.WriteFile(pin, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(fmt.Sprintf("/proc/%d/ns/net", owner.Process.Pid), pin, "none", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	_ = owner.Process.Kill()
	_ = owner.Wait()
	t.Cleanup(func() {
		if err := unix.Unmount(pin, unix.MNT_DETACH); err != nil {
			t.Errorf("unpin the test's namespace: %v", err)
		}
	})
	if _, err := m.Attach(ctx, AttachRequest{ContainerID: strings.Repeat("7", 64), Networks: []EndpointRequest{{Network: "bridge"}},
		NetNS: "/proc/self/ns/user"}); err == nil {
		t.Errorf("a user namespace attached as a network namespace")
	}
	id := strings.Repeat("8", 64)
	att, err := m.Attach(ctx, AttachRequest{ContainerID: id, Name: "pod", Networks: []EndpointRequest{{Network: "bridge"}}, NetNS: pin})
	if err != nil {
		t.Fatal(err)
	}
	ep := att.Endpoints[0]
	def, _ := m.Default()
	if att.NetNS != pin || !att.CallersNetNS || !def.Subnet.Contains(ep.Address.Addr()) {
		t.Fatalf("attachment %+v", att)
	}
	if fileExists(m.NetNSPath(id)) {
		t.Errorf("a namespace of the manager's made for an attachment of the caller's")
	}
	if out, err := inNS(pin, "ip", "-o", "-4", "addr", "show", "eth0"); err != nil || !strings.Contains(out, ep.Address.String()) {
		t.Errorf("eth0 in the caller's namespace: %v %s", err, out)
	}
	if out, err := inNS(pin, "busybox", "ping", "-c1", "-W2", def.Gateway.String()); err != nil {
		t.Errorf("ping the gateway: %v\n%s", err, out)
	}
	// The record says whose the namespace is: a reopened manager's Detach
	// leaves it.
	m.Close()
	m2, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := m2.Attachment(id); !ok || !a.CallersNetNS || a.NetNS != pin {
		t.Fatalf("attachment after reopen: %+v", a)
	}
	if err := m2.Detach(ctx, id); err != nil {
		t.Fatal(err)
	}
	m2.Settle()
	assertNoLeftovers(t, m2, id, ep.Address.Addr())
	if !isNetNS(pin) {
		t.Fatalf("Detach removed the caller's namespace")
	}
	if out, err := inNS(pin, "ip", "-o", "link"); err != nil || strings.Contains(out, "eth0") || !strings.Contains(out, "lo") {
		t.Errorf("links left in the caller's namespace: %v %s", err, out)
	}
	// Purge, too, runs DEL but leaves the namespace.
	if _, err := m2.Attach(ctx, AttachRequest{ContainerID: id, Name: "pod", Networks: []EndpointRequest{{Network: "bridge"}}, NetNS: pin}); err != nil {
		t.Fatal(err)
	}
	m2.Close()
	if err := Purge(ctx, cfg); err != nil {
		t.Fatalf("purge: %v", err)
	}
	if !isNetNS(pin) {
		t.Fatalf("Purge removed the caller's namespace")
	}
	if out, err := inNS(pin, "ip", "-o", "link"); err != nil || strings.Contains(out, "eth0") {
		t.Errorf("links left in the caller's namespace after Purge: %v %s", err, out)
	}
}

// TestDetachInBackgroundTwice: a second background detach while the first
// runs its DELs returns at once instead of waiting for the container's
// lock (`run --rm` detaches at the exit and again at the removal, and the
// removal must not wait for the plugins); the first one still undoes all.
func TestDetachInBackgroundTwice(t *testing.T) {
	needRoot(t)
	// The bridge plugin, slowed down on DEL.
	plugins := t.TempDir()
	slow := "#!/bin/sh\n[ \"$CNI_COMMAND\" = DEL ] && sleep 2\nexec /usr/lib/cni/bridge \"$@\"\n"
	if err := os.WriteFile(filepath.Join(plugins, "bridge"), []byte(slow), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"host-local", "portmap"} {
		if err := os.Symlink("/usr/lib/cni/"+p, filepath.Join(plugins, p)); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	cfg := Config{DataRoot: filepath.Join(dir, "data"), ExecRoot: filepath.Join(dir, "run"), PluginDirs: []string{plugins}, NoSpares: true}
	m, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		m.Close()
		if err := Purge(context.Background(), cfg); err != nil {
			t.Errorf("purge: %v", err)
		}
	}()
	id := strings.Repeat("cd", 32)
	att, err := m.Attach(context.Background(), AttachRequest{ContainerID: id, Name: "c2", Hostname: "h2",
		HostsPath: filepath.Join(t.TempDir(), "hosts"), Networks: []EndpointRequest{{Network: "bridge"}}})
	if err != nil {
		t.Fatal(err)
	}
	m.DetachInBackground(context.Background(), id, false)
	start := time.Now()
	m.DetachInBackground(context.Background(), id, false)
	if d := time.Since(start); d > time.Second {
		t.Errorf("the second background detach waited %v for the first", d)
	}
	m.Settle()
	assertNoLeftovers(t, m, id, att.Endpoints[0].Address.Addr())
}
