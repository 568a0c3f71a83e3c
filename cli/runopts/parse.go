package runopts

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/docker/go-connections/nat"
	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/spf13/pflag"
)

// Request is what POST /containers/create needs.
type Request struct {
	Config           *container.Config
	HostConfig       *container.HostConfig
	NetworkingConfig *network.NetworkingConfig
}

// Parse builds the create request for image with command args from o.
// fs tells which flags were given (some fields are set only then); getenv
// resolves `-e NAME` without a value.
func (o *Options) Parse(fs *pflag.FlagSet, image string, args []string, getenv func(string) (string, bool)) (*Request, error) {
	if o.macAddress != "" {
		if _, err := parseMAC(o.macAddress); err != nil {
			return nil, err
		}
	}
	attachStdin, attachStdout, attachStderr := false, false, false
	for _, a := range o.attach.Values() {
		switch a {
		case "stdin":
			attachStdin = true
		case "stdout":
			attachStdout = true
		case "stderr":
			attachStderr = true
		}
	}
	if o.Interactive {
		attachStdin = true
	}
	if o.attach.Len() == 0 {
		attachStdout, attachStderr = true, true
	}

	if o.swappiness != -1 && (o.swappiness < 0 || o.swappiness > 100) {
		return nil, fmt.Errorf("invalid value: %d. Valid memory swappiness range is 0-100", o.swappiness)
	}

	volumes := map[string]struct{}{}
	var binds []string
	for _, v := range o.volumes.Values() {
		bind, err := ParseVolume(v)
		if err != nil {
			return nil, err
		}
		if bind == "" {
			volumes[v] = struct{}{}
			continue
		}
		binds = append(binds, bind)
	}
	mounts := make([]mountT, 0, o.mounts.Len())
	for _, m := range o.mounts.Values() {
		mt, err := ParseMount(m)
		if err != nil {
			return nil, err
		}
		mounts = append(mounts, mt)
	}

	tmpfs := map[string]string{}
	for _, t := range o.tmpfs.Values() {
		k, v, _ := strings.Cut(t, ":")
		tmpfs[k] = v
	}

	var cmd, entrypoint []string
	if len(args) > 0 {
		cmd = args
	}
	if o.Entrypoint != "" {
		entrypoint = []string{o.Entrypoint}
	} else if fs.Changed("entrypoint") {
		entrypoint = []string{""}
	}

	exposed, bindings, err := ParsePublish(o.publish.Values())
	if err != nil {
		return nil, err
	}
	for _, e := range o.expose.Values() {
		pr, err := network.ParsePortRange(e)
		if err != nil {
			return nil, fmt.Errorf("invalid range format for --expose: %w", err)
		}
		for p := range pr.All() {
			exposed[p] = struct{}{}
		}
	}

	devices := make([]container.DeviceMapping, 0, o.devices.Len())
	for _, d := range o.devices.Values() {
		dm, err := ParseDevice(d)
		if err != nil {
			return nil, err
		}
		devices = append(devices, dm)
	}

	env, err := readKV(o.envFile.Values(), o.env.Values(), getenv)
	if err != nil {
		return nil, fmt.Errorf("--env-file: %w", err)
	}
	labelList, err := readKV(o.labelFile.Values(), o.labels.Values(), nil)
	if err != nil {
		return nil, fmt.Errorf("--label-file: %w", err)
	}
	labels := make(map[string]string, len(labelList))
	for _, l := range labelList {
		k, v, _ := strings.Cut(l, "=")
		labels[k] = v
	}

	if !validNamespaceMode(o.PidMode) {
		return nil, errors.New("--pid: invalid PID mode")
	}
	if !validNamespaceMode(o.UTSMode) {
		return nil, errors.New("--uts: invalid UTS mode")
	}
	switch o.CgroupnsMod {
	case "", "host", "private":
	default:
		return nil, errors.New("--cgroupns: invalid CGROUP mode")
	}

	restart, err := ParseRestartPolicy(o.Restart)
	if err != nil {
		return nil, err
	}

	logOpts := map[string]string{}
	for _, l := range o.logOpts.Values() {
		k, v, _ := strings.Cut(l, "=")
		logOpts[k] = v
	}
	if o.LogDriver == "none" && o.logOpts.Len() > 0 {
		return nil, fmt.Errorf("invalid logging opts for driver %s", o.LogDriver)
	}

	secOpts, err := ParseSecurityOpts(o.securityOpt.Values())
	if err != nil {
		return nil, err
	}
	var masked, readonly []string
	filtered := secOpts[:0]
	for _, s := range secOpts {
		if s == "systempaths=unconfined" {
			masked, readonly = []string{}, []string{}
			continue
		}
		filtered = append(filtered, s)
	}
	secOpts = filtered

	health, err := o.healthConfig()
	if err != nil {
		return nil, err
	}

	dns := make([]netip.Addr, 0, o.dns.Len())
	for _, d := range o.dns.Values() {
		a, err := netip.ParseAddr(d)
		if err != nil {
			return nil, fmt.Errorf("invalid --dns %q: %w", d, err)
		}
		dns = append(dns, a)
	}
	var sysctls map[string]string
	if o.sysctls.Len() > 0 {
		sysctls = map[string]string{}
		for _, s := range o.sysctls.Values() {
			k, v, _ := strings.Cut(s, "=")
			sysctls[k] = v
		}
	}

	swappiness := o.swappiness
	oomKillOff := o.oomKillOff
	pids := o.pidsLimit
	cfg := &container.Config{
		Hostname:     o.Hostname,
		Domainname:   o.Domainname,
		ExposedPorts: exposed,
		User:         o.User,
		Tty:          o.TTY,
		OpenStdin:    o.Interactive,
		AttachStdin:  attachStdin,
		AttachStdout: attachStdout,
		AttachStderr: attachStderr,
		Env:          env,
		Cmd:          cmd,
		Image:        image,
		Volumes:      volumes,
		Entrypoint:   entrypoint,
		WorkingDir:   o.Workdir,
		Labels:       labels,
		StopSignal:   o.StopSignal,
		Healthcheck:  health,
	}
	if fs.Changed("stop-timeout") {
		t := o.StopTimeout
		cfg.StopTimeout = &t
	}
	if cfg.OpenStdin && cfg.AttachStdin {
		cfg.StdinOnce = true
	}
	hc := &container.HostConfig{
		Binds:           binds,
		AutoRemove:      o.AutoRemove,
		Privileged:      o.Privileged,
		PortBindings:    bindings,
		PublishAllPorts: o.PublishAll,
		DNS:             dns,
		DNSSearch:       nonNil(o.dnsSearch.Values()),
		DNSOptions:      nonNil(o.dnsOptions.Values()),
		ExtraHosts:      o.extraHosts.Values(),
		IpcMode:         container.IpcMode(o.IpcMode),
		NetworkMode:     container.NetworkMode(o.networks.mode()),
		Links:           o.links.Values(),
		PidMode:         container.PidMode(o.PidMode),
		UTSMode:         container.UTSMode(o.UTSMode),
		CgroupnsMode:    container.CgroupnsMode(o.CgroupnsMod),
		CapAdd:          o.capAdd.Values(),
		CapDrop:         o.capDrop.Values(),
		GroupAdd:        o.groupAdd.Values(),
		RestartPolicy:   restart,
		SecurityOpt:     secOpts,
		ReadonlyRootfs:  o.ReadOnly,
		LogConfig:       container.LogConfig{Type: o.LogDriver, Config: logOpts},
		OomScoreAdj:     o.OomScoreAdj,
		ShmSize:         int64(o.shmSize),
		Tmpfs:           tmpfs,
		VolumesFrom:     o.volumesFrom.Values(),
		VolumeDriver:    o.volDriver,
		Sysctls:         sysctls,
		Runtime:         o.Runtime,
		Mounts:          mounts,
		MaskedPaths:     masked,
		ReadonlyPaths:   readonly,
		Resources: container.Resources{
			CgroupParent:      o.CgroupParnt,
			Memory:            int64(o.memory),
			MemoryReservation: int64(o.memoryRes),
			MemorySwap:        int64(o.memorySwap),
			MemorySwappiness:  &swappiness,
			OomKillDisable:    &oomKillOff,
			NanoCPUs:          int64(o.cpus),
			CPUShares:         o.cpuShares,
			CpusetCpus:        o.cpusetCpus,
			PidsLimit:         &pids,
			Ulimits:           nonNilUlimits(o.ulimits.Values()),
			Devices:           devices,
			// docker sends these empty, not null.
			BlkioWeightDevice:    []*blkiodev.WeightDevice{},
			BlkioDeviceReadBps:   []*blkiodev.ThrottleDevice{},
			BlkioDeviceWriteBps:  []*blkiodev.ThrottleDevice{},
			BlkioDeviceReadIOps:  []*blkiodev.ThrottleDevice{},
			BlkioDeviceWriteIOps: []*blkiodev.ThrottleDevice{},
		},
	}
	if o.AutoRemove && restart.Name != "" && restart.Name != container.RestartPolicyDisabled {
		return nil, errors.New("conflicting options: cannot specify both --restart and --rm")
	}
	if fs.Changed("init") {
		b := o.Init
		hc.Init = &b
	}
	nc, err := o.networking()
	if err != nil {
		return nil, err
	}
	return &Request{Config: cfg, HostConfig: hc, NetworkingConfig: nc}, nil
}

