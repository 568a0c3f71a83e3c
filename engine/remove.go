package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	bolt "go.etcd.io/bbolt"

	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/image"
	"github.com/hako-project/hako/shim"
	"github.com/hako-project/hako/snapshot"
	"github.com/hako-project/hako/trace"
)

var errAlreadyRemoving = errors.New("removal already in progress")

// Remove deletes a container and everything it owns: its writable layer,
// directory (logs, bundle) and record. A running container needs force.
func (e *Engine) Remove(ctx context.Context, ref string, force bool) (err error) {
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	ctx, span := trace.Start(ctx, "engine.remove", "id", c.ID)
	defer func() { span.End(err) }()
	err = e.remove(ctx, c, force)
	if errors.Is(err, errAlreadyRemoving) {
		return errdefs.Conflictf("removal of container %s is already in progress", c.ID)
	}
	return err
}

func (e *Engine) remove(ctx context.Context, c *Container, force bool) (err error) {
	c.mu.Lock()
	if c.removing || c.State.Status == container.StateRemoving {
		c.mu.Unlock()
		return errAlreadyRemoving
	}
	if st := c.State.Status; live(st) && !force {
		c.mu.Unlock()
		if st == container.StatePaused {
			return errdefs.Conflictf("cannot remove container %q: container is paused and must be unpaused first", "/"+c.Name)
		}
		return errdefs.Conflictf("cannot remove container %q: container is running: stop the container before removing or force remove", "/"+c.Name)
	}
	// Claimed before the kill, as dockerd does: the --rm removal the
	// program's exit sets off then finds it claimed and leaves it to us
	// (`rm -f` of a running --rm container).
	c.removing = true
	c.State.ManuallyStopped = true
	c.mu.Unlock()
	// A start under way finishes first and what it started is killed,
	// instead of its files being taken from under it (it then failed
	// with the runtime's "no config.json"). No start begins after this:
	// start refuses a container being removed.
	task := c.startedTask()
	defer func() {
		if err != nil {
			c.mu.Lock()
			c.removing = false
			c.mu.Unlock()
		}
	}()
	if task != nil && !force {
		// The start under way ran it: as docker's rm (without -f) of a
		// container that is running by the time its check gets the
		// container's lock.
		return errdefs.Conflictf("cannot remove container %q: container is running: stop the container before removing or force remove", "/"+c.Name)
	}
	if task != nil {
		if err := task.Kill(ctx, syscall.SIGKILL, true); err != nil && !isGone(err) {
			return fmt.Errorf("kill container %s: %w", c.ID, err)
		}
		_ = task.Resume(ctx) // frozen processes die only once thawed
		if err := e.waitStopped(ctx, c); err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.State.Status = container.StateRemoving
	c.notifyLocked()
	c.mu.Unlock()

	// Ended before the "removed" notice: a `run --rm --trace` reads the
	// trace as soon as its wait returns.
	ctx, span := trace.Start(ctx, "engine.remove.cleanup", "id", c.ID)
	err = e.cleanupRemoved(ctx, c)
	span.End(err)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.State.Status = "removed"
	c.notifyLocked()
	c.mu.Unlock()
	e.events.emitContainer(c, "destroy", nil)
	return nil
}

// removeFiles removes a container's writable layer and its directory
// (bundle, logs, hosts files); the filesystem must be unmounted. Already
// gone is no error: the exit of a --rm container begins with this, and its
// removal does it again.
//
// The directory is first renamed into the trash (one rename), the layer
// removed, and then the directory's files are removed in the background:
// the removal does not wait for a few unlinks and rmdirs (1-2 ms here),
// and a container whose layer cannot be removed gets its directory back,
// logs included, as it goes dead (docker keeps it too; rm -f tries again).
// What a crash leaves in the trash, Open removes.
func (e *Engine) removeFiles(ctx context.Context, c *Container) error {
	// The run directory is on a tmpfs: a few unlinks, done here.
	if err := os.RemoveAll(e.RunDir(c.ID)); err != nil {
		e.log.Warn("remove a removed container's run directory", "id", c.ID, "err", err)
	}
	dir, trash := e.containerDir(c.ID), filepath.Join(e.cfg.trashDir(), c.ID)
	moved := false
	if err := os.Rename(dir, trash); err == nil {
		moved = true
	} else if !errors.Is(err, os.ErrNotExist) {
		e.log.Warn("move a removed container's directory to the trash", "id", c.ID, "err", err)
	}
	sctx, span := trace.Start(ctx, "engine.remove.snapshot")
	err := e.images.RemoveSnapshot(sctx, c.ID)
	if errdefs.IsNotFound(err) {
		err = nil
	}
	span.End(err)
	if err != nil {
		if moved {
			if rerr := os.Rename(trash, dir); rerr != nil {
				e.log.Warn("put a dead container's directory back", "id", c.ID, "err", rerr)
			}
		}
		c.setState(func(s *State) { s.Status = container.StateDead; s.Error = err.Error() })
		return fmt.Errorf("remove the container's filesystem: %w", err)
	}
	if !moved {
		// Gone already, or the rename failed: removed here.
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("remove container directory: %w", err)
		}
		return nil
	}
	e.wg.Add(1)
	release := e.holdTrace(ctx) // monitor.go
	go func() {
		defer e.wg.Done()
		defer release()
		_, span := trace.Start(ctx, "engine.remove.dir")
		err := os.RemoveAll(trash)
		span.End(err)
		if err != nil {
			e.log.Warn("remove a removed container's directory", "id", c.ID, "dir", trash, "err", err)
		}
	}()
	return nil
}

