package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/runtime/bundle"
	"github.com/hako-project/hako/runtime/caps"
	"github.com/hako-project/hako/runtime/cgroups"
	"github.com/hako-project/hako/runtime/hooks"
	"github.com/hako-project/hako/runtime/lsm"
	"github.com/hako-project/hako/runtime/nsexec"
	"github.com/hako-project/hako/runtime/process"
	"github.com/hako-project/hako/runtime/rootfs"
	"github.com/hako-project/hako/runtime/seccomp"
	"github.com/hako-project/hako/runtime/state"
	"github.com/hako-project/hako/trace"
)

// CreateOptions are the flags of `create` (and `run`).
type CreateOptions struct {
	ID            string
	Bundle        string
	ConsoleSocket string // path of a unix socket to send the pty master to
	PidFile       string
	NoPivot       bool
	NoNewKeyring  bool
	// PreserveFDs is how many fds from 3 on pass to the container,
	// including the ListenFDs socket-activation ones that come first.
	PreserveFDs int
	ListenFDs   int
	// Stdio for the container's process; nil entries mean the runtime's own.
	Stdio [3]*os.File
	// Trace, if set, receives the init's spans.
	Trace *os.File

	// console, when set by run, replaces ConsoleSocket with a socket the
	// runtime itself reads the pty master from.
	console *os.File
	// noFifo: run releases the init over the sync socket instead.
	noFifo bool
}

// Create sets up a container and leaves its init waiting to be started.
func (r *Runtime) Create(ctx context.Context, o CreateOptions) (*Container, error) {
	c, proc, err := r.create(ctx, o)
	if proc != nil {
		proc.Close()
	}
	return c, err
}

