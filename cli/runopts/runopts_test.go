package runopts

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/spf13/pflag"
)

// parse runs the flags through a fresh flag set, as `hako run` would.
func parse(t *testing.T, args ...string) (*Request, error) {
	t.Helper()
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	o := AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		t.Fatal("no image")
	}
	env := map[string]string{"FROM_ENV": "e"}
	return o.Parse(fs, rest[0], rest[1:], func(k string) (string, bool) { v, ok := env[k]; return v, ok })
}

func TestParseDefaults(t *testing.T) {
	r, err := parse(t, "img")
	if err != nil {
		t.Fatal(err)
	}
	c, h := r.Config, r.HostConfig
	if c.Image != "img" || c.Cmd != nil || c.Entrypoint != nil || !c.AttachStdout || !c.AttachStderr || c.AttachStdin || c.OpenStdin || c.StdinOnce {
		t.Fatalf("config: %+v", c)
	}
	if *h.MemorySwappiness != -1 || *h.OomKillDisable || *h.PidsLimit != 0 || h.Init != nil || h.RestartPolicy.Name != "no" {
		t.Fatalf("host config: %+v", h)
	}
	if _, ok := r.NetworkingConfig.EndpointsConfig["default"]; !ok {
		t.Fatalf("default endpoint missing: %+v", r.NetworkingConfig)
	}
	if c.Labels == nil || c.Volumes == nil || h.Ulimits == nil || h.DNS == nil || h.BlkioDeviceReadBps == nil {
		t.Fatal("docker sends these empty, not null")
	}
}

func TestParseFlags(t *testing.T) {
	dir := t.TempDir()
	envFile := filepath.Join(dir, "env")
	os.WriteFile(envFile, []byte("\uFEFF# c\n\nF=1\nFROM_ENV\nUNSET\n"), 0o644)
	r, err := parse(t, "-i", "-t", "-e", "A=1", "-e", "FROM_ENV", "-e", "NOPE", "--env-file", envFile,
		"-w", "/w", "-u", "u", "--entrypoint", "", "-h", "host", "-v", "/src:/dst:ro", "-v", "./rel:/r", "-v", "/anon",
		"--mount", "type=bind,src=/s,dst=/d,ro", "--tmpfs", "/t:size=1m", "--read-only", "-m", "1g", "--cpus", "0.5",
		"--pids-limit", "9", "--cap-add", "NET_ADMIN", "--privileged", "--init", "--restart", "on-failure:2",
		"--network", "host", "-p", "8080:80", "-P", "--expose", "90-91/udp", "-l", "k=v", "-l", "bare",
		"--log-opt", "max-size=1m", "--ulimit", "nofile=1:2", "--device", "/dev/fuse", "--group-add", "g",
		"--add-host", "h=1.2.3.4", "--dns", "8.8.8.8", "--health-cmd", "true", "--health-interval", "2s",
		"--runtime", "crun", "--stop-signal", "USR1", "--stop-timeout", "3", "img", "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	c, h := r.Config, r.HostConfig
	wantEnv := []string{"F=1", "FROM_ENV=e", "A=1", "FROM_ENV=e", "NOPE"}
	if got, _ := ReadEnv(nil, []string{"A=1", "B=2", "A=3"}, nil); !reflect.DeepEqual(got, []string{"B=2", "A=3"}) {
		t.Errorf("-e given twice: %q", got)
	}
	if !reflect.DeepEqual(c.Env, wantEnv) {
		t.Errorf("env %q, want %q", c.Env, wantEnv)
	}
	if !c.AttachStdin || !c.OpenStdin || !c.StdinOnce || !c.Tty || h.AutoRemove {
		t.Errorf("stdin/tty: %+v", c)
	}
	if !reflect.DeepEqual(c.Entrypoint, []string{""}) || !reflect.DeepEqual(c.Cmd, []string{"a", "b"}) {
		t.Errorf("entrypoint %q cmd %q", c.Entrypoint, c.Cmd)
	}
	abs, _ := filepath.Abs("./rel")
	if !reflect.DeepEqual(h.Binds, []string{"/src:/dst:ro", abs + ":/r"}) {
		t.Errorf("binds %q", h.Binds)
	}
	if _, ok := c.Volumes["/anon"]; !ok || len(c.Volumes) != 1 {
		t.Errorf("volumes %v", c.Volumes)
	}
	if len(h.Mounts) != 1 || h.Mounts[0].Type != mount.TypeBind || !h.Mounts[0].ReadOnly || h.Mounts[0].Target != "/d" {
		t.Errorf("mounts %+v", h.Mounts)
	}
	if h.Memory != 1<<30 || h.NanoCPUs != 5e8 || *h.PidsLimit != 9 || !h.ReadonlyRootfs || !h.Privileged || !*h.Init {
		t.Errorf("resources %+v", h.Resources)
	}
	if h.RestartPolicy != (container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 2}) {
		t.Errorf("restart %+v", h.RestartPolicy)
	}
	if h.NetworkMode != "host" || len(r.NetworkingConfig.EndpointsConfig) != 0 {
		t.Errorf("network %q %+v", h.NetworkMode, r.NetworkingConfig)
	}
	p80 := network.MustParsePort("80/tcp")
	if b := h.PortBindings[p80]; len(b) != 1 || b[0].HostPort != "8080" || !h.PublishAllPorts {
		t.Errorf("ports %+v", h.PortBindings)
	}
	for _, p := range []string{"80/tcp", "90/udp", "91/udp"} {
		if _, ok := c.ExposedPorts[network.MustParsePort(p)]; !ok {
			t.Errorf("%s not exposed: %v", p, c.ExposedPorts)
		}
	}
	if c.Labels["k"] != "v" || c.Labels["bare"] != "" || len(c.Labels) != 2 {
		t.Errorf("labels %v", c.Labels)
	}
	if h.LogConfig.Config["max-size"] != "1m" || h.Ulimits[0].Soft != 1 || h.Ulimits[0].Hard != 2 {
		t.Errorf("log/ulimit %+v %+v", h.LogConfig, h.Ulimits)
	}
	if d := h.Devices[0]; d.PathOnHost != "/dev/fuse" || d.PathInContainer != "/dev/fuse" || d.CgroupPermissions != "rwm" {
		t.Errorf("device %+v", d)
	}
	if !reflect.DeepEqual(h.ExtraHosts, []string{"h:1.2.3.4"}) || h.DNS[0].String() != "8.8.8.8" {
		t.Errorf("hosts %q dns %v", h.ExtraHosts, h.DNS)
	}
	if hc := c.Healthcheck; hc == nil || !reflect.DeepEqual(hc.Test, []string{"CMD-SHELL", "true"}) || hc.Interval != 2*time.Second {
		t.Errorf("health %+v", c.Healthcheck)
	}
	if h.Runtime != "crun" || c.StopSignal != "USR1" || *c.StopTimeout != 3 || c.Hostname != "host" || c.WorkingDir != "/w" || c.User != "u" {
		t.Errorf("misc %+v", c)
	}
	if h.Tmpfs["/t"] != "size=1m" {
		t.Errorf("tmpfs %v", h.Tmpfs)
	}
}

