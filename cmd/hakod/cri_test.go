package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/hako-project/hako/test/hakodtest"
	"github.com/hako-project/hako/test/imagetest"
)

// These tests drive a real hakod's CRI socket with a CRI gRPC client (the
// one kubelet uses), and with crictl when one is at hand ($CRICTL, or the
// one test/critest/run.sh builds).

func criPod(name string, host bool, logDir string) *runtimeapi.PodSandboxConfig {
	ns := &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER}
	if host {
		ns.Network = runtimeapi.NamespaceMode_NODE
	}
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "test", Uid: name + "-uid"},
		Hostname: name, LogDirectory: logDir,
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: ns}},
	}
}

func criContainer(name, img string, cmd ...string) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: name}, Image: &runtimeapi.ImageSpec{Image: img},
		Command: cmd, LogPath: name + ".log"}
}

// startCRIContainer creates and starts a container, failing the test on
// error.
func startCRIContainer(t *testing.T, c *hakodtest.CRI, pod string, podCfg *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) string {
	t.Helper()
	ctx := context.Background()
	cr, err := c.Runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: cfg, SandboxConfig: podCfg})
	if err != nil {
		t.Fatalf("create container %s: %v", cfg.GetMetadata().GetName(), err)
	}
	if _, err := c.Runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cr.GetContainerId()}); err != nil {
		t.Fatalf("start container %s: %v", cfg.GetMetadata().GetName(), err)
	}
	return cr.GetContainerId()
}

func execSync(t *testing.T, c *hakodtest.CRI, id string, cmd ...string) (string, int32) {
	t.Helper()
	r, err := c.Runtime.ExecSync(context.Background(), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: 20})
	if err != nil {
		t.Fatalf("exec %v: %v", cmd, err)
	}
	return string(r.GetStdout()) + string(r.GetStderr()), r.GetExitCode()
}

func TestCRIPodLifecycle(t *testing.T) {
	d, c := hakodtest.StartCRI(t)
	img := d.DefaultImage()
	ctx := context.Background()
	logDir := filepath.Join(d.Dir, "pods", "life")
	podCfg := criPod("life", false, logDir)
	rp, err := c.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podCfg})
	if err != nil {
		t.Fatalf("run pod: %v\n%s", err, d.Log())
	}
	pod := rp.GetPodSandboxId()
	id := startCRIContainer(t, c, pod, podCfg, criContainer("main", img, "sh", "-c", "echo started; echo oops >&2; trap 'exit 143' TERM; while :; do sleep 0.2; done"))
	st, err := c.Runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil || st.GetStatus().GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("status: %v %v", st.GetStatus().GetState(), err)
	}
	if out, code := execSync(t, c, id, "hostname"); code != 0 || strings.TrimSpace(out) != "life" {
		t.Errorf("hostname in the pod: %q (exit %d)", out, code)
	}
	if _, code := execSync(t, c, id, "sh", "-c", "exit 3"); code != 3 {
		t.Errorf("exec exit code %d, want 3", code)
	}
	// The log is in the CRI format at the path kubelet gave.
	deadline := time.Now().Add(5 * time.Second)
	var log []byte
	for time.Now().Before(deadline) {
		log, _ = os.ReadFile(filepath.Join(logDir, "main.log"))
		if strings.Contains(string(log), "oops") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(string(log), " stdout F started\n") || !strings.Contains(string(log), " stderr F oops\n") {
		t.Errorf("CRI log: %q", log)
	}
	// crictl, when there is one, sees the same.
	if crictl := crictlPath(); crictl != "" {
		cmd := exec.Command(crictl, "--runtime-endpoint", "unix://"+c.Socket, "--image-endpoint", "unix://"+c.Socket, "logs", id)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "started") {
			t.Errorf("crictl logs: %v %s", err, out)
		}
	}
	if _, err := c.Runtime.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 2}); err != nil {
		t.Fatalf("stop: %v", err)
	}
	st, _ = c.Runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if st.GetStatus().GetState() != runtimeapi.ContainerState_CONTAINER_EXITED || st.GetStatus().GetExitCode() != 143 {
		t.Errorf("after stop: %v exit %d", st.GetStatus().GetState(), st.GetStatus().GetExitCode())
	}
	if _, err := c.Runtime.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("remove: %v", err)
	}
	stopAndRemovePod(t, d, c, pod)
}