// create does the work of Create and returns the init still connected, so
// run can release it without an exec fifo.
func (r *Runtime) create(ctx context.Context, o CreateOptions) (c *Container, proc *nsexec.Process, err error) {
	ctx, span := trace.Start(ctx, "runtime.create", "id", o.ID)
	defer func() { span.End(err) }()
	if err := bundle.ValidateID(o.ID); err != nil {
		return nil, nil, err
	}
	_, lspan := trace.Start(ctx, "runtime.bundle.load", "bundle", o.Bundle)
	s, err := bundle.Load(o.Bundle)
	lspan.End(err)
	if err != nil {
		return nil, nil, err
	}
	bundleDir, _ := filepath.Abs(o.Bundle)
	if s.Process.Terminal && o.ConsoleSocket == "" && o.console == nil {
		return nil, nil, errors.New("process.terminal is true: give --console-socket to receive the terminal (or use `run` in the foreground)")
	}
	if !s.Process.Terminal && o.ConsoleSocket != "" {
		return nil, nil, errors.New("--console-socket given but process.terminal is false")
	}
	if o.ListenFDs > 0 {
		// Socket activation: the container's init is the listener (pid 1 in its namespace).
		s.Process.Env = append(s.Process.Env, "LISTEN_FDS="+strconv.Itoa(o.ListenFDs), "LISTEN_PID=1")
	}
	nsp, err := planNamespaces(s.Linux.Namespaces)
	if err != nil {
		return nil, nil, err
	}

	d := state.Dir{Root: r.Root, ID: o.ID}
	if err := d.Make(); err != nil {
		return nil, nil, err
	}
	st := &state.State{
		ID: o.ID, Bundle: bundleDir, Rootfs: s.Root.Path, Created: time.Now().UTC(),
		Owner: ownerName(), Annotations: s.Annotations, Creating: true,
		HostMounts: !nsp.has[specs.MountNamespace],
	}
	c = &Container{rt: r, dir: d, State: st}
	var cg cgroups.Manager
	// Everything below is undone if create fails.
	defer func() {
		if err == nil {
			return
		}
		if proc != nil {
			proc.Close()
			_ = unix.Kill(proc.Pid, unix.SIGKILL)
			proc = nil
		}
		if cg != nil {
			_ = cg.Kill(unix.SIGKILL)
			if derr := destroyCgroup(cg); derr != nil {
				err = fmt.Errorf("%w (and cleaning up: %v)", err, derr)
			}
		}
		if st.HostMounts {
			_ = rootfs.Unmount(s.Root.Path)
		}
		if s.Hooks != nil && len(s.Hooks.Poststop) > 0 && hookFailure(err) {
			_ = hooks.Run(ctx, "poststop", s.Hooks.Poststop, c.stoppedState())
		}
		_ = d.Remove()
	}()
	if err := d.SaveConfig(s); err != nil {
		return c, nil, err
	}

	_, cspan := trace.Start(ctx, "runtime.cgroups.create", "path", s.Linux.CgroupsPath)
	cg, err = cgroups.New(cgroups.Config{Path: s.Linux.CgroupsPath, ID: o.ID, Systemd: r.Systemd, Rootless: r.Rootless})
	if err == nil {
		res := s.Linux.Resources
		if !r.Rootless {
			// Rootless containers get no device cgroup (it is never
			// delegated); their devices are bind mounts of the user's.
			res = withDefaultDevices(res)
		}
		err = cg.Create(res)
		if err != nil {
			cg = nil // Create removed what it made
		}
	}
	cspan.End(err)
	if err != nil {
		return c, nil, err
	}
	cgs := cg.State()
	st.Cgroup = &cgs

	_, sspan := trace.Start(ctx, "runtime.seccomp.compile")
	sc, scProg, err := compileSeccomp(s, r.Root)
	sspan.End(err)
	if err != nil {
		return c, nil, err
	}
	if scProg != nil {
		// For exec (execSeccomp). Without it, exec compiles the profile
		// again from the saved spec: nothing is lost but time.
		if err := seccomp.Keep(d.Path(state.SeccompFile), scProg); err != nil {
			slog.Debug("keep the seccomp filter for exec", "id", o.ID, "err", err)
		}
	}
	prog, err := r.initProgram(s, nsp, o, cg, bundleDir, sc)
	if err != nil {
		return c, nil, err
	}
	cfg := &nsexec.Config{Program: prog, Stdio: o.Stdio, Log: r.Log, LogJSON: r.LogJSON, ExecAtOnce: execAtOnce(o, s)}
	for i, f := range cfg.Stdio {
		if f == nil {
			cfg.Stdio[i] = []*os.File{os.Stdin, os.Stdout, os.Stderr}[i]
		}
	}
	for i := 0; i < o.PreserveFDs; i++ {
		cfg.Preserve = append(cfg.Preserve, os.NewFile(uintptr(3+i), "preserved-"+strconv.Itoa(3+i)))
	}
	if !o.noFifo {
		uid, gid := hostRootIDs(s)
		fifo, err := makeFifo(d, uid, gid)
		if err != nil {
			return c, nil, err
		}
		defer fifo.Close()
		cfg.Fifo = fifo
	}
	if s.Process.Terminal {
		sock := o.console
		if sock == nil {
			sock, err = dialConsole(o.ConsoleSocket)
			if err != nil {
				return c, nil, err
			}
			defer sock.Close()
		}
		cfg.ConsoleSocket = sock
	}
	if sp := trace.FromContext(ctx); sp != nil && o.Trace != nil {
		cfg.Trace, cfg.TraceID, cfg.ParentSpan = o.Trace, sp.TraceID(), sp.ID()
	}
	startCtx := ctx // the runtime.nsexec.start span's, once it begins
	cgfd, err := placeInCgroup(cfg, cg, &startCtx)
	if err != nil {
		return c, nil, err
	}
	if cgfd != nil {
		defer cgfd.Close()
	}
	if nsp.newUser {
		cfg.Userns = func(pid int) error { return writeIDMaps(pid, s) }
	}
	cfg.SeccompFD = listenerHandoff(scProg, func(pid int) specs.State {
		return specs.State{Version: specs.Version, ID: o.ID, Status: specs.StateCreating, Pid: pid, Bundle: bundleDir, Annotations: s.Annotations}
	})
	cfg.Hooks = func(pid int) ([]byte, error) {
		hs := specs.State{Version: specs.Version, ID: o.ID, Status: specs.StateCreated, Pid: pid, Bundle: bundleDir, Annotations: s.Annotations}
		if s.Hooks != nil {
			if err := hooks.Run(ctx, "prestart", s.Hooks.Prestart, hs); err != nil {
				return nil, &hookError{err}
			}
			if err := hooks.Run(ctx, "createRuntime", s.Hooks.CreateRuntime, hs); err != nil {
				return nil, &hookError{err}
			}
		}
		return json.Marshal(hs)
	}
	_, xspan := trace.Start(ctx, "runtime.nsexec.seal")
	self, err := nsexec.SealedSelf()
	xspan.End(err)
	if err != nil {
		return c, nil, err
	}
	defer self.Close()
	startCtx, ispan := trace.Start(ctx, "runtime.nsexec.start")
	proc, err = nsexec.Start(cfg, self)
	ispan.End(err)
	if err != nil {
		var ie *nsexec.InitError
		if errors.As(err, &ie) && strings.Contains(ie.Msg, "hooks.") {
			err = &hookError{err}
		}
		return c, nil, err
	}
	st.InitPid = proc.Pid
	if st.InitStart, _, err = state.ProcStart(proc.Pid); err != nil {
		return c, proc, fmt.Errorf("container init %d vanished: %w", proc.Pid, err)
	}
	st.Namespaces = map[specs.LinuxNamespaceType]string{}
	for t := range nsp.has {
		st.Namespaces[t] = fmt.Sprintf("/proc/%d/ns/%s", proc.Pid, procNames[t])
	}
	st.Creating = false
	if err := d.Save(st); err != nil {
		return c, proc, err
	}
	if plan, ok := deletePlan(st, s, r.Systemd); ok {
		if err := os.WriteFile(d.Path(state.DeletePlanFile), plan, 0o600); err != nil {
			return c, proc, fmt.Errorf("write delete plan: %w", err)
		}
	}
	if plan, ok := startPlan(st, s); ok && !o.noFifo {
		if err := os.WriteFile(d.Path(state.StartPlanFile), plan, 0o600); err != nil {
			return c, proc, fmt.Errorf("write start plan: %w", err)
		}
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, proc.Pid); err != nil {
			return c, proc, err
		}
	}
	return c, proc, nil
}

