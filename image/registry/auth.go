package registry

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/hako-project/hako/errdefs"
)

// dockerHubAuthKey is the key docker's config.json uses for Docker Hub.
const dockerHubAuthKey = "https://index.docker.io/v1/"

// configKeychain reads credentials from one docker config directory (its
// config.json, including credsStore and credHelpers), so each hakod can be
// pointed at its own file instead of the process's $HOME.
type configKeychain struct{ dir string }

func (k configKeychain) load() (*configfile.ConfigFile, error) {
	cf, err := config.Load(k.dir)
	if err != nil {
		return nil, fmt.Errorf("load docker config %s: %w", filepath.Join(k.dir, config.ConfigFileName), err)
	}
	return cf, nil
}

func authKey(registry string) string {
	if registry == name.DefaultRegistry || registry == "docker.io" {
		return dockerHubAuthKey
	}
	return registry
}

// Resolve implements authn.Keychain.
func (k configKeychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	cf, err := k.load()
	if err != nil {
		return nil, err
	}
	ac, err := cf.GetAuthConfig(authKey(target.RegistryStr()))
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", target.RegistryStr(), err)
	}
	cfg := authn.AuthConfig{
		Username: ac.Username, Password: ac.Password, Auth: ac.Auth,
		IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken,
	}
	if cfg == (authn.AuthConfig{}) {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(cfg), nil
}

// DefaultConfigDir is docker's: $DOCKER_CONFIG or ~/.docker.
func DefaultConfigDir() string {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return d
	}
	return config.Dir()
}

// Login checks user and password against the registry (a ping and, for
// token auth, a token request) and on success stores them in the config
// directory's config.json (or its credential store), as docker login does.
// registry is a host[:port]; "" or "docker.io" means Docker Hub.
func (c *Client) Login(ctx context.Context, registry, user, password string) error {
	if registry == "" {
		registry = "docker.io"
	}
	reg, err := name.NewRegistry(registry, c.nameOpts(registry)...)
	if err != nil {
		return fmt.Errorf("login %s: %w: %v", registry, errdefs.ErrInvalid, err)
	}
	auth := authn.FromConfig(authn.AuthConfig{Username: user, Password: password})
	rt, err := transport.NewWithContext(ctx, reg, auth, c.transport(), []string{})
	if err != nil {
		return fmt.Errorf("login %s: %w", registry, classify(err))
	}
	// Basic auth is not checked by the handshake; ask for the API root.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s://%s/v2/", reg.Scheme(), reg.RegistryStr()), nil)
	if err != nil {
		return fmt.Errorf("login %s: %w", registry, err)
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return fmt.Errorf("login %s: %w: %v", registry, errdefs.ErrUnavailable, err)
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("login %s as %s: %w: %s", registry, user, errdefs.ErrUnauthorized, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("login %s: %w: GET /v2/: %s", registry, errdefs.ErrUnavailable, resp.Status)
	}
	cf, err := c.keychain.load()
	if err != nil {
		return err
	}
	key := authKey(reg.RegistryStr())
	if err := cf.GetCredentialsStore(key).Store(types.AuthConfig{Username: user, Password: password, ServerAddress: key}); err != nil {
		return fmt.Errorf("login %s: store credentials: %w", registry, err)
	}
	if err := cf.Save(); err != nil {
		return fmt.Errorf("login %s: save %s: %w", registry, cf.Filename, err)
	}
	return nil
}

// Logout removes stored credentials for registry.
func (c *Client) Logout(registry string) error {
	cf, err := c.keychain.load()
	if err != nil {
		return err
	}
	key := authKey(registry)
	if err := cf.GetCredentialsStore(key).Erase(key); err != nil {
		return fmt.Errorf("logout %s: %w", registry, err)
	}
	if err := cf.Save(); err != nil {
		return fmt.Errorf("logout %s: save %s: %w", registry, cf.Filename, err)
	}
	return nil
}
