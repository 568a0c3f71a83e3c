package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hako-project/hako/network"
	"github.com/hako-project/hako/test/hakodtest"
)

// These tests drive hakod's networks (CNI: bridge, host-local, portmap)
// with the real docker CLI, and check after each step that nothing is
// left on the host: namespaces, attachments, leases, veths, rules.

// needCNI skips when the CNI plugins are not installed.
func needCNI(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		t.Skip("needs the CNI plugins: apt-get install containernetworking-plugins")
	}
}

// bridgeOf is the Linux bridge of network name.
func bridgeOf(t *testing.T, d *hakodtest.Daemon, name string) string {
	t.Helper()
	out := d.MustDocker("network", "inspect", "-f", `{{index .Options "com.docker.network.bridge.name"}} {{.Id}}`, name)
	br, id, _ := strings.Cut(out, " ")
	if br == "" || br == "<no value>" {
		br = "hk-" + id[:12]
	}
	return br
}

// freePort is a TCP port nothing listens on (now).
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// httpGet fetches url, retrying briefly while the server starts.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	var lastErr error
	for i := 0; i < 30; i++ {
		resp, err := c.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(b)
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("GET %s: %v", url, lastErr)
	return ""
}

// netLeftovers lists what the daemon's networking left on the host for
// containers that no longer run: pinned namespaces, attachments, leases,
// veths on its bridges, rules naming the given IDs. The spare endpoint
// hakod keeps on the default bridge (network/spare.go) is not a leftover:
// its pin, record, lease and veth are left out, those of the spare there
// is now only.
func netLeftovers(d *hakodtest.Daemon, bridges []string, ids ...string) []string {
	var out []string
	spares := map[string]bool{}
	atts, _ := filepath.Glob(filepath.Join(d.ExecRoot, "network", "attachments", "*.json"))
	for _, a := range atts {
		id := strings.TrimSuffix(filepath.Base(a), ".json")
		if network.IsSpare(id) {
			spares[id] = true
			continue
		}
		out = append(out, "attachment "+filepath.Base(a))
	}
	spareLinks := map[string]bool{} // host ends of the spares' veths, by ifindex
	ents, _ := os.ReadDir(filepath.Join(d.ExecRoot, "netns"))
	for _, e := range ents {
		if !spares[e.Name()] {
			out = append(out, "netns "+e.Name())
			continue
		}
		// "2: eth0@if11710: ...": the host end is link 11710.
		o, _ := exec.Command("nsenter", "--net="+filepath.Join(d.ExecRoot, "netns", e.Name()), "ip", "-o", "link", "show", "eth0").Output()
		if _, rest, ok := strings.Cut(string(o), "@if"); ok {
			idx, _, _ := strings.Cut(rest, ":")
			spareLinks[idx] = true
		}
	}
	leases, _ := filepath.Glob(filepath.Join(d.ExecRoot, "network", "ipam", "*", "*"))
	for _, l := range leases {
		b := filepath.Base(l)
		if b == "lock" || strings.HasPrefix(b, "last_reserved_ip") {
			continue
		}
		if owner, _ := os.ReadFile(l); spares[strings.TrimSpace(strings.SplitN(string(owner), "\n", 2)[0])] {
			continue
		}
		out = append(out, "lease "+b)
	}
	for _, br := range bridges {
		o, _ := exec.Command("ip", "-o", "link", "show", "master", br).Output()
		for _, l := range strings.Split(strings.TrimSpace(string(o)), "\n") {
			if idx, _, _ := strings.Cut(l, ":"); l != "" && !spareLinks[idx] {
				out = append(out, "veth on "+br+": "+l)
			}
		}
	}
	for _, table := range []string{"filter", "nat"} {
		o, _ := exec.Command("iptables", "-w", "-t", table, "-S").Output()
		for _, l := range strings.Split(string(o), "\n") {
			for _, id := range ids {
				if id != "" && strings.Contains(l, id) {
					out = append(out, table+" rule "+l)
				}
			}
		}
	}
	return out
}

