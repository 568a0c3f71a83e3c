package docker

import (
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"

	"github.com/hako-project/hako/engine"
	"github.com/hako-project/hako/errdefs"
	himage "github.com/hako-project/hako/image"
)

// routesPrune: the prune endpoints and system df.
func (s *Server) routesPrune() {
	s.handle("POST /containers/prune", s.containersPrune)
	s.handle("POST /images/prune", s.imagesPrune)
	// hakod has no build cache; docker system prune asks anyway.
	s.handle("POST /build/prune", func(w http.ResponseWriter, r *http.Request) error {
		return writeJSON(w, http.StatusOK, build.CachePruneReport{})
	})
	s.handle("GET /system/df", s.systemDF)
}

// pruneFilters reads a prune's filters, refusing names it does not know.
func pruneFilters(r *http.Request, accepted ...string) (filters, time.Time, error) {
	f, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return nil, time.Time{}, err
	}
	for k := range f {
		if !slices.Contains(accepted, k) {
			return nil, time.Time{}, errdefs.Invalidf("Invalid filter '%s'", k)
		}
	}
	var until time.Time
	for _, v := range f["until"] {
		t, err := parseTimestamp(v)
		if err != nil {
			return nil, time.Time{}, err
		}
		until = t
	}
	return f, until, nil
}

// parseTimestamp reads docker's filter times: Unix seconds, RFC 3339
// (with or without zone), a date, or a duration back from now ("24h").
func parseTimestamp(v string) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-d), nil
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02T15", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errdefs.Invalidf("failed to parse value as time or duration: %q", v)
}

// labelsMatch applies label and label! filters.
func labelsMatch(f filters, labels map[string]string) bool {
	for _, v := range f["label"] {
		if !labelMatch(labels, v) {
			return false
		}
	}
	for _, v := range f["label!"] {
		if labelMatch(labels, v) {
			return false
		}
	}
	return true
}

func (s *Server) containersPrune(w http.ResponseWriter, r *http.Request) error {
	f, until, err := pruneFilters(r, "until", "label", "label!")
	if err != nil {
		return err
	}
	deleted, reclaimed, err := s.e.PruneContainers(r.Context(), func(c engine.Record) bool {
		if !until.IsZero() && !c.Created.Before(until) {
			return false
		}
		return labelsMatch(f, c.Config.Labels)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, container.PruneReport{ContainersDeleted: deleted, SpaceReclaimed: reclaimed})
}

func (s *Server) imagesPrune(w http.ResponseWriter, r *http.Request) error {
	f, until, err := pruneFilters(r, "until", "label", "label!", "dangling")
	if err != nil {
		return err
	}
	all := false
	for _, v := range f["dangling"] {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errdefs.Invalidf("Invalid filter 'dangling=%s'", v)
		}
		all = !b
	}
	ctx := r.Context()
	res, reclaimed, err := s.e.PruneImages(ctx, all, func(img *himage.Image) bool {
		if !until.IsZero() && !img.Created.Before(until) {
			return false
		}
		if len(f["label"])+len(f["label!"]) == 0 {
			return true
		}
		cfg, _, err := s.e.Images().ReadConfig(ctx, img)
		return err == nil && labelsMatch(f, cfg.Config.Labels)
	})
	if err != nil {
		return err
	}
	rep := image.PruneReport{SpaceReclaimed: reclaimed}
	for _, x := range res {
		if x.Untagged != "" {
			rep.ImagesDeleted = append(rep.ImagesDeleted, image.DeleteResponse{Untagged: familiar(x.Untagged)})
		} else {
			rep.ImagesDeleted = append(rep.ImagesDeleted, image.DeleteResponse{Deleted: x.Deleted.String()})
		}
	}
	return writeJSON(w, http.StatusOK, rep)
}

// legacyDiskUsage is GET /system/df's answer at API 1.41 (the per-type
// summaries of newer versions are computed by clients from it).
type legacyDiskUsage struct {
	LayersSize  int64
	Images      []legacyImageSummary // legacy.go
	Containers  []container.Summary
	Volumes     []any
	BuildCache  []build.CacheRecord
	BuilderSize int64 // deprecated in 1.42; hako has no build cache
}

// systemDF is GET /system/df: images with their sizes (shared: the layers
// other images have too) and how many containers use them, containers
// with the size of their writable layer.
func (s *Server) systemDF(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	imgs, err := s.e.Images().List(ctx)
	if err != nil {
		return err
	}
	du := legacyDiskUsage{Images: []legacyImageSummary{}, Containers: []container.Summary{}, Volumes: s.volumeDiskUsage(), BuildCache: []build.CacheRecord{}}
	users := map[string]int64{}
	for _, c := range s.e.List() {
		snap := c.Snapshot()
		users[snap.ImageID]++
		sm := summary(snap)
		sm.SizeRw = s.e.ContainerSize(ctx, snap.ID)
		du.Containers = append(du.Containers, sm)
	}
	layerUsers := map[string]int{}
	layerSize := map[string]int64{} // docker's size of each layer (UnpackedSizes)
	imgSize := make([]int64, len(imgs))
	for i, img := range imgs {
		var sizes []int64
		sizes, imgSize[i] = s.e.Images().UnpackedSizes(ctx, img)
		for j, l := range img.Layers {
			layerUsers[l.Digest.String()]++
			layerSize[l.Digest.String()] = sizes[j]
		}
	}
	for i, img := range imgs {
		var shared int64
		for _, l := range img.Layers {
			if layerUsers[l.Digest.String()] > 1 {
				shared += layerSize[l.Digest.String()]
			}
		}
		sm := image.Summary{ID: img.ID.String(), ParentID: img.Parent.String(), Created: img.Created.Unix(), Size: imgSize[i], SharedSize: shared,
			Containers: users[img.ID.String()], RepoTags: nonNil(familiarAll(img.Tags())),
			RepoDigests: nonNil(familiarAll(img.RepoDigests)), Labels: map[string]string{}}
		if cfg, _, err := s.e.Images().ReadConfig(ctx, img); err == nil && cfg.Config.Labels != nil {
			sm.Labels = cfg.Config.Labels
		}
		du.Images = append(du.Images, legacyImageSummary{Summary: sm, VirtualSize: sm.Size})
		du.LayersSize += imgSize[i] - shared
	}
	for d, n := range layerUsers {
		if n > 1 {
			du.LayersSize += layerSize[d]
		}
	}
	return writeJSON(w, http.StatusOK, du)
}
