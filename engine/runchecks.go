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

// localOpts are those of docker's local driver, which hako keeps as
// json-file (reading works the same).
var localOpts = map[string]bool{"max-size": true, "max-file": true, "compress": true}

// LogDrivers are the logging drivers hako has (docker info's plugins).
var LogDrivers = []string{"json-file", "local", "none"}

// dockerLogDrivers are docker's other built-in drivers, which hako does not
// have: refused at create rather than quietly logged to json-file.
var dockerLogDrivers = map[string]bool{"awslogs": true, "etwlogs": true, "fluentd": true, "gcplogs": true,
	"gelf": true, "journald": true, "logentries": true, "splunk": true, "syslog": true}

// validateLogOpts checks --log-driver and --log-opt at create, as docker
// does (the values are read at start): json-file (the default) and local
// with their options, none with none; docker's other drivers are not here.
func validateLogOpts(hc *container.HostConfig) error {
	t := hc.LogConfig.Type
	switch {
	case t == "" || t == "json-file":
		for k := range hc.LogConfig.Config {
			if !jsonFileOpts[k] {
				return errdefs.Invalidf("unknown log opt '%s' for json-file log driver", k)
			}
		}
	case t == "local":
		for k := range hc.LogConfig.Config {
			if !localOpts[k] {
				return errdefs.Invalidf("unknown log opt '%s' for log driver local", k)
			}
		}
	case t == "none":
		if len(hc.LogConfig.Config) > 0 {
			return errdefs.Invalidf("invalid logging opts for driver none")
		}
	case dockerLogDrivers[t]:
		return errdefs.NotImplementedf("logging driver %s is not supported by hako (json-file, local and none are)", t)
	default:
		return errdefs.Invalidf("error looking up logging plugin %s: plugin %q not found", t, t)
	}
	return nil
}