// assertNoNetLeftovers waits a moment for the background detaches (CNI
// DEL runs after a container is gone) and the kernel's namespace clean-up,
// then requires that nothing is left.
func assertNoNetLeftovers(t *testing.T, d *hakodtest.Daemon, bridges []string, ids ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := netLeftovers(d, bridges, ids...)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			ns, _ := exec.Command("lsns", "-t", "net", "-o", "NS,NPROCS,PID,COMMAND,NSFS").CombinedOutput()
			t.Errorf("left behind:\n  %s\nnetwork namespaces:\n%s", strings.Join(left, "\n  "), ns)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestNetworkDefaultBridge(t *testing.T) {
	needCNI(t)
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	br := bridgeOf(t, d, "bridge")
	subnet := d.MustDocker("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}", "bridge")
	_, gw, _ := strings.Cut(subnet, " ")
	out := d.MustDocker("run", "--rm", img, "sh", "-c", "ip -4 -o addr show eth0; ip route; ping -c1 -W2 "+gw+" >/dev/null && echo gateway-ok")
	if !strings.Contains(out, "gateway-ok") || !strings.Contains(out, "default via "+gw) {
		t.Errorf("default bridge container:\n%s", out)
	}
	id := d.MustDocker("run", "-d", "--name", "sleeper", img, "sleep", "60")
	info := d.MustDocker("inspect", "-f", `{{with index .NetworkSettings.Networks "bridge"}}{{.IPAddress}} {{.IPPrefixLen}} {{.Gateway}} {{.MacAddress}} {{len .NetworkID}} {{len .EndpointID}}{{end}}`, "sleeper")
	f := strings.Fields(info)
	if len(f) != 6 || f[2] != gw || f[4] != "64" || f[5] != "64" || f[3] == "" {
		t.Errorf("inspect: %q", info)
	}
	if cnt := d.MustDocker("network", "inspect", "-f", "{{len .Containers}}", "bridge"); cnt != "1" {
		t.Errorf("network inspect lists %s containers", cnt)
	}
	d.MustDocker("rm", "-f", "sleeper")
	assertNoNetLeftovers(t, d, []string{br}, id)
}

// TestNetworkStaticIPBackToBack: `run --rm --ip X` twice in a row gets X
// both times, although the first container's detach (which releases X)
// runs in the background after its removal: the second attach waits for
// it.
func TestNetworkStaticIPBackToBack(t *testing.T) {
	needCNI(t)
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	d.MustDocker("network", "create", "--subnet", "10.213.9.0/24", "fixed")
	br := bridgeOf(t, d, "fixed")
	for i := range 10 {
		// The hako CLI: the docker CLI's own start-up leaves the detach
		// more time than a quick client would.
		cmd := exec.Command(d.Bin.HakoClient, "run", "--rm", "--network", "fixed", "--ip", "10.213.9.9", img, "sh", "-c", "ip -o -4 addr show eth0")
		cmd.Env = append(os.Environ(), "HAKO_HOST="+d.Host)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "10.213.9.9/24") {
			t.Fatalf("run %d: %v: %s; want eth0 with 10.213.9.9/24", i, err, out)
		}
	}
	d.MustDocker("network", "rm", "fixed")
	assertNoNetLeftovers(t, d, []string{br})
}

func TestNetworkUserDefinedNames(t *testing.T) {
	needCNI(t)
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	d.MustDocker("network", "create", "appnet")
	br := bridgeOf(t, d, "appnet")
	web := d.MustDocker("run", "-d", "--name", "web", "--network", "appnet", "--network-alias", "www", img, "httpd", "-f", "-p", "80", "-h", "/etc")
	out := d.MustDocker("run", "--rm", "--network", "appnet", img, "sh", "-c",
		"ping -c1 -W2 web >/dev/null && echo ping-ok; printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc www 80 | tail -1")
	if !strings.Contains(out, "ping-ok") || !strings.Contains(out, web[:12]) {
		t.Errorf("by name on a user network:\n%s", out)
	}
	// A container that leaves disappears from the others' hosts files.
	d.MustDocker("run", "-d", "--name", "db", "--network", "appnet", img, "sleep", "60")
	if h := d.MustDocker("exec", "web", "cat", "/etc/hosts"); !strings.Contains(h, "\tdb ") {
		t.Errorf("web's hosts lacks db:\n%s", h)
	}
	d.MustDocker("rm", "-f", "db")
	deadline := time.Now().Add(5 * time.Second)
	for strings.Contains(d.MustDocker("exec", "web", "cat", "/etc/hosts"), "\tdb ") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if h := d.MustDocker("exec", "web", "cat", "/etc/hosts"); strings.Contains(h, "\tdb ") {
		t.Errorf("db still in web's hosts after its removal:\n%s", h)
	}
	// The default bridge has no names, as docker's.
	if _, _, code := d.Docker("run", "--rm", img, "ping", "-c1", "-W1", "web"); code == 0 {
		t.Errorf("web resolved from the default bridge")
	}
	d.MustDocker("rm", "-f", "web")
	d.MustDocker("network", "rm", "appnet")
	if exec.Command("ip", "link", "show", br).Run() == nil {
		t.Errorf("bridge %s of the removed network is left", br)
	}
	assertNoNetLeftovers(t, d, nil, web)
	if out := netLeftovers(d, nil, "hako-"+strings.TrimPrefix(br, "hk-")); len(out) > 0 {
		t.Errorf("rules of the removed network left: %v", out)
	}
}

func TestNetworkPublish(t *testing.T) {
	needCNI(t)
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	br := bridgeOf(t, d, "bridge")
	port := freePort(t)
	id := d.MustDocker("run", "-d", "--name", "www", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), img, "httpd", "-f", "-p", "80", "-h", "/etc")
	if got := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/hostname", port)); strings.TrimSpace(got) != id[:12] {
		t.Errorf("GET through the published port: %q", got)
	}
	if out := d.MustDocker("port", "www"); out != fmt.Sprintf("80/tcp -> 127.0.0.1:%d", port) {
		t.Errorf("docker port: %q", out)
	}
	if out := d.MustDocker("ps", "--format", "{{.Ports}}"); out != fmt.Sprintf("127.0.0.1:%d->80/tcp", port) {
		t.Errorf("ps PORTS: %q", out)
	}
	// -P: ephemeral ports for the exposed ones, reachable from the host
	// and from another namespace (a container, through the gateway).
	d.MustDocker("run", "-d", "--name", "all", "-P", "--expose", "80", img, "httpd", "-f", "-p", "80", "-h", "/etc")
	hp := d.MustDocker("port", "all", "80/tcp")
	_, p, ok := strings.Cut(hp, ":")
	if !ok || !strings.HasPrefix(hp, "0.0.0.0:") {
		t.Fatalf("docker port all 80/tcp: %q", hp)
	}
	if got := httpGet(t, "http://127.0.0.1:"+p+"/hostname"); strings.TrimSpace(got) == "" {
		t.Errorf("-P port answers nothing")
	}
	gw := d.MustDocker("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}", "bridge")
	out := d.MustDocker("run", "--rm", img, "sh", "-c", "printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc "+gw+" "+p+" | tail -1")
	if strings.TrimSpace(out) == "" {
		t.Errorf("-P port not reachable from another namespace")
	}
	allID := d.MustDocker("inspect", "-f", "{{.Id}}", "all")
	d.MustDocker("rm", "-f", "www", "all")
	assertNoNetLeftovers(t, d, []string{br}, id, allID)
	// The port is free again.
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Errorf("published port still held after rm: %v", err)
	} else {
		l.Close()
	}
}

