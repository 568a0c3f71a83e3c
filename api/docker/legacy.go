package docker

import (
	"encoding/json"
	"os"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/storage"
	"github.com/moby/moby/api/types/system"

	"github.com/moby/moby/api/types/image"
)

// The inspect answers below are those of API 1.41 (docker 20.10), the
// version hakod speaks. The moby types hakod builds on follow the newest
// API, which dropped fields that 1.41's clients still read: with a field
// missing, a template such as `docker inspect -f
// '{{.NetworkSettings.IPAddress}}'` fails with "map has no entry for key"
// instead of printing the address. Field order is dockerd 20.10's.

// legacyContainerInspect is GET /containers/{id}/json: the newest answer
// with 1.41's Config and NetworkSettings (the last two fields in both, so
// the order stays dockerd's).
type legacyContainerInspect struct {
	container.InspectResponse
	Config          *legacyConfig
	NetworkSettings *legacyNetworkSettings
}

func newLegacyContainerInspect(r container.InspectResponse, defaultBridge string) legacyContainerInspect {
	out := legacyContainerInspect{InspectResponse: r, Config: newLegacyConfig(r.Config)}
	if r.NetworkSettings != nil {
		mode := ""
		if r.HostConfig != nil {
			mode = string(r.HostConfig.NetworkMode)
		}
		out.NetworkSettings = newLegacyNetworkSettings(r.NetworkSettings, mode, defaultBridge)
	}
	return out
}

// legacyConfig is container.Config as API 1.41 writes it, for containers
// and images alike: OnBuild is there (null) when empty.
type legacyConfig struct {
	Hostname        string
	Domainname      string
	User            string
	AttachStdin     bool
	AttachStdout    bool
	AttachStderr    bool
	ExposedPorts    network.PortSet `json:",omitempty"`
	Tty             bool
	OpenStdin       bool
	StdinOnce       bool
	Env             []string
	Cmd             []string
	Healthcheck     *container.HealthConfig `json:",omitempty"`
	ArgsEscaped     bool                    `json:",omitempty"`
	Image           string
	Volumes         map[string]struct{}
	WorkingDir      string
	Entrypoint      []string
	NetworkDisabled bool   `json:",omitempty"`
	MacAddress      string `json:",omitempty"`
	OnBuild         []string
	Labels          map[string]string
	StopSignal      string   `json:",omitempty"`
	StopTimeout     *int     `json:",omitempty"`
	Shell           []string `json:",omitempty"`
}

func newLegacyConfig(c *container.Config) *legacyConfig {
	if c == nil {
		return nil
	}
	return &legacyConfig{
		Hostname: c.Hostname, Domainname: c.Domainname, User: c.User,
		AttachStdin: c.AttachStdin, AttachStdout: c.AttachStdout, AttachStderr: c.AttachStderr,
		ExposedPorts: c.ExposedPorts, Tty: c.Tty, OpenStdin: c.OpenStdin, StdinOnce: c.StdinOnce,
		Env: c.Env, Cmd: c.Cmd, Healthcheck: c.Healthcheck, ArgsEscaped: c.ArgsEscaped, Image: c.Image,
		Volumes: c.Volumes, WorkingDir: c.WorkingDir, Entrypoint: c.Entrypoint, NetworkDisabled: c.NetworkDisabled,
		OnBuild: c.OnBuild, Labels: c.Labels, StopSignal: c.StopSignal, StopTimeout: c.StopTimeout, Shell: c.Shell,
	}
}

// legacyNetworkSettings is NetworkSettings as API 1.41 writes it: besides
// Networks, the default bridge network's endpoint once more at the top
// level (docker deprecated those fields in 1.21 and removed them in 1.44;
// until then scripts read them), and empty fields of features hako lacks
// (hairpin mode, link-local and secondary addresses).
type legacyNetworkSettings struct {
	Bridge                 string
	SandboxID              string
	HairpinMode            bool
	LinkLocalIPv6Address   string
	LinkLocalIPv6PrefixLen int
	Ports                  network.PortMap
	SandboxKey             string
	SecondaryIPAddresses   []legacyAddress
	SecondaryIPv6Addresses []legacyAddress
	EndpointID             string
	Gateway                string
	GlobalIPv6Address      string
	GlobalIPv6PrefixLen    int
	IPAddress              string
	IPPrefixLen            int
	IPv6Gateway            string
	MacAddress             string
	Networks               map[string]*network.EndpointSettings
}

// legacyAddress is an entry of SecondaryIPAddresses (always null here).
type legacyAddress struct {
	Addr      string
	PrefixLen int
}

