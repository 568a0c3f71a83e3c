package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/engine/specgen"
	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/snapshot"
	"github.com/hako-project/hako/trace"
)

// Start runs a created or stopped container: mounts its filesystem, writes
// its OCI bundle, starts its shim (which creates the container with the OCI
// runtime), connects the attaches that wait for it, and lets it run.
func (e *Engine) Start(ctx context.Context, ref string) (err error) {
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	ctx, span := trace.Start(ctx, "engine.start", "id", c.ID)
	defer func() { span.End(err) }()
	c.mu.Lock()
	switch {
	case c.State.Status == container.StateRunning:
		c.mu.Unlock()
		return nil // docker: starting a running container is a no-op
	case c.State.Status == container.StatePaused:
		c.mu.Unlock()
		return errdefs.Conflictf("cannot start a paused container, try unpause instead")
	case c.State.Status == container.StateRemoving || c.State.Status == container.StateDead:
		c.mu.Unlock()
		return errdefs.Conflictf("container is marked for removal and cannot be started")
	case c.task != nil:
		c.mu.Unlock()
		return errdefs.Conflictf("container %s is already starting", c.ID)
	}
	c.State.ManuallyStopped = false
	c.mu.Unlock()
	if err := e.start(ctx, c); err != nil {
		e.startFailed(ctx, c, err)
		return err
	}
	return nil
}

// waitStart waits for a start under way to finish: the container then
// runs, or its start has failed. Every operation on a running container
// (stop, kill, rm -f, pause, unpause, exec, attach's resize, top, update)
// waits so, as docker's wait for the container's lock its start holds;
// before, a stop during a start found nothing to stop and the container
// then ran (`TestStopDuringStart`), and a pause or an exec answered "not
// running" (`TestOperationsDuringStart`).
func (c *Container) waitStart() {
	c.mu.Lock()
	ch := c.starting
	c.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

// startedTask is c's task once a start under way has finished, nil if the
// container does not run then: stop, kill and rm -f act on what that
// start started.
func (c *Container) startedTask() Task {
	c.waitStart()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.task
}

// SettledSnapshot is Snapshot once a start under way has finished: the
// status docker's stop checks (a stop during a start then stops what it
// started, rather than answering "not modified" for a container still
// "created").
func (c *Container) SettledSnapshot() Record {
	c.waitStart()
	return c.Snapshot()
}

// startFailed records a failed start as docker does: the exit code of a
// shell (127, 126) and the error in the state, attaches that waited for the
// start ended, and a --rm container removed.
func (e *Engine) startFailed(ctx context.Context, c *Container, err error) {
	c.mu.Lock()
	pending := c.attach
	c.attach = nil
	c.State.Error = err.Error()
	c.State.ExitCode = startExitCode(err)
	if c.State.HasBeenStarted {
		c.State.Status = container.StateExited
	}
	c.State.FinishedAt = time.Now().UTC()
	autoRemove := c.HostConfig.AutoRemove
	c.notifyLocked()
	c.mu.Unlock()
	for _, pa := range pending {
		pa.fail(err)
	}
	_ = e.save(c)
	if autoRemove {
		if rerr := e.remove(withVolumeRemoval(context.WithoutCancel(ctx)), c, true); rerr != nil {
			e.log.Warn("remove --rm container after a failed start", "id", c.ID, "err", rerr)
		}
	}
}

// startExitCode is the exit code docker reports for a container that could
// not start: 127 when the program is missing, 126 when it cannot run.
func startExitCode(err error) int {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return 127
	case strings.Contains(msg, "permission denied"), strings.Contains(msg, "exec format error"), strings.Contains(msg, "is a directory"):
		return 126
	}
	return 128
}