func TestNetworkConnectDisconnect(t *testing.T) {
	needCNI(t)
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	d.MustDocker("network", "create", "--subnet", "10.213.7.0/24", "side")
	br := bridgeOf(t, d, "side")
	d.MustDocker("run", "-d", "--name", "peer", "--network", "side", "--ip", "10.213.7.50", img, "sleep", "60")
	id := d.MustDocker("run", "-d", "--name", "box", img, "sleep", "60")
	d.MustDocker("network", "connect", "--alias", "boxy", "side", "box")
	out := d.MustDocker("exec", "box", "sh", "-c", "ip -4 -o addr show eth1; ping -c1 -W2 peer >/dev/null && echo peer-ok")
	if !strings.Contains(out, "10.213.7.") || !strings.Contains(out, "peer-ok") {
		t.Errorf("after connect:\n%s", out)
	}
	if out := d.MustDocker("exec", "peer", "sh", "-c", "ping -c1 -W2 boxy >/dev/null && echo ok"); out != "ok" {
		t.Errorf("peer cannot reach box by its alias: %q", out)
	}
	if ip := d.MustDocker("inspect", "-f", `{{with index .NetworkSettings.Networks "side"}}{{.IPAddress}}{{end}}`, "peer"); ip != "10.213.7.50" {
		t.Errorf("--ip: %q", ip)
	}
	_, errs, code := d.Docker("network", "rm", "side")
	if code == 0 || !strings.Contains(errs, "error while removing network: network side id ") || !strings.Contains(errs, "has active endpoints") {
		t.Errorf("rm with active endpoints: %d %q", code, errs)
	}
	d.MustDocker("network", "disconnect", "side", "box")
	if out, _, _ := d.Docker("exec", "box", "ip", "-o", "link", "show", "eth1"); strings.Contains(out, "eth1") {
		t.Errorf("eth1 still there after disconnect: %s", out)
	}
	if _, errs, code := d.Docker("network", "disconnect", "side", "box"); code == 0 || !strings.Contains(errs, "is not connected to network side") {
		t.Errorf("second disconnect: %d %q", code, errs)
	}
	peer := d.MustDocker("inspect", "-f", "{{.Id}}", "peer")
	d.MustDocker("rm", "-f", "peer", "box")
	d.MustDocker("network", "rm", "side")
	assertNoNetLeftovers(t, d, []string{bridgeOf(t, d, "bridge")}, id, peer)
	if exec.Command("ip", "link", "show", br).Run() == nil {
		t.Errorf("bridge %s left", br)
	}
}

func TestNetworkBadInput(t *testing.T) {
	needCNI(t)
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	br := bridgeOf(t, d, "bridge")
	// A port a host program listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port
	// A port another container publishes.
	taken := freePort(t)
	d.MustDocker("run", "-d", "--name", "holder", "-p", fmt.Sprintf("%d:80", taken), img, "sleep", "60")
	d.MustDocker("network", "create", "--subnet", "10.213.8.0/24", "first")
	cases := []struct {
		args []string
		want string
		code int
	}{
		{[]string{"run", "--rm", "--name", "busy1", "-p", fmt.Sprintf("127.0.0.1:%d:80", busy), img, "true"},
			fmt.Sprintf("driver failed programming external connectivity on endpoint busy1 (%%s): Bind for 127.0.0.1:%d failed: port is already allocated", busy), 125},
		{[]string{"run", "-d", "--name", "busy2", "-p", fmt.Sprintf("%d:80", taken), img, "true"},
			fmt.Sprintf("): Bind for 0.0.0.0:%d failed: port is already allocated", taken), 125},
		{[]string{"run", "--rm", "--network", "nosuchnet", img, "true"}, "network nosuchnet not found", 125},
		{[]string{"network", "create", "--subnet", "10.213.8.128/25", "second"}, "Pool overlaps with other one on this address space", 1},
		{[]string{"network", "create", "--subnet", "10.213.9.0/24", "first"}, "network with name first already exists", 1},
		{[]string{"network", "create", "--subnet", "nonsense", "third"}, "Invalid subnet nonsense : invalid CIDR address: nonsense", 1},
		{[]string{"network", "create", "-d", "overlay2x", "fourth"}, `plugin "overlay2x" not found`, 1},
		{[]string{"network", "rm", "bridge"}, "bridge is a pre-defined network and cannot be removed", 1},
		{[]string{"network", "rm", "nosuchnet"}, "network nosuchnet not found", 1},
		{[]string{"run", "--rm", "--ip", "172.30.1.1", img, "true"}, "user specified IP address is supported on user defined networks only", 125},
		{[]string{"network", "connect", "nosuchnet", "holder"}, "network nosuchnet not found", 1},
		{[]string{"network", "connect", "host", "holder"}, "container cannot be disconnected from host network or connected to host network", 1},
	}
	for _, c := range cases {
		_, errs, code := d.Docker(c.args...)
		want := c.want
		if strings.Contains(want, "%s") {
			want = want[:strings.Index(want, "%s")]
		}
		if code != c.code || !strings.Contains(errs, want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", c.args, code, errs, c.code, want)
		}
	}
	if out := d.MustDocker("ps", "-a", "--format", "{{.Names}}"); out != "holder\nbusy2" && out != "busy2\nholder" {
		t.Errorf("containers after the failures: %q", out)
	}
	busy2 := d.MustDocker("inspect", "-f", "{{.Id}}", "busy2")
	holder := d.MustDocker("inspect", "-f", "{{.Id}}", "holder")
	if ls := d.MustDocker("network", "ls", "--format", "{{.Name}}"); strings.Contains(ls, "second") || strings.Contains(ls, "third") || strings.Contains(ls, "fourth") {
		t.Errorf("half-made networks: %s", ls)
	}
	d.MustDocker("rm", "-f", "holder", "busy2")
	d.MustDocker("network", "rm", "first")
	assertNoNetLeftovers(t, d, []string{br}, holder, busy2)
	// The bridges hakod has are the default one only.
	links, _ := exec.Command("ip", "-o", "link", "show", "type", "bridge").Output()
	for _, l := range strings.Split(string(links), "\n") {
		f := strings.Fields(l)
		if len(f) > 1 && strings.HasPrefix(f[1], "hk-") && strings.Contains(l, d.Dir) {
			t.Errorf("unexpected bridge %s", f[1])
		}
	}
}

