package specgen

import (
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/hako-project/hako/errdefs"
	"github.com/moby/profiles/seccomp"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// RunOptions are the user's side of docker run that shape the spec.
type RunOptions struct {
	// ID is the container ID; the hostname defaults to its first 12 chars.
	ID       string
	Hostname string
	// Entrypoint: nil keeps the image's; empty or [""] clears it.
	Entrypoint []string
	Cmd        []string
	Env        []string
	WorkingDir string
	User       string
	Tty        bool
	Labels     map[string]string
	// ExposedPorts like "80/tcp" or "53/udp" ("80" means tcp).
	ExposedPorts []string
	Volumes      []string
	StopSignal   string

	// RootfsPath is spec.root.path ("rootfs", relative to the bundle, if
	// empty).
	RootfsPath     string
	ReadonlyRootfs bool
	Privileged     bool
	// CapAdd and CapDrop take "NET_ADMIN" or "CAP_NET_ADMIN", and "ALL".
	CapAdd, CapDrop []string
	// NoNewPrivileges is docker's --security-opt no-new-privileges.
	NoNewPrivileges bool
	// SeccompUnconfined is --security-opt seccomp=unconfined.
	SeccompUnconfined bool
	// CgroupnsPrivate gives the container its own cgroup namespace (docker's
	// default on cgroup v2; on v1 docker uses the host's).
	CgroupnsPrivate bool
	// ShmSize is the /dev/shm size in bytes (64 MiB if 0).
	ShmSize int64
	// Mounts are extra mounts (volumes, binds, /etc/hosts...). One whose
	// destination equals a default mount replaces it.
	Mounts      []specs.Mount
	Annotations map[string]string
}

// Result is the spec plus the merged container config the engine keeps
// (ports, volumes, stop signal and labels are not part of an OCI spec).
type Result struct {
	Spec       *specs.Spec
	Config     Config
	User       ExecUser
	StopSignal unix.Signal
}

// DefaultCapabilities is docker's default capability set.
func DefaultCapabilities() []string {
	return []string{
		"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
		"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
		"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
	}
}

// allCapabilities are the capabilities Linux knows, for --privileged and
// --cap-add ALL.
var allCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
	"CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
	"CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

// MaskedPaths are the /proc and /sys paths docker hides.
func MaskedPaths() []string {
	return []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
		"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	}
}

// ReadonlyPaths are the /proc paths docker makes read-only.
func ReadonlyPaths() []string {
	return []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
}

func i64(v int64) *int64 { return &v }

// defaultMounts are docker's, with /dev/shm as a tmpfs of shmSize bytes.
func defaultMounts(shmSize int64, privileged bool) []specs.Mount {
	sysOpt, cgOpt := "ro", "ro"
	if privileged {
		sysOpt, cgOpt = "rw", "rw"
	}
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", sysOpt}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", cgOpt}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", fmt.Sprintf("size=%dk", shmSize/1024)}},
	}
}

// defaultDeviceRules are docker's device cgroup rules: deny everything,
// then allow the standard character devices and deny /dev/fuse's
// neighbour 10:229 explicitly, as moby's default spec does.
func defaultDeviceRules() []specs.LinuxDeviceCgroup {
	allow := func(major, minor int64) specs.LinuxDeviceCgroup {
		return specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(major), Minor: i64(minor), Access: "rwm"}
	}
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		allow(1, 5), allow(1, 3), allow(1, 9), allow(1, 8), allow(5, 0), allow(5, 1),
		{Allow: false, Type: "c", Major: i64(10), Minor: i64(229), Access: "rwm"},
	}
}

func normCap(c string) string {
	c = strings.ToUpper(c)
	if c == "ALL" || strings.HasPrefix(c, "CAP_") {
		return c
	}
	return "CAP_" + c
}

// capabilities applies --cap-add/--cap-drop to the default set in docker's
// order: drop ALL first, then add, then drop.
func capabilities(add, drop []string, privileged bool) ([]string, error) {
	if privileged {
		return append([]string{}, allCapabilities...), nil
	}
	known := map[string]bool{"ALL": true}
	for _, c := range allCapabilities {
		known[c] = true
	}
	set := map[string]bool{}
	for _, c := range DefaultCapabilities() {
		set[c] = true
	}
	for _, list := range [][]string{add, drop} {
		for _, c := range list {
			if !known[normCap(c)] {
				return nil, fmt.Errorf("%w: unknown capability %q", errdefs.ErrInvalid, c)
			}
		}
	}
	for _, c := range drop {
		if normCap(c) == "ALL" {
			set = map[string]bool{}
		}
	}
	for _, c := range add {
		if n := normCap(c); n == "ALL" {
			for _, a := range allCapabilities {
				set[a] = true
			}
		} else {
			set[n] = true
		}
	}
	for _, c := range drop {
		if n := normCap(c); n != "ALL" {
			delete(set, n)
		}
	}
	var out []string
	for _, c := range allCapabilities {
		if set[c] {
			out = append(out, c)
		}
	}
	return out, nil
}