func nonNilUlimits(u []*container.Ulimit) []*container.Ulimit {
	if u == nil {
		return []*container.Ulimit{}
	}
	return u
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (o *Options) healthConfig() (*container.HealthConfig, error) {
	have := o.healthCmd != "" || o.healthInterval != 0 || o.healthTimeout != 0 ||
		o.healthStartPeriod != 0 || o.healthRetries != 0 || o.healthStartInterval != 0
	if o.noHealthcheck {
		if have {
			return nil, errors.New("--no-healthcheck conflicts with --health-* options")
		}
		return &container.HealthConfig{Test: []string{"NONE"}}, nil
	}
	if !have {
		return nil, nil
	}
	for _, c := range []struct {
		neg  bool
		name string
	}{
		{o.healthInterval < 0, "--health-interval"},
		{o.healthTimeout < 0, "--health-timeout"},
		{o.healthRetries < 0, "--health-retries"},
		{o.healthStartPeriod < 0, "--health-start-period"},
		{o.healthStartInterval < 0, "--health-start-interval"},
	} {
		if c.neg {
			return nil, fmt.Errorf("%s cannot be negative", c.name)
		}
	}
	var test []string
	if o.healthCmd != "" {
		test = []string{"CMD-SHELL", o.healthCmd}
	}
	return &container.HealthConfig{
		Test:          test,
		Interval:      o.healthInterval,
		Timeout:       o.healthTimeout,
		StartPeriod:   o.healthStartPeriod,
		StartInterval: o.healthStartInterval,
		Retries:       o.healthRetries,
	}, nil
}

func validNamespaceMode(m string) bool {
	if m == "" || m == "host" {
		return true
	}
	k, v, ok := strings.Cut(m, ":")
	return ok && k == "container" && v != ""
}

// ParsePublish parses -p values (IP:HOST:CONTAINER[/PROTO] and the long
// form published=,target=,protocol=) into exposed ports and bindings.
func ParsePublish(specs []string) (network.PortSet, network.PortMap, error) {
	std := make([]string, 0, len(specs))
	for _, p := range specs {
		if !strings.Contains(p, "=") {
			std = append(std, p)
			continue
		}
		params := map[string]string{"protocol": "tcp"}
		for _, kv := range strings.Split(p, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, nil, fmt.Errorf("invalid publish opts format (should be name=value but got '%s')", kv)
			}
			params[k] = v
		}
		std = append(std, fmt.Sprintf("%s:%s/%s", params["published"], params["target"], params["protocol"]))
	}
	natPorts, natBindings, err := nat.ParsePortSpecs(std)
	if err != nil {
		return nil, nil, err
	}
	exposed := network.PortSet{}
	for p := range natPorts {
		np, err := network.ParsePort(string(p))
		if err != nil {
			return nil, nil, err
		}
		exposed[np] = struct{}{}
	}
	bindings := network.PortMap{}
	for p, bs := range natBindings {
		np, err := network.ParsePort(string(p))
		if err != nil {
			return nil, nil, err
		}
		out := []network.PortBinding{}
		for _, b := range bs {
			var ip netip.Addr
			if b.HostIP != "" {
				if ip, err = netip.ParseAddr(b.HostIP); err != nil {
					return nil, nil, err
				}
			}
			out = append(out, network.PortBinding{HostIP: ip, HostPort: b.HostPort})
		}
		bindings[np] = out
	}
	return exposed, bindings, nil
}

