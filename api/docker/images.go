package docker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	dref "github.com/distribution/reference"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/storage"

	"github.com/hako-project/hako/errdefs"
	himage "github.com/hako-project/hako/image"
	"github.com/hako-project/hako/image/archive"
	"github.com/hako-project/hako/image/progress"
	"github.com/hako-project/hako/image/reference"
)

func (s *Server) routesImages() {
	s.handle("GET /images/json", s.imageList)
	s.handle("POST /images/create", s.imageCreate)
	s.handle("POST /images/load", s.imageLoad)
	s.handle("GET /images/get", s.imageSave)
	// Image names contain slashes; the action is the last path element.
	s.handle("GET /images/{rest...}", s.imageByName)
	s.handle("POST /images/{rest...}", s.imageByName)
	s.handle("DELETE /images/{rest...}", s.imageRemove)
}

// imageByName routes /images/NAME/ACTION.
func (s *Server) imageByName(w http.ResponseWriter, r *http.Request) error {
	rest := r.PathValue("rest")
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		return errdefs.NotFoundf("page not found")
	}
	name, action := rest[:i], rest[i+1:]
	switch r.Method + " " + action {
	case "GET json":
		return s.imageInspect(w, r, name)
	case "POST tag":
		return s.imageTag(w, r, name)
	case "POST push":
		return s.imagePush(w, r, name)
	case "GET get":
		r.URL.RawQuery = "names=" + name
		return s.imageSave(w, r)
	case "GET history":
		return s.imageHistory(w, r, name)
	}
	return errdefs.NotFoundf("page not found")
}

func (s *Server) imageList(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	imgs, err := s.e.Images().List(r.Context())
	if err != nil {
		return err
	}
	out := []legacyImageSummary{}
	for _, img := range imgs {
		cfg, _, err := s.e.Images().ReadConfig(r.Context(), img)
		if err != nil {
			continue
		}
		tags := img.Tags()
		repoTags, repoDigests := refFilter(f, tags), refFilter(f, img.RepoDigests)
		if _, has := f["reference"]; has && len(repoTags) == 0 && len(repoDigests) == 0 {
			continue
		}
		if !f.any("dangling", func(v string) bool { return (v == "true") == (len(tags) == 0) }) {
			continue
		}
		if !f.any("before", func(v string) bool { t, ok := imageTime(r, s, v); return ok && img.Created.Before(t) }) ||
			!f.any("since", func(v string) bool { t, ok := imageTime(r, s, v); return ok && img.Created.After(t) }) {
			continue
		}
		if vs := f["label"]; len(vs) > 0 {
			ok := true
			for _, v := range vs {
				ok = ok && labelMatch(cfg.Config.Labels, v)
			}
			if !ok {
				continue
			}
		}
		labels := cfg.Config.Labels
		if labels == nil {
			labels = map[string]string{}
		}
		_, size := s.e.Images().UnpackedSizes(r.Context(), img)
		out = append(out, legacyImageSummary{Summary: image.Summary{
			ID: img.ID.String(), ParentID: img.Parent.String(), Created: img.Created.Unix(), Size: size, SharedSize: -1, Containers: -1,
			RepoTags: nonNil(familiarAll(repoTags)), RepoDigests: nonNil(familiarAll(repoDigests)), Labels: labels,
		}, VirtualSize: size})
	}
	// Newest first, then by name: the same answer every time.
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Created != out[j].Created {
			return out[i].Created > out[j].Created
		}
		return strings.Join(out[i].RepoTags, ",") < strings.Join(out[j].RepoTags, ",")
	})
	return writeJSON(w, http.StatusOK, out)
}

// imageTime is the creation time of the image ref names (the before and
// since filters).
func imageTime(r *http.Request, s *Server, ref string) (time.Time, bool) {
	img, err := s.e.Images().Resolve(r.Context(), ref)
	if err != nil {
		return time.Time{}, false
	}
	return img.Created, true
}

// familiarAll shortens names as docker shows them ("busybox:latest"),
// sorted as docker's reference store lists them.
func familiarAll(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, familiar(n))
	}
	sort.Strings(out)
	return out
}

// familiar is a name as docker shows it ("busybox:latest").
func familiar(name string) string {
	r, err := reference.Parse(name)
	if err != nil {
		return name
	}
	return r.FamiliarString()
}