func TestNetworkRunRmLeavesNothing(t *testing.T) {
	needCNI(t)
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	d.MustDocker("network", "create", "loopnet")
	brs := []string{bridgeOf(t, d, "bridge"), bridgeOf(t, d, "loopnet")}
	n := 50
	if v, err := strconv.Atoi(os.Getenv("HAKO_NET_RUNS")); err == nil && v > 0 {
		n = v
	}
	port := freePort(t)
	start := time.Now()
	for i := 0; i < n; i++ {
		args := []string{"run", "--rm", img, "true"}
		switch i % 3 {
		case 1:
			args = []string{"run", "--rm", "--network", "loopnet", img, "true"}
		case 2:
			args = []string{"run", "--rm", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), img, "true"}
		}
		if _, errs, code := d.Docker(args...); code != 0 {
			t.Fatalf("run %d: exit %d: %s", i, code, errs)
		}
	}
	t.Logf("%d × run --rm: %v (%v each)", n, time.Since(start), time.Since(start)/time.Duration(n))
	assertNoNetLeftovers(t, d, brs)
	if out := rulesNaming(fmt.Sprintf("dpt:%d", port), fmt.Sprintf("--dport %d ", port)); out != "" {
		t.Errorf("port rules left:\n%s", out)
	}
	d.MustDocker("network", "rm", "loopnet")
}

// TestNetworkTraceShowsTeardown: the network's teardown, which runs in the
// background after a container's exit (the CNI plugins' DEL, the namespace's
// removal), is in `hako run --rm --trace`'s tree: the trace waits for it.
// Before, its spans went to a file already closed, and were lost.
func TestNetworkTraceShowsTeardown(t *testing.T) {
	needCNI(t)
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	// A published port: no spare namespace fits, so ADD and DEL both run.
	cmd := exec.Command(d.Bin.HakoClient, "run", "--rm", "--trace", "-p", fmt.Sprintf("127.0.0.1:%d:80", freePort(t)), img, "true")
	cmd.Env = append(os.Environ(), "HAKO_HOST="+d.Host)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	tr := stderr.String()
	_, exited := spanLine(tr, "engine.exited")
	_, del := spanLine(tr, "network.cni.del")
	_, rm := spanLine(tr, "network.netns.remove")
	if exited < 0 || del <= exited || rm != del {
		t.Errorf("the teardown (network.cni.del, network.netns.remove) should be under engine.exited:\n%s", tr)
	}
	if n := strings.Count(tr, "command=DEL"); n != 2 {
		t.Errorf("%d DELs in the trace, want the bridge's and the portmap's:\n%s", n, tr)
	}
}

// rulesNaming lists the nat rules containing one of subs.
func rulesNaming(subs ...string) string {
	o, _ := exec.Command("iptables", "-w", "-t", "nat", "-S").Output()
	var out []string
	sc := bufio.NewScanner(strings.NewReader(string(o)))
	for sc.Scan() {
		for _, s := range subs {
			if strings.Contains(sc.Text(), s) {
				out = append(out, sc.Text())
			}
		}
	}
	return strings.Join(out, "\n")
}

