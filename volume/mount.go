package volume

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/errdefs"
)

// The local driver's options, as docker's: type and device name a file
// system for mount(8) (`--opt type=tmpfs --opt device=tmpfs`, `--opt
// type=none --opt o=bind --opt device=/srv/x`, `--opt type=nfs ...`), o its
// mount options. Each needs the others it names.
var (
	validOptions = map[string]bool{"type": true, "device": true, "o": true, "size": true}
	needs        = map[string][]string{"device": {"type"}, "type": {"device"}, "o": {"device", "type"}}
)

// ValidateOptions checks local-driver options with docker's messages.
func ValidateOptions(name string, opts map[string]string) error {
	for k := range opts {
		if !validOptions[k] {
			return errdefs.Invalidf("create %s: invalid option: %q", name, k)
		}
	}
	if _, ok := opts["size"]; ok {
		// docker's size is an XFS project quota on the data root.
		return errdefs.Invalidf("create %s: quota size requested but no quota support", name)
	}
	for _, k := range []string{"device", "type", "o"} {
		if _, ok := opts[k]; !ok {
			continue
		}
		for _, need := range needs[k] {
			if _, ok := opts[need]; !ok {
				return errdefs.Invalidf("create %s: missing required option: %q", name, need)
			}
		}
	}
	return nil
}

// Mount makes the volume ready for ref (a container about to start, a
// copy-up): a volume with options gets its file system mounted on _data by
// its first user. It returns the _data path to bind into the container.
func (s *Store) Mount(name, ref string) (string, error) {
	s.mu.Lock()
	e, ok := s.vols[name]
	s.mu.Unlock()
	if !ok {
		return "", notFound(name)
	}
	e.mountMu.Lock()
	defer e.mountMu.Unlock()
	s.mu.Lock()
	first := len(e.active) == 0
	s.mu.Unlock()
	if e.NeedsMount() && first {
		// After a crash of hakod the file system may still be there.
		if m, err := mounted(e.Mountpoint); err != nil || !m {
			if err := mountData(e.Volume); err != nil {
				return "", fmt.Errorf("error while mounting volume '%s': %w", e.Mountpoint, err)
			}
		}
	}
	s.mu.Lock()
	e.active[ref] = struct{}{}
	s.mu.Unlock()
	return e.Mountpoint, nil
}

// Adopt records that ref has the volume mounted without mounting it: a
// running container hakod finds again after a restart.
func (s *Store) Adopt(name, ref string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.vols[name]; ok {
		e.active[ref] = struct{}{}
	}
}

// Unmount ends ref's use of the volume; the last user's leaving unmounts a
// volume with options (docker's local driver does the same). was reports
// whether ref had it mounted.
func (s *Store) Unmount(name, ref string) (was bool, err error) {
	s.mu.Lock()
	e, ok := s.vols[name]
	s.mu.Unlock()
	if !ok {
		return false, nil
	}
	e.mountMu.Lock()
	defer e.mountMu.Unlock()
	s.mu.Lock()
	_, was = e.active[ref]
	delete(e.active, ref)
	last := len(e.active) == 0
	s.mu.Unlock()
	if !last || !e.NeedsMount() {
		return was, nil
	}
	if err := unmountData(e.Mountpoint); err != nil {
		return was, fmt.Errorf("unmount volume %s: %w", name, err)
	}
	return was, nil
}

// mountFlags are mount(8)'s flag words and what they set (or clear).
var mountFlags = map[string]struct {
	clear bool
	flag  uintptr
}{
	"defaults":      {false, 0},
	"ro":            {false, unix.MS_RDONLY},
	"rw":            {true, unix.MS_RDONLY},
	"suid":          {true, unix.MS_NOSUID},
	"nosuid":        {false, unix.MS_NOSUID},
	"dev":           {true, unix.MS_NODEV},
	"nodev":         {false, unix.MS_NODEV},
	"exec":          {true, unix.MS_NOEXEC},
	"noexec":        {false, unix.MS_NOEXEC},
	"sync":          {false, unix.MS_SYNCHRONOUS},
	"async":         {true, unix.MS_SYNCHRONOUS},
	"dirsync":       {false, unix.MS_DIRSYNC},
	"remount":       {false, unix.MS_REMOUNT},
	"mand":          {false, unix.MS_MANDLOCK},
	"nomand":        {true, unix.MS_MANDLOCK},
	"atime":         {true, unix.MS_NOATIME},
	"noatime":       {false, unix.MS_NOATIME},
	"diratime":      {true, unix.MS_NODIRATIME},
	"nodiratime":    {false, unix.MS_NODIRATIME},
	"bind":          {false, unix.MS_BIND},
	"rbind":         {false, unix.MS_BIND | unix.MS_REC},
	"relatime":      {false, unix.MS_RELATIME},
	"norelatime":    {true, unix.MS_RELATIME},
	"strictatime":   {false, unix.MS_STRICTATIME},
	"nostrictatime": {true, unix.MS_STRICTATIME},
}