// initProgram composes the init's whole program, in the order runc uses.
func (r *Runtime) initProgram(s *specs.Spec, nsp nsPlan, o CreateOptions, cg cgroups.Manager, bundleDir string, sc *process.Seccomp) (*nsexec.Program, error) {
	p := &nsexec.Program{}
	if s.Process.OOMScoreAdj != nil {
		p.Add(nsexec.OpWrite, nsexec.Step{Field: "process.oomScoreAdj"}, "/proc/self/oom_score_adj", strconv.Itoa(*s.Process.OOMScoreAdj), uint64(2))
	}
	nsp.add(p, s)
	lsmPlan, err := lsm.Prepare(s.Process, s.Linux)
	if err != nil {
		return nil, err
	}
	lsmW := lsmWrites(lsmPlan)
	// An SELinux keyring label applies to keyrings created after it.
	for len(lsmW) > 0 && strings.HasSuffix(lsmW[0].Path, "/keycreate") {
		p.Add(nsexec.OpWrite, nsexec.Step{Field: lsmW[0].Field}, lsmW[0].Path, lsmW[0].Data, 0)
		lsmW = lsmW[1:]
	}
	if !o.NoNewKeyring {
		p.Add(nsexec.OpKeyring, nsexec.Step{Field: "--no-new-keyring"}, "_ses."+o.ID)
	}
	if !s.Process.Terminal {
		p.Add(nsexec.OpSetsid, nsexec.Step{})
	}
	ro := rootfs.Options{
		Bundle:      bundleDir,
		HostMountNS: !nsp.has[specs.MountNamespace],
		MountLabel:  lsmPlan.MountLabel,
		InUserNS:    nsp.has[specs.UserNamespace],
		CgroupNS:    nsp.has[specs.CgroupNamespace],
		Cgroups:     cg.Mounts(),
	}
	if err := rootfs.Prepare(p, s, ro); err != nil {
		return nil, err
	}
	if h := s.Hooks; h != nil && len(h.Prestart)+len(h.CreateRuntime)+len(h.CreateContainer) > 0 {
		p.Add(nsexec.OpHooksSync, nsexec.Step{Span: "runtime.hooks.create_runtime", Field: "hooks.createRuntime"})
		for i, hk := range h.CreateContainer {
			process.Hook(p, hk, fmt.Sprintf("hooks.createContainer[%d]", i), "runtime.hooks.create_container")
		}
	}
	rootfs.Pivot(p, s, o.NoPivot, ro)
	if cwd := s.Process.Cwd; cwd != "" && cwd != "/" {
		// As runc: a working directory the root lacks is made (0755, the
		// runtime's user) before the root may turn read-only. After the
		// pivot, so that a /proc link in the path is the container's.
		p.Add(nsexec.OpMkdir, nsexec.Step{Field: "process.cwd"}, cwd, uint64(0o755))
	}
	if s.Process.Terminal {
		var rows, cols uint
		if cs := s.Process.ConsoleSize; cs != nil {
			rows, cols = cs.Height, cs.Width
		}
		p.Add(nsexec.OpConsole, nsexec.Step{Span: "runtime.console.setup", Field: "process.terminal"}, rows, cols, true)
	}
	rootfs.Finalize(p, s)
	if s.Hostname != "" {
		p.Add(nsexec.OpHostname, nsexec.Step{Field: "hostname"}, s.Hostname)
	}
	if s.Domainname != "" {
		p.Add(nsexec.OpDomainname, nsexec.Step{Field: "domainname"}, s.Domainname)
	}
	for k, v := range s.Linux.Sysctl {
		p.Add(nsexec.OpWrite, nsexec.Step{Field: "linux.sysctl[" + strconv.Quote(k) + "]"}, "/proc/sys/"+strings.ReplaceAll(k, ".", "/"), v, 0)
	}
	rootfs.Protect(p, s)
	if pers := s.Linux.Personality; pers != nil {
		v := uint64(0x0000) // PER_LINUX
		if pers.Domain == specs.PerLinux32 {
			v = 0x0008 // PER_LINUX32
		}
		p.Add(nsexec.OpPersonality, nsexec.Step{Field: "linux.personality"}, v)
	}
	limits, err := caps.HostLimits(nsp.newUser)
	if err != nil {
		return nil, err
	}
	var startHooks []specs.Hook
	if s.Hooks != nil {
		startHooks = s.Hooks.StartContainer
	}
	err = process.Plan(p, s.Process, process.Options{
		Rootfs:          s.Root.Path,
		SetgroupsDenied: setgroupsDenied(s.Linux.GIDMappings, nsp.newUser),
		Caps:            limits,
		Seccomp:         sc,
		PreserveFDs:     o.PreserveFDs,
		StartHooks:      startHooks,
		ExecAtOnce:      execAtOnce(o, s),
		LSM:             lsmW,
	})
	return p, err
}

