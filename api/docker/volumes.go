package docker

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"time"

	"github.com/moby/moby/api/types/volume"

	"github.com/hako-project/hako/errdefs"
	hvolume "github.com/hako-project/hako/volume"
)

// routesVolumes: docker's /volumes endpoints on the engine's local volumes.
func (s *Server) routesVolumes() {
	s.handle("GET /volumes", s.volumeList)
	s.handle("POST /volumes/create", s.volumeCreate)
	s.handle("POST /volumes/prune", s.volumePrune)
	s.handle("GET /volumes/{name}", s.volumeInspect)
	s.handle("DELETE /volumes/{name}", s.volumeRemove)
}

// apiVolume is a volume as docker's JSON has it: the creation time in the
// daemon's zone at second precision, nil maps as null.
func apiVolume(v hvolume.Volume) volume.Volume {
	return volume.Volume{
		Name: v.Name, Driver: v.Driver, Mountpoint: v.Mountpoint, Scope: "local",
		CreatedAt: v.CreatedAt.Local().Format(time.RFC3339), Labels: v.Labels, Options: v.Options,
	}
}

// invalidFilter is dockerd 20.10's wording (API 1.41) for a filter it
// does not take or a value it cannot read.
func invalidFilter(key string, values []string) error {
	if values == nil {
		return errdefs.Invalidf("Invalid filter '%s'", key)
	}
	return errdefs.Invalidf("Invalid filter '%s=%s'", key, fmt.Sprint(values))
}

// volumeFilters reads ?filters= and refuses keys outside accepted.
func volumeFilters(r *http.Request, accepted ...string) (filters, error) {
	f, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return nil, err
	}
	for k := range f {
		if !slices.Contains(accepted, k) {
			return nil, invalidFilter(k, nil)
		}
	}
	return f, nil
}

// boolFilter reads a true/false filter as docker does ("1" and "0" too;
// both at once, or anything else, is invalid).
func boolFilter(f filters, key string) (value, set bool, err error) {
	vs, ok := f[key]
	if !ok {
		return false, false, nil
	}
	var isTrue, isFalse bool
	for _, v := range vs {
		switch v {
		case "1", "true":
			isTrue = true
		case "0", "false":
			isFalse = true
		default:
			return false, false, invalidFilter(key, vs)
		}
	}
	if isTrue == isFalse {
		return false, false, invalidFilter(key, vs)
	}
	return isTrue, true, nil
}

// kvListMatch is docker's label filter: every KEY or KEY=VALUE given must
// be among labels.
func kvListMatch(want []string, labels map[string]string) bool {
	if len(want) == 0 {
		return true
	}
	if len(labels) == 0 {
		return false
	}
	for _, w := range want {
		if !labelMatch(labels, w) {
			return false
		}
	}
	return true
}

// volumeLabelsMatch applies label (all must match) and label! (excluded
// when all of them match), as docker's volume filters do.
func volumeLabelsMatch(f filters, labels map[string]string) bool {
	if !kvListMatch(f["label"], labels) {
		return false
	}
	if nl := f["label!"]; len(nl) > 0 && kvListMatch(nl, labels) {
		return false
	}
	return true
}

// nameFilterMatch is docker's name filter for volumes: equal, or a regular
// expression that matches part of the name.
func nameFilterMatch(values []string, name string) bool {
	for _, v := range values {
		if v == name {
			return true
		}
		if ok, err := regexp.MatchString(v, name); err == nil && ok {
			return true
		}
	}
	return false
}

func (s *Server) volumeList(w http.ResponseWriter, r *http.Request) error {
	f, err := volumeFilters(r, "dangling", "driver", "label", "name")
	if err != nil {
		return err
	}
	dangling, filterDangling, err := boolFilter(f, "dangling")
	if err != nil {
		return err
	}
	out := volume.ListResponse{Volumes: []volume.Volume{}}
	for _, v := range s.e.Volumes().List() {
		if drivers, ok := f["driver"]; ok && !slices.Contains(drivers, v.Driver) {
			continue
		}
		if names, ok := f["name"]; ok && !nameFilterMatch(names, v.Name) {
			continue
		}
		if !volumeLabelsMatch(f, v.Labels) {
			continue
		}
		if filterDangling && (len(s.e.VolumeUsers(v.Name)) == 0) != dangling {
			continue
		}
		out.Volumes = append(out.Volumes, apiVolume(v))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) volumeCreate(w http.ResponseWriter, r *http.Request) error {
	var req volume.CreateRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.ClusterVolumeSpec != nil {
		return errdefs.NotImplementedf("cluster volumes are not supported by hakod: it runs no swarm")
	}
	v, err := s.e.CreateVolume(r.Context(), hvolume.CreateOptions{Name: req.Name, Driver: req.Driver, Options: req.DriverOpts, Labels: req.Labels})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, apiVolume(v))
}

func (s *Server) volumeInspect(w http.ResponseWriter, r *http.Request) error {
	v, err := s.e.Volumes().Get(r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, apiVolume(v))
}

func (s *Server) volumeRemove(w http.ResponseWriter, r *http.Request) error {
	if err := s.e.RemoveVolume(r.Context(), r.PathValue("name"), boolValue(r, "force")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// volumePrune removes unused volumes. At API 1.41, the newest hakod
// speaks, docker prunes every unused local volume, named or anonymous, and
// takes no "all" filter; from 1.42 on it prunes anonymous ones unless
// all=true. Should APIVersion move past 1.41, this must look at the
// request's version.
func (s *Server) volumePrune(w http.ResponseWriter, r *http.Request) error {
	f, err := volumeFilters(r, "label", "label!")
	if err != nil {
		return err
	}
	res, err := s.e.PruneVolumes(r.Context(), func(v hvolume.Volume) bool { return volumeLabelsMatch(f, v.Labels) })
	if err != nil {
		return err
	}
	deleted := res.Deleted
	if deleted == nil {
		deleted = []string{}
	}
	return writeJSON(w, http.StatusOK, volume.PruneReport{VolumesDeleted: deleted, SpaceReclaimed: res.SpaceReclaimed})
}

// volumePlugins is info's list of volume drivers.
func volumePlugins() []string { return []string{hvolume.DriverName} }

// volumeDiskUsage is the volumes part of system df: each local volume
// without options, with its size and number of users (docker leaves out
// volumes with options: their data is not on this disk).
func (s *Server) volumeDiskUsage() []any {
	out := []any{}
	for _, v := range s.e.Volumes().List() {
		if len(v.Options) > 0 {
			continue
		}
		av := apiVolume(v)
		size, err := hvolume.DirSize(v.Mountpoint)
		if err != nil {
			size = -1
		}
		av.UsageData = &volume.UsageData{Size: size, RefCount: int64(len(s.e.VolumeUsers(v.Name)))}
		out = append(out, av)
	}
	return out
}
