package cri

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/profiles/seccomp"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/hako-project/hako/engine"
	"github.com/hako-project/hako/engine/specgen"
	"github.com/hako-project/hako/errdefs"
)

// specInput is what a container's spec is built from.
type specInput struct {
	rec     engine.Record // merged command, environment, working dir, user
	cfg     *runtimeapi.ContainerConfig
	pod     *runtimeapi.PodSandboxConfig
	sandbox engine.SandboxRecord
	files   map[string]string // the pod's /etc files
	volumes map[int]string    // image volumes' host paths by mount index
}

// buildSpec turns a CRI container config into the OCI spec the engine
// runs: docker's defaults (specgen), then the CRI's security context,
// mounts, devices, resources and namespaces, as containerd's CRI plugin
// decides them.
func buildSpec(in specInput) (*engine.ContainerSpec, error) {
	lc := in.cfg.GetLinux()
	sc := lc.GetSecurityContext()
	podSC := in.pod.GetLinux().GetSecurityContext()
	privileged := sc.GetPrivileged()
	if privileged && !podSC.GetPrivileged() {
		return nil, errdefs.Invalidf("no privileged container allowed in a sandbox that is not privileged")
	}
	user, err := userSpec(sc, in.rec.Config.User)
	if err != nil {
		return nil, err
	}
	mounts, err := ociMounts(in)
	if err != nil {
		return nil, err
	}
	var caps []string
	opts := specgen.RunOptions{
		ID: in.rec.ID, Hostname: in.pod.GetHostname(), Entrypoint: []string{in.rec.Path}, Cmd: in.rec.Args,
		Env: in.rec.Config.Env, WorkingDir: in.rec.Config.WorkingDir, Tty: in.cfg.GetTty(),
		ReadonlyRootfs: sc.GetReadonlyRootfs(), Privileged: privileged, NoNewPrivileges: sc.GetNoNewPrivs(),
		SeccompUnconfined: true, Mounts: mounts, CapAdd: sc.GetCapabilities().GetAddCapabilities(),
		CapDrop: sc.GetCapabilities().GetDropCapabilities(),
	}
	res, err := specgen.Generate(ocispec.ImageConfig{}, "", opts)
	if err != nil {
		return nil, errdefs.Invalidf("%s", err.Error())
	}
	s := res.Spec
	s.Hostname = "" // the UTS namespace is the pod's or the host's
	limitCapabilities(s.Process.Capabilities)
	if sc.GetCapabilities() != nil && !privileged {
		caps = s.Process.Capabilities.Bounding
		for _, a := range sc.GetCapabilities().GetAddAmbientCapabilities() {
			c := "CAP_" + strings.TrimPrefix(strings.ToUpper(a), "CAP_")
			s.Process.Capabilities.Ambient = append(s.Process.Capabilities.Ambient, c)
			s.Process.Capabilities.Inheritable = append(s.Process.Capabilities.Inheritable, c)
			if !contains(caps, c) {
				s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, c)
				s.Process.Capabilities.Permitted = append(s.Process.Capabilities.Permitted, c)
				s.Process.Capabilities.Effective = append(s.Process.Capabilities.Effective, c)
			}
		}
	}
	if !privileged {
		if sc.GetMaskedPaths() != nil {
			s.Linux.MaskedPaths = sc.GetMaskedPaths()
		}
		if sc.GetReadonlyPaths() != nil {
			s.Linux.ReadonlyPaths = sc.GetReadonlyPaths()
		}
		if err := applySeccomp(s, sc); err != nil {
			return nil, err
		}
		if err := checkAppArmor(sc); err != nil {
			return nil, err
		}
	} else {
		addHostDevices(s)
	}
	if err := applyDevices(s, in.cfg.GetDevices()); err != nil {
		return nil, err
	}
	applyResources(s, lc.GetResources())
	if len(in.pod.GetLinux().GetSysctls()) > 0 {
		s.Linux.Sysctl = map[string]string{}
		for k, v := range in.pod.GetLinux().GetSysctls() {
			if (strings.HasPrefix(k, "net.") && in.sandbox.HostNetwork) || (isIPCSysctl(k) && in.sandbox.HostIPC) {
				return nil, errdefs.Invalidf("sysctl %s cannot be set in a pod that uses the host's namespace", k)
			}
			s.Linux.Sysctl[k] = v
		}
	}
	parent := in.pod.GetLinux().GetCgroupParent()
	if parent == "" {
		parent = "/hako"
	}
	s.Linux.CgroupsPath = filepath.Join("/", parent, in.rec.ID)
	s.Linux.RootfsPropagation = rootfsPropagation(in.cfg.GetMounts())
	cs := &engine.ContainerSpec{Spec: s, User: user,
		StrictGroups: podSC.GetSupplementalGroupsPolicy() == runtimeapi.SupplementalGroupsPolicy_Strict ||
			sc.GetSupplementalGroupsPolicy() == runtimeapi.SupplementalGroupsPolicy_Strict,
		SetHome: !hasEnv(in.rec.Config.Env, "HOME")}
	for _, g := range append(append([]int64{}, podSC.GetSupplementalGroups()...), sc.GetSupplementalGroups()...) {
		s.Process.User.AdditionalGids = append(s.Process.User.AdditionalGids, uint32(g))
	}
	if err := applyNamespaces(cs, sc.GetNamespaceOptions(), in); err != nil {
		return nil, err
	}
	return cs, nil
}

