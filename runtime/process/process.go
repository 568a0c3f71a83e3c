// Package process plans how a container process becomes the user's program:
// rlimits, identity, capabilities, no_new_privs, seccomp, working
// directory, scheduling, and finally execve. The same plan serves the
// container's init and the processes `exec` adds.
package process

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/runtime/bundle"
	"github.com/hako-project/hako/runtime/caps"
	"github.com/hako-project/hako/runtime/nsexec"
)

// Seccomp is a compiled filter ready for seccomp(2).
type Seccomp struct {
	Flags  uint64
	Filter []byte // struct sock_filter[]
	Notify bool   // a listener fd comes back to the runtime
}

// Options are what the plan needs beyond the spec's process.
type Options struct {
	// Rootfs is the container's root on the host, to look up HOME in its
	// /etc/passwd when the environment lacks it ("" skips the lookup).
	Rootfs string
	// SetgroupsDenied: the process runs in a user namespace whose creator
	// denied setgroups (an unprivileged runtime mapping its own gid), so
	// supplementary groups cannot be set.
	SetgroupsDenied bool
	// Caps bound what capabilities can be granted.
	Caps caps.Limits
	// Seccomp, if set, is loaded before the program starts.
	Seccomp *Seccomp
	// PreserveFDs is how many fds after stdio stay open (3..3+n-1).
	PreserveFDs int
	// StartHooks run after the start signal, before execve (init only).
	StartHooks []specs.Hook
	// ExecAtOnce: the init does not wait to be started, it executes the
	// program once it has reported ready (`run` without startContainer
	// or poststart hooks; nsexec.Config.ExecAtOnce too).
	ExecAtOnce bool
	// LSM are the AppArmor and SELinux writes to /proc/self/attr that take
	// effect at the execve.
	LSM []Write
}

// Write is a write the init makes to a file of its own /proc, such as
// /proc/self/attr/exec.
type Write struct {
	Field string
	Path  string
	Data  string
}

// Plan appends the operations that turn the current process into proc. The
// process reports ready and waits to be started before its execve.
func Plan(p *nsexec.Program, proc *specs.Process, o Options) error {
	p.Begin("runtime.process", map[string]string{"args": strings.Join(proc.Args, " ")})
	for i, rl := range proc.Rlimits {
		res, _ := bundle.RlimitResource(rl.Type)
		if err := checkRlimit(res, rl); err != nil {
			return fmt.Errorf("process.rlimits[%d]: %w", i, err)
		}
		p.Add(nsexec.OpRlimit, nsexec.Step{Field: fmt.Sprintf("process.rlimits[%d] (%s)", i, rl.Type)}, res, rl.Soft, rl.Hard)
	}
	if proc.NoNewPrivileges {
		p.Add(nsexec.OpNoNewPrivs, nsexec.Step{Field: "process.noNewPrivileges"})
	}
	// Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, so it must
	// happen before the capabilities are dropped; with it, as late as
	// possible so the filter constrains as little of our own set-up.
	if o.Seccomp != nil && !proc.NoNewPrivileges {
		seccomp(p, o.Seccomp)
	}
	sets, warnings, err := o.Caps.Parse(proc.Capabilities)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		fmt.Fprintf(os.Stderr, "hako-runtime: warning: %s\n", w)
	}
	setCaps := proc.Capabilities != nil
	if setCaps {
		p.Add(nsexec.OpCaps, nsexec.Step{Span: "runtime.process.capabilities", Field: "process.capabilities.bounding"},
			sets.Bounding, sets.Effective, sets.Permitted, sets.Inheritable, sets.Ambient, 1)
		p.Add(nsexec.OpKeepCaps, nsexec.Step{Field: "process.capabilities"}, 1)
	}
	groups := make([]any, 0, len(proc.User.AdditionalGids)+5)
	groups = append(groups, proc.User.UID, proc.User.GID, !o.SetgroupsDenied, len(proc.User.AdditionalGids))
	for _, g := range proc.User.AdditionalGids {
		groups = append(groups, g)
	}
	p.Add(nsexec.OpUser, nsexec.Step{Span: "runtime.process.user", Field: "process.user",
		Attrs: map[string]string{"uid": strconv.Itoa(int(proc.User.UID)), "gid": strconv.Itoa(int(proc.User.GID))}}, groups...)
	if setCaps {
		p.Add(nsexec.OpKeepCaps, nsexec.Step{Field: "process.capabilities"}, 0)
		p.Add(nsexec.OpCaps, nsexec.Step{Field: "process.capabilities"},
			sets.Bounding, sets.Effective, sets.Permitted, sets.Inheritable, sets.Ambient, 2)
	}
	umask := uint32(0o022)
	if proc.User.Umask != nil {
		umask = *proc.User.Umask
	}
	p.Add(nsexec.OpUmask, nsexec.Step{Field: "process.user.umask"}, umask)
	p.Add(nsexec.OpChdir, nsexec.Step{Field: "process.cwd"}, proc.Cwd)
	if proc.IOPriority != nil {
		p.Add(nsexec.OpIOPrio, nsexec.Step{Field: "process.ioPriority"}, bundle.IOPrio(proc.IOPriority))
	}
	if sc := proc.Scheduler; sc != nil {
		pol, _ := bundle.SchedPolicy(sc.Policy)
		p.Add(nsexec.OpSched, nsexec.Step{Field: "process.scheduler"}, pol, int64(sc.Nice), sc.Priority,
			bundle.SchedFlags(sc.Flags), sc.Runtime, sc.Deadline, sc.Period)
	}
	for _, w := range o.LSM {
		p.Add(nsexec.OpWrite, nsexec.Step{Span: "runtime.process.lsm", Field: w.Field}, w.Path, w.Data, 0)
	}
	p.Add(nsexec.OpCloseFDs, nsexec.Step{Field: "--preserve-fds"}, 3+o.PreserveFDs)
	env := Env(proc, o.Rootfs)
	p.Add(nsexec.OpLookup, nsexec.Step{Field: "process.args[0]"}, proc.Args[0], lookupPath(env))
	if o.Seccomp != nil && proc.NoNewPrivileges {
		seccomp(p, o.Seccomp)
	}
	p.End()
	wait := uint64(1)
	if o.ExecAtOnce {
		wait = 0
	}
	p.Add(nsexec.OpWaitStart, nsexec.Step{}, wait)
	for i, h := range o.StartHooks {
		Hook(p, h, fmt.Sprintf("hooks.startContainer[%d]", i), "runtime.hooks.start_container")
	}
	p.Add(nsexec.OpExec, nsexec.Step{Field: "process.args"}, nsexec.Strs(proc.Args), nsexec.Strs(env))
	return nil
}

