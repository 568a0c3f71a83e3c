package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"

	"github.com/moby/moby/api/types/container"

	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/image"
	"github.com/hako-project/hako/trace"
)

// PruneContainers removes every container that does not run (created,
// exited, dead) and that keep accepts, as docker container prune does, and
// reports their IDs and the bytes their writable layers held.
func (e *Engine) PruneContainers(ctx context.Context, keep func(Record) bool) (deleted []string, reclaimed uint64, err error) {
	ctx, span := trace.Start(ctx, "engine.prune.containers")
	defer func() { span.End(err) }()
	for _, c := range e.List() {
		snap := c.Snapshot()
		if st := snap.State.Status; live(st) || st == container.StateRemoving {
			continue
		}
		if !keep(snap) {
			continue
		}
		size, _, _ := e.images.Snapshots().Usage(ctx, c.ID)
		if err := e.remove(ctx, c, false); err != nil {
			if errors.Is(err, errAlreadyRemoving) || errdefs.IsConflict(err) {
				continue // it started or went meanwhile
			}
			return deleted, reclaimed, fmt.Errorf("prune container %s: %w", c.ID, err)
		}
		deleted = append(deleted, c.ID)
		reclaimed += uint64(max(size, 0))
	}
	return deleted, reclaimed, nil
}

// ImagePruneResult is one line of what an image prune did.
type ImagePruneResult = image.RemoveResult

// PruneImages removes the images no container uses that match: only the
// untagged ("dangling") ones unless all, as docker image prune does. The
// bytes reclaimed are what the image store holds less afterwards.
func (e *Engine) PruneImages(ctx context.Context, all bool, match func(*image.Image) bool) (results []ImagePruneResult, reclaimed uint64, err error) {
	ctx, span := trace.Start(ctx, "engine.prune.images")
	defer func() { span.End(err) }()
	imgs, err := e.images.List(ctx)
	if err != nil {
		return nil, 0, err
	}
	used := map[string]bool{}
	for _, c := range e.List() {
		used[c.Snapshot().ImageID] = true
	}
	before := e.storeUsage()
	removed := false
	for _, img := range imgs {
		if used[img.ID.String()] || (!all && len(img.Tags()) > 0) || !match(img) {
			continue
		}
		res, err := e.images.Remove(ctx, img.ID.String(), image.RemoveOptions{Force: true, NoPrune: true})
		if err != nil {
			if errdefs.IsNotFound(err) || errdefs.IsConflict(err) {
				continue
			}
			return results, 0, fmt.Errorf("prune image %s: %w", img.ID, err)
		}
		for _, r := range res {
			if r.Untagged != "" {
				e.events.EmitImage("untag", r.Untagged, nil)
			} else {
				e.events.EmitImage("delete", r.Deleted.String(), nil)
			}
		}
		results = append(results, res...)
		removed = true
	}
	if removed {
		if _, err := e.images.GC(ctx); err != nil {
			return results, 0, fmt.Errorf("prune images: %w", err)
		}
	}
	if after := e.storeUsage(); after < before {
		reclaimed = uint64(before - after)
	}
	return results, reclaimed, nil
}

// ContainerSize is a container's writable layer size (docker's SizeRw).
func (e *Engine) ContainerSize(ctx context.Context, id string) int64 {
	size, _, err := e.images.Snapshots().Usage(ctx, id)
	if err != nil {
		return 0
	}
	return size
}

// ContainerSizes are docker's SizeRw and SizeRootFs of a container: its
// writable layer's size, and that plus its image's size as docker's
// images shows it (image.Store.UnpackedSizes), as dockerd counts them.
func (e *Engine) ContainerSizes(ctx context.Context, c Record) (rw, rootfs int64) {
	rw = e.ContainerSize(ctx, c.ID)
	rootfs = rw
	if img, err := e.images.Resolve(ctx, c.ImageID); err == nil {
		_, size := e.images.UnpackedSizes(ctx, img)
		rootfs += size
	}
	return rw, rootfs
}

// storeUsage is the bytes the image store's files hold, each inode once (a
// busybox layer is one binary under hundreds of hard links).
func (e *Engine) storeUsage() int64 {
	seen := map[[2]uint64]bool{}
	var total int64
	for _, root := range []string{e.images.Root(), e.images.Snapshots().Root()} {
		_ = filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return nil
			}
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				key := [2]uint64{st.Dev, st.Ino}
				if seen[key] {
					return nil
				}
				seen[key] = true
			}
			total += fi.Size()
			return nil
		})
	}
	return total
}
