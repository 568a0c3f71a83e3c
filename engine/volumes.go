package engine

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/snapshot"
	"github.com/hako-project/hako/trace"
	"github.com/hako-project/hako/volume"
)

// Volumes in the engine, as dockerd wires its volume service:
//
//   - create resolves a container's volumes (--volumes-from, -v NAME:/p,
//     --mount type=volume, then the image's VOLUME list and -v /p as
//     anonymous volumes where nothing else is mounted), creates the missing
//     ones with the container as their first user, copies the image's
//     content into new empty ones, and records them in the container's
//     Mounts, which inspect shows and everything later derives from;
//   - start mounts each volume (its file system, for one with options) and
//     binds its _data into the container; the exit unmounts it again;
//   - remove releases them, and deletes the anonymous ones with rm -v and
//     --rm;
//   - at start of hakod the users of every volume are read back from the
//     container records, so "volume is in use" survives restarts.

// plannedVolume is one volume mount of a container being created, decided
// before anything is made.
type plannedVolume struct {
	name      string // given by planVolumes to anonymous ones
	dest      string
	mode      string // as inspect shows it: the -v mode, "z" by default, "" for anonymous
	rw        bool
	copyData  bool
	anonymous bool // from the image's VOLUME list or -v /p
	driver    string
	options   map[string]string
	labels    map[string]string
	// inherited is a mount point of another container (--volumes-from),
	// volume or bind, taken as it is.
	inherited *container.MountPoint
}