// Hook appends a hook the init runs itself (createContainer and
// startContainer run inside the container's namespaces).
func Hook(p *nsexec.Program, h specs.Hook, field, span string) {
	timeout := 0
	if h.Timeout != nil {
		timeout = *h.Timeout
	}
	p.Add(nsexec.OpHook, nsexec.Step{Span: span, Field: field, Attrs: map[string]string{"path": h.Path}},
		h.Path, nsexec.Strs(h.Args), nsexec.Strs(h.Env), timeout)
}

func seccomp(p *nsexec.Program, s *Seccomp) {
	p.Add(nsexec.OpSeccomp, nsexec.Step{Span: "runtime.process.seccomp", Field: "linux.seccomp"}, s.Flags, nsexec.Raw(s.Filter), s.Notify)
}

// checkRlimit refuses a hard limit above the runtime's own unless it holds
// CAP_SYS_RESOURCE: setrlimit would fail inside the init anyway, and here
// the error can say why.
func checkRlimit(res int, rl specs.POSIXRlimit) error {
	var cur unix.Rlimit
	if err := unix.Getrlimit(res, &cur); err != nil {
		return nil
	}
	if rl.Hard > cur.Max && !HasCap(unix.CAP_SYS_RESOURCE) {
		return fmt.Errorf("hard limit %d for %s is above this runtime's own (%d); raising a hard limit needs CAP_SYS_RESOURCE, which this runtime lacks",
			rl.Hard, rl.Type, cur.Max)
	}
	return nil
}

// HasCap reports whether the calling process has capability c in its
// effective set.
func HasCap(c int) bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[c/32].Effective&(1<<(uint(c)%32)) != 0
}

// Env is the process environment: process.env, plus HOME from the
// container's /etc/passwd when it is missing, as runc does.
func Env(proc *specs.Process, rootfs string) []string {
	env := proc.Env
	for _, e := range env {
		if strings.HasPrefix(e, "HOME=") {
			return env
		}
	}
	home := "/"
	if rootfs != "" {
		if h := homeOf(rootfs, proc.User.UID); h != "" {
			home = h
		}
	}
	return append(append([]string(nil), env...), "HOME="+home)
}

// homeOf reads the home directory of uid from rootfs/etc/passwd, resolved
// inside the rootfs (RESOLVE_IN_ROOT) so a symlinked /etc cannot point at
// the host's.
func homeOf(rootfs string, uid uint32) string {
	root, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return ""
	}
	defer unix.Close(root)
	fd, err := unix.Openat2(root, "etc/passwd", &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT})
	if err != nil {
		return ""
	}
	f := os.NewFile(uintptr(fd), "passwd")
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Split(sc.Text(), ":")
		if len(parts) >= 6 && parts[2] == strconv.Itoa(int(uid)) {
			return parts[5]
		}
	}
	return ""
}

func lookupPath(env []string) string {
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			return v
		}
	}
	return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
}