// userSpec is the user to resolve at start, in docker's forms: the CRI's
// run_as_user / run_as_username (with run_as_group), else the image's.
func userSpec(sc *runtimeapi.LinuxContainerSecurityContext, image string) (string, error) {
	group := ""
	if sc.GetRunAsGroup() != nil {
		if sc.GetRunAsUser() == nil && sc.GetRunAsUsername() == "" {
			return "", errdefs.Invalidf("run_as_group is set without run_as_user or run_as_username")
		}
		group = ":" + strconv.FormatInt(sc.GetRunAsGroup().GetValue(), 10)
	}
	switch {
	case sc.GetRunAsUser() != nil:
		return strconv.FormatInt(sc.GetRunAsUser().GetValue(), 10) + group, nil
	case sc.GetRunAsUsername() != "":
		return sc.GetRunAsUsername() + group, nil
	}
	if image == "" {
		return "0", nil
	}
	return image, nil
}

// ociMounts are the pod's /etc files and /dev/shm, then the CRI's mounts
// (which win over them for the same path).
func ociMounts(in specInput) ([]specs.Mount, error) {
	taken := map[string]bool{}
	var out []specs.Mount
	for i, m := range in.cfg.GetMounts() {
		dst := filepath.Clean(m.GetContainerPath())
		if !filepath.IsAbs(dst) {
			return nil, errdefs.Invalidf("mount %q: the container path must be absolute", m.GetContainerPath())
		}
		if src, ok := in.volumes[i]; ok {
			taken[dst] = true
			out = append(out, specs.Mount{Destination: dst, Type: "bind", Source: src, Options: []string{"rbind", "rprivate", "ro"}})
			continue
		}
		src := m.GetHostPath()
		if src == "" {
			return nil, errdefs.Invalidf("mount %s: no host path", dst)
		}
		if _, err := os.Lstat(src); errors.Is(err, os.ErrNotExist) {
			// As containerd does: a missing host path is made a directory.
			if err := os.MkdirAll(src, 0o755); err != nil {
				return nil, fmt.Errorf("mount %s: create host path %s: %w", dst, src, err)
			}
		}
		resolved, err := filepath.EvalSymlinks(src)
		if err != nil {
			return nil, errdefs.Invalidf("mount %s: host path %s: %s", dst, src, err.Error())
		}
		opts := []string{"rbind"}
		switch m.GetPropagation() {
		case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
			if err := ensureShared(resolved, false); err != nil {
				return nil, err
			}
			opts = append(opts, "rshared")
		case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
			if err := ensureShared(resolved, true); err != nil {
				return nil, err
			}
			opts = append(opts, "rslave")
		default:
			opts = append(opts, "rprivate")
		}
		if m.GetRecursiveReadOnly() {
			// As kubelet and containerd: rro (mount_setattr with
			// AT_RECURSIVE, which hako-runtime applies) needs a read-only,
			// private mount, or submounts would come and go writable.
			if !m.GetReadonly() || m.GetPropagation() != runtimeapi.MountPropagation_PROPAGATION_PRIVATE {
				return nil, errdefs.Invalidf("mount %s: a recursive read-only mount must be read-only and private", dst)
			}
			opts = append(opts, "rro")
		} else if m.GetReadonly() {
			opts = append(opts, "ro")
		}
		taken[dst] = true
		out = append(out, specs.Mount{Destination: dst, Type: "bind", Source: resolved, Options: opts})
	}
	for dst, src := range in.files {
		if !taken[dst] {
			out = append(out, specs.Mount{Destination: dst, Type: "bind", Source: src, Options: []string{"rbind", "rprivate"}})
		}
	}
	if !taken["/dev/shm"] {
		src := in.sandbox.Shm
		if src == "" {
			src = "/dev/shm"
		}
		out = append(out, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: src, Options: []string{"rbind", "rprivate"}})
	}
	return out, nil
}

