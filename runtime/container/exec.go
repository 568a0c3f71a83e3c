package container

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/runtime/bundle"
	"github.com/hako-project/hako/runtime/caps"
	"github.com/hako-project/hako/runtime/lsm"
	"github.com/hako-project/hako/runtime/nsexec"
	"github.com/hako-project/hako/runtime/process"
	"github.com/hako-project/hako/trace"
)

// ExecOptions are the flags of `exec`.
type ExecOptions struct {
	Process       *specs.Process
	ConsoleSocket string
	PidFile       string
	Detach        bool
	PreserveFDs   int
	IgnorePaused  bool
	Stdio         [3]*os.File
	Trace         *os.File
}

// nsOrder is the order exec joins a container's namespaces in: the user
// namespace first (it grants the rights for the others), mount last (after
// it, paths resolve inside the container).
var nsOrder = []specs.LinuxNamespaceType{
	specs.UserNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.NetworkNamespace,
	specs.PIDNamespace, specs.CgroupNamespace, specs.TimeNamespace, specs.MountNamespace,
}

// Exec runs another process in a running container. Without Detach it waits
// and returns the process's exit code.
func (c *Container) Exec(ctx context.Context, o ExecOptions) (code int, err error) {
	ctx, span := trace.Start(ctx, "runtime.exec", "id", c.ID())
	defer func() { span.End(err) }()
	switch st := c.Status(); {
	case st == Running, st == Created:
	case st == Paused && o.IgnorePaused:
	case st == Paused:
		return -1, fmt.Errorf("cannot exec in container %q: it is paused (resume it, or use --ignore-paused)", c.ID())
	default:
		return -1, fmt.Errorf("cannot exec in container %q: it is %s", c.ID(), st)
	}
	proc := o.Process
	if err := bundle.ValidateProcess(proc, "process"); err != nil {
		return -1, err
	}
	cfg, err := c.dir.LoadExecConfig()
	if err != nil {
		return -1, err
	}
	var linux specs.Linux // what of the saved linux section exec uses
	var profile json.RawMessage
	if cfg.Linux != nil {
		linux.MountLabel, linux.GIDMappings, profile = cfg.Linux.MountLabel, cfg.Linux.GIDMappings, cfg.Linux.Seccomp
	}
	cg, err := c.cgroup()
	if err != nil {
		return -1, err
	}

	p := &nsexec.Program{}
	if proc.OOMScoreAdj != nil {
		p.Add(nsexec.OpWrite, nsexec.Step{Field: "process.oomScoreAdj"}, "/proc/self/oom_score_adj", strconv.Itoa(*proc.OOMScoreAdj), uint64(2))
	}
	// Join the init's namespaces, checked against its start time so a
	// recycled pid cannot hand us someone else's.
	var joins []any
	var fork, userns bool
	types := make([]specs.LinuxNamespaceType, 0, len(c.State.Namespaces))
	for t := range c.State.Namespaces {
		types = append(types, t)
	}
	sort.Slice(types, func(i, j int) bool { return indexOf(nsOrder, types[i]) < indexOf(nsOrder, types[j]) })
	for _, t := range types {
		joins = append(joins, uint64(nsFlags[t]), c.State.Namespaces[t])
		fork = fork || t == specs.PIDNamespace
		userns = userns || t == specs.UserNamespace
	}
	p.Begin("runtime.namespaces", nil)
	p.Add(nsexec.OpSetns, nsexec.Step{Span: "runtime.namespaces.setns", Field: "container namespaces"}, append([]any{len(types)}, joins...)...)
	p.Add(nsexec.OpFork, nsexec.Step{Span: "runtime.namespaces.fork"}, fork)
	p.End()
	if proc.Terminal {
		var rows, cols uint
		if cs := proc.ConsoleSize; cs != nil {
			rows, cols = cs.Height, cs.Width
		}
		p.Add(nsexec.OpConsole, nsexec.Step{Span: "runtime.console.setup", Field: "process.terminal"}, rows, cols, false)
	}
	limits, err := caps.HostLimits(false)
	if err != nil {
		return -1, err
	}
	_, sspan := trace.Start(ctx, "runtime.seccomp.compile")
	sc, scProg, err := c.execSeccomp(profile)
	sspan.End(err)
	if err != nil {
		return -1, err
	}
	// The exec'd process gets its own LSM labels, or the container's.
	lsmPlan, err := lsm.Prepare(proc, &linux)
	if err != nil {
		return -1, err
	}
	err = process.Plan(p, proc, process.Options{
		Rootfs:          fmt.Sprintf("/proc/%d/root", c.State.InitPid),
		SetgroupsDenied: setgroupsDenied(linux.GIDMappings, userns),
		Caps:            limits,
		Seccomp:         sc,
		PreserveFDs:     o.PreserveFDs,
		LSM:             lsmWrites(lsmPlan),
	})
	if err != nil {
		return -1, err
	}

	ncfg := &nsexec.Config{Program: p, Stdio: o.Stdio, Log: c.rt.Log, LogJSON: c.rt.LogJSON}
	for i, f := range ncfg.Stdio {
		if f == nil {
			ncfg.Stdio[i] = []*os.File{os.Stdin, os.Stdout, os.Stderr}[i]
		}
	}
	for i := 0; i < o.PreserveFDs; i++ {
		ncfg.Preserve = append(ncfg.Preserve, os.NewFile(uintptr(3+i), "preserved-"+strconv.Itoa(3+i)))
	}
	var ours *os.File
	if proc.Terminal {
		if o.ConsoleSocket != "" {
			sock, err := dialConsole(o.ConsoleSocket)
			if err != nil {
				return -1, err
			}
			defer sock.Close()
			ncfg.ConsoleSocket = sock
		} else if !o.Detach {
			var theirs *os.File
			ours, theirs, err = consolePair()
			if err != nil {
				return -1, err
			}
			defer ours.Close()
			defer theirs.Close()
			ncfg.ConsoleSocket = theirs
		} else {
			return -1, fmt.Errorf("exec --tty --detach needs --console-socket to hand the terminal to")
		}
	}
	if sp := trace.FromContext(ctx); sp != nil && o.Trace != nil {
		ncfg.Trace, ncfg.TraceID, ncfg.ParentSpan = o.Trace, sp.TraceID(), sp.ID()
	}
	if cg != nil {
		cgfd, err := placeInCgroup(ncfg, cg, &ctx)
		if err != nil {
			return -1, err
		}
		if cgfd != nil {
			defer cgfd.Close()
		}
	}
	ncfg.SeccompFD = listenerHandoff(scProg, func(int) specs.State { return c.OCIState() })
	if !c.State.Alive() {
		return -1, fmt.Errorf("cannot exec in container %q: its init has exited", c.ID())
	}
	var sigs *signalCatcher
	if !o.Detach {
		sigs = catchSignals()
		defer sigs.release()
	}
	_, xspan := trace.Start(ctx, "runtime.nsexec.seal")
	self, err := nsexec.SealedSelf()
	xspan.End(err)
	if err != nil {
		return -1, err
	}
	defer self.Close()
	_, ispan := trace.Start(ctx, "runtime.nsexec.start")
	pr, err := nsexec.Start(ncfg, self)
	ispan.End(err)
	if err != nil {
		return -1, err
	}
	defer pr.Close()
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, pr.Pid); err != nil {
			_ = unix.Kill(pr.Pid, unix.SIGKILL)
			return -1, err
		}
	}
	var px *ptyProxy
	if ours != nil {
		master, err := nsexec.RecvFD(ours)
		if err != nil {
			_ = unix.Kill(pr.Pid, unix.SIGKILL)
			return -1, fmt.Errorf("receive the terminal: %w", err)
		}
		px = startProxy(master)
	}
	if err := pr.Release(nil); err != nil {
		return -1, err
	}
	if o.Detach {
		return 0, nil
	}
	code, err = waitForward(pr.Pid, sigs, px)
	if px != nil {
		px.finish()
	}
	return code, err
}

func indexOf(l []specs.LinuxNamespaceType, t specs.LinuxNamespaceType) int {
	for i, v := range l {
		if v == t {
			return i
		}
	}
	return len(l)
}
