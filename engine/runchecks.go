package engine

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hako-project/hako/engine/specgen"
	"github.com/hako-project/hako/errdefs"
)

// applyDevicesAndResources is applyResources with --device checked first,
// as docker checks it at start: a device that is not there, or a path that
// is no device, fails the start with docker's message instead of leaving
// the device out; a directory gives every device below it (--device
// /dev/snd).
func applyDevicesAndResources(s *specs.Spec, hc *container.HostConfig) error {
	devs, err := expandDevices(hc.Devices)
	if err != nil {
		return err
	}
	h := *hc
	h.Devices = devs
	applyResources(s, &h)
	return nil
}

func expandDevices(in []container.DeviceMapping) ([]container.DeviceMapping, error) {
	var out []container.DeviceMapping
	for _, d := range in {
		fi, err := os.Stat(d.PathOnHost)
		if err != nil {
			var errno error = err
			var pe *fs.PathError
			if errors.As(err, &pe) {
				errno = pe.Err
			}
			return nil, errdefs.Invalidf("error gathering device information while adding custom device %q: %s", d.PathOnHost, errno)
		}
		switch {
		case fi.Mode()&os.ModeDevice != 0:
			out = append(out, d)
		case fi.IsDir():
			dest := d.PathInContainer
			if dest == "" {
				dest = d.PathOnHost
			}
			err := filepath.WalkDir(d.PathOnHost, func(p string, e fs.DirEntry, err error) error {
				if err != nil || e.Type()&os.ModeDevice == 0 {
					return nil
				}
				rel, _ := filepath.Rel(d.PathOnHost, p)
				out = append(out, container.DeviceMapping{PathOnHost: p, PathInContainer: filepath.Join(dest, rel), CgroupPermissions: d.CgroupPermissions})
				return nil
			})
			if err != nil {
				return nil, err
			}
		default:
			return nil, errdefs.Invalidf("error gathering device information while adding custom device %q: not a device node", d.PathOnHost)
		}
	}
	return out, nil
}

// addGroups adds --group-add groups to the process, names resolved in the
// container's /etc/group.
func addGroups(s *specs.Spec, groups []string, rootfs string) error {
	for _, g := range groups {
		gid, err := specgen.ResolveGroup(rootfs, g)
		if err != nil {
			return err
		}
		s.Process.User.AdditionalGids = append(s.Process.User.AdditionalGids, gid)
	}
	return nil
}

// jsonFileOpts are the --log-opt names docker's json-file driver takes.
var jsonFileOpts = map[string]bool{"max-size": true, "max-file": true, "compress": true, "labels": true,
	"labels-regex": true, "env": true, "env-regex": true, "tag": true}

// validateLogOpts refuses a --log-opt the json-file driver does not know,
// at create as docker does (the values are read at start).
func validateLogOpts(hc *container.HostConfig) error {
	if t := hc.LogConfig.Type; t != "" && t != "json-file" {
		return nil
	}
	for k := range hc.LogConfig.Config {
		if !jsonFileOpts[k] {
			return errdefs.Invalidf("unknown log opt '%s' for json-file log driver", k)
		}
	}
	return nil
}