// removeOrphanSnapshots removes the writable layers of containers without
// a record. Create prepares a container's layer before it saves its record,
// and a hakod killed in between left the layer behind for good: nothing
// listed it, and the image it was made from stayed "in use" (rmi refused,
// GC kept its layers). Container layers are the only active snapshots with
// image.LabelImage (PrepareContainer, called by create alone), so at start,
// before any create, an active snapshot with that label and no container
// is such a leftover.
func (e *Engine) removeOrphanSnapshots(ctx context.Context, records map[string]bool) {
	infos, err := e.images.Snapshots().List(ctx)
	if err != nil {
		e.log.Warn("list snapshots for containers' leftover layers", "err", err)
		return
	}
	for _, in := range infos {
		if in.Kind != snapshot.Active || in.Labels[image.LabelImage] == "" {
			continue
		}
		if records[in.Name] {
			continue
		}
		e.log.Info("removing the layer of a container that has no record", "id", in.Name)
		if err := e.images.RemoveSnapshot(ctx, in.Name); err != nil && !errdefs.IsNotFound(err) {
			e.log.Warn("remove the layer of a container that has no record", "id", in.Name, "err", err)
		}
	}
}

// removeStrayDirs removes the directories of containers without a record:
// their run directories (container.go: RunDir), left by a removal that
// could not remove one (its rootfs still mounted) or by a crash during a
// removal, and their directories under the data root (logs, hosts files),
// left by a crash between a create's making of it and the record's save,
// or by a record deleted while its shim still ran (removeOrphanShims).
func (e *Engine) removeStrayDirs(records map[string]bool) {
	for _, parent := range []string{e.cfg.runContainersDir(), e.cfg.containersDir()} {
		ents, _ := os.ReadDir(parent)
		for _, ent := range ents {
			if records[ent.Name()] {
				continue
			}
			e.unmountRootfs(ent.Name())
			if err := os.RemoveAll(filepath.Join(parent, ent.Name())); err != nil {
				e.log.Warn("remove the directory of a container that has no record", "id", ent.Name(), "dir", parent, "err", err)
			}
		}
	}
}

// removeOrphanShims ends the shims of containers without a record, and
// what they run. A record gone while its shim ran (a crash in a removal
// between the two) left the shim, the container's processes, its cgroup
// and its rootfs mount for good: nothing listed them. (A record that
// cannot be read still counts as one: records holds its ID.) At start, before any create, every shim state directory
// belongs either to a record or to nobody. Runs before removeStrayDirs,
// so that a container's rootfs is unmounted only once nothing runs in it.
func (e *Engine) removeOrphanShims(ctx context.Context, records map[string]bool) {
	ents, err := os.ReadDir(e.cfg.shimsDir())
	if err != nil {
		e.log.Warn("list shims for those of removed containers", "err", err)
		return
	}
	for _, ent := range ents {
		id := ent.Name()
		if records[id] {
			continue
		}
		e.log.Info("ending the shim of a container that has no record", "id", id)
		if err := endShim(ctx, filepath.Join(e.cfg.shimsDir(), id)); err != nil {
			e.log.Warn("end the shim of a container that has no record", "id", id, "err", err)
		}
	}
}

// endShim kills and deletes the container of the shim in dir and ends the
// shim; if the shim has gone already, it deletes what it left (the
// runtime's container, the state directory).
func endShim(ctx context.Context, dir string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sc, err := shim.Connect(ctx, dir)
	switch {
	case err == nil:
		defer sc.Close()
		_, err = sc.Delete(ctx, true)
		return err
	case errors.Is(err, shim.ErrGone):
		_, err = shim.Cleanup(ctx, dir)
		return err
	case errors.Is(err, shim.ErrNotFound):
		// No configuration: Start writes it before the shim process
		// exists, so no shim ever ran here.
		return os.RemoveAll(dir)
	}
	return err
}

// emptyTrash removes what the trash holds: container directories whose
// background removal a crash or a stop cut short.
func (e *Engine) emptyTrash() error {
	ents, err := os.ReadDir(e.cfg.trashDir())
	if err != nil {
		return err
	}
	for _, ent := range ents {
		if err := os.RemoveAll(filepath.Join(e.cfg.trashDir(), ent.Name())); err != nil {
			return fmt.Errorf("empty the trash: %w", err)
		}
	}
	return nil
}

// deleteRecord deletes the container's record; no save writes it back
// afterwards.
func (e *Engine) deleteRecord(c *Container) error {
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	err := e.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketContainers).Delete([]byte(c.ID))
	})
	c.gone = err == nil
	return err
}

// cleanupRemoved removes what a container being removed owns: its network
// attachments, filesystem, directory, record, volume references and names.
func (e *Engine) cleanupRemoved(ctx context.Context, c *Container) error {
	e.detachNetwork(ctx, c, true) // network.go
	e.unmountRootfs(c.ID)         // container.go
	if err := e.removeFiles(ctx, c); err != nil {
		return err
	}
	_, span := trace.Start(ctx, "engine.remove.record")
	err := e.deleteRecord(c)
	span.End(err)
	if err != nil {
		return err
	}
	e.releaseVolumes(ctx, c) // volumes.go
	e.mu.Lock()
	delete(e.containers, c.ID)
	if e.names[c.Name] == c.ID {
		delete(e.names, c.Name)
	}
	for id, x := range e.execs {
		if x.container == c {
			delete(e.execs, id)
		}
	}
	e.mu.Unlock()
	return nil
}
