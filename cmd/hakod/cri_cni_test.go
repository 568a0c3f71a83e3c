package main

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/hako-project/hako/test/hakodtest"
	"github.com/hako-project/hako/test/imagetest"
)

// networkCondition is Status's NetworkReady condition.
func networkCondition(t *testing.T, c *hakodtest.CRI) *runtimeapi.RuntimeCondition {
	t.Helper()
	st, err := c.Runtime.Status(context.Background(), &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, cond := range st.GetStatus().GetConditions() {
		if cond.GetType() == runtimeapi.NetworkReady {
			return cond
		}
	}
	t.Fatalf("no NetworkReady condition in %v", st)
	return nil
}

// grepLines is the lines of out that mention s.
func grepLines(out, s string) string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

// TestCRICNIConfDir: with --cni-conf-dir, pods use the first CNI
// configuration of the directory, which may come after hakod started, as
// a cluster's network add-on writes it.
func TestCRICNIConfDir(t *testing.T) {
	hakodtest.NeedRoot(t)
	needCNI(t)
	const bridge = "hkcnitest1"
	subnet := netip.MustParsePrefix("10.251.38.0/24")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", bridge).Run() })
	tmp := t.TempDir()
	confDir, dataDir := filepath.Join(tmp, "net.d"), filepath.Join(tmp, "ipam")
	if err := os.Mkdir(confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	d, c := hakodtest.StartCRI(t, "--cni-conf-dir", confDir)
	ctx := context.Background()

	// No configuration yet: not ready, in kubelet's words.
	if cond := networkCondition(t, c); cond.GetStatus() || cond.GetReason() != "NetworkPluginNotReady" || cond.GetMessage() != "no network config found in "+confDir {
		t.Errorf("NetworkReady with an empty directory: %v", cond)
	}
	if _, err := c.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: criPod("early", false, "")}); err == nil ||
		!strings.Contains(err.Error(), "no network config found in "+confDir) {
		t.Errorf("pod without a network configuration: %v", err)
	}
	if left := d.Leftovers(); len(left) > 0 {
		t.Errorf("refused pod left:\n%s", strings.Join(left, "\n"))
	}

	conf := `{"cniVersion": "1.0.0", "name": "hkcnitest", "plugins": [
  {"type": "bridge", "bridge": "` + bridge + `", "isGateway": true, "ipMasq": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "` + subnet.String() + `"}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "` + dataDir + `"}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}`
	if err := os.WriteFile(filepath.Join(confDir, "10-hkcnitest.conflist"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if cond := networkCondition(t, c); !cond.GetStatus() {
		t.Errorf("NetworkReady with a configuration: %v", cond)
	}
	podCfg := criPod("confdir", false, "")
	port := int32(imagetest.FreePort(t))
	podCfg.PortMappings = []*runtimeapi.PortMapping{{HostPort: port, ContainerPort: 80}}
	rp, err := c.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podCfg})
	if err != nil {
		t.Fatalf("run pod: %v\n%s", err, d.Log())
	}
	pod := rp.GetPodSandboxId()
	ps, err := c.Runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: pod})
	if err != nil {
		t.Fatal(err)
	}
	ip, err := netip.ParseAddr(ps.GetStatus().GetNetwork().GetIp())
	if err != nil || !subnet.Contains(ip) {
		t.Fatalf("pod IP %q (%v), want one of %s", ps.GetStatus().GetNetwork().GetIp(), err, subnet)
	}
	img := d.DefaultImage()
	id := startCRIContainer(t, c, pod, podCfg, criContainer("main", img, "sleep", "1000"))
	if out, code := execSync(t, c, id, "ip", "-o", "-4", "addr", "show", "eth0"); code != 0 || !strings.Contains(out, ip.String()+"/24") {
		t.Errorf("eth0 in the pod: %q (exit %d)", out, code)
	}
	save := func() string {
		out, _ := exec.Command("iptables-save").Output()
		return string(out)
	}
	if rules := grepLines(save(), pod); !strings.Contains(rules, "DNAT") {
		t.Errorf("no hostPort rule for the pod:\n%s", rules)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "hkcnitest", ip.String())); err != nil {
		t.Errorf("no lease for %s: %v", ip, err)
	}

	// A pod with a user namespace is attached with the configuration too,
	// in the network namespace its pause made; DEL leaves nothing.
	mapping := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 100000, Length: 65536}}
	usernsCfg := criPod("confdir-userns", false, "")
	usernsCfg.Linux.SecurityContext.NamespaceOptions.UsernsOptions = &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: mapping, Gids: mapping}
	ru, err := c.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: usernsCfg})
	if err != nil {
		t.Fatalf("run pod with a user namespace: %v\n%s", err, d.Log())
	}
	us, err := c.Runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: ru.GetPodSandboxId()})
	if uip, perr := netip.ParseAddr(us.GetStatus().GetNetwork().GetIp()); err != nil || perr != nil || !subnet.Contains(uip) || uip == ip {
		t.Errorf("IP of the pod with a user namespace: %q (%v %v)", us.GetStatus().GetNetwork().GetIp(), err, perr)
	}
	if _, err := c.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: ru.GetPodSandboxId()}); err != nil {
		t.Fatalf("stop pod: %v", err)
	}
	if _, err := c.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: ru.GetPodSandboxId()}); err != nil {
		t.Fatalf("remove pod: %v", err)
	}
	if leases, _ := filepath.Glob(filepath.Join(dataDir, "hkcnitest", "10.*")); len(leases) != 1 {
		t.Errorf("leases after the pod with a user namespace went: %v", leases)
	}

	// A malformed first configuration: not ready, and pods fail, both
	// naming the file. The running pod is not affected.
	bad := filepath.Join(confDir, "05-bad.conflist")
	if err := os.WriteFile(bad, []byte(`{"cniVersion": "1.0.0", "name": "bad", "plugins": [`), 0o644); err != nil {
		t.Fatal(err)
	}
	if cond := networkCondition(t, c); cond.GetStatus() || cond.GetReason() != "NetworkPluginNotReady" || !strings.Contains(cond.GetMessage(), bad) {
		t.Errorf("NetworkReady with a malformed configuration: %v", cond)
	}
	before := d.Leftovers()
	if _, err := c.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: criPod("bad", false, "")}); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("pod with a malformed configuration: %v", err)
	}
	if after := d.Leftovers(); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("refused pod left:\n%s", strings.Join(after, "\n"))
	}

	// Stop and remove: DEL replays the configuration the pod was attached
	// with, so nothing is left.
	stopAndRemovePod(t, d, c, pod)
	if left := netLeftovers(d, []string{bridge}, pod, ru.GetPodSandboxId()); len(left) > 0 {
		t.Errorf("network left behind:\n%s", strings.Join(left, "\n"))
	}
	if rules := grepLines(save(), pod); rules != "" {
		t.Errorf("rules of the pod left:\n%s", rules)
	}
	if leases, _ := filepath.Glob(filepath.Join(dataDir, "hkcnitest", "10.*")); len(leases) > 0 {
		t.Errorf("leases left: %v", leases)
	}
}

func TestCRICNIConfDirConfigKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hakod.toml")
	if err := os.WriteFile(path, []byte("cni-conf-dir = \"/etc/cni/net.d\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{nil, {"--cni-conf-dir", "/other"}} {
		cmd := newCommand()
		if err := cmd.Flags().Parse(args); err != nil {
			t.Fatal(err)
		}
		var cfg Config
		if err := loadConfigFile(path, &cfg, cmd); err != nil {
			t.Fatal(err)
		}
		want := "/etc/cni/net.d"
		if args != nil {
			want = "" // the flag's, which this cfg does not hold
		}
		if cfg.CNIConfDir != want {
			t.Errorf("args %v: cni-conf-dir %q, want %q", args, cfg.CNIConfDir, want)
		}
	}
}
