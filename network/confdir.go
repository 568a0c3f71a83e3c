package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/containernetworking/cni/libcni"

	"github.com/hako-project/hako/errdefs"
)

// A CNI configuration directory is kubelet's and containerd's way to give
// pods their network (--cni-conf-dir, /etc/cni/net.d): the configuration
// is not one of hakod's networks but whatever the cluster's network add-on
// wrote. Its first configuration is attached like any endpoint (see
// EndpointRequest.ConfList): the namespace is ours and pinned, the
// attachment recorded with the very bytes ADD ran with, DEL replays them.

// confExtensions are the files of a configuration directory, as libcni's
// ConfFiles is asked for them by containerd and kubelet.
var confExtensions = []string{".conflist", ".conf", ".json"}

// ConfList is a CNI network configuration list read from a directory.
type ConfList struct {
	Path  string // the file it was read from
	Name  string // the network's name
	Bytes []byte // the configuration list; a single plugin's .conf wrapped into one
}

// FirstConfList reads the first network configuration in dir, as kubelet
// and containerd pick it: the files *.conflist, *.conf and *.json sorted by
// name; a .conf or .json holds a single plugin and is wrapped into a list
// (libcni's ConfListFromConf). A directory without one (or missing) is
// Unavailable, "no network config found in DIR", kubelet's words; a first
// file that cannot be read or parsed is an error naming it (containerd's
// choice: it does not fall back to the next file, which would hide the
// mistake). Only the plugins inline in the file count.
func FirstConfList(dir string) (ConfList, error) {
	files, err := libcni.ConfFiles(dir, confExtensions)
	if err != nil {
		return ConfList{}, fmt.Errorf("read CNI configuration directory %s: %w", dir, err)
	}
	if len(files) == 0 {
		return ConfList{}, errdefs.Unavailablef("no network config found in %s", dir)
	}
	sort.Strings(files)
	path := files[0]
	b, err := os.ReadFile(path)
	if err != nil {
		return ConfList{}, fmt.Errorf("CNI network configuration %s: %w", path, err)
	}
	list, err := parseConfFile(path, b)
	if err != nil {
		return ConfList{}, fmt.Errorf("CNI network configuration %s: %w", path, err)
	}
	return ConfList{Path: path, Name: list.Name, Bytes: list.Bytes}, nil
}

// parseConfFile parses a configuration file's content by its extension.
func parseConfFile(path string, b []byte) (*libcni.NetworkConfigList, error) {
	if filepath.Ext(path) != ".conflist" {
		p, err := libcni.NetworkPluginConfFromBytes(b)
		if err != nil {
			return nil, err
		}
		var raw map[string]any
		if err := json.Unmarshal(b, &raw); err != nil {
			return nil, err
		}
		if b, err = json.Marshal(map[string]any{"name": p.Network.Name, "cniVersion": p.Network.CNIVersion, "plugins": []any{raw}}); err != nil {
			return nil, err
		}
	}
	return parseConfList(b)
}

// parseConfList parses a configuration list that is to run as it is: with
// its plugins inline (libcni would add plugins from files of a directory
// beside a conflist file, which bytes alone do not have).
func parseConfList(b []byte) (*libcni.NetworkConfigList, error) {
	list, err := libcni.ConfListFromBytes(b)
	if err != nil {
		return nil, err
	}
	if list.Name == "" {
		return nil, errors.New("the network has no name")
	}
	if len(list.Plugins) == 0 {
		return nil, errors.New("no plugins in the list")
	}
	return list, nil
}

// mapsPorts reports whether a plugin of list has the portMappings
// capability (portmap, or one that does the same), to which hostPorts are
// handed.
func mapsPorts(list *libcni.NetworkConfigList) bool {
	for _, p := range list.Plugins {
		if p.Network.Capabilities["portMappings"] {
			return true
		}
	}
	return false
}