// TestParseBadInput: every flag that validates refuses bad values with
// docker's message.
func TestParseBadInput(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-m", "abc", "img"}, `invalid argument "abc" for "-m, --memory" flag: invalid size: 'abc'`},
		{[]string{"--cpus", "x", "img"}, "failed to parse x as a rational number"},
		{[]string{"--cpus", "0.0000000001", "img"}, "value is too precise"},
		{[]string{"--ulimit", "nofile", "img"}, "invalid ulimit argument: nofile"},
		{[]string{"-a", "foo", "img"}, "valid streams are STDIN, STDOUT and STDERR"},
		{[]string{"--dns", "x", "img"}, "IP address is not correctly formatted: x"},
		{[]string{"--add-host", "nocolon", "img"}, "bad format for add-host"},
		{[]string{"--add-host", "h:notip", "img"}, "invalid IP address in add-host"},
		{[]string{"-l", "=v", "img"}, "invalid label '=v': empty name"},
		{[]string{"--log-opt", "novalue", "img"}, "invalid key value pair format in log options"},
		{[]string{"--mount", "type=bind", "img"}, "target is required"},
		{[]string{"--mount", "target=/x,bogus=1", "img"}, "unexpected key 'bogus'"},
		{[]string{"--mount", "type=tmpfs,target=/x,volume-nocopy", "img"}, "cannot mix 'volume-*' options with mount type 'tmpfs'"},
		{[]string{"--mount", "target=/x,tmpfs-size=big", "img"}, "invalid value for tmpfs-size: big"},
		{[]string{"--sysctl", "=1", "img"}, "is not allowed"},
		{[]string{"--health-interval", "soon", "img"}, `invalid argument "soon"`},
		{[]string{"-p", "abc", "img"}, "invalid containerPort: abc"},
		{[]string{"-p", "published=80", "img"}, "no port specified: 80:/tcp<empty>"},
		{[]string{"-p", "x=y,z", "img"}, "invalid publish opts format (should be name=value but got 'z')"},
		{[]string{"--expose", "x", "img"}, "invalid range format for --expose"},
		{[]string{"--device", "rel", "img"}, "rel is not an absolute path"},
		{[]string{"--device", "/a:/b:xyz", "img"}, "bad mode specified: xyz"},
		{[]string{"--device", "a:b:c:d", "img"}, "bad format for path: a:b:c:d"},
		{[]string{"--restart", "on-failure:x", "img"}, "maximum retry count must be an integer"},
		{[]string{"--restart", ":1", "img"}, "no policy provided before colon"},
		{[]string{"--rm", "--restart", "always", "img"}, "conflicting options: cannot specify both --restart and --rm"},
		{[]string{"--no-healthcheck", "--health-retries", "1", "img"}, "--no-healthcheck conflicts with --health-* options"},
		{[]string{"--health-retries", "-1", "img"}, "--health-retries cannot be negative"},
		{[]string{"--memory-swappiness", "101", "img"}, "Valid memory swappiness range is 0-100"},
		{[]string{"--pid", "bogus", "img"}, "--pid: invalid PID mode"},
		{[]string{"--uts", "container:", "img"}, "--uts: invalid UTS mode"},
		{[]string{"--cgroupns", "x", "img"}, "--cgroupns: invalid CGROUP mode"},
		{[]string{"--security-opt", "seccomp", "img"}, `Invalid --security-opt: "seccomp"`},
		{[]string{"--security-opt", "seccomp=/nonexistent.json", "img"}, "opening seccomp profile (/nonexistent.json) failed"},
		{[]string{"--log-driver", "none", "--log-opt", "a=b", "img"}, "invalid logging opts for driver none"},
		{[]string{"--env-file", "/nonexistent", "img"}, "--env-file: open /nonexistent"},
		{[]string{"--label-file", "/nonexistent", "img"}, "--label-file: open /nonexistent"},
		{[]string{"-v", "", "img"}, "invalid empty volume spec"},
	} {
		_, err := parse(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.args, err, c.want)
		}
	}
}

