package cri

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/image"
	"github.com/hako-project/hako/image/reference"
	"github.com/hako-project/hako/trace"
)

// ListImages lists the images (optionally only those a reference names).
func (s *Server) ListImages(ctx context.Context, req *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	imgs, err := s.listImages(ctx, req.GetFilter())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListImagesResponse{Images: imgs}, nil
}

func (s *Server) listImages(ctx context.Context, f *runtimeapi.ImageFilter) ([]*runtimeapi.Image, error) {
	if ref := f.GetImage().GetImage(); ref != "" {
		img, err := s.images.Resolve(ctx, ref)
		if errdefs.IsNotFound(err) {
			return []*runtimeapi.Image{}, nil
		}
		if err != nil {
			return nil, err
		}
		ci, err := s.criImage(ctx, img, false)
		if err != nil {
			return nil, err
		}
		return []*runtimeapi.Image{ci}, nil
	}
	all, err := s.images.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*runtimeapi.Image, 0, len(all))
	for _, img := range all {
		ci, err := s.criImage(ctx, img, false)
		if err != nil {
			continue
		}
		out = append(out, ci)
	}
	return out, nil
}

// criImage describes an image as the CRI does: its ID, tags, digests,
// size and user (uid or username of the image config's USER).
func (s *Server) criImage(ctx context.Context, img *image.Image, pinned bool) (*runtimeapi.Image, error) {
	ci := &runtimeapi.Image{Id: img.ID.String(), RepoTags: img.Tags(), RepoDigests: img.RepoDigests,
		Size: uint64(img.Size), Pinned: pinned}
	if ci.RepoTags == nil {
		ci.RepoTags = []string{}
	}
	if ci.RepoDigests == nil {
		ci.RepoDigests = []string{}
	}
	u, err := s.imageUser(ctx, img)
	if err != nil {
		return nil, err
	}
	ci.Uid, ci.Username = u.uid, u.username
	if u := img.Size; u == 0 {
		ci.Size = 1 // an image has a size; kubelet's GC divides by it
	}
	return ci, nil
}

// ImageStatus describes an image, or answers with no image when it is not
// there (not an error, as the CRI asks).
func (s *Server) ImageStatus(ctx context.Context, req *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, errdefs.Invalidf("image reference is empty")
	}
	img, err := s.images.Resolve(ctx, ref)
	if errdefs.IsNotFound(err) || errdefs.IsInvalid(err) {
		return &runtimeapi.ImageStatusResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	ci, err := s.criImage(ctx, img, false)
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.ImageStatusResponse{Image: ci}
	if req.GetVerbose() {
		cfg, raw, err := s.images.ReadConfig(ctx, img)
		if err == nil {
			resp.Info = map[string]string{"info": fmt.Sprintf(`{"chainID":%q,"imageSpec":%s}`, img.ChainID, raw)}
			_ = cfg
		}
	}
	return resp, nil
}

// pullCall is a pull in flight that later identical requests wait for.
type pullCall struct {
	done chan struct{}
	img  *image.Image
	err  error
}

// PullImage pulls an image (through the registry mirrors configured for
// its registry) and returns its ID. Concurrent pulls of one reference are
// one pull.
func (s *Server) PullImage(ctx context.Context, req *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, errdefs.Invalidf("image reference is empty")
	}
	if s.cfg.Puller == nil {
		return nil, errdefs.NotImplementedf("hakod has no registry client")
	}
	img, err := s.pull(ctx, ref)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PullImageResponse{ImageRef: img.ID.String()}, nil
}

func (s *Server) pull(ctx context.Context, ref string) (*image.Image, error) {
	r, err := reference.Parse(ref)
	if err != nil {
		return nil, errdefs.Invalidf("invalid image reference %q: %s", ref, err.Error())
	}
	key := r.String()
	s.pullMu.Lock()
	call, waiting := s.pulls[key]
	if !waiting {
		call = &pullCall{done: make(chan struct{})}
		s.pulls[key] = call
	}
	s.pullMu.Unlock()
	if waiting {
		select {
		case <-call.done:
			return call.img, call.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	pctx, span := trace.Start(ctx, "api.cri.image.pull", "ref", key)
	call.img, call.err = s.cfg.Puller.Pull(pctx, key, nil)
	span.End(call.err)
	s.pullMu.Lock()
	delete(s.pulls, key)
	s.pullMu.Unlock()
	close(call.done)
	if call.err == nil {
		s.e.Events().EmitImage("pull", key, nil)
	}
	return call.img, call.err
}

// RemoveImage removes an image and all its names, whichever name or ID
// the request uses. An image that is not there is not an error.
func (s *Server) RemoveImage(ctx context.Context, req *runtimeapi.RemoveImageRequest) (*runtimeapi.RemoveImageResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, errdefs.Invalidf("image reference is empty")
	}
	img, err := s.images.Resolve(ctx, ref)
	if errdefs.IsNotFound(err) || errdefs.IsInvalid(err) {
		// Nothing by that name (or what cannot name an image) is there.
		return &runtimeapi.RemoveImageResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if _, err := s.images.Remove(ctx, img.ID.String(), image.RemoveOptions{Force: true}); err != nil && !errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("remove image %s: %w", ref, err)
	}
	s.cache.forget(img.ID.String())
	s.e.Events().EmitImage("delete", img.ID.String(), nil)
	return &runtimeapi.RemoveImageResponse{}, nil
}

// ImageFsInfo reports the filesystem of images and container layers.
func (s *Server) ImageFsInfo(ctx context.Context, req *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	now := time.Now().UnixNano()
	usage := func(dir string) *runtimeapi.FilesystemUsage {
		var bytes, inodes uint64
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			inodes++
			if fi, err := d.Info(); err == nil && fi.Mode().IsRegular() {
				if st, ok := fi.Sys().(*syscall.Stat_t); ok {
					bytes += uint64(st.Blocks) * 512
				}
			}
			return nil
		})
		return &runtimeapi.FilesystemUsage{Timestamp: now, FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: dir},
			UsedBytes: &runtimeapi.UInt64Value{Value: bytes}, InodesUsed: &runtimeapi.UInt64Value{Value: inodes}}
	}
	img := usage(filepath.Join(s.e.DataRoot(), "image"))
	snaps := usage(filepath.Join(s.e.DataRoot(), "snapshots"))
	return &runtimeapi.ImageFsInfoResponse{ImageFilesystems: []*runtimeapi.FilesystemUsage{img}, ContainerFilesystems: []*runtimeapi.FilesystemUsage{snaps}}, nil
}

// StreamImages sends the list in one message.
func (s *Server) StreamImages(req *runtimeapi.StreamImagesRequest, stream runtimeapi.ImageService_StreamImagesServer) error {
	imgs, err := s.listImages(stream.Context(), req.GetFilter())
	if err != nil {
		return err
	}
	return stream.Send(&runtimeapi.StreamImagesResponse{Images: imgs})
}