// Generate builds the OCI spec for a container of an image with config img
// whose root filesystem is at rootfs (read only for /etc/passwd and
// /etc/group; may be "" when User is numeric or empty).
func Generate(img ocispec.ImageConfig, rootfs string, opts RunOptions) (*Result, error) {
	cfg, err := Merge(img, opts)
	if err != nil {
		return nil, err
	}
	user, err := ResolveUser(rootfs, cfg.User)
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", cfg.User, err)
	}
	sig, _ := ParseSignal(cfg.StopSignal)
	caps, err := capabilities(opts.CapAdd, opts.CapDrop, opts.Privileged)
	if err != nil {
		return nil, err
	}
	hostname := opts.Hostname
	if hostname == "" && len(opts.ID) >= 12 {
		hostname = opts.ID[:12]
	} else if hostname == "" {
		hostname = opts.ID
	}
	env := []string{"PATH=" + DefaultPathEnv, "HOSTNAME=" + hostname}
	if opts.Tty {
		env = append(env, "TERM=xterm")
	}
	env = replaceOrAppend(env, cfg.Env)
	if !hasEnv(env, "HOME") {
		env = append(env, "HOME="+user.Home)
	}
	shm := opts.ShmSize
	if shm <= 0 {
		shm = 64 << 20
	}
	rootPath := opts.RootfsPath
	if rootPath == "" {
		rootPath = "rootfs"
	}
	s := &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Terminal: opts.Tty,
			User:     specs.User{UID: user.UID, GID: user.GID, AdditionalGids: user.AdditionalGids},
			Args:     cfg.Args(),
			Env:      env,
			Cwd:      path.Clean(cfg.WorkingDir),
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
			NoNewPrivileges: opts.NoNewPrivileges,
		},
		Root:        &specs.Root{Path: rootPath, Readonly: opts.ReadonlyRootfs},
		Hostname:    hostname,
		Annotations: opts.Annotations,
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace},
			},
			Resources: &specs.LinuxResources{Devices: defaultDeviceRules()},
		},
	}
	if opts.CgroupnsPrivate {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}
	if opts.Privileged {
		s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	} else {
		s.Linux.MaskedPaths = MaskedPaths()
		s.Linux.ReadonlyPaths = ReadonlyPaths()
	}
	s.Mounts = mergeMounts(defaultMounts(shm, opts.Privileged), opts.Mounts)
	if !opts.Privileged && !opts.SeccompUnconfined {
		sc, err := defaultSeccomp(s)
		if err != nil {
			return nil, fmt.Errorf("default seccomp profile: %w", err)
		}
		s.Linux.Seccomp = sc
	}
	return &Result{Spec: s, Config: cfg, User: user, StopSignal: sig}, nil
}

// seccompCache holds the default seccomp profiles made so far, by bounding
// capability set: docker's default profile, made anew for every start,
// was a tenth of what a `run --rm` allocated in hakod. Its profiles
// depend only on those capabilities, the architecture and the kernel, so
// the containers with the same set share one (read-only: specs replace a
// profile, never change it). A handful of sets in practice; bounded all
// the same.
var seccompCache struct {
	sync.Mutex
	byCaps map[string]*specs.LinuxSeccomp
}

const seccompCacheMax = 64

// defaultSeccomp is docker's default seccomp profile for s's capabilities.
func defaultSeccomp(s *specs.Spec) (*specs.LinuxSeccomp, error) {
	var key string
	if s.Process != nil && s.Process.Capabilities != nil {
		key = strings.Join(s.Process.Capabilities.Bounding, ",")
	}
	seccompCache.Lock()
	sc := seccompCache.byCaps[key]
	seccompCache.Unlock()
	if sc != nil {
		return sc, nil
	}
	sc, err := seccomp.GetDefaultProfile(s)
	if err != nil {
		return nil, err
	}
	seccompCache.Lock()
	if seccompCache.byCaps == nil {
		seccompCache.byCaps = map[string]*specs.LinuxSeccomp{}
	}
	if len(seccompCache.byCaps) < seccompCacheMax {
		seccompCache.byCaps[key] = sc
	}
	seccompCache.Unlock()
	return sc, nil
}

// mergeMounts drops defaults the user replaces (same destination) and
// appends user mounts sorted so parents come before children, as docker
// does.
func mergeMounts(defaults, user []specs.Mount) []specs.Mount {
	taken := map[string]bool{}
	for _, m := range user {
		taken[path.Clean(m.Destination)] = true
	}
	var out []specs.Mount
	for _, m := range defaults {
		if !taken[m.Destination] {
			out = append(out, m)
		}
	}
	u := append([]specs.Mount{}, user...)
	sort.SliceStable(u, func(i, j int) bool {
		return strings.Count(path.Clean(u[i].Destination), "/") < strings.Count(path.Clean(u[j].Destination), "/")
	})
	return append(out, u...)
}