func TestEnvFileErrors(t *testing.T) {
	dir := t.TempDir()
	for content, want := range map[string]string{
		"=novar\n":     "no variable name on line '=novar'",
		"A B=1\n":      "variable 'A B' contains whitespaces",
		"A=\xff\xfe\n": "contains invalid utf8 bytes at line 1",
	} {
		f := filepath.Join(dir, "env")
		os.WriteFile(f, []byte(content), 0o644)
		_, err := ReadEnv([]string{f}, nil, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", content, err, want)
		}
	}
}

func TestSeccompProfileInlined(t *testing.T) {
	f := filepath.Join(t.TempDir(), "p.json")
	os.WriteFile(f, []byte("{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\"\n}\n"), 0o644)
	out, err := ParseSecurityOpts([]string{"seccomp=" + f, "no-new-privileges", "label:disable", "seccomp=unconfined"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`seccomp={"defaultAction":"SCMP_ACT_ALLOW"}`, "no-new-privileges", "label:disable", "seccomp=unconfined"}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("got %q, want %q", out, want)
	}
	if _, err := ParseSecurityOpts([]string{"seccomp=" + filepath.Join(t.TempDir(), "x")}); err == nil {
		t.Fatal("missing profile must fail")
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte("{"), 0o644)
	if _, err := ParseSecurityOpts([]string{"seccomp=" + bad}); err == nil || !strings.Contains(err.Error(), "compacting json") {
		t.Fatalf("bad profile: %v", err)
	}
}

func TestValueStrings(t *testing.T) {
	var m MemBytes
	if m.String() != "0" || m.Set("1k") != nil || m.String() != "1KiB" {
		t.Errorf("MemBytes %q", m.String())
	}
	var s MemSwapBytes
	if s.Set("-1") != nil || s != -1 {
		t.Errorf("MemSwapBytes -1: %d", s)
	}
	var c NanoCPUs
	if c.Set("1.5") != nil || c.String() != "1.500" {
		t.Errorf("NanoCPUs %q", c.String())
	}
	var u UlimitList
	u.Set("nofile=1:2")
	u.Set("nofile=3:4")
	if len(u.Values()) != 1 || u.Values()[0].Soft != 3 {
		t.Errorf("a later ulimit replaces the earlier: %v", u.String())
	}
}