// ParseRestartPolicy parses no, always, unless-stopped or
// on-failure[:MAX-RETRIES]; the daemon validates the name.
func ParseRestartPolicy(s string) (container.RestartPolicy, error) {
	var p container.RestartPolicy
	if s == "" {
		return p, nil
	}
	name, count, ok := strings.Cut(s, ":")
	if name == "" {
		return p, errors.New("invalid restart policy format: no policy provided before colon")
	}
	p.Name = container.RestartPolicyMode(name)
	if ok {
		n, err := strconv.Atoi(count)
		if err != nil {
			return p, errors.New("invalid restart policy format: maximum retry count must be an integer")
		}
		p.MaximumRetryCount = n
	}
	return p, nil
}

// ParseSecurityOpts checks KEY=VALUE (or KEY:VALUE) options and inlines a
// seccomp profile file as JSON, as docker does: the daemon may not be able
// to read the client's files.
func ParseSecurityOpts(opts []string) ([]string, error) {
	out := append([]string(nil), opts...)
	for i, opt := range out {
		k, v, ok := strings.Cut(opt, "=")
		if !ok && k != "no-new-privileges" {
			k, v, ok = strings.Cut(opt, ":")
		}
		if (!ok || v == "") && k != "no-new-privileges" {
			// docker's wording, capital and all.
			return nil, fmt.Errorf("%s --security-opt: %q", "Invalid", opt)
		}
		if k != "seccomp" || v == "unconfined" || v == "builtin" {
			continue
		}
		f, err := os.ReadFile(v)
		if err != nil {
			return nil, fmt.Errorf("opening seccomp profile (%s) failed: %w", v, err)
		}
		var b bytes.Buffer
		if err := json.Compact(&b, f); err != nil {
			return nil, fmt.Errorf("compacting json for seccomp profile (%s) failed: %w", v, err)
		}
		out[i] = "seccomp=" + b.String()
	}
	return out, nil
}

