package network

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hako-project/hako/errdefs"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFirstConfList(t *testing.T) {
	dir := t.TempDir()
	if _, err := FirstConfList(dir); !errors.Is(err, errdefs.ErrUnavailable) || err.Error() != "no network config found in "+dir {
		t.Errorf("empty directory: %v", err)
	}
	if _, err := FirstConfList(filepath.Join(dir, "missing")); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("missing directory: %v", err)
	}
	// Files of other extensions do not count; the first by name does.
	writeFile(t, filepath.Join(dir, "00-notes.txt"), "not a config")
	writeFile(t, filepath.Join(dir, "20-b.conflist"), `{"cniVersion":"1.0.0","name":"b","plugins":[{"type":"bridge"}]}`)
	writeFile(t, filepath.Join(dir, "10-a.conf"), `{"cniVersion":"0.4.0","name":"a","type":"bridge","bridge":"x0"}`)
	c, err := FirstConfList(dir)
	if err != nil {
		t.Fatal(err)
	}
	list, err := parseConfList(c.Bytes)
	if err != nil {
		t.Fatalf("wrapped .conf %s: %v", c.Bytes, err)
	}
	if c.Path != filepath.Join(dir, "10-a.conf") || c.Name != "a" || list.CNIVersion != "0.4.0" || len(list.Plugins) != 1 ||
		list.Plugins[0].Network.Type != "bridge" || !strings.Contains(string(list.Plugins[0].Bytes), `"bridge":"x0"`) {
		t.Errorf("first configuration %+v: %s", c, c.Bytes)
	}
	if mapsPorts(list) {
		t.Errorf("a bridge alone maps no ports")
	}
	// A malformed first file is an error that names it, not a fall back.
	for _, bad := range []string{`{"name":"x","plugins":[`, `{"name":"x","plugins":[]}`, `{"name":"x"}`, `{"plugins":[{"type":"bridge"}]}`} {
		writeFile(t, filepath.Join(dir, "05-bad.conflist"), bad)
		if _, err := FirstConfList(dir); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "05-bad.conflist")) {
			t.Errorf("malformed %s: %v", bad, err)
		}
	}
	writeFile(t, filepath.Join(dir, "05-bad.conflist"), `{"cniVersion":"1.0.0","name":"pm","plugins":[{"type":"bridge"},{"type":"portmap","capabilities":{"portMappings":true}}]}`)
	c, err = FirstConfList(dir)
	if err != nil {
		t.Fatal(err)
	}
	if list, _ := parseConfList(c.Bytes); list == nil || !mapsPorts(list) {
		t.Errorf("portmap's capability not seen in %s", c.Bytes)
	}
}

// testConfList is a configuration as a cluster's network add-on writes
// one: a bridge of its own, host-local with its leases under dataDir,
// masquerading (a rule per container) and portmap.
func testConfList(bridge, subnet, dataDir string) string {
	return `{
  "cniVersion": "1.0.0",
  "name": "hkcnitest",
  "plugins": [
    {"type": "bridge", "bridge": "` + bridge + `", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "` + subnet + `"}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "` + dataDir + `"}},
    {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}
  ]
}`
}

func TestAttachConfList(t *testing.T) {
	m, cfg := openTest(t)
	ctx := context.Background()
	const bridge = "hkcnitest0"
	subnet := netip.MustParsePrefix("10.251.37.0/24")
	t.Cleanup(func() { _ = deleteBridge(bridge) })
	tmp := t.TempDir()
	dir, dataDir := filepath.Join(tmp, "net.d"), filepath.Join(tmp, "ipam")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "10-hkcnitest.conflist")
	writeFile(t, file, testConfList(bridge, subnet.String(), dataDir))
	conf, err := FirstConfList(dir)
	if err != nil {
		t.Fatal(err)
	}
	id := strings.Repeat("cd", 32)
	args := [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "ns"}, {"K8S_POD_NAME", "pod"},
		{"K8S_POD_INFRA_CONTAINER_ID", id}, {"K8S_POD_UID", "uid"}}
	att, err := m.Attach(ctx, AttachRequest{
		ContainerID: id, Name: "pod", Hostname: "pod",
		Networks: []EndpointRequest{{ConfList: conf.Bytes}},
		Ports:    []PortSpec{{ContainerPort: 80, Protocol: "tcp"}},
		CNIArgs:  args,
	})
	if err != nil {
		t.Fatal(err)
	}
	ep := att.Endpoints[0]
	ip := ep.Address.Addr()
	if !subnet.Contains(ip) || ep.NetworkID != "" || ep.NetworkName != "hkcnitest" || ep.IfName != "eth0" || len(att.Ports) != 1 {
		t.Fatalf("attachment %+v", att)
	}
	if out, err := inNS(att.NetNS, "ip", "-o", "-4", "addr", "show", "eth0"); err != nil || !strings.Contains(out, ip.String()+"/24") {
		t.Errorf("eth0 in the pod: %v %s", err, out)
	}
	assertIPv6(t, att.NetNS, true) // the configuration's, not one of hakod's IPv4-only networks
	if v := vethsOn(bridge); len(v) != 1 {
		t.Errorf("veths on %s: %v", bridge, v)
	}
	if out, err := inNS(att.NetNS, "busybox", "ping", "-c1", "-W2", ep.Gateway.String()); err != nil {
		t.Errorf("ping the gateway %s: %v\n%s", ep.Gateway, err, out)
	}
	if out := rulesTagged(id); !strings.Contains(out, "DNAT") || !strings.Contains(out, "MASQUERADE") {
		t.Errorf("portmap's and bridge's rules for %s:\n%s", id, out)
	}
	lease := filepath.Join(dataDir, "hkcnitest", ip.String())
	if !fileExists(lease) {
		t.Errorf("lease %s missing", lease)
	}
	// The record holds what ADD ran with: a hakod that restarts replays it
	// on DEL, even when the file changed or is gone.
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	m.Close()
	m2, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := m2.Attachment(id); !ok || len(a.CNIArgs) != len(args) || string(a.Endpoints[0].Conf) == "" {
		t.Errorf("recorded attachment %+v", a)
	}
	if err := m2.Detach(ctx, id); err != nil {
		t.Fatal(err)
	}
	assertNoLeftovers(t, m2, id, ip)
	if v := vethsOn(bridge); len(v) > 0 {
		t.Errorf("veths left on %s: %v", bridge, v)
	}
	if fileExists(lease) {
		t.Errorf("lease %s left", lease)
	}
	if out := rulesTagged(id); out != "" {
		t.Errorf("rules of %s left:\n%s", id, out)
	}

	// A malformed list is refused before anything is made.
	if _, err := m2.Attach(ctx, AttachRequest{ContainerID: id, Networks: []EndpointRequest{{ConfList: []byte(`{"name":"x"}`)}}}); !errdefs.IsInvalid(err) {
		t.Errorf("malformed list: %v", err)
	}
	assertNoLeftovers(t, m2, id, netip.Addr{})
	if err := m2.Close(); err != nil {
		t.Error(err)
	}
}