// ensureShared checks that the host path's mount propagates to the
// container: shared (or, for host-to-container, slave) as containerd
// requires; a private mount would silently not propagate.
func ensureShared(path string, slaveOK bool) error {
	b, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		return fmt.Errorf("read mountinfo: %w", err)
	}
	best, bestOpts := "", ""
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 7 {
			continue
		}
		mp := f[4]
		if (path == mp || strings.HasPrefix(path, strings.TrimSuffix(mp, "/")+"/") || mp == "/") && len(mp) >= len(best) {
			best = mp
			var optional []string
			for _, x := range f[6:] {
				if x == "-" {
					break
				}
				optional = append(optional, x)
			}
			bestOpts = strings.Join(optional, " ")
		}
	}
	if strings.Contains(bestOpts, "shared:") || slaveOK && strings.Contains(bestOpts, "master:") {
		return nil
	}
	kind := "shared"
	if slaveOK {
		kind = "shared or slave"
	}
	return errdefs.Invalidf("path %q is mounted on %q but it is not a %s mount", path, best, kind)
}

func rootfsPropagation(mounts []*runtimeapi.Mount) string {
	p := ""
	for _, m := range mounts {
		switch m.GetPropagation() {
		case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
			return "rshared"
		case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
			p = "rslave"
		}
	}
	return p
}

// applySeccomp applies the container's seccomp profile: RuntimeDefault is
// docker's default profile, Localhost a profile file in docker's format,
// Unconfined or none no filter (the CRI's default).
func applySeccomp(s *specs.Spec, sc *runtimeapi.LinuxContainerSecurityContext) error {
	typ, ref := runtimeapi.SecurityProfile_Unconfined, ""
	if p := sc.GetSeccomp(); p != nil {
		typ, ref = p.GetProfileType(), p.GetLocalhostRef()
	} else {
		switch path := sc.GetSeccompProfilePath(); {
		case path == "" || path == "unconfined":
		case path == "runtime/default" || path == "docker/default":
			typ = runtimeapi.SecurityProfile_RuntimeDefault
		case strings.HasPrefix(path, "localhost/"):
			typ, ref = runtimeapi.SecurityProfile_Localhost, strings.TrimPrefix(path, "localhost/")
		default:
			return errdefs.Invalidf("unknown seccomp profile %q", path)
		}
	}
	switch typ {
	case runtimeapi.SecurityProfile_Unconfined:
		s.Linux.Seccomp = nil
	case runtimeapi.SecurityProfile_RuntimeDefault:
		p, err := seccomp.GetDefaultProfile(s)
		if err != nil {
			return fmt.Errorf("default seccomp profile: %w", err)
		}
		s.Linux.Seccomp = p
	case runtimeapi.SecurityProfile_Localhost:
		if !filepath.IsAbs(ref) {
			return errdefs.Invalidf("seccomp profile %q: a localhost profile needs an absolute path", ref)
		}
		b, err := os.ReadFile(ref)
		if err != nil {
			return errdefs.Invalidf("seccomp profile %s: %s", ref, err.Error())
		}
		p, err := seccomp.LoadProfile(string(b), s)
		if err != nil {
			return errdefs.Invalidf("seccomp profile %s: %s", ref, err.Error())
		}
		s.Linux.Seccomp = p
	}
	return nil
}