// ParseDevice parses --device HOST[:CONTAINER][:PERMISSIONS].
func ParseDevice(s string) (container.DeviceMapping, error) {
	var d container.DeviceMapping
	if strings.Count(s, ":") > 2 {
		return d, fmt.Errorf("bad format for path: %s", s)
	}
	parts := strings.SplitN(s, ":", 3)
	if parts[0] == "" {
		return d, fmt.Errorf("bad format for path: %s", s)
	}
	d.PathOnHost, d.PathInContainer, d.CgroupPermissions = parts[0], parts[0], "rwm"
	switch len(parts) {
	case 2:
		if validDeviceMode(parts[1]) {
			d.CgroupPermissions = parts[1]
		} else {
			d.PathInContainer = parts[1]
		}
	case 3:
		if !validDeviceMode(parts[2]) {
			return d, fmt.Errorf("bad mode specified: %s", parts[2])
		}
		d.PathInContainer, d.CgroupPermissions = parts[1], parts[2]
	}
	if !path.IsAbs(d.PathInContainer) {
		return d, fmt.Errorf("%s is not an absolute path", d.PathInContainer)
	}
	d.PathInContainer = path.Clean(d.PathInContainer)
	return d, nil
}

func validDeviceMode(m string) bool {
	if m == "" || len(m) > 3 {
		return false
	}
	seen := map[rune]bool{}
	for _, c := range m {
		if (c != 'r' && c != 'w' && c != 'm') || seen[c] {
			return false
		}
		seen[c] = true
	}
	return true
}