// planVolumes lists the volume mounts of a new container in docker's
// order and checks what docker checks then: duplicate destinations,
// volume names, drivers, and the options of volumes to be made. A
// container of a pod sandbox (the CRI's) has none: its mounts are its
// spec's, and image volumes are the CRI's to handle.
func (e *Engine) planVolumes(sandbox string, hc *container.HostConfig, cfgVolumes map[string]struct{}) ([]plannedVolume, error) {
	if sandbox != "" {
		return nil, nil
	}
	var plan []plannedVolume
	byDest := map[string]int{} // plan index of an inherited mount, which a later one replaces
	taken := map[string]bool{} // destinations of -v and --mount
	tmpfs := map[string]bool{}
	for d := range hc.Tmpfs {
		tmpfs[path.Clean(d)] = true
	}
	drop := func(dest string) {
		if i, ok := byDest[dest]; ok {
			plan[i] = plannedVolume{} // replaced by what the container itself asks
			delete(byDest, dest)
		}
	}
	for _, vf := range hc.VolumesFrom {
		ref, mode, _ := strings.Cut(vf, ":")
		switch mode {
		case "", "rw", "ro":
		default:
			return nil, errdefs.Invalidf("invalid mode: %s", mode)
		}
		other, err := e.Get(ref)
		if err != nil {
			// A 400 as docker has it: a 404 would make the docker CLI
			// pull the image and try again.
			return nil, errdefs.Invalidf("%s", err.Error())
		}
		for _, mp := range other.Snapshot().Mounts {
			if mp.Type != mount.TypeVolume && mp.Type != mount.TypeBind {
				continue
			}
			cp := mp
			cp.Mode = ""
			cp.RW = mp.RW && mode != "ro"
			drop(cp.Destination)
			byDest[cp.Destination] = len(plan)
			plan = append(plan, plannedVolume{dest: cp.Destination, inherited: &cp})
		}
	}
	for _, s := range hc.Binds {
		b, err := parseBind(s)
		if err != nil {
			return nil, err
		}
		dest := path.Clean(b.dest)
		if taken[dest] || tmpfs[dest] {
			return nil, errdefs.Invalidf("Duplicate mount point: %s", dest)
		}
		taken[dest] = true
		drop(dest)
		if b.volume {
			plan = append(plan, plannedVolume{name: b.source, dest: dest, mode: orDefault(b.mode, "z"), rw: !b.readonly,
				copyData: !b.nocopy, anonymous: b.source == "", driver: hc.VolumeDriver})
		}
	}
	for _, m := range hc.Mounts {
		dest := path.Clean(m.Target)
		if taken[dest] {
			return nil, errdefs.Invalidf("Duplicate mount point: %s", m.Target)
		}
		taken[dest] = true
		drop(dest)
		if m.Type != mount.TypeVolume {
			continue
		}
		p := plannedVolume{name: m.Source, dest: dest, mode: "z", rw: !m.ReadOnly, copyData: true}
		if vo := m.VolumeOptions; vo != nil {
			p.copyData = !vo.NoCopy
			p.labels = vo.Labels
			if vo.DriverConfig != nil {
				p.driver, p.options = vo.DriverConfig.Name, vo.DriverConfig.Options
			}
		}
		p.anonymous = m.Source == ""
		plan = append(plan, p)
	}
	dests := make([]string, 0, len(cfgVolumes))
	for d := range cfgVolumes {
		dests = append(dests, path.Clean(d))
	}
	sort.Strings(dests)
	for _, d := range dests {
		if _, inherited := byDest[d]; taken[d] || tmpfs[d] || inherited {
			continue // docker: "mountpoint already exists, skipping anonymous volume"
		}
		taken[d] = true
		plan = append(plan, plannedVolume{dest: d, rw: true, copyData: true, anonymous: true, driver: hc.VolumeDriver})
	}
	out := plan[:0]
	for _, p := range plan {
		if p.dest == "" {
			continue // dropped
		}
		if p.inherited == nil {
			if p.anonymous {
				p.name = volume.NewName() // named now, as docker does, so errors name it
			}
			if err := volume.ValidateDriver(p.name, p.driver); err != nil {
				return nil, err
			}
			if err := volume.ValidateName(p.name); err != nil {
				return nil, err
			}
			if _, err := e.volumes.Get(p.name); err != nil {
				if err := volume.ValidateOptions(p.name, p.options); err != nil {
					return nil, err
				}
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// createVolumes makes the planned volumes with container id as their user,
// copies the image's content into the new empty ones, and returns the
// container's volume mount points. When it fails, what it made is gone
// again and the references it took are released.
func (e *Engine) createVolumes(ctx context.Context, id string, plan []plannedVolume) (mps []container.MountPoint, err error) {
	if len(plan) == 0 {
		return nil, nil
	}
	ctx, span := trace.Start(ctx, "engine.volumes.create", "id", id)
	defer func() { span.End(err) }()
	var made, used []string
	defer func() {
		if err == nil {
			return
		}
		for _, n := range used {
			e.volumes.Release(n, id)
		}
		for _, n := range made {
			if rerr := e.volumes.Remove(n, true); rerr != nil {
				e.log.Warn("remove a volume of a container that could not be created", "volume", n, "err", rerr)
				continue
			}
			e.emitVolume("destroy", n, nil)
		}
	}()
	for i := range plan {
		p := &plan[i]
		if in := p.inherited; in != nil {
			if in.Type == mount.TypeVolume {
				if err := e.volumes.Acquire(in.Name, id); err != nil {
					return nil, err
				}
				used = append(used, in.Name)
			}
			mps = append(mps, *in)
			continue
		}
		v, created, err := e.volumes.Create(volume.CreateOptions{Name: p.name, Anonymous: p.anonymous, Driver: p.driver,
			Options: p.options, Labels: p.labels, Ref: id})
		if err != nil {
			return nil, err
		}
		used = append(used, v.Name)
		if created {
			made = append(made, v.Name)
			e.emitVolume("create", v.Name, nil)
		}
		mps = append(mps, container.MountPoint{Type: mount.TypeVolume, Name: v.Name, Source: v.Mountpoint,
			Destination: p.dest, Driver: v.Driver, Mode: p.mode, RW: p.rw})
	}
	if err := e.populateVolumes(ctx, id, plan); err != nil {
		return nil, err
	}
	return mps, nil
}

// populateVolumes copies what the image has at each volume's destination
// into the volume, if the volume is empty (docker's copy-up, done at
// create with the container's file system mounted, as docker does), and
// refuses an anonymous volume over a file of the image, as docker does.
func (e *Engine) populateVolumes(ctx context.Context, id string, plan []plannedVolume) (err error) {
	need := false
	for _, p := range plan {
		need = need || (p.inherited == nil && (p.copyData || p.anonymous))
	}
	if !need {
		return nil
	}
	ctx, span := trace.Start(ctx, "engine.volumes.populate", "id", id)
	defer func() { span.End(err) }()
	rootfs := filepath.Join(e.RunDir(id), "bundle", "rootfs")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		return fmt.Errorf("create rootfs mount point: %w", err)
	}
	mounts, err := e.images.Snapshots().Mounts(ctx, id)
	if err != nil {
		return fmt.Errorf("the container's filesystem: %w", err)
	}
	if err := snapshot.MountAll(mounts, rootfs); err != nil {
		return fmt.Errorf("mount the container's filesystem: %w", err)
	}
	defer func() {
		if uerr := snapshot.UnmountAll(rootfs); uerr != nil && err == nil {
			err = fmt.Errorf("unmount the container's filesystem: %w", uerr)
		}
	}()
	for _, p := range plan {
		if p.inherited != nil {
			continue
		}
		if p.anonymous {
			if isFileInRoot(rootfs, p.dest) {
				return fmt.Errorf("cannot mount volume over existing file, file exists %s", filepath.Join(rootfs, p.dest))
			}
		}
		if !p.copyData {
			continue
		}
		if _, err := e.volumes.Populate(p.name, rootfs, p.dest); err != nil {
			return err
		}
	}
	return nil
}

// isFileInRoot reports whether p, resolved inside rootfs, exists and is not
// a directory.
func isFileInRoot(rootfs, p string) bool {
	root, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(root)
	fd, err := unix.Openat2(root, strings.TrimPrefix(path.Clean("/"+p), "/"), &unix.OpenHow{
		Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	return unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR
}

// releaseCreated undoes createVolumes for a container whose creation failed
// after it.
func (e *Engine) releaseCreated(id string, mps []container.MountPoint) {
	for _, mp := range mps {
		if mp.Type != mount.TypeVolume {
			continue
		}
		e.volumes.Release(mp.Name, id)
		if v, err := e.volumes.Get(mp.Name); err == nil && v.Anonymous() {
			_ = e.volumes.Remove(mp.Name, false)
		}
	}
}

// volumeSpecMounts mounts the container's volumes and returns the binds
// that put them into the container, plus the binds it inherited with
// --volumes-from (its own -v and --mount binds come from ociMounts). On
// failure nothing stays mounted.
func (e *Engine) volumeSpecMounts(ctx context.Context, c *Container, rec Record) (out []specs.Mount, err error) {
	own := map[string]bool{}
	for _, s := range rec.HostConfig.Binds {
		if b, err := parseBind(s); err == nil && !b.volume {
			own[path.Clean(b.dest)] = true
		}
	}
	for _, m := range rec.HostConfig.Mounts {
		if m.Type == mount.TypeBind {
			own[path.Clean(m.Target)] = true
		}
	}
	var mounted []string
	defer func() {
		if err != nil {
			for _, n := range mounted {
				_, _ = e.volumes.Unmount(n, c.ID)
			}
		}
	}()
	for _, mp := range rec.Mounts {
		switch {
		case mp.Type == mount.TypeVolume:
			_, span := trace.Start(ctx, "engine.volumes.mount", "volume", mp.Name)
			src, err := e.volumes.Mount(mp.Name, c.ID)
			span.End(err)
			if err != nil {
				return nil, err
			}
			mounted = append(mounted, mp.Name)
			opts := []string{"rbind", "rprivate"}
			if !mp.RW {
				opts = append(opts, "ro")
			}
			out = append(out, specs.Mount{Destination: mp.Destination, Type: "bind", Source: src, Options: opts})
			e.emitVolume("mount", mp.Name, map[string]string{"container": c.ID, "destination": mp.Destination,
				"propagation": string(mp.Propagation), "read/write": fmt.Sprint(mp.RW)})
		case mp.Type == mount.TypeBind && !own[mp.Destination]:
			opts := []string{"rbind", orDefault(string(mp.Propagation), "rprivate")}
			if !mp.RW {
				opts = append(opts, "ro")
			}
			out = append(out, specs.Mount{Destination: mp.Destination, Type: "bind", Source: mp.Source, Options: opts})
		}
	}
	return out, nil
}

// unmountVolumes ends a stopped container's use of its volumes (a volume
// with options is unmounted when its last user goes).
func (e *Engine) unmountVolumes(c *Container) {
	for _, mp := range c.Snapshot().Mounts {
		if mp.Type != mount.TypeVolume {
			continue
		}
		was, err := e.volumes.Unmount(mp.Name, c.ID)
		if err != nil {
			e.log.Warn("unmount a volume of a stopped container", "id", c.ID, "volume", mp.Name, "err", err)
		}
		if was {
			e.emitVolume("unmount", mp.Name, map[string]string{"container": c.ID})
		}
	}
}

// adoptVolumes counts a container read back at start as a user of its
// volumes, and a running one as having them mounted.
func (e *Engine) adoptVolumes(c *Container) {
	running := live(c.State.Status)
	for _, mp := range c.Mounts {
		if mp.Type != mount.TypeVolume {
			continue
		}
		if err := e.volumes.Acquire(mp.Name, c.ID); err != nil {
			e.log.Warn("a container's volume is gone", "id", c.ID, "volume", mp.Name, "err", err)
			continue
		}
		if running {
			e.volumes.Adopt(mp.Name, c.ID)
		}
	}
}

// volumeRemoval marks a container removal that takes the container's
// anonymous volumes along (docker rm -v, and --rm).
type volumeRemoval struct{}

func withVolumeRemoval(ctx context.Context) context.Context {
	return context.WithValue(ctx, volumeRemoval{}, true)
}

// RemoveWithVolumes is Remove that also deletes the container's anonymous
// volumes that no other container uses (docker rm -v).
func (e *Engine) RemoveWithVolumes(ctx context.Context, ref string, force bool) error {
	return e.Remove(withVolumeRemoval(ctx), ref, force)
}

// releaseVolumes ends a removed container's use of its volumes and, when
// the removal asks for it, deletes its anonymous ones: those created for
// it (not named by its own -v or --mount) that no other container uses.
func (e *Engine) releaseVolumes(ctx context.Context, c *Container) {
	rec := c.Snapshot()
	rmAnon, _ := ctx.Value(volumeRemoval{}).(bool)
	named := map[string]bool{}
	for _, s := range rec.HostConfig.Binds {
		if b, err := parseBind(s); err == nil && b.volume {
			named[b.source] = true
		}
	}
	for _, m := range rec.HostConfig.Mounts {
		if m.Type == mount.TypeVolume && m.Source != "" {
			named[m.Source] = true
		}
	}
	for _, mp := range rec.Mounts {
		if mp.Type != mount.TypeVolume {
			continue
		}
		e.volumes.Release(mp.Name, c.ID)
		if !rmAnon || named[mp.Name] {
			continue
		}
		if v, err := e.volumes.Get(mp.Name); err != nil || !v.Anonymous() {
			continue
		}
		err := e.volumes.Remove(mp.Name, false)
		switch {
		case err == nil:
			e.emitVolume("destroy", mp.Name, nil)
		case errdefs.IsConflict(err) || errdefs.IsNotFound(err):
			// Another container uses it (--volumes-from): not an error,
			// as docker has it.
		default:
			e.log.Warn("remove an anonymous volume of a removed container", "id", c.ID, "volume", mp.Name, "err", err)
		}
	}
}

// volumesDir is docker's place for volumes: <data-root>/volumes.
func (c Config) volumesDir() string { return filepath.Join(c.DataRoot, "volumes") }

// Volumes is the volume store, for listing and inspecting.
func (e *Engine) Volumes() *volume.Store { return e.volumes }

// CreateVolume makes a volume (docker volume create); an existing one of
// that name is returned as it is.
func (e *Engine) CreateVolume(ctx context.Context, o volume.CreateOptions) (v volume.Volume, err error) {
	_, span := trace.Start(ctx, "engine.volume.create", "name", o.Name)
	defer func() { span.End(err) }()
	o.Ref = ""
	v, created, err := e.volumes.Create(o)
	if err != nil {
		return volume.Volume{}, err
	}
	if created {
		e.emitVolume("create", v.Name, nil)
	}
	return v, nil
}

// RemoveVolume deletes a volume no container uses (docker volume rm).
func (e *Engine) RemoveVolume(ctx context.Context, name string, force bool) (err error) {
	_, span := trace.Start(ctx, "engine.volume.remove", "name", name)
	defer func() { span.End(err) }()
	_, gerr := e.volumes.Get(name)
	if err := e.volumes.Remove(name, force); err != nil {
		return err
	}
	if gerr == nil {
		e.emitVolume("destroy", name, nil)
	}
	return nil
}

// PruneVolumes deletes the unused volumes without options that match
// (docker volume prune).
func (e *Engine) PruneVolumes(ctx context.Context, match func(volume.Volume) bool) (res volume.PruneResult, err error) {
	_, span := trace.Start(ctx, "engine.volume.prune")
	defer func() { span.End(err) }()
	res, err = e.volumes.Prune(match)
	for _, n := range res.Deleted {
		e.emitVolume("destroy", n, nil)
	}
	e.events.Emit(events.Message{Type: events.VolumeEventType, Action: "prune", Scope: "local",
		Actor: events.Actor{Attributes: map[string]string{"reclaimed": fmt.Sprint(res.SpaceReclaimed)}}})
	if err != nil && len(res.Deleted) == 0 {
		return res, err
	}
	if err != nil {
		e.log.Warn("volume prune left some volumes", "err", err)
	}
	return res, nil
}

// VolumeUsers lists the containers that use a volume.
func (e *Engine) VolumeUsers(name string) []string { return e.volumes.Refs(name) }

func (e *Engine) emitVolume(action, name string, extra map[string]string) {
	attrs := map[string]string{"driver": volume.DriverName}
	for k, v := range extra {
		attrs[k] = v
	}
	e.events.Emit(events.Message{Type: events.VolumeEventType, Action: events.Action(action), Scope: "local",
		Actor: events.Actor{ID: name, Attributes: attrs}})
}