// stopAndRemovePod stops and removes a pod and checks that it left
// nothing.
func stopAndRemovePod(t *testing.T, d *hakodtest.Daemon, c *hakodtest.CRI, pod string) {
	t.Helper()
	ctx := context.Background()
	if _, err := c.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatalf("stop pod: %v", err)
	}
	if _, err := c.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatalf("remove pod: %v", err)
	}
	if left := d.Leftovers(); len(left) > 0 {
		t.Errorf("left behind:\n%s", strings.Join(left, "\n"))
	}
}

func TestCRIHostNetworkPod(t *testing.T) {
	d, c := hakodtest.StartCRI(t)
	img := d.DefaultImage()
	ctx := context.Background()
	podCfg := criPod("hostnet", true, "")
	rp, err := c.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podCfg})
	if err != nil {
		t.Fatalf("run pod: %v", err)
	}
	id := startCRIContainer(t, c, rp.GetPodSandboxId(), podCfg, criContainer("main", img, "sleep", "1000"))
	host, _ := os.Readlink("/proc/self/ns/net")
	if out, _ := execSync(t, c, id, "readlink", "/proc/self/ns/net"); strings.TrimSpace(out) != host {
		t.Errorf("host-network container's netns %q, the host's %q", out, host)
	}
	hn, _ := os.Hostname()
	if out, _ := execSync(t, c, id, "hostname"); strings.TrimSpace(out) != hn {
		t.Errorf("host-network container's hostname %q, the host's %q", out, hn)
	}
	ps, err := c.Runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: rp.GetPodSandboxId()})
	if err != nil || ps.GetStatus().GetState() != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Errorf("pod status: %v %v", ps.GetStatus().GetState(), err)
	}
}

func TestCRIContainersShareThePodsNamespaces(t *testing.T) {
	d, c := hakodtest.StartCRI(t)
	img := d.DefaultImage()
	ctx := context.Background()
	podCfg := criPod("shared", false, "")
	podCfg.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	rp, err := c.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podCfg})
	if err != nil {
		t.Fatalf("run pod: %v", err)
	}
	pod := rp.GetPodSandboxId()
	a := startCRIContainer(t, c, pod, podCfg, criContainer("a", img, "sleep", "1000"))
	b := startCRIContainer(t, c, pod, podCfg, criContainer("b", img, "sleep", "1001"))
	host := map[string]string{}
	for _, ns := range []string{"net", "ipc", "uts", "pid"} {
		host[ns], _ = os.Readlink("/proc/self/ns/" + ns)
		na, _ := execSync(t, c, a, "readlink", "/proc/self/ns/"+ns)
		nb, _ := execSync(t, c, b, "readlink", "/proc/self/ns/"+ns)
		if na != nb || strings.TrimSpace(na) == host[ns] {
			t.Errorf("%s namespace: a %q, b %q, host %q: want the pod's own, shared", ns, na, nb, host[ns])
		}
	}
	// One PID namespace: b sees a's process; PID 1 is the pod's pause.
	if out, _ := execSync(t, c, b, "ps"); !strings.Contains(out, "sleep 1000") {
		t.Errorf("b does not see a's process:\n%s", out)
	}
	// One network: a server in a answers b on localhost.
	execSync(t, c, a, "sh", "-c", "mkdir -p /www && echo hi > /www/index.html && httpd -p 8080 -h /www")
	if out, code := execSync(t, c, b, "wget", "-qO-", "http://127.0.0.1:8080/"); code != 0 || strings.TrimSpace(out) != "hi" {
		t.Errorf("b to a over the pod's loopback: %q (exit %d)", out, code)
	}
}

