package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/image/content"
	"github.com/hako-project/hako/image/metadata"
	"github.com/hako-project/hako/snapshot"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
)

// GCResult lists what a collection removed.
type GCResult struct {
	Blobs     []digest.Digest
	Snapshots []string
	// Bytes is the size of the removed blobs.
	Bytes int64
}

// candidates limits a collection to resources one operation created.
type candidates struct {
	blobs     []digest.Digest
	snapshots []string
}

// GC removes every blob and committed snapshot that nothing references.
// The roots are: image records (their manifest, config and layer blobs and
// the snapshot chain of their layers), leases (operations under way) and
// active and view snapshots (containers) with their parent chains.
func (s *Store) GC(ctx context.Context) (GCResult, error) {
	return s.collect(ctx, nil)
}

func (s *Store) collect(ctx context.Context, only *candidates) (GCResult, error) {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	var res GCResult
	liveBlobs := map[digest.Digest]bool{}
	liveSnaps := map[string]bool{}
	err := s.db.View(func(tx *metadata.Tx) error {
		imgs, err := tx.Images()
		if err != nil {
			return err
		}
		for _, img := range imgs {
			liveBlobs[img.Manifest.Digest] = true
			liveBlobs[img.Config.Digest] = true
			for _, l := range img.Layers {
				liveBlobs[l.Digest] = true
			}
			if len(img.DiffIDs) > 0 {
				chain := identity.ChainID(img.DiffIDs).String()
				liveSnaps[chain] = true
				liveSnaps[initLayerName(chain)] = true // initlayer.go: kept while its image is
			}
		}
		leases, err := tx.Leases()
		if err != nil {
			return err
		}
		for _, l := range leases {
			for _, b := range l.Blobs {
				liveBlobs[b] = true
			}
			for _, sn := range l.Snapshots {
				liveSnaps[sn] = true
			}
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("gc: mark: %w", err)
	}
	infos, err := s.snaps.List(ctx)
	if err != nil {
		return res, fmt.Errorf("gc: %w", err)
	}
	byName := map[string]snapshot.Info{}
	for _, in := range infos {
		byName[in.Name] = in
		if in.Kind != snapshot.Committed {
			liveSnaps[in.Name] = true
		}
	}
	// A live snapshot keeps its whole parent chain.
	for name := range liveSnaps {
		for p := byName[name].Parent; p != "" && !liveSnaps[p]; p = byName[p].Parent {
			liveSnaps[p] = true
		}
	}
	var deadSnaps []snapshot.Info
	if only != nil {
		for _, n := range only.snapshots {
			if in, ok := byName[n]; ok && !liveSnaps[n] {
				deadSnaps = append(deadSnaps, in)
			}
		}
	} else {
		for _, in := range infos {
			if !liveSnaps[in.Name] {
				deadSnaps = append(deadSnaps, in)
			}
		}
	}
	// Children before parents: deeper chains first.
	depth := func(in snapshot.Info) int {
		d := 0
		for p := in.Parent; p != ""; p = byName[p].Parent {
			d++
		}
		return d
	}
	sort.Slice(deadSnaps, func(i, j int) bool { return depth(deadSnaps[i]) > depth(deadSnaps[j]) })
	var errs []error
	for _, in := range deadSnaps {
		if err := s.snaps.Remove(ctx, in.Name); err != nil {
			if errors.Is(err, errdefs.ErrConflict) {
				continue // a child outside this collection still uses it
			}
			errs = append(errs, err)
			continue
		}
		res.Snapshots = append(res.Snapshots, in.Name)
	}
	var deadBlobs []content.Info
	if only != nil {
		for _, d := range only.blobs {
			if liveBlobs[d] {
				continue
			}
			if info, err := s.content.Info(d); err == nil {
				deadBlobs = append(deadBlobs, info)
			}
		}
	} else {
		err := s.content.Walk(ctx, func(info content.Info) error {
			if !liveBlobs[info.Digest] {
				deadBlobs = append(deadBlobs, info)
			}
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("gc: %w", err)
		}
	}
	for _, b := range deadBlobs {
		if err := s.content.Delete(b.Digest); err != nil {
			errs = append(errs, err)
			continue
		}
		res.Blobs = append(res.Blobs, b.Digest)
		res.Bytes += b.Size
	}
	if len(res.Blobs)+len(res.Snapshots) > 0 {
		s.log.Debug("gc", "blobs", len(res.Blobs), "snapshots", len(res.Snapshots), "bytes", res.Bytes)
	}
	if err := errors.Join(errs...); err != nil {
		return res, fmt.Errorf("gc: sweep: %w", err)
	}
	return res, nil
}

// CheckReport is what Check found. Clean reports whether it found nothing
// wrong.
type CheckReport struct {
	// Blobs is how many blobs were verified.
	Blobs int
	// Corrupt blobs do not hash to their name (removed if repair was set).
	Corrupt []digest.Digest
	// Missing lists "image <id>: blob <digest>" for blobs images need.
	Missing []string
	// Snapshots lists problems with snapshots (missing dirs, broken
	// chains).
	Snapshots []string
	// Leases still open (operations under way, or none if idle).
	Leases int
	// Ingests is the number of temp blob files (downloads under way).
	Ingests int
}

// Clean reports whether the check found no damage.
func (r CheckReport) Clean() bool {
	return len(r.Corrupt) == 0 && len(r.Missing) == 0 && len(r.Snapshots) == 0
}

// Check verifies every blob against its digest, that every image's blobs
// are present and that every snapshot's files and parent exist. With
// repair, corrupt blobs are deleted so the next pull fetches them again.
func (s *Store) Check(ctx context.Context, repair bool) (CheckReport, error) {
	var rep CheckReport
	var all []digest.Digest
	if err := s.content.Walk(ctx, func(info content.Info) error {
		all = append(all, info.Digest)
		return nil
	}); err != nil {
		return rep, fmt.Errorf("check: %w", err)
	}
	for _, d := range all {
		rep.Blobs++
		err := s.content.Verify(ctx, d)
		switch {
		case err == nil:
		case errors.Is(err, errdefs.ErrDataLoss):
			rep.Corrupt = append(rep.Corrupt, d)
			if repair {
				if err := s.content.Delete(d); err != nil {
					return rep, fmt.Errorf("check: repair: %w", err)
				}
			}
		case errors.Is(err, errdefs.ErrNotFound):
			// Removed by a concurrent GC.
		default:
			return rep, fmt.Errorf("check: %w", err)
		}
	}
	err := s.db.View(func(tx *metadata.Tx) error {
		imgs, err := tx.Images()
		if err != nil {
			return err
		}
		for _, img := range imgs {
			need := []digest.Digest{img.Manifest.Digest, img.Config.Digest}
			for _, l := range img.Layers {
				need = append(need, l.Digest)
			}
			for _, d := range need {
				if !s.content.Has(d) {
					rep.Missing = append(rep.Missing, fmt.Sprintf("image %s: blob %s", img.ID, d))
				}
			}
		}
		leases, err := tx.Leases()
		rep.Leases = len(leases)
		return err
	})
	if err != nil {
		return rep, fmt.Errorf("check: %w", err)
	}
	infos, err := s.snaps.List(ctx)
	if err != nil {
		return rep, fmt.Errorf("check: %w", err)
	}
	names := map[string]bool{}
	for _, in := range infos {
		names[in.Name] = true
	}
	for _, in := range infos {
		if in.Parent != "" && !names[in.Parent] {
			rep.Snapshots = append(rep.Snapshots, fmt.Sprintf("snapshot %s: parent %s missing", in.Name, in.Parent))
		}
		dir, err := s.snaps.UpperDir(ctx, in.Name)
		if err != nil {
			continue
		}
		if _, err := os.Stat(dir); err != nil {
			rep.Snapshots = append(rep.Snapshots, fmt.Sprintf("snapshot %s: %v", in.Name, err))
		}
	}
	n, err := s.content.IngestCount()
	if err != nil {
		return rep, fmt.Errorf("check: %w", err)
	}
	rep.Ingests = n
	return rep, nil
}

// DiskUsage returns the bytes used by blobs and by snapshot files.
func (s *Store) DiskUsage(ctx context.Context) (blobs, snapshots int64, err error) {
	if err := s.content.Walk(ctx, func(info content.Info) error {
		blobs += info.Size
		return nil
	}); err != nil {
		return 0, 0, err
	}
	err = filepath.Walk(filepath.Join(s.snaps.Root(), "snapshots"), func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			snapshots += fi.Size()
		}
		return nil
	})
	return blobs, snapshots, err
}