// checkAppArmor refuses an AppArmor profile the host cannot apply: hako
// applies none, and a profile asked for must not be silently dropped
// when AppArmor is on. With AppArmor off (this kernel) every container is
// unconfined anyway, as containerd treats it.
func checkAppArmor(sc *runtimeapi.LinuxContainerSecurityContext) error {
	typ := sc.GetApparmor().GetProfileType()
	name := sc.GetApparmorProfile()
	if typ != runtimeapi.SecurityProfile_Localhost && !strings.HasPrefix(name, "localhost/") {
		return nil
	}
	if b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled"); err == nil && strings.TrimSpace(string(b)) == "Y" {
		return errdefs.NotImplementedf("AppArmor localhost profiles are not supported by hakod")
	}
	return errdefs.Invalidf("AppArmor profile %q requested but AppArmor is not enabled on this host", sc.GetApparmor().GetLocalhostRef()+strings.TrimPrefix(name, "localhost/"))
}

// addHostDevices gives a privileged container the host's devices, as
// containerd and docker do.
func addHostDevices(s *specs.Spec) {
	_ = filepath.WalkDir("/dev", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			switch p {
			case "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev/fd":
				return filepath.SkipDir
			}
			return nil
		}
		if p == "/dev/console" || p == "/dev/ptmx" {
			return nil
		}
		dev, ok := hostDevice(p, p)
		if ok {
			s.Linux.Devices = append(s.Linux.Devices, dev)
		}
		return nil
	})
	s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
}

func hostDevice(path, dst string) (specs.LinuxDevice, bool) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return specs.LinuxDevice{}, false
	}
	var kind string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		kind = "c"
	case unix.S_IFBLK:
		kind = "b"
	default:
		return specs.LinuxDevice{}, false
	}
	mode := os.FileMode(st.Mode & 0o777)
	uid, gid := st.Uid, st.Gid
	return specs.LinuxDevice{Path: dst, Type: kind, Major: int64(unix.Major(uint64(st.Rdev))), Minor: int64(unix.Minor(uint64(st.Rdev))),
		FileMode: &mode, UID: &uid, GID: &gid}, true
}

func applyDevices(s *specs.Spec, devs []*runtimeapi.Device) error {
	for _, d := range devs {
		dev, ok := hostDevice(d.GetHostPath(), d.GetContainerPath())
		if !ok {
			return errdefs.Invalidf("device %s is not a device on the host", d.GetHostPath())
		}
		s.Linux.Devices = append(s.Linux.Devices, dev)
		perms := d.GetPermissions()
		if perms == "" {
			perms = "rwm"
		}
		maj, min := dev.Major, dev.Minor
		s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: dev.Type, Major: &maj, Minor: &min, Access: perms})
	}
	return nil
}

