package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Network is one network as hakod keeps it: docker's fields plus what the
// bridge needs. Networks are persisted as one JSON file each under
// DATA-ROOT/network/networks, written atomically (temporary file and
// rename), so a crash leaves the old or the new version.
type Network struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Driver  string    `json:"driver"` // bridge, host or null
	Created time.Time `json:"created"`
	// Subnet, Gateway and IPRange are the IPv4 configuration (bridge
	// only); UserSubnet says the user chose the subnet (docker then allows
	// --ip on it).
	Subnet     netip.Prefix `json:"subnet,omitzero"`
	Gateway    netip.Addr   `json:"gateway,omitzero"`
	IPRange    netip.Prefix `json:"ip_range,omitzero"`
	UserSubnet bool         `json:"user_subnet,omitempty"`
	// UserGateway: the user chose the gateway (inspect shows a gateway
	// only when docker would: chosen by the user or with the subnet).
	UserGateway bool `json:"user_gateway,omitempty"`
	// Bridge is the Linux bridge's name.
	Bridge      string            `json:"bridge,omitempty"`
	Internal    bool              `json:"internal,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Options     map[string]string `json:"options,omitempty"`
	IPAMDriver  string            `json:"ipam_driver,omitempty"`
	IPAMOptions map[string]string `json:"ipam_options,omitempty"`
	// Default marks the default bridge network ("bridge").
	Default bool `json:"default,omitempty"`
}

// Predefined reports whether n is one of the networks every daemon has
// (bridge, host, none), which cannot be removed.
func (n *Network) Predefined() bool {
	return n.Default || n.Driver == "host" || n.Driver == "null"
}

// Endpoint is a container's interface on one network.
type Endpoint struct {
	// NetworkID is empty for an endpoint made with a CNI configuration
	// list of the caller's (EndpointRequest.ConfList); NetworkName is then
	// the list's name.
	NetworkID   string       `json:"network_id"`
	NetworkName string       `json:"network_name"`
	EndpointID  string       `json:"endpoint_id"`
	IfName      string       `json:"ifname"`
	Address     netip.Prefix `json:"address,omitzero"` // IP and prefix length
	Gateway     netip.Addr   `json:"gateway,omitzero"`
	MAC         string       `json:"mac,omitempty"`
	// Aliases are the names the container has on this network besides
	// its own (docker's --network-alias).
	Aliases []string `json:"aliases,omitempty"`
	// Conf is the CNI configuration list ADD ran with; DEL runs the very
	// same, whatever became of the network since.
	Conf json.RawMessage `json:"conf"`
	// PortMappings are the ones handed to the portmap plugin (the first
	// endpoint only).
	PortMappings []PortMapping `json:"port_mappings,omitempty"`
}

// Attachment is a running container's network state: its pinned
// namespace and its endpoints. Attachments live under
// EXEC-ROOT/network/attachments, one JSON file per container: they are
// runtime state, gone with a reboot as the namespaces are.
type Attachment struct {
	ContainerID string `json:"container_id"`
	// CNIContainerID, when set, is the container ID the CNI plugins know
	// the attachment by: that of the spare endpoint the container took
	// (spare.go). DEL must name the ID ADD named.
	CNIContainerID string `json:"cni_container_id,omitempty"`
	// Name and Hostname are the container's, for the hosts files of its
	// peers and its own.
	Name     string `json:"name"`
	Hostname string `json:"hostname"`
	NetNS    string `json:"netns"`
	// CallersNetNS: NetNS was given by the caller (AttachRequest.NetNS),
	// who pins and removes it; the manager only runs CNI in it.
	CallersNetNS bool `json:"callers_netns,omitempty"`
	// HostsPath is the container's /etc/hosts on the host, which is kept
	// current; ExtraHosts are its --add-host entries ("name:ip").
	HostsPath  string     `json:"hosts_path,omitempty"`
	ExtraHosts []string   `json:"extra_hosts,omitempty"`
	Endpoints  []Endpoint `json:"endpoints"`
	// Ports are the container's published ports with their host ports
	// chosen.
	Ports []PortMapping `json:"ports,omitempty"`
	// CNIArgs are the CNI_ARGS of every ADD and DEL.
	CNIArgs [][2]string `json:"cni_args,omitempty"`
	// Plain: made for a request with nothing of its own, the kind a spare
	// serves (spare.go: spareKindOf), and not connected or disconnected
	// since; such a namespace can become the next spare (recycle).
	Plain bool `json:"plain,omitempty"`

	// detaching is closed when a Detach's background work ends.
	detaching chan struct{}
}

// endpoint returns the attachment's endpoint on network id.
func (a *Attachment) endpoint(id string) *Endpoint {
	for i := range a.Endpoints {
		if a.Endpoints[i].NetworkID == id {
			return &a.Endpoints[i]
		}
	}
	return nil
}

// store reads and writes networks and attachments.
type store struct {
	networksDir    string
	attachmentsDir string
}

func (s store) networkPath(id string) string { return filepath.Join(s.networksDir, id+".json") }
func (s store) attachmentPath(id string) string {
	return filepath.Join(s.attachmentsDir, id+".json")
}

func (s store) saveNetwork(n *Network) error {
	return writeJSON(s.networkPath(n.ID), n, true)
}

func (s store) deleteNetwork(id string) error {
	if err := os.Remove(s.networkPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove network record: %w", err)
	}
	return nil
}

func (s store) loadNetworks() ([]*Network, error) {
	var out []*Network
	err := readDir(s.networksDir, func(b []byte) error {
		n := &Network{}
		if err := json.Unmarshal(b, n); err != nil {
			return err
		}
		out = append(out, n)
		return nil
	})
	return out, err
}

func (s store) saveAttachment(a *Attachment) error {
	// No fsync: attachments describe namespaces and leases that a power
	// loss takes away too; a crash of hakod alone loses nothing written.
	return writeJSON(s.attachmentPath(a.ContainerID), a, false)
}

func (s store) deleteAttachment(id string) error {
	if err := os.Remove(s.attachmentPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove attachment record: %w", err)
	}
	return nil
}

func (s store) loadAttachments() ([]*Attachment, error) {
	var out []*Attachment
	err := readDir(s.attachmentsDir, func(b []byte) error {
		a := &Attachment{}
		if err := json.Unmarshal(b, a); err != nil {
			return err
		}
		out = append(out, a)
		return nil
	})
	return out, err
}

// readDir calls f with the content of every *.json file in dir.
func readDir(dir string, f func([]byte) error) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		if err := f(b); err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(dir, e.Name()), err)
		}
	}
	return nil
}

// writeJSON writes v to path atomically: a temporary file (fsynced when
// sync), renamed.
func writeJSON(path string, v any, sync bool) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if sync {
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			return err
		}
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}
