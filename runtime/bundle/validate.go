package bundle

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// FieldError is a configuration error tied to a spec field, such as
// "mounts[2].destination".
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func ferr(field, format string, a ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

// Namespace types of the runtime spec, in the order the init joins them.
var nsTypes = map[specs.LinuxNamespaceType]bool{
	specs.PIDNamespace: true, specs.NetworkNamespace: true, specs.MountNamespace: true,
	specs.IPCNamespace: true, specs.UTSNamespace: true, specs.UserNamespace: true,
	specs.CgroupNamespace: true, specs.TimeNamespace: true,
}

// Validate checks everything about s that can be checked without touching
// the host beyond reading: the spec version, paths that must be absolute,
// namespaces, devices, sysctls, rlimits and hooks. dir is the bundle.
func Validate(s *specs.Spec, dir string) error {
	if err := validateVersion(s.Version); err != nil {
		return err
	}
	if s.Root == nil || s.Root.Path == "" {
		return ferr("root.path", "missing: the bundle must name its root filesystem")
	}
	root := s.Root.Path
	if !filepath.IsAbs(root) {
		root = filepath.Join(dir, root)
	}
	if fi, err := os.Stat(root); err != nil {
		return ferr("root.path", "%s: %v", root, errors.Unwrap(err))
	} else if !fi.IsDir() {
		return ferr("root.path", "%s is not a directory", root)
	}
	if s.Process == nil {
		return ferr("process", "missing: a container needs a process to run")
	}
	if err := ValidateProcess(s.Process, "process"); err != nil {
		return err
	}
	for i, m := range s.Mounts {
		if err := validateMount(m, fmt.Sprintf("mounts[%d]", i), dir); err != nil {
			return err
		}
	}
	if err := validateHooks(s.Hooks); err != nil {
		return err
	}
	if s.Linux == nil {
		return ferr("linux", "missing: hako-runtime runs Linux containers")
	}
	return validateLinux(s, s.Linux)
}

func validateVersion(v string) error {
	if v == "" {
		return ferr("ociVersion", "missing")
	}
	major, _, _ := strings.Cut(v, ".")
	if n, err := strconv.Atoi(major); err != nil || n != 1 {
		return ferr("ociVersion", "%q is not a 1.x runtime-spec version (this runtime implements %s)", v, specs.Version)
	}
	return nil
}

// ValidateProcess checks a process, for create and for exec.
func ValidateProcess(p *specs.Process, field string) error {
	if len(p.Args) == 0 && p.CommandLine == "" {
		return ferr(field+".args", "missing: name the program to run")
	}
	if p.Cwd == "" {
		return ferr(field+".cwd", "missing: must be an absolute path")
	}
	if !filepath.IsAbs(p.Cwd) {
		return ferr(field+".cwd", "%q is not an absolute path", p.Cwd)
	}
	for i, e := range p.Env {
		if !strings.Contains(e, "=") {
			return ferr(fmt.Sprintf("%s.env[%d]", field, i), "%q is not KEY=value", e)
		}
	}
	seen := map[string]bool{}
	for i, r := range p.Rlimits {
		f := fmt.Sprintf("%s.rlimits[%d]", field, i)
		if _, ok := RlimitResource(r.Type); !ok {
			return ferr(f+".type", "unknown rlimit %q", r.Type)
		}
		if seen[r.Type] {
			return ferr(f+".type", "%s given twice", r.Type)
		}
		seen[r.Type] = true
		if r.Soft > r.Hard {
			return ferr(f, "soft limit %d is above the hard limit %d", r.Soft, r.Hard)
		}
	}
	if p.OOMScoreAdj != nil && (*p.OOMScoreAdj < -1000 || *p.OOMScoreAdj > 1000) {
		return ferr(field+".oomScoreAdj", "%d is outside -1000..1000", *p.OOMScoreAdj)
	}
	if p.ConsoleSize != nil && !p.Terminal {
		return ferr(field+".consoleSize", "set, but process.terminal is false")
	}
	if p.IOPriority != nil {
		switch p.IOPriority.Class {
		case specs.IOPRIO_CLASS_RT, specs.IOPRIO_CLASS_BE, specs.IOPRIO_CLASS_IDLE:
		default:
			return ferr(field+".ioPriority.class", "unknown class %q", p.IOPriority.Class)
		}
		if p.IOPriority.Priority < 0 || p.IOPriority.Priority > 7 {
			return ferr(field+".ioPriority.priority", "%d is outside 0..7", p.IOPriority.Priority)
		}
	}
	if p.Scheduler != nil {
		if _, ok := SchedPolicy(p.Scheduler.Policy); !ok {
			return ferr(field+".scheduler.policy", "unknown policy %q", p.Scheduler.Policy)
		}
		for _, fl := range p.Scheduler.Flags {
			if _, ok := schedFlags[fl]; !ok {
				return ferr(field+".scheduler.flags", "unknown flag %q", fl)
			}
		}
	}
	return nil
}

func validateMount(m specs.Mount, field, dir string) error {
	if m.Destination == "" {
		return ferr(field+".destination", "missing")
	}
	if !filepath.IsAbs(m.Destination) {
		return ferr(field+".destination", "%q is not an absolute path", m.Destination)
	}
	if filepath.Clean(m.Destination) == "/" {
		return ferr(field+".destination", "cannot mount over the container's root; use root.path")
	}
	bind := m.Type == "bind"
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			bind = true
		}
	}
	if bind {
		if m.Source == "" {
			return ferr(field+".source", "missing for a bind mount")
		}
		src := m.Source
		if !filepath.IsAbs(src) {
			src = filepath.Join(dir, src)
		}
		if _, err := os.Stat(src); err != nil {
			return ferr(field+".source", "%s: %v", src, errors.Unwrap(err))
		}
	}
	return nil
}

