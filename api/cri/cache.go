package cri

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/hako-project/hako/engine"
	"github.com/hako-project/hako/image"
)

// cache keeps what status and list calls would otherwise decode again on
// every call (kubelet polls them): the protobuf configs of pods and
// containers, which never change, a container's user as its last start
// resolved it, and an image's CRI description, which its ID fixes. Entries
// go when their object is removed.
type cache struct {
	mu     sync.Mutex
	pods   map[string]*runtimeapi.PodSandboxConfig
	ctrs   map[string]*runtimeapi.ContainerConfig
	users  map[string]userEntry
	images map[string]imageEntry
}

type userEntry struct {
	started time.Time
	user    *runtimeapi.ContainerUser
}

type imageEntry struct {
	uid      *runtimeapi.Int64Value
	username string
}

func newCache() *cache {
	return &cache{pods: map[string]*runtimeapi.PodSandboxConfig{}, ctrs: map[string]*runtimeapi.ContainerConfig{},
		users: map[string]userEntry{}, images: map[string]imageEntry{}}
}

// podConfig is the pod's config as RunPodSandbox got it. Callers must
// not change it.
func (s *Server) podConfig(rec engine.SandboxRecord) (*runtimeapi.PodSandboxConfig, error) {
	s.cache.mu.Lock()
	cfg, ok := s.cache.pods[rec.ID]
	s.cache.mu.Unlock()
	if ok {
		return cfg, nil
	}
	cfg, err := podConfig(rec)
	if err != nil {
		return nil, err
	}
	s.cache.mu.Lock()
	s.cache.pods[rec.ID] = cfg
	s.cache.mu.Unlock()
	return cfg, nil
}

// containerConfig is the container's config as CreateContainer got it.
// Callers must not change it.
func (s *Server) containerConfig(rec engine.Record) (*runtimeapi.ContainerConfig, error) {
	s.cache.mu.Lock()
	cfg, ok := s.cache.ctrs[rec.ID]
	s.cache.mu.Unlock()
	if ok {
		return cfg, nil
	}
	cfg, err := containerConfig(rec)
	if err != nil {
		return nil, err
	}
	s.cache.mu.Lock()
	s.cache.ctrs[rec.ID] = cfg
	s.cache.mu.Unlock()
	return cfg, nil
}

// containerUser is the identity the container's process started with,
// read from its bundle once per start.
func (s *Server) containerUser(rec engine.Record) *runtimeapi.ContainerUser {
	s.cache.mu.Lock()
	e, ok := s.cache.users[rec.ID]
	s.cache.mu.Unlock()
	if ok && e.started.Equal(rec.State.StartedAt) {
		return e.user
	}
	spec, err := s.e.BundleSpec(rec.ID)
	if err != nil || spec.Process == nil {
		return nil
	}
	u := spec.Process.User
	groups := []int64{int64(u.GID)}
	for _, g := range u.AdditionalGids {
		groups = append(groups, int64(g))
	}
	user := &runtimeapi.ContainerUser{Linux: &runtimeapi.LinuxContainerUser{Uid: int64(u.UID), Gid: int64(u.GID), SupplementalGroups: groups}}
	s.cache.mu.Lock()
	s.cache.users[rec.ID] = userEntry{started: rec.State.StartedAt, user: user}
	s.cache.mu.Unlock()
	return user
}

// imageUser is the image config's USER as the CRI reports it: a uid, or a
// user name.
func (s *Server) imageUser(ctx context.Context, img *image.Image) (imageEntry, error) {
	id := img.ID.String()
	s.cache.mu.Lock()
	e, ok := s.cache.images[id]
	s.cache.mu.Unlock()
	if ok {
		return e, nil
	}
	cfg, _, err := s.images.ReadConfig(ctx, img)
	if err != nil {
		return imageEntry{}, err
	}
	user, _, _ := strings.Cut(cfg.Config.User, ":")
	if uid, err := strconv.ParseInt(user, 10, 64); err == nil {
		e.uid = &runtimeapi.Int64Value{Value: uid}
	} else {
		e.username = user
	}
	s.cache.mu.Lock()
	s.cache.images[id] = e
	s.cache.mu.Unlock()
	return e, nil
}

// forget drops a removed object's entries.
func (c *cache) forget(id string) {
	c.mu.Lock()
	delete(c.pods, id)
	delete(c.ctrs, id)
	delete(c.users, id)
	delete(c.images, id)
	c.mu.Unlock()
}
