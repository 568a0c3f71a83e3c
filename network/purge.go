package network

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Purge removes from the host everything the networks of a stopped hakod
// with cfg's roots made: every container's endpoints (CNI DEL) and
// namespace, every bridge (the default one included) with its rules, the
// leases and CNI's cache. The network records stay, so a hakod started
// again on the same roots makes its bridges again. Tests call it when they
// throw a daemon away; it is also how to leave a host as it was before
// hakod.
func Purge(ctx context.Context, cfg Config) error {
	if len(cfg.PluginDirs) == 0 {
		cfg.PluginDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}
	}
	if cfg.Log == nil {
		cfg.Log = discardLogger()
	}
	m := newManager(cfg)
	var errs []error
	nets, err := m.store.loadNetworks()
	if err != nil {
		errs = append(errs, err)
	}
	for _, n := range nets {
		m.networks[n.ID] = n
	}
	atts, err := m.store.loadAttachments()
	if err != nil {
		errs = append(errs, err)
	}
	for _, a := range atts {
		m.attachments[a.ContainerID] = a
	}
	for _, a := range atts {
		if err := m.teardown(ctx, a); err != nil {
			errs = append(errs, fmt.Errorf("container %s: %w", a.ContainerID, err))
		}
	}
	if ents, err := os.ReadDir(m.netnsDir); err == nil {
		for _, e := range ents {
			if err := removeNetNS(filepath.Join(m.netnsDir, e.Name())); err != nil {
				errs = append(errs, err)
			}
		}
		_ = unix.Unmount(m.netnsDir, unix.MNT_DETACH) // made by an older hakod
	}
	for _, n := range nets {
		if n.Driver != "bridge" {
			continue
		}
		if err := removeRules(n); err != nil {
			errs = append(errs, err)
		}
		if err := deleteBridge(n.Bridge); err != nil {
			errs = append(errs, err)
		}
	}
	for _, d := range []string{m.ipamDir, m.cacheDir(), m.store.attachmentsDir} {
		if err := os.RemoveAll(d); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