var propagationFlags = map[string]uintptr{
	"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE | unix.MS_REC,
	"shared": unix.MS_SHARED, "rshared": unix.MS_SHARED | unix.MS_REC,
	"slave": unix.MS_SLAVE, "rslave": unix.MS_SLAVE | unix.MS_REC,
	"unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// parseMountOptions splits o= into mount flags, propagation flags and the
// file system's own data (size=10m, addr=...), as mount(8) does.
func parseMountOptions(o string) (flags, propagation uintptr, data string) {
	var rest []string
	for _, opt := range strings.Split(o, ",") {
		if opt == "" {
			continue
		}
		if f, ok := mountFlags[opt]; ok {
			if f.clear {
				flags &^= f.flag
			} else {
				flags |= f.flag
			}
			continue
		}
		if p, ok := propagationFlags[opt]; ok {
			propagation |= p
			continue
		}
		rest = append(rest, opt)
	}
	return flags, propagation, strings.Join(rest, ",")
}

// mountData mounts the volume's file system on its _data, with docker's
// error wording ("failed to mount local volume: mount DEV:PATH, flags:
// 0x1000: no such file or directory").
func mountData(v Volume) error {
	device, fstype := v.Options["device"], v.Options["type"]
	if device == "" {
		return errors.New("missing device in volume options")
	}
	flags, prop, data := parseMountOptions(v.Options["o"])
	fail := func(f uintptr, d string, err error) error {
		msg := fmt.Sprintf("mount %s:%s, flags: %#x", device, v.Mountpoint, f)
		if d != "" {
			msg += ", data: " + d
		}
		if pw := optionValue(v.Options["o"], "password"); pw != "" {
			msg = strings.ReplaceAll(msg, "password="+pw, "password=********")
		}
		return fmt.Errorf("failed to mount local volume: %s: %w", msg, err)
	}
	// The kernel ignores MS_RDONLY on a new bind: read-only binds take a
	// remount of their own.
	if err := unix.Mount(device, v.Mountpoint, fstype, flags, data); err != nil {
		return fail(flags, data, err)
	}
	if flags&unix.MS_BIND != 0 && flags&unix.MS_RDONLY != 0 {
		f := flags | unix.MS_REMOUNT
		if err := unix.Mount("", v.Mountpoint, "", f, ""); err != nil {
			_ = unix.Unmount(v.Mountpoint, unix.MNT_DETACH)
			return fail(f, "", err)
		}
	}
	if prop != 0 {
		if err := unix.Mount("", v.Mountpoint, "", prop, ""); err != nil {
			_ = unix.Unmount(v.Mountpoint, unix.MNT_DETACH)
			return fail(prop, "", err)
		}
	}
	return nil
}

// optionValue finds key=VALUE in a comma-separated option list.
func optionValue(o, key string) string {
	for _, opt := range strings.Split(o, ",") {
		if k, v, ok := strings.Cut(opt, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// unmountData detaches whatever is mounted on path (several mounts stack
// after a crash between a mount and its record), lazily as docker does, so
// a container still holding it keeps its own view.
func unmountData(path string) error {
	for i := 0; i < 8; i++ {
		m, err := mounted(path)
		if err != nil {
			return err
		}
		if !m {
			return nil
		}
		if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("unmount %s: %w", path, err)
		}
	}
	return fmt.Errorf("unmount %s: still mounted", path)
}

// mounted reports whether path is a mount point (per our mount table).
func mounted(path string) (bool, error) {
	mps, err := mountPoints()
	if err != nil {
		return false, err
	}
	clean := filepath.Clean(path)
	for _, mp := range mps {
		if mp == clean {
			return true, nil
		}
	}
	return false, nil
}

// mountsUnder lists the mount points at or below dir.
func mountsUnder(dir string) []string {
	mps, _ := mountPoints()
	clean := filepath.Clean(dir)
	var out []string
	for _, mp := range mps {
		if mp == clean || strings.HasPrefix(mp, clean+"/") {
			out = append(out, mp)
		}
	}
	return out
}

// mountPoints reads the mount points of our mount namespace (the calling
// thread's: see engine.isMountPoint on why not /proc/self).
func mountPoints() ([]string, error) {
	f, err := os.Open("/proc/thread-self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 {
			out = append(out, unescapeMountinfo(fields[4]))
		}
	}
	return out, sc.Err()
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