// applyResources maps the CRI's resources onto the spec. oom_score_adj
// is clamped to hakod's own: lowering it needs CAP_SYS_RESOURCE, which
// root does not always have (containerd's restrict_oom_score_adj).
func applyResources(s *specs.Spec, r *runtimeapi.LinuxContainerResources) {
	if r == nil {
		return
	}
	res := s.Linux.Resources
	cpu := &specs.LinuxCPU{}
	if v := r.GetCpuShares(); v > 0 {
		u := uint64(v)
		cpu.Shares = &u
	}
	if v := r.GetCpuQuota(); v > 0 {
		cpu.Quota = &v
	}
	if v := r.GetCpuPeriod(); v > 0 {
		u := uint64(v)
		cpu.Period = &u
	}
	cpu.Cpus, cpu.Mems = r.GetCpusetCpus(), r.GetCpusetMems()
	if cpu.Shares != nil || cpu.Quota != nil || cpu.Period != nil || cpu.Cpus != "" || cpu.Mems != "" {
		res.CPU = cpu
	}
	if v := r.GetMemoryLimitInBytes(); v > 0 {
		res.Memory = &specs.LinuxMemory{Limit: &v}
		if sw := r.GetMemorySwapLimitInBytes(); sw > 0 {
			res.Memory.Swap = &sw
		}
	}
	for _, h := range r.GetHugepageLimits() {
		res.HugepageLimits = append(res.HugepageLimits, specs.LinuxHugepageLimit{Pagesize: h.GetPageSize(), Limit: h.GetLimit()})
	}
	if len(r.GetUnified()) > 0 {
		res.Unified = r.GetUnified()
	}
	if v := int(r.GetOomScoreAdj()); v != 0 {
		v = clampOOMScoreAdj(v)
		s.Process.OOMScoreAdj = &v
	}
}

// clampOOMScoreAdj raises a score below hakod's own to hakod's: a process
// may not lower its score without CAP_SYS_RESOURCE.
func clampOOMScoreAdj(v int) int {
	b, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return v
	}
	own, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || v >= own {
		return v
	}
	return own
}

// resourcesSpec is the runtime-spec form of a resources update.
func resourcesSpec(r *runtimeapi.LinuxContainerResources) *specs.LinuxResources {
	s := &specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{Resources: &specs.LinuxResources{}}}
	applyResources(s, r)
	return s.Linux.Resources
}

// applyNamespaces sets the container's namespaces: the pod's network, IPC
// and UTS (or the host's), and a PID namespace of its own, the pod's, the
// host's or another container's (TARGET).
func applyNamespaces(cs *engine.ContainerSpec, o *runtimeapi.NamespaceOption, in specInput) error {
	s := cs.Spec
	drop := func(t specs.LinuxNamespaceType) {
		var out []specs.LinuxNamespace
		for _, ns := range s.Linux.Namespaces {
			if ns.Type != t {
				out = append(out, ns)
			}
		}
		s.Linux.Namespaces = out
	}
	if in.sandbox.HostNetwork {
		drop(specs.NetworkNamespace)
		drop(specs.UTSNamespace)
	} else {
		cs.SandboxNamespaces = append(cs.SandboxNamespaces, specs.NetworkNamespace, specs.UTSNamespace)
	}
	if in.sandbox.HostIPC {
		drop(specs.IPCNamespace)
	} else {
		cs.SandboxNamespaces = append(cs.SandboxNamespaces, specs.IPCNamespace)
	}
	if m := o.GetUsernsOptions().GetMode(); o.GetUsernsOptions() != nil && (m == runtimeapi.NamespaceMode_CONTAINER || m == runtimeapi.NamespaceMode_TARGET) {
		return errdefs.Invalidf("user namespace mode %s is not supported: use POD or NODE", m)
	}
	if in.sandbox.UserNS != "" {
		if o.GetUsernsOptions() != nil && o.GetUsernsOptions().GetMode() == runtimeapi.NamespaceMode_NODE {
			return errdefs.Invalidf("the pod has a user namespace of its own; its containers cannot use the node's")
		}
		cs.SandboxNamespaces = append([]specs.LinuxNamespaceType{specs.UserNamespace}, cs.SandboxNamespaces...)
	} else if o.GetUsernsOptions() != nil && o.GetUsernsOptions().GetMode() == runtimeapi.NamespaceMode_POD {
		return errdefs.Invalidf("the container asks for the pod's user namespace but the pod has none")
	}
	switch o.GetPid() {
	case runtimeapi.NamespaceMode_NODE:
		drop(specs.PIDNamespace)
	case runtimeapi.NamespaceMode_POD:
		// POD is the option's zero value: in a pod made without a shared
		// PID namespace it means the container's own.
		if in.sandbox.PausePid != 0 {
			cs.SandboxNamespaces = append(cs.SandboxNamespaces, specs.PIDNamespace)
		}
	case runtimeapi.NamespaceMode_TARGET:
		return errdefs.NotImplementedf("targeting another container's PID namespace is not supported")
	}
	return nil
}