func (e *Engine) start(ctx context.Context, c *Container) (err error) {
	c.fsMu.Lock() // see Container.fsMu
	defer c.fsMu.Unlock()
	c.mu.Lock()
	removing, started := c.removing, c.task != nil
	done := make(chan struct{})
	if !removing && !started {
		c.starting = done // waitStart
	}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		if c.starting == done {
			c.starting = nil
		}
		c.mu.Unlock()
		close(done)
	}()
	switch {
	case removing:
		// rm -f came between Start's checks and here: it found no
		// start under way (waitStart) and nothing started.
		return errdefs.Conflictf("container is marked for removal and cannot be started")
	case started:
		// Another start got here first (two `docker start` at once, or
		// one during a restart policy's delay): as with docker, starting
		// a running container does nothing.
		return nil
	}
	bundle := filepath.Join(e.RunDir(c.ID), "bundle")
	rootfs := filepath.Join(bundle, "rootfs")
	if legacy := e.legacyBundleDir(c.ID); fileExists(legacy) {
		// An older hakod's (container.go: RunDir): this start makes the
		// bundle anew where it now goes.
		e.unmountRootfs(c.ID)
		if err := os.RemoveAll(legacy); err != nil {
			return fmt.Errorf("remove the bundle of an older hakod: %w", err)
		}
	}
	if err := os.Mkdir(e.RunDir(c.ID), 0o710); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create the container's run directory: %w", err)
	}
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		return err
	}
	_, mspan := trace.Start(ctx, "engine.snapshot.mount", "target", rootfs)
	err = e.mountRootfs(ctx, c, rootfs)
	mspan.End(err)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = snapshot.UnmountAll(rootfs)
			e.unmountVolumes(c) // volumes.go
		}
	}()
	_, gspan := trace.Start(ctx, "engine.spec.generate")
	spec, err := e.containerSpec(ctx, c, rootfs) // containerspec.go
	gspan.End(err)
	if err != nil {
		return err
	}
	attach, err := e.attachRequest(c.Snapshot()) // network.go; nil: none
	if err != nil {
		return err
	}
	// Before the bundle is written: whether the CNI plugins have to run
	// (nil netReady: no network, or a spare namespace taken) decides on
	// the gate below.
	netReady, err := e.prepareNetwork(ctx, attach) // network.go
	if err != nil {
		return err
	}
	defer func() {
		if err != nil && attach != nil {
			e.abortNetwork(ctx, c, netReady)
		}
	}()
	// A container that hakod attaches to networks while the runtime
	// creates it waits for them at a start gate (gate.go).
	var gate *startGate
	if e.cfg.GatePath != "" && netReady != nil {
		if gate, err = newStartGate(bundle); err != nil {
			return err
		}
		defer gate.close() // after the runtime's command: the hook has read
		addGateHook(spec, gate.hook(e.cfg.GatePath))
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o600); err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	c.setBundleProcess(spec.Process) // spec is not used (or changed) past here
	if gate != nil {
		if netReady == nil {
			gate.open(nil)
		} else {
			go func() { gate.open(netReady()) }()
		}
	}
	snap := c.Snapshot()
	tctx, tspan := trace.Start(ctx, "engine.shim.start", "runtime", snap.Runtime)
	// When nothing has to happen between the runtime's create and start (no
	// network to attach, or one the gate waits for), the shim runs both as
	// one command (shim.Config.Run), one process start less.
	task, err := e.newTask(tctx, c, bundle, netReady == nil || gate != nil)
	tspan.End(err)
	if err != nil {
		if gate != nil && netReady != nil {
			if nerr := netReady(); nerr != nil {
				err = nerr // the cause; the runtime only saw the gate's "no"
			}
		}
		return err
	}
	c.mu.Lock()
	c.task = task
	pending := c.attach
	c.attach = nil
	c.mu.Unlock()
	// Attaches made before the start get the program's first byte.
	for _, pa := range pending {
		pa.connect(ctx, task)
	}
	rctx, rspan := trace.Start(ctx, "engine.task.start")
	if netReady != nil {
		err = netReady() // the container's networks are ready before its program runs
	}
	if err == nil {
		err = task.Start(rctx)
	}
	rspan.End(err)
	if err != nil {
		_, _ = task.Delete(context.WithoutCancel(ctx), true)
		task.Close()
		c.mu.Lock()
		c.task = nil
		c.mu.Unlock()
		return err
	}
	var startTrace string
	if sp := trace.FromContext(ctx); sp != nil {
		startTrace = sp.Traceparent()
	}
	c.mu.Lock()
	c.startTrace = startTrace
	c.mu.Unlock()
	c.setState(func(s *State) {
		s.Status = container.StateRunning
		s.Pid = task.Pid()
		s.StartedAt = time.Now().UTC()
		s.ExitCode = 0
		s.Error = ""
		s.OOMKilled = false
		s.HasBeenStarted = true
	})
	e.events.emitContainer(c, "start", nil)
	// Watch before saving: a program that has already ended (`run --rm
	// IMG true`) is dealt with while the record is written (an fsync or
	// two), not after. The saves are ordered (Container.saveMu): if the
	// exit's is first, this one writes the exited state again, and after
	// a --rm removal it writes nothing.
	e.watch(c, task)
	handOff() // monitor.go: the exit of an ended program is handled now, not after the fsync
	if err := e.save(c); err != nil {
		e.log.Warn("save container state", "id", c.ID, "err", err)
	}
	return nil
}