func TestNetworkDaemonRestart(t *testing.T) {
	needCNI(t)
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	d.MustDocker("network", "create", "keep")
	port := freePort(t)
	web := d.MustDocker("run", "-d", "--name", "web", "--network", "keep", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), img, "httpd", "-f", "-p", "80", "-h", "/etc")
	d.MustDocker("run", "-d", "--name", "client", "--network", "keep", img, "sleep", "60")
	ends := d.MustDocker("run", "-d", "--name", "ends", "--network", "keep", img, "sh", "-c", "sleep 1")
	httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/hostname", port))
	d.Kill()
	time.Sleep(1500 * time.Millisecond) // "ends" exits while hakod is down
	d.Restart()
	if out := d.MustDocker("exec", "client", "sh", "-c", "ping -c1 -W2 web >/dev/null && echo ok"); out != "ok" {
		t.Errorf("ping by name after the restart: %q", out)
	}
	if got := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/hostname", port)); strings.TrimSpace(got) != web[:12] {
		t.Errorf("published port after the restart: %q", got)
	}
	// The port is still reserved by the running container.
	if _, errs, code := d.Docker("run", "--rm", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), img, "true"); code == 0 || !strings.Contains(errs, "port is already allocated") {
		t.Errorf("port taken twice after the restart: %d %q", code, errs)
	}
	// The one that ended while hakod was away is detached.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := os.Stat(filepath.Join(d.ExecRoot, "netns", ends))
		if os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("netns of a container that ended while hakod was down is left")
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if h := d.MustDocker("exec", "client", "cat", "/etc/hosts"); strings.Contains(h, "\tends ") {
		t.Errorf("ended container still in hosts:\n%s", h)
	}
	client := d.MustDocker("inspect", "-f", "{{.Id}}", "client")
	d.MustDocker("rm", "-f", "web", "client", "ends")
	assertNoNetLeftovers(t, d, []string{bridgeOf(t, d, "keep")}, web, client, ends)
	d.MustDocker("network", "rm", "keep")
}

// TestNetworkIsolation: containers of two user networks and of the default
// one do not reach each other by address (docker's isolation), but reach
// their own network, the host and the other network's published port
// through a host address; network connect opens the way; removing the
// networks takes their rules away.
func TestNetworkIsolation(t *testing.T) {
	needCNI(t)
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	d.MustDocker("network", "create", "red")
	d.MustDocker("network", "create", "blue")
	brs := []string{bridgeOf(t, d, "red"), bridgeOf(t, d, "blue")}
	web := d.MustDocker("run", "-d", "--name", "web", "--network", "blue", "-p", "80", img, "httpd", "-f", "-p", "80", "-h", "/etc")
	client := d.MustDocker("run", "-d", "--name", "client", "--network", "red", img, "sleep", "60")
	peer := d.MustDocker("run", "-d", "--name", "peer", "--network", "red", img, "sleep", "60")
	plain := d.MustDocker("run", "-d", "--name", "plain", img, "sleep", "60")
	addr := func(c, net string) string {
		return d.MustDocker("inspect", "-f", `{{with index .NetworkSettings.Networks "`+net+`"}}{{.IPAddress}}{{end}}`, c)
	}
	gateway := func(net string) string {
		return d.MustDocker("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}", net)
	}
	webIP := addr("web", "blue")
	ok := func(c, cmd string) bool {
		out, _, _ := d.Docker("exec", c, "sh", "-c", cmd+" >/dev/null 2>&1 && echo ok")
		return strings.TrimSpace(out) == "ok"
	}
	get := func(hostPort string) string { // GET /hostname, from client
		host, port, _ := strings.Cut(hostPort, ":")
		out, _, _ := d.Docker("exec", "client", "sh", "-c", "printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 2 "+host+" "+port+" | tail -1")
		return strings.TrimSpace(out)
	}
	if !ok("client", "ping -c1 -W2 "+addr("peer", "red")) || !ok("client", "ping -c1 -W2 peer") {
		t.Errorf("client does not reach peer on its own network")
	}
	if ok("client", "ping -c1 -W1 "+webIP) || ok("web", "ping -c1 -W1 "+addr("client", "red")) {
		t.Errorf("red and blue reach each other by address")
	}
	if ok("plain", "ping -c1 -W1 "+webIP) || ok("client", "ping -c1 -W1 "+addr("plain", "bridge")) {
		t.Errorf("the default bridge and a user network reach each other by address")
	}
	if get(webIP+":80") == web[:12] {
		t.Errorf("client reached web's httpd by its address")
	}
	// The host, by any of its addresses.
	for _, gw := range []string{gateway("red"), gateway("blue")} {
		if !ok("client", "ping -c1 -W2 "+gw) {
			t.Errorf("client does not reach the host's %s", gw)
		}
	}
	if h := hostAddr(); h != "" && !ok("client", "ping -c1 -W2 "+h) {
		t.Errorf("client does not reach the host's %s", h)
	}
	// web's published port, through the host (client's gateway).
	_, port, _ := strings.Cut(d.MustDocker("port", "web", "80/tcp"), ":")
	if got := get(gateway("red") + ":" + port); got != web[:12] {
		t.Errorf("web's published port from red through the gateway: %q", got)
	}
	// Connected to blue too, client reaches web.
	d.MustDocker("network", "connect", "blue", "client")
	if !ok("client", "ping -c1 -W2 "+webIP) || get(webIP+":80") != web[:12] {
		t.Errorf("client connected to blue does not reach web")
	}
	if !ok("web", "ping -c1 -W2 client") {
		t.Errorf("web does not reach client by its name on blue")
	}
	d.MustDocker("rm", "-f", "web", "client", "peer", "plain")
	assertNoNetLeftovers(t, d, brs, web, client, peer, plain)
	d.MustDocker("network", "rm", "red", "blue")
	for _, br := range brs {
		if out := netLeftovers(d, nil, "hako-"+strings.TrimPrefix(br, "hk-"), br); len(out) > 0 {
			t.Errorf("rules of a removed network left: %v", out)
		}
	}
}