// execAtOnce reports whether the init can execute the user's program as
// soon as it is set up: `run` (which starts what it creates), with no
// startContainer hook to run before the program and no poststart hook to
// run after its execve.
func execAtOnce(o CreateOptions, s *specs.Spec) bool {
	return o.noFifo && (s.Hooks == nil || len(s.Hooks.StartContainer)+len(s.Hooks.Poststart) == 0)
}

// withDefaultDevices appends the device rules every container gets, after
// the spec's own, as runc does: mknod of any node (access is what the rules
// guard), and the default nodes in /dev.
func withDefaultDevices(r *specs.LinuxResources) *specs.LinuxResources {
	var res specs.LinuxResources
	if r != nil {
		res = *r
	}
	res.Devices = append(append([]specs.LinuxDeviceCgroup(nil), res.Devices...), cgroups.AllowedDevices()...)
	return &res
}

// hookError marks a failure of a hook, after which the spec asks for the
// poststop hooks to run as the container is deleted.
type hookError struct{ error }

func (e *hookError) Unwrap() error { return e.error }

func hookFailure(err error) bool {
	var he *hookError
	return errors.As(err, &he)
}

func (c *Container) stoppedState() specs.State {
	return specs.State{Version: specs.Version, ID: c.ID(), Status: specs.StateStopped, Bundle: c.State.Bundle, Annotations: c.State.Annotations}
}