// newLegacyNetworkSettings fills the top-level fields from the endpoint on
// the default network ("bridge"), as dockerd 20.10 does, and Bridge with
// its interface when the container's network mode is the default one.
func newLegacyNetworkSettings(ns *container.NetworkSettings, mode, defaultBridge string) *legacyNetworkSettings {
	out := &legacyNetworkSettings{SandboxID: ns.SandboxID, Ports: ns.Ports, SandboxKey: ns.SandboxKey, Networks: ns.Networks}
	if mode == "" || mode == "default" || mode == "bridge" {
		out.Bridge = defaultBridge
	}
	if ep := ns.Networks["bridge"]; ep != nil {
		out.EndpointID, out.MacAddress = ep.EndpointID, ep.MacAddress.String()
		if ep.Gateway.IsValid() {
			out.Gateway = ep.Gateway.String()
		}
		if ep.IPAddress.IsValid() {
			out.IPAddress, out.IPPrefixLen = ep.IPAddress.String(), ep.IPPrefixLen
		}
		if ep.IPv6Gateway.IsValid() {
			out.IPv6Gateway = ep.IPv6Gateway.String()
		}
		if ep.GlobalIPv6Address.IsValid() {
			out.GlobalIPv6Address, out.GlobalIPv6PrefixLen = ep.GlobalIPv6Address.String(), ep.GlobalIPv6PrefixLen
		}
	}
	return out
}

// legacyImageInspect is GET /images/{name}/json as API 1.41 writes it:
// Parent (the image a commit was made from), Container, ContainerConfig
// and DockerVersion (from the config docker's builder and commit write,
// empty otherwise), VirtualSize (Size once more), Comment and Author even
// when empty, and Config in container.Config's shape.
type legacyImageInspect struct {
	ID              string `json:"Id"`
	RepoTags        []string
	RepoDigests     []string
	Parent          string
	Comment         string
	Created         string
	Container       string
	ContainerConfig *legacyConfig
	DockerVersion   string
	Author          string
	Config          *legacyConfig
	Architecture    string
	Variant         string `json:",omitempty"`
	Os              string
	OsVersion       string `json:",omitempty"`
	Size            int64
	VirtualSize     int64
	GraphDriver     *storage.DriverData
	RootFS          image.RootFS
	Metadata        image.Metadata
}

// dockerConfigFields are the parts of a raw image config that API 1.41's
// inspect shows as they are: the run configuration in container.Config's
// shape (case-insensitive names: the OCI config's are the same words), and
// what docker's commit and classic builder add.
type dockerConfigFields struct {
	Config          *container.Config `json:"config"`
	Container       string            `json:"container"`
	ContainerConfig *container.Config `json:"container_config"`
	DockerVersion   string            `json:"docker_version"`
}

func parseDockerConfigFields(raw []byte) dockerConfigFields {
	var f dockerConfigFields
	_ = json.Unmarshal(raw, &f)
	if f.Config == nil {
		f.Config = &container.Config{}
	}
	if f.ContainerConfig == nil {
		f.ContainerConfig = &container.Config{}
	}
	return f
}

// legacyImageSummary is an image in GET /images/json and /system/df at API
// 1.41: VirtualSize is Size once more (the field came before layers were
// shared; docker deprecated it and kept it until 1.44).
type legacyImageSummary struct {
	image.Summary
	VirtualSize int64
}

// legacyInfo is GET /info at API 1.41: what the host offers for the
// kernel memory limits of cgroup v1 and whether bridged traffic passes
// iptables, which the moby types no longer carry.
type legacyInfo struct {
	system.Info
	KernelMemory      bool
	KernelMemoryTCP   bool
	BridgeNfIptables  bool
	BridgeNfIp6tables bool
}

// newLegacyInfo fills the fields as dockerd 20.10 finds them: the kmem
// files of the v1 memory controller, the bridge-nf-call sysctls (false
// when br_netfilter is not loaded).
func newLegacyInfo(info system.Info) legacyInfo {
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	on := func(p string) bool {
		b, err := os.ReadFile(p)
		return err == nil && strings.TrimSpace(string(b)) == "1"
	}
	return legacyInfo{Info: info,
		KernelMemory:      exists("/sys/fs/cgroup/memory/memory.kmem.limit_in_bytes"),
		KernelMemoryTCP:   exists("/sys/fs/cgroup/memory/memory.kmem.tcp.limit_in_bytes"),
		BridgeNfIptables:  on("/proc/sys/net/bridge/bridge-nf-call-iptables"),
		BridgeNfIp6tables: on("/proc/sys/net/bridge/bridge-nf-call-ip6tables"),
	}
}

// legacyVersion is GET /version at API 1.41: GitCommit and BuildTime at
// the top level too. hako's version is its commit; the build time is not
// recorded (builds are reproducible), so it stays empty.
type legacyVersion struct {
	system.VersionResponse
	GitCommit string
	BuildTime string
}