// mountRootfs mounts the container's snapshot at rootfs.
func (e *Engine) mountRootfs(ctx context.Context, c *Container, rootfs string) error {
	mounts, err := e.images.Snapshots().Mounts(ctx, c.ID)
	if err != nil {
		return fmt.Errorf("the container's filesystem: %w", err)
	}
	_ = snapshot.UnmountAll(rootfs) // left mounted by a crash
	if c.Snapshot().HostConfig.AutoRemove {
		// Its writable layer is removed with it at exit: no syncs.
		return snapshot.MountVolatile(mounts, rootfs)
	}
	return snapshot.MountAll(mounts, rootfs)
}

// makeWorkdir creates the working directory (-w, or the image's WORKDIR)
// in the container's filesystem when it is missing, as dockerd does: mode
// 0755, root's, every component resolved inside rootfs.
func makeWorkdir(rootfs, cwd string) error {
	if cwd == "" || cwd == "/" {
		return nil
	}
	err := securejoin.MkdirAll(rootfs, cwd, 0o755)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.ENOTDIR):
		// dockerd's message; its other cases name host paths.
		//lint:ignore ST1005 dockerd's text, which clients may match
		return fmt.Errorf("Cannot mkdir: %s is not a directory", cwd)
	default:
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("create the working directory %s: %w", cwd, err)
	}
}

// generateSpec turns the container's configuration into an OCI spec.
func (e *Engine) generateSpec(ctx context.Context, c *Container, rootfs string) (*specs.Spec, error) {
	snap := c.Snapshot()
	img, err := e.images.Resolve(ctx, snap.ImageID)
	if err != nil {
		return nil, fmt.Errorf("image of container %s: %w", c.ID, err)
	}
	imgCfg, _, err := e.images.ReadConfig(ctx, img)
	if err != nil {
		return nil, err
	}
	hc := snap.HostConfig
	opts := runOptions(c.ID, snap.Config, hc)
	opts.RootfsPath = rootfs
	// The container's config already holds the merged values; the image's
	// entrypoint and cmd must not be merged a second time.
	opts.Entrypoint = append([]string{}, snap.Path)
	opts.Cmd = snap.Args
	extra, err := ociMounts(hc)
	if err != nil {
		return nil, err
	}
	vols, err := e.volumeSpecMounts(ctx, c, snap) // volumes.go
	if err != nil {
		return nil, err
	}
	extra = append(extra, vols...)
	files, err := e.etcFiles(c, snap)
	if err != nil {
		return nil, err
	}
	opts.Mounts = append(files, extra...)
	if hc.Init != nil && *hc.Init {
		initPath, err := initBinary()
		if err != nil {
			return nil, err
		}
		opts.Mounts = append(opts.Mounts, specs.Mount{Destination: "/sbin/hako-init", Type: "bind", Source: initPath, Options: []string{"bind", "ro"}})
	}
	res, err := specgen.Generate(imgCfg.Config, rootfs, opts)
	if err != nil {
		return nil, errdefs.Invalidf("%s", err.Error())
	}
	s := res.Spec
	// As dockerd's getUser: the primary group is one of the supplementary
	// groups too (`id` there says groups=GID,...).
	s.Process.User.AdditionalGids = append([]uint32{s.Process.User.GID}, s.Process.User.AdditionalGids...)
	if err := makeWorkdir(rootfs, s.Process.Cwd); err != nil {
		return nil, err
	}
	if hc.Init != nil && *hc.Init {
		s.Process.Args = append([]string{"/sbin/hako-init", "--"}, s.Process.Args...)
	}
	if s.Process.Terminal && hc.ConsoleSize[0] > 0 && hc.ConsoleSize[1] > 0 {
		s.Process.ConsoleSize = &specs.Box{Height: hc.ConsoleSize[0], Width: hc.ConsoleSize[1]}
	}
	s.Linux.CgroupsPath = "/hako/" + c.ID
	if hc.CgroupParent != "" {
		s.Linux.CgroupsPath = filepath.Join("/", hc.CgroupParent, c.ID)
	}
	if err := e.applyNamespaces(s, snap); err != nil {
		return nil, err
	}
	if err := applyDevicesAndResources(s, hc); err != nil { // runchecks.go
		return nil, err
	}
	if hc.OomScoreAdj != 0 {
		v := hc.OomScoreAdj
		s.Process.OOMScoreAdj = &v
	}
	if err := addGroups(s, hc.GroupAdd, rootfs); err != nil {
		return nil, err
	}
	if len(hc.Sysctls) > 0 {
		if s.Linux.Sysctl == nil {
			s.Linux.Sysctl = map[string]string{}
		}
		for k, v := range hc.Sysctls {
			s.Linux.Sysctl[k] = v
		}
	}
	return s, nil
}