// checkUserns accepts the node's user namespace, or a pod's own with one
// mapping each for uids and gids that maps the container's root (what
// kubelet sends); a container's own (CONTAINER) or another's (TARGET) is
// not a thing the CRI defines for user namespaces.
func checkUserns(u *runtimeapi.UserNamespace) error {
	if u == nil { // the node's: POD is the mode's zero value
		return nil
	}
	switch u.GetMode() {
	case runtimeapi.NamespaceMode_NODE:
		return nil
	case runtimeapi.NamespaceMode_POD:
	default:
		return errdefs.Invalidf("user namespace mode %s is not supported: use POD or NODE", u.GetMode())
	}
	for _, m := range [][]*runtimeapi.IDMapping{u.GetUids(), u.GetGids()} {
		if len(m) != 1 {
			return errdefs.Invalidf("a pod's user namespace needs exactly one uid and one gid mapping, got %d", len(m))
		}
		if m[0].GetContainerId() != 0 || m[0].GetLength() == 0 {
			return errdefs.Invalidf("a pod's user namespace must map container ID 0 (got %d, length %d)", m[0].GetContainerId(), m[0].GetLength())
		}
	}
	return nil
}

// usernsMappings are a pod's user namespace mappings (nil: the node's).
func usernsMappings(u *runtimeapi.UserNamespace) *engine.IDMappings {
	if u == nil || u.GetMode() != runtimeapi.NamespaceMode_POD {
		return nil
	}
	conv := func(m []*runtimeapi.IDMapping) []specs.LinuxIDMapping {
		var out []specs.LinuxIDMapping
		for _, x := range m {
			out = append(out, specs.LinuxIDMapping{ContainerID: x.GetContainerId(), HostID: x.GetHostId(), Size: x.GetLength()})
		}
		return out
	}
	return &engine.IDMappings{UIDs: conv(u.GetUids()), GIDs: conv(u.GetGids())}
}

func isIPCSysctl(k string) bool {
	return strings.HasPrefix(k, "kernel.shm") || strings.HasPrefix(k, "kernel.msg") || k == "kernel.sem" || strings.HasPrefix(k, "fs.mqueue.")
}

func hasEnv(env []string, name string) bool {
	for _, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == name {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// limitCapabilities drops what hakod's own bounding set lacks (here root
// has no CAP_SYS_RESOURCE): no process hakod starts can hold those, so
// privileged and ALL mean every capability the host grants, as in
// containerd, rather than a runtime warning on every exec's stderr.
func limitCapabilities(c *specs.LinuxCapabilities) {
	if c == nil {
		return
	}
	var bnd uint64
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapBnd:"); ok {
			bnd, err = strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return
			}
		}
	}
	keep := func(list []string) []string {
		out := list[:0]
		for _, name := range list {
			if n, ok := capNumbers[name]; !ok || bnd&(1<<n) != 0 {
				out = append(out, name)
			}
		}
		return out
	}
	c.Bounding, c.Effective, c.Permitted = keep(c.Bounding), keep(c.Effective), keep(c.Permitted)
	c.Inheritable, c.Ambient = keep(c.Inheritable), keep(c.Ambient)
}

// capNumbers are the capabilities' bit numbers.
var capNumbers = map[string]uint{
	"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3, "CAP_FSETID": 4, "CAP_KILL": 5,
	"CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_LINUX_IMMUTABLE": 9, "CAP_NET_BIND_SERVICE": 10,
	"CAP_NET_BROADCAST": 11, "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15,
	"CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19, "CAP_SYS_PACCT": 20,
	"CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23, "CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25,
	"CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27, "CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30,
	"CAP_SETFCAP": 31, "CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35,
	"CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37, "CAP_PERFMON": 38, "CAP_BPF": 39, "CAP_CHECKPOINT_RESTORE": 40,
}