// refFilter keeps the names that one of the reference filter's patterns
// matches (all of them without the filter), as dockerd lists images: a
// filtered image shows only its matching tags and digests. A pattern
// matches the familiar name with or without its tag ("busybox",
// "busy*:1.36").
func refFilter(f filters, refs []string) []string {
	pats, has := f["reference"]
	if !has {
		return refs
	}
	var out []string
	for _, r := range refs {
		named, err := dref.ParseNormalizedNamed(r)
		if err != nil {
			continue
		}
		for _, p := range pats {
			if ok, _ := dref.FamiliarMatch(p, named); ok {
				out = append(out, r)
				break
			}
		}
	}
	return out
}

func (s *Server) imageInspect(w http.ResponseWriter, r *http.Request, name string) error {
	img, err := s.e.Images().Resolve(r.Context(), name)
	if err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			return errdefs.NotFoundf("No such image: %s", name)
		}
		return err
	}
	cfg, raw, err := s.e.Images().ReadConfig(r.Context(), img)
	if err != nil {
		return err
	}
	diffs := make([]string, 0, len(img.DiffIDs))
	for _, d := range img.DiffIDs {
		diffs = append(diffs, d.String())
	}
	created := ""
	if cfg.Created != nil {
		created = cfg.Created.UTC().Format(time.RFC3339Nano)
	}
	_, size := s.e.Images().UnpackedSizes(r.Context(), img)
	fields := parseDockerConfigFields(raw) // legacy.go
	resp := legacyImageInspect{
		ID: img.ID.String(), RepoTags: nonNil(familiarAll(img.Tags())), RepoDigests: nonNil(familiarAll(img.RepoDigests)),
		Parent: img.Parent.String(), Created: created, Container: fields.Container,
		ContainerConfig: newLegacyConfig(fields.ContainerConfig), DockerVersion: fields.DockerVersion, Author: cfg.Author,
		Config: newLegacyConfig(fields.Config), Architecture: cfg.Architecture, Variant: cfg.Variant, Os: cfg.OS,
		OsVersion: cfg.OSVersion, Size: size, VirtualSize: size,
		GraphDriver: &storage.DriverData{Name: "overlayfs", Data: map[string]string{}},
		RootFS:      image.RootFS{Type: "layers", Layers: diffs},
	}
	if len(cfg.History) > 0 {
		resp.Comment = cfg.History[len(cfg.History)-1].Comment
	}
	return writeJSON(w, http.StatusOK, resp)
}