func TestParseNetworkFlags(t *testing.T) {
	ip := netip.MustParseAddr
	r, err := parse(t, "--network", "net1", "--ip", "10.88.1.5", "--network-alias", "a", "--net-alias", "b",
		"--mac-address", "02:42:ac:11:00:09", "--link-local-ip", "169.254.1.1", "--network", "net2", "img")
	if err != nil {
		t.Fatal(err)
	}
	if r.HostConfig.NetworkMode != "net1" {
		t.Fatalf("mode %q", r.HostConfig.NetworkMode)
	}
	eps := r.NetworkingConfig.EndpointsConfig
	ep := eps["net1"]
	if len(eps) != 2 || ep == nil || eps["net2"] == nil || !reflect.DeepEqual(ep.Aliases, []string{"a", "b"}) ||
		ep.IPAMConfig.IPv4Address != ip("10.88.1.5") || !reflect.DeepEqual(ep.IPAMConfig.LinkLocalIPs, []netip.Addr{ip("169.254.1.1")}) ||
		ep.MacAddress.String() != "02:42:ac:11:00:09" {
		t.Fatalf("endpoints %+v %+v", ep, eps["net2"])
	}

	r, err = parse(t, "--network", "NAME=Net1,alias=x,ALIAS=Y,ip=10.88.1.6,driver-opt=K=V,gw-priority=3", "img")
	if err != nil {
		t.Fatal(err)
	}
	ep = r.NetworkingConfig.EndpointsConfig["net1"]
	if ep == nil || !reflect.DeepEqual(ep.Aliases, []string{"x", "y"}) || ep.IPAMConfig.IPv4Address != ip("10.88.1.6") ||
		!reflect.DeepEqual(ep.DriverOpts, map[string]string{"k": "v"}) || ep.GwPriority != 3 {
		t.Fatalf("advanced: %+v", ep)
	}

	// One network without options: no endpoint; none: an empty default.
	if r, _ = parse(t, "--network", "name=net1", "img"); len(r.NetworkingConfig.EndpointsConfig) != 0 {
		t.Fatalf("bare: %+v", r.NetworkingConfig.EndpointsConfig)
	}
	r, _ = parse(t, "--ip", "10.1.2.3", "--link", "c:d", "img")
	if ep = r.NetworkingConfig.EndpointsConfig["default"]; r.HostConfig.NetworkMode != "default" || ep == nil || ep.IPAMConfig.IPv4Address != ip("10.1.2.3") ||
		ep.Links != nil || !reflect.DeepEqual(r.HostConfig.Links, []string{"c:d"}) {
		t.Fatalf("default: %+v %+v", r.HostConfig, ep)
	}
}

func TestParseNetworkErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		err  string
	}{
		{[]string{"--network", "name=n,alias=a", "--network-alias", "b"}, "conflicting options: cannot specify both --network-alias and per-network alias"},
		{[]string{"--network", "name=n,ip=10.0.0.2", "--ip", "10.0.0.3"}, "conflicting options: cannot specify both --ip and per-network IPv4 address"},
		{[]string{"--network", "name=n,ip6=::2", "--ip6", "::3"}, "conflicting options: cannot specify both --ip6 and per-network IPv6 address"},
		{[]string{"--network", "name=n,mac-address=02:42:ac:11:00:09", "--mac-address", "02:42:ac:11:00:0a"}, "conflicting options: cannot specify both --mac-address and per-network MAC address"},
		{[]string{"--network", "name=n,link-local-ip=169.254.0.1", "--link-local-ip", "169.254.0.2"}, "conflicting options: cannot specify both --link-local-ip and per-network link-local IP addresses"},
		{[]string{"--network", "name=n,foo=bar"}, `invalid argument "name=n,foo=bar" for "--network" flag: invalid field key foo`},
		{[]string{"--network", "alias=a"}, `invalid argument "alias=a" for "--network" flag: network name/id is not specified`},
		{[]string{"--network", "name=n,gw-priority=x"}, `invalid argument "name=n,gw-priority=x" for "--network" flag: invalid gw-priority (x): invalid syntax`},
		{[]string{"--network", "name=n,driver-opt=x"}, `invalid argument "name=n,driver-opt=x" for "--network" flag: invalid key value pair format in driver options`},
		{[]string{"--network", "n", "--network", "n"}, `network "n" is specified multiple times`},
		{[]string{"--network", "host", "--network", "n"}, "conflicting options: cannot attach both user-defined and non-user-defined network-modes"},
		{[]string{"--network", "bridge", "--network-alias", "a"}, "network-scoped aliases are only supported for user-defined networks"},
		{[]string{"--network-alias", "a"}, "network-scoped aliases are only supported for user-defined networks"},
		{[]string{"--network", " "}, "no name set for network"},
		{[]string{"--network", "n", "--mac-address", "zz"}, "zz is not a valid mac address"},
		{[]string{"--network", "n", "--ip", "10.0.0.999"}, `invalid argument "10.0.0.999" for "--ip" flag: invalid string being converted to IP address: 10.0.0.999`},
		{[]string{"--link", "a:b:c"}, `invalid argument "a:b:c" for "--link" flag: bad format for links: a:b:c`},
	} {
		_, err := parse(t, append(c.args, "img")...)
		if err == nil || err.Error() != c.err {
			t.Errorf("%v: got %v, want %q", c.args, err, c.err)
		}
	}
}