// applyNamespaces sets the network, IPC, PID and UTS namespaces the way the
// container's modes ask: its own, the host's, or another container's.
func (e *Engine) applyNamespaces(s *specs.Spec, c Record) error {
	hc := c.HostConfig
	set := func(t specs.LinuxNamespaceType, mode string) error {
		var path string
		switch {
		case mode == "host":
			removeNamespace(s, t)
			return nil
		case strings.HasPrefix(mode, "container:"):
			other, err := e.Get(strings.TrimPrefix(mode, "container:"))
			if err != nil {
				return err
			}
			pid := other.Snapshot().State.Pid
			if pid == 0 {
				return errdefs.Conflictf("cannot join namespaces of a stopped container %s", other.ID)
			}
			path = fmt.Sprintf("/proc/%d/ns/%s", pid, map[specs.LinuxNamespaceType]string{
				specs.NetworkNamespace: "net", specs.IPCNamespace: "ipc", specs.PIDNamespace: "pid", specs.UTSNamespace: "uts",
			}[t])
		default:
			return nil
		}
		for i := range s.Linux.Namespaces {
			if s.Linux.Namespaces[i].Type == t {
				s.Linux.Namespaces[i].Path = path
				return nil
			}
		}
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: t, Path: path})
		return nil
	}
	netMode := string(hc.NetworkMode)
	if c.Sandbox != "" {
		netMode = "container:" + c.Sandbox
		if hc.IpcMode == "" {
			hc.IpcMode = container.IpcMode("container:" + c.Sandbox)
		}
		if hc.UTSMode == "" {
			hc.UTSMode = container.UTSMode("container:" + c.Sandbox)
		}
	}
	if err := set(specs.NetworkNamespace, netMode); err != nil {
		return err
	}
	if p := e.pinnedNetNS(c); p != "" {
		// hakod's namespace, attached to the container's networks before
		// its program starts (network.go).
		setNamespacePath(s, specs.NetworkNamespace, p)
	}
	if netMode == "host" || strings.HasPrefix(netMode, "container:") {
		s.Hostname = "" // the UTS namespace follows the network's owner
		if netMode == "host" {
			removeNamespace(s, specs.UTSNamespace)
		}
	}
	if err := set(specs.IPCNamespace, string(hc.IpcMode)); err != nil {
		return err
	}
	if err := set(specs.PIDNamespace, string(hc.PidMode)); err != nil {
		return err
	}
	return set(specs.UTSNamespace, string(hc.UTSMode))
}

func removeNamespace(s *specs.Spec, t specs.LinuxNamespaceType) {
	var out []specs.LinuxNamespace
	for _, ns := range s.Linux.Namespaces {
		if ns.Type != t {
			out = append(out, ns)
		}
	}
	s.Linux.Namespaces = out
}