// hostAddr is an IPv4 address of the host on an interface that is not a
// bridge of a container engine, "" if there is none.
func hostAddr() string {
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 || i.Flags&net.FlagUp == 0 || strings.HasPrefix(i.Name, "hk-") ||
			strings.HasPrefix(i.Name, "hako") || strings.HasPrefix(i.Name, "br-") || strings.HasPrefix(i.Name, "docker") {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
				return ipn.IP.String()
			}
		}
	}
	return ""
}

// TestNetworkAttachFailureHoldsProgram: a container's program never runs
// when its network cannot be attached. The runtime creates the container
// while the CNI plugins run, and the start gate (engine/gate.go) holds the
// program until they are done: here the bridge plugin fails every ADD, so
// the gate says no, the start fails with the plugin's error, the program
// has not run, and nothing is left behind. A second daemon that drives
// runc shows the gate's hook works under another runtime.
func TestNetworkAttachFailureHoldsProgram(t *testing.T) {
	needCNI(t)
	plugins := t.TempDir()
	for _, p := range []string{"host-local", "portmap", "loopback"} {
		if err := os.Symlink("/usr/lib/cni/"+p, filepath.Join(plugins, p)); err != nil {
			t.Fatal(err)
		}
	}
	// ADD fails as a CNI plugin fails; everything else is the real bridge's.
	script := `#!/bin/sh
if [ "$CNI_COMMAND" = ADD ]; then
	cat >/dev/null
	echo '{"cniVersion":"1.0.0","code":11,"msg":"test plugin refuses ADD","details":"on purpose"}'
	exit 1
fi
exec /usr/lib/cni/bridge
`
	if err := os.WriteFile(filepath.Join(plugins, "bridge"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	runtimes := []string{"hako"}
	if _, err := exec.LookPath("runc"); err == nil {
		runtimes = append(runtimes, "runc")
	}
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			d := hakodtest.Start(t, "--cni-plugin-dir", plugins, "--default-runtime", rt)
			img := d.DefaultImage()
			br := bridgeOf(t, d, "bridge")
			mark := t.TempDir()
			_, errs, code := d.Docker("run", "--rm", "--name", "held", "-v", mark+":/mnt", img, "touch", "/mnt/ran")
			if code != 125 || !strings.Contains(errs, "test plugin refuses ADD") {
				t.Errorf("run: exit %d, stderr %q; want 125 and the plugin's error", code, errs)
			}
			if _, err := os.Stat(filepath.Join(mark, "ran")); err == nil {
				t.Error("the program ran although its network was not attached")
			}
			// -d: the container stays, not started; a fixed plugin starts it.
			_, errs, code = d.Docker("run", "-d", "--name", "held2", "-v", mark+":/mnt", img, "touch", "/mnt/ran")
			if code != 125 || !strings.Contains(errs, "test plugin refuses ADD") {
				t.Errorf("run -d: exit %d, stderr %q", code, errs)
			}
			if st := d.MustDocker("inspect", "-f", "{{.State.Status}} {{.State.Pid}}", "held2"); st != "created 0" {
				t.Errorf("after the failed start: %q, want \"created 0\"", st)
			}
			if _, err := os.Stat(filepath.Join(mark, "ran")); err == nil {
				t.Error("the program of run -d ran although its network was not attached")
			}
			id := d.MustDocker("inspect", "-f", "{{.Id}}", "held2")
			// The hold was the gate's: its hook is in the spec the runtime got.
			spec, err := os.ReadFile(filepath.Join(d.ExecRoot, "containers", id, "bundle", "config.json"))
			if err != nil || !strings.Contains(string(spec), `"createRuntime":[{"path":"`) || !strings.Contains(string(spec), `"gate","`) {
				t.Errorf("no start gate hook in the bundle's spec (%v)", err)
			}
			d.MustDocker("rm", "held2")
			if left, _ := filepath.Glob(filepath.Join(d.Dir, "*", "containers", id, "bundle", "start-gate")); len(left) > 0 {
				t.Errorf("gate FIFO left: %v", left)
			}
			assertNoNetLeftovers(t, d, []string{br}, id)
		})
	}
}