func validateHooks(h *specs.Hooks) error {
	if h == nil {
		return nil
	}
	lists := []struct {
		name  string
		hooks []specs.Hook
	}{
		{"prestart", h.Prestart}, {"createRuntime", h.CreateRuntime}, {"createContainer", h.CreateContainer},
		{"startContainer", h.StartContainer}, {"poststart", h.Poststart}, {"poststop", h.Poststop},
	}
	for _, l := range lists {
		for i, hk := range l.hooks {
			f := fmt.Sprintf("hooks.%s[%d]", l.name, i)
			if !filepath.IsAbs(hk.Path) {
				return ferr(f+".path", "%q is not an absolute path", hk.Path)
			}
			if hk.Timeout != nil && *hk.Timeout <= 0 {
				return ferr(f+".timeout", "%d is not a positive number of seconds", *hk.Timeout)
			}
		}
	}
	return nil
}

func validateLinux(s *specs.Spec, l *specs.Linux) error {
	has := map[specs.LinuxNamespaceType]bool{}   // a new or joined namespace of that type
	isNew := map[specs.LinuxNamespaceType]bool{} // created for the container
	for i, ns := range l.Namespaces {
		f := fmt.Sprintf("linux.namespaces[%d]", i)
		if !nsTypes[ns.Type] {
			return ferr(f+".type", "unknown namespace type %q", ns.Type)
		}
		if has[ns.Type] {
			return ferr(f+".type", "%s namespace given twice", ns.Type)
		}
		has[ns.Type] = true
		if ns.Path == "" {
			isNew[ns.Type] = true
		} else if !filepath.IsAbs(ns.Path) {
			return ferr(f+".path", "%q is not an absolute path", ns.Path)
		}
	}
	if (len(l.UIDMappings) > 0 || len(l.GIDMappings) > 0) && !isNew[specs.UserNamespace] {
		return ferr("linux.uidMappings", "id mappings need a new user namespace in linux.namespaces")
	}
	if isNew[specs.UserNamespace] && (len(l.UIDMappings) == 0 || len(l.GIDMappings) == 0) {
		return ferr("linux.uidMappings", "a new user namespace needs uidMappings and gidMappings")
	}
	if s.Hostname != "" && !has[specs.UTSNamespace] {
		return ferr("hostname", "setting it needs a UTS namespace in linux.namespaces")
	}
	if s.Domainname != "" && !has[specs.UTSNamespace] {
		return ferr("domainname", "setting it needs a UTS namespace in linux.namespaces")
	}
	if len(l.TimeOffsets) > 0 && !isNew[specs.TimeNamespace] {
		return ferr("linux.timeOffsets", "need a new time namespace in linux.namespaces")
	}
	for k := range l.TimeOffsets {
		if k != "monotonic" && k != "boottime" {
			return ferr("linux.timeOffsets", "unknown clock %q (monotonic or boottime)", k)
		}
	}
	for i, d := range l.Devices {
		f := fmt.Sprintf("linux.devices[%d]", i)
		if !filepath.IsAbs(d.Path) {
			return ferr(f+".path", "%q is not an absolute path", d.Path)
		}
		if filepath.Clean(d.Path) != d.Path && filepath.Clean(d.Path)+"/" != d.Path {
			return ferr(f+".path", "%q is not a clean path", d.Path)
		}
		switch d.Type {
		case "c", "b", "u":
		case "p":
		default:
			return ferr(f+".type", "unknown device type %q (c, b, u or p)", d.Type)
		}
		if d.FileMode != nil && *d.FileMode&^os.FileMode(0o7777) != 0 {
			return ferr(f+".fileMode", "%#o has bits outside permissions", *d.FileMode)
		}
	}
	for k := range l.Sysctl {
		if err := validateSysctl(k, has, isNew, l); err != nil {
			return err
		}
	}
	for i, p := range l.MaskedPaths {
		if !filepath.IsAbs(p) {
			return ferr(fmt.Sprintf("linux.maskedPaths[%d]", i), "%q is not an absolute path", p)
		}
	}
	for i, p := range l.ReadonlyPaths {
		if !filepath.IsAbs(p) {
			return ferr(fmt.Sprintf("linux.readonlyPaths[%d]", i), "%q is not an absolute path", p)
		}
	}
	if _, ok := Propagation(l.RootfsPropagation); !ok {
		return ferr("linux.rootfsPropagation", "unknown propagation %q", l.RootfsPropagation)
	}
	if l.IntelRdt != nil {
		return ferr("linux.intelRdt", "Intel RDT (resctrl) is not supported by hako-runtime")
	}
	if l.Personality != nil {
		switch l.Personality.Domain {
		case specs.PerLinux, specs.PerLinux32:
		default:
			return ferr("linux.personality.domain", "unknown domain %q", l.Personality.Domain)
		}
	}
	return nil
}

