package cri

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	securejoin "github.com/cyphar/filepath-securejoin"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/snapshot"
)

// Image volumes (KEP-4639): a mount whose source is an image, read-only.
// Each is a view snapshot of the image's layers (which also keeps image GC
// off them), mounted under EXEC-ROOT/imagevolumes/<container>/<n> when the
// container is created and bind-mounted into it read-only, at the image's
// root or at its ImageSubPath. They go with the container.

func (s *Server) imageVolumeDir(id string, i int) string {
	return filepath.Join(s.e.ExecRoot(), "imagevolumes", id, strconv.Itoa(i))
}

func imageVolumeKey(id string, i int) string { return fmt.Sprintf("cri-imagevolume-%s-%d", id, i) }

// mountImageVolumes mounts the container's image volumes and returns their
// host paths by mount index. On error nothing is left mounted.
func (s *Server) mountImageVolumes(ctx context.Context, id string, mounts []*runtimeapi.Mount) (_ map[int]string, err error) {
	out := map[int]string{}
	defer func() {
		if err != nil {
			s.unmountImageVolumes(context.WithoutCancel(ctx), id, mounts)
		}
	}()
	for i, m := range mounts {
		if m.GetImage().GetImage() == "" {
			continue
		}
		if !m.GetReadonly() {
			return nil, errdefs.Invalidf("image volume at %s must be read-only", m.GetContainerPath())
		}
		img, err := s.images.Resolve(ctx, m.GetImage().GetImage())
		if err != nil {
			if errdefs.IsNotFound(err) {
				return nil, errdefs.NotFoundf("image volume %s: image %q not found: pull it first", m.GetContainerPath(), m.GetImage().GetImage())
			}
			return nil, err
		}
		dir := s.imageVolumeDir(id, i)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("image volume directory: %w", err)
		}
		var ms []snapshot.Mount
		if img.ChainID == "" {
			ms = nil // an image without layers: an empty directory
		} else if ms, err = s.images.Snapshots().View(ctx, imageVolumeKey(id, i), img.ChainID.String(), nil); err != nil {
			return nil, fmt.Errorf("image volume %s of %s: %w", m.GetContainerPath(), img.ID, err)
		}
		if len(ms) > 0 {
			if err := snapshot.MountAll(ms, dir); err != nil {
				return nil, fmt.Errorf("mount image volume %s: %w", m.GetContainerPath(), err)
			}
		}
		src := dir
		if sub := m.GetImageSubPath(); sub != "" {
			p, err := securejoin.SecureJoin(dir, sub)
			if err != nil {
				return nil, errdefs.Invalidf("image volume sub path %q: %s", sub, err.Error())
			}
			if _, err := os.Stat(p); err != nil {
				return nil, errdefs.Invalidf("image volume sub path %q does not exist in image %s", sub, m.GetImage().GetImage())
			}
			src = p
		}
		out[i] = src
	}
	return out, nil
}

// unmountImageVolumes undoes mountImageVolumes; what is already gone is
// skipped, so it can run again after a crash.
func (s *Server) unmountImageVolumes(ctx context.Context, id string, mounts []*runtimeapi.Mount) {
	found := false
	for i, m := range mounts {
		if m.GetImage().GetImage() == "" {
			continue
		}
		found = true
		dir := s.imageVolumeDir(id, i)
		if err := snapshot.UnmountAll(dir); err != nil {
			s.log.Warn("unmount image volume", "container", id, "dir", dir, "err", err)
		}
		if err := s.images.Snapshots().Remove(ctx, imageVolumeKey(id, i)); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			s.log.Warn("remove image volume snapshot", "container", id, "err", err)
		}
	}
	if found {
		// Remove, not RemoveAll: a volume still mounted keeps its
		// directory rather than losing the image's files.
		for i := range mounts {
			_ = os.Remove(s.imageVolumeDir(id, i))
		}
		_ = os.Remove(filepath.Join(s.e.ExecRoot(), "imagevolumes", id))
	}
}