func TestCRIBadInput(t *testing.T) {
	d, c := hakodtest.StartCRI(t)
	img := d.DefaultImage()
	ctx := context.Background()
	code := func(err error) codes.Code { return status.Code(err) }
	unknown := strings.Repeat("ab", 32)
	if _, err := c.Runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: unknown}); code(err) != codes.NotFound {
		t.Errorf("status of an unknown container: %v, want NotFound", err)
	}
	if _, err := c.Runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: unknown}); code(err) != codes.NotFound {
		t.Errorf("status of an unknown pod: %v, want NotFound", err)
	}
	if _, err := c.Runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: unknown}); code(err) != codes.NotFound {
		t.Errorf("start of an unknown container: %v, want NotFound", err)
	}
	if _, err := c.Runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: unknown, Cmd: []string{"true"}}); code(err) != codes.NotFound {
		t.Errorf("exec in an unknown container: %v, want NotFound", err)
	}
	// Stopping or removing what is not there is not an error (the CRI's
	// idempotence).
	if _, err := c.Runtime.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: unknown}); err != nil {
		t.Errorf("stop of an unknown container: %v", err)
	}
	if _, err := c.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: unknown}); err != nil {
		t.Errorf("remove of an unknown pod: %v", err)
	}
	if _, err := c.Image.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: "no.such/image:1"}}); err != nil {
		t.Errorf("remove of a missing image: %v", err)
	}

	port := int32(imagetest.FreePort(t))
	podCfg := criPod("bad", false, "")
	podCfg.PortMappings = []*runtimeapi.PortMapping{{HostPort: port, ContainerPort: 80}}
	rp, err := c.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podCfg})
	if err != nil {
		t.Fatalf("run pod: %v\n%s", err, d.Log())
	}
	pod := rp.GetPodSandboxId()
	before := d.Leftovers()

	// A second pod on the same hostPort.
	clash := criPod("clash", false, "")
	clash.PortMappings = []*runtimeapi.PortMapping{{HostPort: port, ContainerPort: 8080}}
	if _, err := c.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: clash}); code(err) != codes.AlreadyExists {
		t.Errorf("clashing hostPort: %v, want AlreadyExists", err)
	}
	// A container whose image is missing.
	if _, err := c.Runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: pod, SandboxConfig: podCfg,
		Config: criContainer("noimg", "no.such/image:1", "true")}); code(err) != codes.NotFound {
		t.Errorf("missing image: %v, want NotFound", err)
	}
	// A malformed security context: a group without a user.
	bad := criContainer("badsc", img, "true")
	bad.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{RunAsGroup: &runtimeapi.Int64Value{Value: 5}}}
	if _, err := c.Runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: pod, SandboxConfig: podCfg, Config: bad}); code(err) != codes.InvalidArgument {
		t.Errorf("run_as_group without run_as_user: %v, want InvalidArgument", err)
	}
	// A seccomp profile that is not there.
	bad = criContainer("badseccomp", img, "true")
	bad.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
		Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "/no/such/profile.json"}}}
	if _, err := c.Runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: pod, SandboxConfig: podCfg, Config: bad}); code(err) != codes.InvalidArgument {
		t.Errorf("missing seccomp profile: %v, want InvalidArgument", err)
	}
	// A container in an unknown pod.
	if _, err := c.Runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: unknown, Config: criContainer("x", img, "true")}); code(err) != codes.NotFound {
		t.Errorf("container in an unknown pod: %v, want NotFound", err)
	}
	// Nothing half-made: no container, and no namespace, mount or
	// directory more than the one good pod has.
	if l, _ := c.Runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{}); len(l.GetContainers()) != 0 {
		t.Errorf("failed creates left containers: %v", l.GetContainers())
	}
	if after := d.Leftovers(); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("failed requests left things behind:\nbefore:\n%s\nafter:\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
	}
	if out := d.MustDocker("ps", "-aq"); out != "" {
		t.Errorf("failed creates left engine containers: %s", out)
	}
}