// ParseVolume parses -v. It returns the bind string for SRC:DST[:OPTS]
// (a relative SRC starting with "." made absolute), or "" for a bare
// container path, which is an anonymous volume. The daemon validates the
// rest, as it does for docker.
func ParseVolume(v string) (string, error) {
	if v == "" {
		return "", errors.New("invalid empty volume spec")
	}
	src, rest, ok := strings.Cut(v, ":")
	if !ok {
		return "", nil
	}
	if strings.HasPrefix(src, ".") {
		if abs, err := filepath.Abs(src); err == nil {
			src = abs
		}
	}
	return src + ":" + rest, nil
}

// readKV reads KEY=VALUE lines from files, then appends values; a bare
// KEY is looked up with getenv (when given) and dropped when unset in
// files, kept as-is on the command line, as docker does.
func readKV(files, values []string, getenv func(string) (string, bool)) ([]string, error) {
	var out []string
	for _, f := range files {
		lines, err := parseKVFile(f, getenv)
		if err != nil {
			return nil, err
		}
		out = append(out, lines...)
	}
	// Values given twice on the command line count once (the last), as
	// docker keys them by name.
	last := map[string]int{}
	for i, v := range values {
		k, _, _ := strings.Cut(v, "=")
		last[k] = i
	}
	for i, v := range values {
		k, _, _ := strings.Cut(v, "=")
		if last[k] != i {
			continue
		}
		if getenv != nil && !strings.Contains(v, "=") {
			if val, ok := getenv(v); ok {
				v = v + "=" + val
			}
		}
		out = append(out, v)
	}
	return out, nil
}

func parseKVFile(name string, getenv func(string) (string, bool)) ([]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if n == 1 {
			line = strings.TrimPrefix(line, "\uFEFF")
		}
		if !utf8.ValidString(line) {
			return nil, fmt.Errorf("env file %s contains invalid utf8 bytes at line %d: %v", name, n, []byte(line))
		}
		line = strings.TrimLeftFunc(line, unicode.IsSpace)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, hasValue := strings.Cut(line, "=")
		if k == "" {
			return nil, fmt.Errorf("no variable name on line '%s'", line)
		}
		if strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("variable '%s' contains whitespaces", k)
		}
		if hasValue {
			out = append(out, k+"="+v)
			continue
		}
		if getenv == nil {
			out = append(out, k)
			continue
		}
		if val, ok := getenv(k); ok {
			out = append(out, k+"="+val)
		}
	}
	return out, sc.Err()
}

func validateLogOpt(s string) (string, error) {
	if !strings.Contains(s, "=") {
		return "", fmt.Errorf("invalid key value pair format in log options: %s", s)
	}
	return s, nil
}

func validateSysctl(s string) (string, error) {
	k, _, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return "", fmt.Errorf("sysctl '%s' is not allowed", s)
	}
	return s, nil
}

// ReadEnv is --env-file then -e, as docker merges them (exec uses it too).
func ReadEnv(files, values []string, getenv func(string) (string, bool)) ([]string, error) {
	return readKV(files, values, getenv)
}