func (s *Server) imageHistory(w http.ResponseWriter, r *http.Request, name string) error {
	img, err := s.e.Images().Resolve(r.Context(), name)
	if err != nil {
		return errdefs.NotFoundf("No such image: %s", name)
	}
	cfg, _, err := s.e.Images().ReadConfig(r.Context(), img)
	if err != nil {
		return err
	}
	// Each entry that made a layer (not empty_layer) has that layer's
	// size, in order; docker's history has no other source for it.
	sizes, _ := s.e.Images().UnpackedSizes(r.Context(), img)
	layerOf := make([]int, len(cfg.History))
	next := 0
	for i, h := range cfg.History {
		layerOf[i] = -1
		if !h.EmptyLayer && next < len(sizes) {
			layerOf[i] = next
			next++
		}
	}
	out := []image.HistoryResponseItem{}
	for i := len(cfg.History) - 1; i >= 0; i-- {
		h := cfg.History[i]
		item := image.HistoryResponseItem{ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment, Tags: []string{}}
		if l := layerOf[i]; l >= 0 {
			item.Size = sizes[l]
		}
		if h.Created != nil {
			item.Created = h.Created.Unix()
		}
		out = append(out, item)
	}
	// Newest first, one row per image up the Parent chain (a commit's
	// image, then the one it was made from...), as dockerd names them;
	// the rows beyond are <missing>.
	for i, cur := 0, img; i < len(out); i++ {
		out[i].ID = cur.ID.String()
		out[i].Tags = familiarAll(cur.Tags())
		if cur.Parent == "" {
			break
		}
		if cur, err = s.e.Images().Resolve(r.Context(), cur.Parent.String()); err != nil {
			break
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// imageCreate is POST /images/create: a pull (fromImage) or an import
// (fromSrc), answered with docker's JSON progress stream.
func (s *Server) imageCreate(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if src := q.Get("fromSrc"); src != "" {
		return s.imageImport(w, r, src)
	}
	from := q.Get("fromImage")
	if from == "" {
		return errdefs.Invalidf("fromImage or fromSrc is required")
	}
	ref := from
	if tag := q.Get("tag"); tag != "" {
		if strings.HasPrefix(tag, "sha256:") {
			ref += "@" + tag
		} else {
			ref += ":" + tag
		}
	}
	named, err := reference.Parse(ref)
	if err != nil {
		return errdefs.Invalidf("invalid reference format: %s", ref)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flush(w)
	pj := progress.NewJSON(flushWriter{w})
	full := named.String()
	if strings.HasPrefix(full, "hako.local/") {
		// hako's offline default image: built from the host, never pulled.
		pj.Emit(progress.Event{Status: "Building " + familiar(full) + " from the host's busybox-static"})
		if s.cfg.BuildDefaultImage == nil {
			pj.Emit(progress.Event{Error: "no builder for " + full})
			return errResponded
		}
		if err := s.cfg.BuildDefaultImage(r.Context()); err != nil {
			pj.Emit(progress.Event{Error: err.Error()})
			return errResponded
		}
		pj.Emit(progress.Event{Status: "Status: Image is up to date for " + familiar(full)})
		s.e.Events().EmitImage("pull", full, nil)
		return errResponded
	}
	if s.cfg.Registry == nil {
		pj.Emit(progress.Event{Error: "no registry client"})
		return errResponded
	}
	// Pull reports the digest and docker's closing status line itself.
	if _, err := s.cfg.Registry.Pull(r.Context(), full, pj.Emit); err != nil {
		pj.Emit(progress.Event{Error: err.Error()})
		return errResponded
	}
	s.e.Events().EmitImage("pull", full, nil)
	return errResponded
}

// flushWriter flushes after every write, for progress streams.
type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	flush(f.w)
	return n, err
}

func (s *Server) imageImport(w http.ResponseWriter, r *http.Request, src string) error {
	if src != "-" {
		return errdefs.NotImplementedf("import from a URL is not supported; send the tarball as the request body (fromSrc=-)")
	}
	q := r.URL.Query()
	repo := q.Get("repo")
	if tag := q.Get("tag"); repo != "" && tag != "" {
		repo += ":" + tag
	}
	opts := himage.ImportOptions{Ref: repo, Comment: q.Get("message")}
	for _, ch := range q["changes"] {
		if err := applyChange(&opts, ch); err != nil {
			return err
		}
	}
	img, err := s.e.Images().ImportRootfs(r.Context(), r.Body, opts)
	if err != nil {
		return err
	}
	s.e.Events().EmitImage("import", img.ID.String(), nil)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	return json.NewEncoder(w).Encode(map[string]string{"status": img.ID.String()})
}

// applyChange reads one --change Dockerfile instruction of docker import.
func applyChange(o *himage.ImportOptions, ch string) error {
	instr, arg, _ := strings.Cut(strings.TrimSpace(ch), " ")
	arg = strings.TrimSpace(arg)
	list := func() []string {
		var v []string
		if json.Unmarshal([]byte(arg), &v) == nil {
			return v
		}
		return []string{"/bin/sh", "-c", arg}
	}
	switch strings.ToUpper(instr) {
	case "CMD":
		o.Cmd = list()
	case "ENTRYPOINT":
		o.Entrypoint = list()
	case "ENV":
		k, v, ok := strings.Cut(arg, "=")
		if !ok {
			k, v, _ = strings.Cut(arg, " ")
		}
		o.Env = append(o.Env, strings.TrimSpace(k)+"="+strings.Trim(strings.TrimSpace(v), `"`))
	case "WORKDIR":
		o.WorkingDir = arg
	case "USER":
		o.User = arg
	case "LABEL":
		k, v, _ := strings.Cut(arg, "=")
		if o.Labels == nil {
			o.Labels = map[string]string{}
		}
		o.Labels[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
	case "VOLUME":
		var vs []string
		if json.Unmarshal([]byte(arg), &vs) != nil {
			vs = strings.Fields(arg)
		}
		o.Volumes = append(o.Volumes, vs...)
	default:
		return errdefs.Invalidf("%s is not a valid change command", instr)
	}
	return nil
}

func (s *Server) imageTag(w http.ResponseWriter, r *http.Request, name string) error {
	repo := r.URL.Query().Get("repo")
	tag := r.URL.Query().Get("tag")
	if repo == "" {
		return errdefs.Invalidf("repository name must be specified")
	}
	target := repo
	if tag != "" {
		target += ":" + tag
	}
	if err := s.e.Images().Tag(r.Context(), name, target); err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			return errdefs.NotFoundf("No such image: %s", name)
		}
		return err
	}
	s.e.Events().EmitImage("tag", target, nil)
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (s *Server) imagePush(w http.ResponseWriter, r *http.Request, name string) error {
	ref := name
	if tag := r.URL.Query().Get("tag"); tag != "" {
		ref += ":" + tag
	}
	if _, err := s.e.Images().Resolve(r.Context(), ref); err != nil {
		return errdefs.NotFoundf("An image does not exist locally with the tag: %s", name)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flush(w)
	pj := progress.NewJSON(flushWriter{w})
	if s.cfg.Registry == nil {
		pj.Emit(progress.Event{Error: "no registry client"})
		return errResponded
	}
	d, err := s.cfg.Registry.Push(r.Context(), ref, pj.Emit)
	if err != nil {
		pj.Emit(progress.Event{Error: err.Error()})
		return errResponded
	}
	tag := r.URL.Query().Get("tag")
	if tag == "" {
		tag = "latest"
	}
	pj.Emit(progress.Event{Status: fmt.Sprintf("%s: digest: %s", tag, d)})
	s.e.Events().EmitImage("push", ref, nil)
	return errResponded
}

func (s *Server) imageRemove(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("rest")
	// An image a container uses needs force (docker: 409).
	if img, err := s.e.Images().Resolve(r.Context(), name); err == nil && !boolValue(r, "force") {
		for _, c := range s.e.List() {
			snap := c.Snapshot()
			if snap.ImageID == img.ID.String() && len(img.Names) <= 1 {
				return errdefs.Conflictf("conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s",
					name, snap.ID[:12], strings.TrimPrefix(img.ID.String(), "sha256:")[:12])
			}
		}
	}
	res, err := s.e.Images().Remove(r.Context(), name, himage.RemoveOptions{Force: boolValue(r, "force"), NoPrune: boolValue(r, "noprune")})
	if err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			return errdefs.NotFoundf("No such image: %s", name)
		}
		return err
	}
	out := []image.DeleteResponse{}
	for _, x := range res {
		dr := image.DeleteResponse{Deleted: x.Deleted.String()}
		if x.Untagged != "" {
			dr = image.DeleteResponse{Untagged: familiar(x.Untagged)}
			s.e.Events().EmitImage("untag", x.Untagged, nil)
		} else {
			s.e.Events().EmitImage("delete", x.Deleted.String(), nil)
		}
		out = append(out, dr)
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) imageSave(w http.ResponseWriter, r *http.Request) error {
	names := r.URL.Query()["names"]
	if len(names) == 0 {
		return errdefs.Invalidf("no images given to save")
	}
	for _, n := range names {
		if _, err := s.e.Images().Resolve(r.Context(), n); err != nil {
			return errdefs.NotFoundf("No such image: %s", n)
		}
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	if err := archive.Save(r.Context(), s.e.Images(), names, w); err != nil {
		s.cfg.Log.Warn("image save", "err", err)
	}
	for _, n := range names {
		s.e.Events().EmitImage("save", n, nil)
	}
	return errResponded
}

func (s *Server) imageLoad(w http.ResponseWriter, r *http.Request) error {
	imgs, err := archive.Load(r.Context(), s.e.Images(), r.Body, archive.LoadOptions{})
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	for _, img := range imgs {
		tags := img.Tags()
		if len(tags) == 0 {
			_ = enc.Encode(map[string]string{"stream": "Loaded image ID: " + img.ID.String() + "\n"})
		}
		for _, t := range tags {
			_ = enc.Encode(map[string]string{"stream": "Loaded image: " + familiar(t) + "\n"})
		}
		s.e.Events().EmitImage("load", img.ID.String(), nil)
	}
	_, _ = io.Copy(io.Discard, r.Body)
	return errResponded
}