// spareOf waits for hakod's spare namespace (its record in the exec root)
// other than not, and returns its ID: on the default bridge, or, with
// bare, the one with lo only.
func spareOf(t *testing.T, d *hakodtest.Daemon, not string, bare bool) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		atts, _ := filepath.Glob(filepath.Join(d.ExecRoot, "network", "attachments", "spare-*.json"))
		for _, a := range atts {
			id := strings.TrimSuffix(filepath.Base(a), ".json")
			if id == not || !fileExists(filepath.Join(d.ExecRoot, "netns", id)) {
				continue
			}
			b, _ := os.ReadFile(a)
			if bare == strings.Contains(string(b), `"endpoints": null`) && (bare || strings.Contains(string(b), `"address"`)) { // made, not being made
				return id
			}
		}
	}
	t.Fatalf("no spare namespace (bare %v, other than %q)", bare, not)
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// TestNetworkSpares: hakod keeps a namespace attached to the default
// bridge once a container has used it; the next container on the default
// bridge takes it over (its record names the spare's CNI ID, the container
// reaches the gateway and inspect shows the spare's address); its removal
// releases the spare's lease and veth; the same for --network none and a
// namespace with lo only; a kill -9 of hakod leaves spares that the next
// hakod detaches; a stopped hakod leaves none.
func TestNetworkSpares(t *testing.T) {
	needCNI(t)
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	br := bridgeOf(t, d, "bridge")
	gw := d.MustDocker("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}", "bridge")
	d.MustDocker("run", "--rm", img, "true")
	spare := spareOf(t, d, "", false)

	id := d.MustDocker("run", "-d", img, "sleep", "60")
	rec, err := os.ReadFile(filepath.Join(d.ExecRoot, "network", "attachments", id+".json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(rec), `"cni_container_id": "`+spare+`"`) {
		t.Errorf("the container did not take spare %s:\n%s", spare, rec)
	}
	if fileExists(filepath.Join(d.ExecRoot, "netns", spare)) {
		t.Errorf("the taken spare's pin is left")
	}
	// Its network is ready before the runtime starts: no start gate.
	if spec, err := os.ReadFile(filepath.Join(d.ExecRoot, "containers", id, "bundle", "config.json")); err != nil || strings.Contains(string(spec), `"gate","`) {
		t.Errorf("a start gate for a container on a spare endpoint (%v)", err)
	}
	if out, errs, code := d.Docker("exec", id, "ping", "-c1", "-W2", gw); code != 0 {
		t.Errorf("ping the gateway from a container on the taken spare: %s %s", out, errs)
	}
	ip := d.MustDocker("inspect", "-f", "{{.NetworkSettings.Networks.bridge.IPAddress}}", id)
	if ip == "" || !strings.Contains(string(rec), `"`+ip+`/`) {
		t.Errorf("inspect's address %q is not the spare's:\n%s", ip, rec)
	}
	next := spareOf(t, d, spare, false)
	d.MustDocker("rm", "-f", id)
	assertNoNetLeftovers(t, d, []string{br}, id, spare)

	// --network none: lo only, in a namespace made ahead.
	d.MustDocker("run", "--rm", "--network", "none", img, "true")
	bare := spareOf(t, d, "", true)
	none := d.MustDocker("run", "-d", "--network", "none", img, "sleep", "60")
	if rec, _ := os.ReadFile(filepath.Join(d.ExecRoot, "network", "attachments", none+".json")); !strings.Contains(string(rec), `"cni_container_id": "`+bare+`"`) {
		t.Errorf("the --network none container did not take bare spare %s:\n%s", bare, rec)
	}
	if out := d.MustDocker("exec", none, "ip", "-o", "link"); strings.Count(out, "\n") != 0 || !strings.Contains(out, "lo: <LOOPBACK,UP") {
		t.Errorf("links of a --network none container (want lo only, up):\n%s", out)
	}
	if out := d.MustDocker("exec", none, "cat", "/etc/hosts"); !strings.Contains(out, "127.0.0.1\tlocalhost\n") || !strings.Contains(out, "127.0.1.1\t"+none[:12]) {
		t.Errorf("/etc/hosts of a --network none container:\n%s", out)
	}
	spareOf(t, d, bare, true)
	d.MustDocker("rm", "-f", none)
	assertNoNetLeftovers(t, d, []string{br}, none, bare)

	// A spare left by a hakod killed: the next one detaches it.
	d.Kill()
	d.Restart()
	spares := func() []string {
		a, _ := filepath.Glob(filepath.Join(d.ExecRoot, "network", "attachments", "spare-*"))
		b, _ := filepath.Glob(filepath.Join(d.ExecRoot, "netns", "spare-*"))
		return append(a, b...)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(spares()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if left := spares(); len(left) > 0 {
		t.Errorf("the killed hakod's spares are left: %v", left)
	}
	assertNoNetLeftovers(t, d, []string{br}, next)

	// A stopped hakod leaves no spare.
	d.MustDocker("run", "--rm", img, "true")
	d.MustDocker("run", "--rm", "--network", "none", img, "true")
	last := spareOf(t, d, next, false)
	lastBare := spareOf(t, d, bare, true)
	d.Stop()
	if left := netLeftovers(d, []string{br}); len(left) > 0 {
		t.Errorf("left after hakod's stop: %v", left)
	}
	for _, p := range []string{filepath.Join(d.ExecRoot, "netns", last), filepath.Join(d.ExecRoot, "network", "attachments", last+".json"),
		filepath.Join(d.ExecRoot, "netns", lastBare)} {
		if fileExists(p) {
			t.Errorf("%s left after hakod's stop", p)
		}
	}
	if o, _ := exec.Command("ip", "-o", "link", "show", "master", br).Output(); len(o) > 0 {
		t.Errorf("veths left on %s after hakod's stop:\n%s", br, o)
	}
}

// TestNetworkRecycle: the namespace of a `run --rm` that took the spare
// becomes the spare again when the container ends (the next one gets the
// same namespace and address), unless the container could have changed
// it (given NET_ADMIN); the same for --network none; a stopped hakod
// leaves none.
// recycleTries is how many times TestNetworkRecycle tries each case.
const recycleTries = 5

func TestNetworkRecycle(t *testing.T) {
	needCNI(t)
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	br := bridgeOf(t, d, "bridge")
	probe := []string{"sh", "-c", "readlink /proc/self/ns/net; ip -o -4 addr show eth0 | awk '{print $4}'"}
	d.MustDocker("run", "--rm", img, "true")
	// A namespace comes back only if its container ended within
	// spareDelay (50 ms) of taking it, before the next spare was made:
	// on a loaded 2-CPU machine a run --rm can outlast that (once in CI),
	// so each case has a few tries. One that never recycles still fails.
	var tries []string
	recycled := false
	for try := 0; try < recycleTries && !recycled; try++ {
		spare := spareOf(t, d, "", false)
		first := d.MustDocker(append([]string{"run", "--rm", img}, probe...)...)
		if again := spareOf(t, d, "", false); again != spare {
			tries = append(tries, fmt.Sprintf("the spare after a run --rm is %s, not %s again", again, spare))
			continue
		}
		second := d.MustDocker(append([]string{"run", "--rm", img}, probe...)...)
		again := spareOf(t, d, "", false)
		recycled = second == first && again == spare
		if !recycled {
			tries = append(tries, fmt.Sprintf("two run --rm in a row: namespace and address %q, then %q; spare %s, then %s", first, second, spare, again))
		}
	}
	if !recycled {
		t.Errorf("a run --rm's namespace never came back as the spare in %d tries:\n%s", recycleTries, strings.Join(tries, "\n"))
	} else if len(tries) > 0 {
		t.Logf("recycled after %d tries that took too long:\n%s", len(tries), strings.Join(tries, "\n"))
	}

	// A container given NET_ADMIN could have changed it: undone, a new
	// spare made. (A privileged exec and a joined container taint it too:
	// engine's TestNetnsReusable; here their containers outlive the making
	// of the next spare, whose slot is then full anyway.)
	taken := spareOf(t, d, "", false)
	d.MustDocker("run", "--rm", "--cap-add", "net_admin", img, "true")
	if next := spareOf(t, d, "", false); next == taken {
		t.Errorf("--cap-add NET_ADMIN: the namespace became the spare again")
	}
	if fileExists(filepath.Join(d.ExecRoot, "netns", taken)) {
		t.Errorf("--cap-add NET_ADMIN: the taken spare's pin is left")
	}

	// --network none: the namespace with lo only comes back too.
	d.MustDocker("run", "--rm", "--network", "none", img, "true")
	tries = nil
	recycled = false
	for try := 0; try < recycleTries && !recycled; try++ {
		bare := spareOf(t, d, "", true)
		d.MustDocker("run", "--rm", "--network", "none", img, "true")
		again := spareOf(t, d, "", true)
		if recycled = again == bare; !recycled {
			tries = append(tries, fmt.Sprintf("the bare spare after a run --rm --network none is %s, not %s again", again, bare))
		}
	}
	if !recycled {
		t.Errorf("a run --rm --network none's namespace never came back as the spare in %d tries:\n%s", recycleTries, strings.Join(tries, "\n"))
	}
	d.Stop()
	if left := netLeftovers(d, []string{br}); len(left) > 0 {
		t.Errorf("left after hakod's stop: %v", left)
	}
}

// TestInspectLegacyNetworkSettings: API 1.41's inspect has the default
// bridge network's endpoint at the top of NetworkSettings too, which
// scripts read (`docker inspect -f '{{.NetworkSettings.IPAddress}}'`):
// hakod's moby types dropped those fields, and the template failed with
// "map has no entry for key". A container on another network has them
// empty, and no Bridge.
func TestInspectLegacyNetworkSettings(t *testing.T) {
	needCNI(t)
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	br := bridgeOf(t, d, "bridge")
	d.MustDocker("run", "-d", "--name", "onbridge", img, "sleep", "600")
	got := d.MustDocker("inspect", "-f", "{{.NetworkSettings.IPAddress}}/{{.NetworkSettings.IPPrefixLen}} {{.NetworkSettings.Gateway}} {{.NetworkSettings.MacAddress}} {{.NetworkSettings.EndpointID}} {{.NetworkSettings.Bridge}}", "onbridge")
	want := d.MustDocker("inspect", "-f", "{{with .NetworkSettings.Networks.bridge}}{{.IPAddress}}/{{.IPPrefixLen}} {{.Gateway}} {{.MacAddress}} {{.EndpointID}}{{end}} "+br, "onbridge")
	if got != want || strings.HasPrefix(got, "/") {
		t.Errorf("top-level NetworkSettings %q, want the bridge endpoint's %q", got, want)
	}
	if out := d.MustDocker("inspect", "-f", "{{.NetworkSettings.HairpinMode}} {{.NetworkSettings.SecondaryIPAddresses}} {{.Config.OnBuild}}", "onbridge"); out != "false [] <no value>" && out != "false [] []" {
		t.Errorf("the fields hako has no use for: %q", out)
	}
	d.MustDocker("network", "create", "other")
	d.MustDocker("run", "-d", "--name", "onother", "--network", "other", img, "sleep", "600")
	if out := d.MustDocker("inspect", "-f", "[{{.NetworkSettings.IPAddress}}] [{{.NetworkSettings.Bridge}}] {{.NetworkSettings.Networks.other.IPAddress}}", "onother"); !strings.HasPrefix(out, "[] [] ") || strings.HasSuffix(out, " ") {
		t.Errorf("a container on a user network: %q", out)
	}
	d.MustDocker("rm", "-f", "onbridge", "onother")
	d.MustDocker("network", "rm", "other")
}