var ipcSysctls = map[string]bool{
	"kernel.msgmax": true, "kernel.msgmnb": true, "kernel.msgmni": true, "kernel.sem": true,
	"kernel.shmall": true, "kernel.shmmax": true, "kernel.shmmni": true, "kernel.shm_rmid_forced": true,
}

// validateSysctl allows only sysctls that belong to a namespace the container
// has its own of; anything else would change the host.
func validateSysctl(k string, has, isNew map[specs.LinuxNamespaceType]bool, l *specs.Linux) error {
	f := "linux.sysctl[" + strconv.Quote(k) + "]"
	switch {
	case ipcSysctls[k] || strings.HasPrefix(k, "fs.mqueue."):
		if !has[specs.IPCNamespace] {
			return ferr(f, "needs an IPC namespace in linux.namespaces")
		}
	case strings.HasPrefix(k, "net."):
		if !has[specs.NetworkNamespace] {
			return ferr(f, "needs a network namespace in linux.namespaces")
		}
		for _, ns := range l.Namespaces {
			if ns.Type == specs.NetworkNamespace && ns.Path != "" && sameAsHost(ns.Path, "net") {
				return ferr(f, "the network namespace %s is the host's", ns.Path)
			}
		}
	case k == "kernel.hostname" || k == "kernel.domainname":
		if !has[specs.UTSNamespace] {
			return ferr(f, "needs a UTS namespace in linux.namespaces")
		}
	default:
		return ferr(f, "%q is not in a separate kernel namespace; setting it would change the host", k)
	}
	if strings.Contains(k, "/") || strings.Contains(k, "..") {
		return ferr(f, "invalid sysctl name")
	}
	return nil
}

func sameAsHost(path, kind string) bool {
	a, err1 := os.Stat(path)
	b, err2 := os.Stat("/proc/1/ns/" + kind)
	return err1 == nil && err2 == nil && os.SameFile(a, b)
}
