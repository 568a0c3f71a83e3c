package runopts

import (
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/mount"
)

type mountT = mount.Mount

// validateMountFlag checks a --mount value when the flag is parsed.
func validateMountFlag(s string) (string, error) {
	if _, err := ParseMount(s); err != nil {
		return "", err
	}
	return s, nil
}

// ParseMount parses --mount's comma-separated key=value list:
// type=bind|volume|tmpfs, source/src, target/destination/dst, readonly/ro,
// bind-propagation, bind-nonrecursive, volume-nocopy, volume-label,
// volume-driver, volume-opt, volume-subpath, tmpfs-size, tmpfs-mode,
// consistency.
func ParseMount(value string) (mount.Mount, error) {
	var m mount.Mount
	fields, err := csv.NewReader(strings.NewReader(value)).Read()
	if err != nil {
		return m, err
	}
	m.Type = mount.TypeVolume
	bind := func() *mount.BindOptions {
		if m.BindOptions == nil {
			m.BindOptions = &mount.BindOptions{}
		}
		return m.BindOptions
	}
	vol := func() *mount.VolumeOptions {
		if m.VolumeOptions == nil {
			m.VolumeOptions = &mount.VolumeOptions{}
		}
		return m.VolumeOptions
	}
	tmp := func() *mount.TmpfsOptions {
		if m.TmpfsOptions == nil {
			m.TmpfsOptions = &mount.TmpfsOptions{}
		}
		return m.TmpfsOptions
	}
	boolVal := func(key, v string, def bool) (bool, error) {
		if v == "" {
			return def, nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, fmt.Errorf("invalid value for %s: %s", key, v)
		}
		return b, nil
	}
	for _, f := range fields {
		key, val, hasVal := strings.Cut(f, "=")
		key = strings.ToLower(key)
		if !hasVal {
			switch key {
			case "readonly", "ro", "volume-nocopy", "bind-nonrecursive":
			default:
				return m, fmt.Errorf("invalid field '%s' must be a key=value pair", f)
			}
		}
		switch key {
		case "type":
			m.Type = mount.Type(strings.ToLower(val))
		case "source", "src":
			m.Source = val
			if strings.HasPrefix(val, "."+string(filepath.Separator)) || val == "." {
				if abs, err := filepath.Abs(val); err == nil {
					m.Source = abs
				}
			}
		case "target", "dst", "destination":
			m.Target = val
		case "readonly", "ro":
			if m.ReadOnly, err = boolVal(key, val, true); err != nil {
				return m, err
			}
		case "consistency":
			m.Consistency = mount.Consistency(strings.ToLower(val))
		case "bind-propagation":
			bind().Propagation = mount.Propagation(strings.ToLower(val))
		case "bind-nonrecursive":
			if bind().NonRecursive, err = boolVal(key, val, true); err != nil {
				return m, err
			}
		case "volume-nocopy":
			if vol().NoCopy, err = boolVal(key, val, true); err != nil {
				return m, err
			}
		case "volume-label":
			k, v, _ := strings.Cut(val, "=")
			if vol().Labels == nil {
				vol().Labels = map[string]string{}
			}
			vol().Labels[k] = v
		case "volume-driver":
			if vol().DriverConfig == nil {
				vol().DriverConfig = &mount.Driver{}
			}
			vol().DriverConfig.Name = val
		case "volume-opt":
			if vol().DriverConfig == nil {
				vol().DriverConfig = &mount.Driver{}
			}
			if vol().DriverConfig.Options == nil {
				vol().DriverConfig.Options = map[string]string{}
			}
			k, v, _ := strings.Cut(val, "=")
			vol().DriverConfig.Options[k] = v
		case "volume-subpath":
			vol().Subpath = val
		case "tmpfs-size":
			n, err := units.RAMInBytes(val)
			if err != nil {
				return m, fmt.Errorf("invalid value for %s: %s", key, val)
			}
			tmp().SizeBytes = n
		case "tmpfs-mode":
			n, err := strconv.ParseUint(val, 8, 32)
			if err != nil {
				return m, fmt.Errorf("invalid value for %s: %s", key, val)
			}
			tmp().Mode = os.FileMode(n)
		default:
			return m, fmt.Errorf("unexpected key '%s' in '%s'", key, f)
		}
	}
	if m.Target == "" {
		return m, errors.New("target is required")
	}
	if m.VolumeOptions != nil && m.Type != mount.TypeVolume {
		return m, fmt.Errorf("cannot mix 'volume-*' options with mount type '%s'", m.Type)
	}
	if m.BindOptions != nil && m.Type != mount.TypeBind {
		return m, fmt.Errorf("cannot mix 'bind-*' options with mount type '%s'", m.Type)
	}
	if m.TmpfsOptions != nil && m.Type != mount.TypeTmpfs {
		return m, fmt.Errorf("cannot mix 'tmpfs-*' options with mount type '%s'", m.Type)
	}
	return m, nil
}