// crictlPath is a crictl to cross-check with, if there is one.
func crictlPath() string {
	for _, p := range []string{os.Getenv("CRICTL"), "/var/tmp/hako-critest/bin/crictl"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	if p, err := exec.LookPath("crictl"); err == nil {
		return p
	}
	return ""
}

func TestCRIUserNamespacePod(t *testing.T) {
	needCNI(t)
	d, c := hakodtest.StartCRI(t)
	img := d.DefaultImage()
	ctx := context.Background()
	mapping := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 100000, Length: 65536}}
	userns := &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: mapping, Gids: mapping}
	podCfg := criPod("userns", false, "")
	podCfg.Linux.SecurityContext.NamespaceOptions.UsernsOptions = userns
	rp, err := c.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podCfg})
	if err != nil {
		t.Fatalf("run pod: %v\n%s", err, d.Log())
	}
	pod := rp.GetPodSandboxId()
	// The pod joins the pod network (the default bridge) in the network
	// namespace its pause made inside the pod's user namespace.
	subnet, _, _ := strings.Cut(d.MustDocker("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", "bridge"), " ")
	prefix, err := netip.ParsePrefix(strings.TrimSpace(subnet))
	if err != nil {
		t.Fatalf("default bridge's subnet %q: %v", subnet, err)
	}
	ps, err := c.Runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: pod})
	if err != nil {
		t.Fatal(err)
	}
	ip, err := netip.ParseAddr(ps.GetStatus().GetNetwork().GetIp())
	if err != nil || !prefix.Contains(ip) {
		t.Fatalf("pod IP %q (%v), want one of %s\n%s", ps.GetStatus().GetNetwork().GetIp(), err, prefix, d.Log())
	}
	cfg := criContainer("main", img, "sleep", "1000")
	cfg.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER, UsernsOptions: userns}}}
	id := startCRIContainer(t, c, pod, podCfg, cfg)
	if out, _ := execSync(t, c, id, "cat", "/proc/self/uid_map"); strings.Join(strings.Fields(out), " ") != "0 100000 65536" {
		t.Errorf("uid_map in the pod: %q", out)
	}
	if out, code := execSync(t, c, id, "ip", "-o", "-4", "addr", "show", "eth0"); code != 0 || !strings.Contains(out, fmt.Sprintf("%s/%d", ip, prefix.Bits())) {
		t.Errorf("eth0 in the pod: %q (exit %d)", out, code)
	}
	// The image's files are root's in the container (ID-mapped layers),
	// and root can write its filesystem.
	if out, code := execSync(t, c, id, "sh", "-c", "stat -c %u /bin/busybox && touch /new && stat -c %u /new"); code != 0 || strings.Fields(out)[0] != "0" {
		t.Errorf("files in a user namespace pod: %q (exit %d)", out, code)
	}
	// Malformed mappings are refused, and leave nothing.
	before := d.Leftovers()
	for _, bad := range []*runtimeapi.UserNamespace{
		{Mode: runtimeapi.NamespaceMode_POD, Uids: []*runtimeapi.IDMapping{{ContainerId: 1, HostId: 1000, Length: 10}}, Gids: mapping},
		{Mode: runtimeapi.NamespaceMode_POD, Uids: append(mapping, mapping...), Gids: mapping},
		{Mode: runtimeapi.NamespaceMode_CONTAINER},
	} {
		p := criPod("badns", false, "")
		p.Linux.SecurityContext.NamespaceOptions.UsernsOptions = bad
		if _, err := c.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: p}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%v: %v, want InvalidArgument", bad, err)
		}
	}
	if after := d.Leftovers(); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("refused pods left things behind:\n%s", strings.Join(after, "\n"))
	}
	// Stopped and removed, the pod leaves no veth, lease, attachment,
	// pinned namespace or rule.
	if _, err := c.Runtime.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("remove: %v", err)
	}
	stopAndRemovePod(t, d, c, pod)
	if left := netLeftovers(d, []string{bridgeOf(t, d, "bridge")}, pod); len(left) > 0 {
		t.Errorf("the pod's network left:\n%s", strings.Join(left, "\n"))
	}
}
