package registry

// Per-registry hosts, as containerd's registry config_path
// (certs.d/<registry>/hosts.toml) gives them: for any registry, not only
// Docker Hub, a list of hosts to pull from in order, then (unless the
// file's `server` says otherwise) the registry itself. Kubernetes names
// images with fixed registries (registry.k8s.io/pause:3.10), so a node
// without the internet, or one with a pull-through cache, needs this; the
// CRI server relies on it. Like a --registry-mirror, a host is a cache,
// never the authority: images keep the name they were asked by.
//
//	# DIR/registry.k8s.io/hosts.toml
//	server = "https://registry.k8s.io"
//	[host."http://127.0.0.1:5000"]
//	  capabilities = ["pull", "resolve"]
//
// DIR/_default/hosts.toml applies to registries without a directory.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/hako-project/hako/errdefs"
)

// RegistryHosts are the hosts configured for one registry.
type RegistryHosts struct {
	// Mirrors are tried in order before the registry itself
	// (scheme://host[:port]/, as ValidateMirror returns them).
	Mirrors []string
	// SkipServer: the file's server is not the registry's own host (or
	// lists no pull capability), so the registry itself is not tried.
	SkipServer bool
	// Server replaces the registry's own endpoint ("" keeps it).
	Server string
}

type hostsFile struct {
	Server       string                `toml:"server"`
	Capabilities []string              `toml:"capabilities"`
	Host         map[string]hostsEntry `toml:"host"`
}

type hostsEntry struct {
	Capabilities []string `toml:"capabilities"`
	SkipVerify   bool     `toml:"skip_verify"`
	OverridePath bool     `toml:"override_path"`
}

// LoadHostsDir reads every DIR/<registry>/hosts.toml. A missing DIR
// configures nothing; a malformed file is an error that names it.
func LoadHostsDir(dir string) (map[string]RegistryHosts, error) {
	out := map[string]RegistryHosts{}
	if dir == "" {
		return out, nil
	}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("registry hosts directory %s: %w", dir, err)
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		p := filepath.Join(dir, e.Name(), "hosts.toml")
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			continue
		}
		h, err := loadHostsFile(p, e.Name())
		if err != nil {
			return nil, err
		}
		out[e.Name()] = h
	}
	return out, nil
}

func loadHostsFile(path, registry string) (RegistryHosts, error) {
	var f hostsFile
	md, err := toml.DecodeFile(path, &f)
	if err != nil {
		return RegistryHosts{}, fmt.Errorf("%w: %s: %v", errdefs.ErrInvalid, path, err)
	}
	var h RegistryHosts
	// The order of [host."..."] tables in the file is the order to try.
	var order []string
	for _, k := range md.Keys() {
		if len(k) == 2 && k[0] == "host" && !slices.Contains(order, k[1]) {
			order = append(order, k[1])
		}
	}
	for _, u := range order {
		e := f.Host[u]
		if len(e.Capabilities) > 0 && !slices.Contains(e.Capabilities, "pull") {
			continue
		}
		if !strings.Contains(u, "://") {
			u = "https://" + u
		}
		n, err := ValidateMirror(u)
		if err != nil {
			return RegistryHosts{}, fmt.Errorf("%s: %w", path, err)
		}
		h.Mirrors = append(h.Mirrors, n)
	}
	if f.Server != "" {
		n, err := ValidateMirror(f.Server)
		if err != nil {
			return RegistryHosts{}, fmt.Errorf("%s: server: %w", path, err)
		}
		own := strings.TrimSuffix(strings.SplitN(n, "://", 2)[1], "/")
		if own != registry && !(registry == "docker.io" && own == "registry-1.docker.io") {
			h.Server = n
		}
	}
	if len(f.Capabilities) > 0 && !slices.Contains(f.Capabilities, "pull") {
		h.SkipServer = true
	}
	return h, nil
}

// hostsFor returns the configured hosts of a registry (its own directory,
// else _default).
func (c *Client) hostsFor(registry string) (RegistryHosts, bool) {
	if h, ok := c.opts.Hosts[registry]; ok {
		return h, true
	}
	h, ok := c.opts.Hosts["_default"]
	return h, ok
}

// hostEndpoints lists the endpoints of r's registry from its hosts
// configuration: its mirrors in order, then the server (unless skipped).
func (c *Client) hostEndpoints(r hostsRef, h RegistryHosts) ([]endpoint, error) {
	ms, err := parseMirrors(h.Mirrors)
	if err != nil {
		return nil, err
	}
	if h.Server != "" {
		srv, err := parseMirrors([]string{h.Server})
		if err != nil {
			return nil, err
		}
		ms = append(ms, srv...)
	}
	var eps []endpoint
	for _, m := range ms {
		repo, err := c.mirrorRepo(m, r.path)
		if err != nil {
			return nil, err
		}
		eps = append(eps, endpoint{repo: repo, mirror: m.url})
	}
	if !h.SkipServer && h.Server == "" && r.own != nil {
		eps = append(eps, *r.own)
	}
	if len(eps) == 0 {
		return nil, fmt.Errorf("%w: the hosts configuration of %s allows no host to pull from", errdefs.ErrInvalid, r.registry)
	}
	return eps, nil
}

// hostsRef is what hostEndpoints needs of a reference.
type hostsRef struct {
	registry, path string
	own            *endpoint // the registry itself
}

// mirrorRepo names repository path on a mirror host.
func (c *Client) mirrorRepo(m mirror, path string) (name.Repository, error) {
	opts := c.nameOpts(m.host)
	if m.insecure {
		opts = append(opts, name.Insecure)
	}
	repo, err := name.NewRepository(m.host+"/"+path, opts...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("%w: registry host %s: %v", errdefs.ErrInvalid, m.url, err)
	}
	return repo, nil
}