// makeFifo creates the exec fifo, owned by the container's root (which may
// be an unprivileged host user behind a user namespace) so its init can open
// it for writing.
func makeFifo(d state.Dir, uid, gid int) (*os.File, error) {
	path := d.Path(state.FifoFile)
	if err := unix.Mkfifo(path, 0o622); err != nil {
		return nil, fmt.Errorf("create exec fifo: %w", err)
	}
	if err := unix.Chmod(path, 0o622); err != nil { // the umask trimmed mkfifo's mode
		return nil, fmt.Errorf("exec fifo: %w", err)
	}
	if err := unix.Chown(path, uid, gid); err != nil {
		return nil, fmt.Errorf("exec fifo: %w", err)
	}
	fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open exec fifo: %w", err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// hostRootIDs is the host uid and gid that the container's root maps to.
func hostRootIDs(s *specs.Spec) (int, int) {
	uid, gid := 0, 0
	for _, m := range s.Linux.UIDMappings {
		if m.ContainerID == 0 {
			uid = int(m.HostID)
		}
	}
	for _, m := range s.Linux.GIDMappings {
		if m.ContainerID == 0 {
			gid = int(m.HostID)
		}
	}
	return uid, gid
}

// dialConsole connects to the caller's console socket. It uses raw sockets
// rather than package net, whose start-up cost every runtime call would pay.
func dialConsole(path string) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("--console-socket %s: %w", path, err)
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("--console-socket %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// writePidFile writes pid atomically, as containerd reads it right after create.
func writePidFile(path string, pid int) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	return state.WriteFileAtomic(abs, []byte(strconv.Itoa(pid)), 0o644)
}

// destroyCgroup kills what is left in the cgroup (processes the container
// started outside a PID namespace outlive its init) and removes it.
func destroyCgroup(cg cgroups.Manager) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids, err := cg.Pids()
		if err != nil || len(pids) == 0 {
			break
		}
		_ = cg.Kill(unix.SIGKILL)
		_ = cg.Thaw()
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v survived SIGKILL", pids)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return cg.Destroy()
}

// placeInCgroup arranges for the first process of a container (or exec)
// to be in its cgroup before it runs its program. On a pure cgroup v2 host
// it is cloned straight into it (clone3 CLONE_INTO_CGROUP), which takes
// none of the locks a move does; the returned directory fd is the caller's
// to close once the process started. Elsewhere (v1, hybrid, or a kernel
// before 5.7 without clone3) it is moved in through cgroup.procs as soon as
// it exists (joinCgroup), under the span of *ctx at that moment.
func placeInCgroup(cfg *nsexec.Config, cg cgroups.Manager, ctx *context.Context) (*os.File, error) {
	fd, err := cg.UnifiedFD()
	if err != nil {
		return nil, err
	}
	cfg.CgroupFD = fd
	cfg.Started = func(pid int) error { return joinCgroup(*ctx, cg, pid) }
	return fd, nil
}

// joinCgroup moves the first process of a container (or exec) into its
// cgroup. A span of its own because the first move after a pause waits for
// an RCU grace period (the kernel's cgroup_threadgroup_rwsem), 7-17 ms on
// the VMs we measure, unless the host's cgroup2 mount has favordynmods
// (cgroups.SetFavorDynMods).
func joinCgroup(ctx context.Context, cg cgroups.Manager, pid int) error {
	_, span := trace.Start(ctx, "runtime.cgroups.join", "pid", strconv.Itoa(pid))
	err := cg.Add(pid)
	span.End(err)
	return err
}
