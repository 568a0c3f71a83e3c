package command

import (
	"context"
	"io"
	"path/filepath"

	"github.com/distribution/reference"
	"github.com/docker/cli/cli/config"
	"github.com/hako-project/hako/cli/jsonprogress"
	"github.com/moby/moby/api/pkg/authconfig"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// indexServer is the key docker's config.json uses for Docker Hub.
const indexServer = "https://index.docker.io/v1/"

// EncodedAuth returns the X-Registry-Auth value for the registry of
// image: the credentials docker's config.json (--config, $DOCKER_CONFIG, else
// ~/.docker) holds for it, or "{}" encoded when there are none, which is
// what docker sends too.
func (c *Cli) EncodedAuth(image string) string {
	empty, _ := authconfig.Encode(registry.AuthConfig{})
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return empty
	}
	host := reference.Domain(named)
	if host == "docker.io" {
		host = indexServer
	}
	dir := c.ConfigDir
	if dir == "" {
		dir = c.Getenv("DOCKER_CONFIG")
	}
	if dir == "" {
		home := c.Getenv("HOME")
		if home == "" {
			return empty
		}
		dir = filepath.Join(home, ".docker")
	}
	cfg, err := config.Load(dir)
	if err != nil {
		return empty
	}
	ac, err := cfg.GetAuthConfig(host)
	if err != nil {
		return empty
	}
	enc, err := authconfig.Encode(registry.AuthConfig{
		Username:      ac.Username,
		Password:      ac.Password,
		Auth:          ac.Auth,
		ServerAddress: ac.ServerAddress,
		IdentityToken: ac.IdentityToken,
		RegistryToken: ac.RegistryToken,
	})
	if err != nil {
		return empty
	}
	return enc
}

// PullImage pulls image and draws the daemon's progress on out (tty:
// whether out is a terminal).
func (c *Cli) PullImage(ctx context.Context, image string, platform *ocispec.Platform, out io.Writer, tty bool) error {
	api, err := c.Client()
	if err != nil {
		return err
	}
	opts := client.ImagePullOptions{RegistryAuth: c.EncodedAuth(image)}
	if platform != nil {
		opts.Platforms = []ocispec.Platform{*platform}
	}
	resp, err := api.ImagePull(ctx, image, opts)
	if err != nil {
		return err
	}
	defer resp.Close()
	return jsonprogress.Display(resp, out, tty, nil)
}
