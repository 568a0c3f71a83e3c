package registry_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/image/registry"
	"github.com/hako-project/hako/test/imagetest"
)

// tokenServer is a minimal docker token service: it checks basic auth and
// issues ES256 JWTs signed by a self-signed certificate the registry
// trusts, granting what the scope asks for.
type tokenServer struct {
	key      *ecdsa.PrivateKey
	certDER  []byte
	user     string
	password string
	issued   atomic.Int32
}

func newTokenServer(t *testing.T, user, password string) (*tokenServer, string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hako test token issuer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certFile := filepath.Join(t.TempDir(), "token.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	return &tokenServer{key: key, certDER: der, user: user, password: password}, certFile
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func (ts *tokenServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u, p, ok := r.BasicAuth()
	if !ok || u != ts.user || p != ts.password {
		http.Error(w, `{"details":"bad credentials"}`, http.StatusUnauthorized)
		return
	}
	type access struct {
		Type    string   `json:"type"`
		Name    string   `json:"name"`
		Actions []string `json:"actions"`
	}
	var grants []access
	for _, scope := range r.URL.Query()["scope"] {
		parts := strings.Split(scope, ":")
		if len(parts) == 3 {
			grants = append(grants, access{Type: parts[0], Name: parts[1], Actions: strings.Split(parts[2], ",")})
		}
	}
	now := time.Now()
	header, _ := json.Marshal(map[string]any{"typ": "JWT", "alg": "ES256", "x5c": []string{base64.StdEncoding.EncodeToString(ts.certDER)}})
	claims, _ := json.Marshal(map[string]any{
		"iss": "hako-test-issuer", "sub": u, "aud": r.URL.Query().Get("service"),
		"exp": now.Add(5 * time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(),
		"jti": fmt.Sprint(now.UnixNano()), "access": grants,
	})
	signing := b64(header) + "." + b64(claims)
	h := sha256.Sum256([]byte(signing))
	rr, ss, err := ecdsa.Sign(rand.Reader, ts.key, h[:])
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	sig := make([]byte, 64)
	rr.FillBytes(sig[:32])
	ss.FillBytes(sig[32:])
	ts.issued.Add(1)
	json.NewEncoder(w).Encode(map[string]any{"token": signing + "." + b64(sig), "expires_in": 300})
}

// frontHandler routes /token to the token server and the rest to the
// registry, keeping the Host header so the registry's upload URLs point
// back at the front.
type frontHandler struct {
	token    http.Handler
	registry atomic.Value // *httputil.ReverseProxy
}

func (f *frontHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/token" {
		f.token.ServeHTTP(w, r)
		return
	}
	f.registry.Load().(http.Handler).ServeHTTP(w, r)
}

func TestLoginAndBearerTokenFlow(t *testing.T) {
	imagetest.RequireRoot(t)
	ctx := context.Background()
	ts, certFile := newTokenServer(t, "alice", "s3cret")
	// go-containerregistry only sends credentials to a loopback token realm
	// on the registry's own host:port, so one front serves both, as a
	// registry behind a reverse proxy usually does.
	front := &frontHandler{token: ts}
	srv := httptest.NewServer(front)
	t.Cleanup(srv.Close)
	backend := imagetest.StartRegistry(t, imagetest.RegistryOptions{Auth: fmt.Sprintf(`auth:
  token:
    realm: %s/token
    service: hako-test-registry
    issuer: hako-test-issuer
    rootcertbundle: %s
`, srv.URL, certFile)})
	u, _ := url.Parse("http://" + backend.Host)
	front.registry.Store(httputil.NewSingleHostReverseProxy(u))
	reg := struct{ Host string }{strings.TrimPrefix(srv.URL, "http://")}

	s := openStore(t, t.TempDir())
	cfgDir := t.TempDir()
	c := registry.New(s, registry.Options{ConfigDir: cfgDir})
	local, err := s.ImportRootfs(ctx, strings.NewReader(string(imagetest.Tar(t, []imagetest.Entry{{Name: "f", Body: "private"}}))), imageImportOpts())
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Host + "/alice/private:v1"
	if err := s.Tag(ctx, local.ID.String(), ref); err != nil {
		t.Fatal(err)
	}

	// Anonymous: the registry refuses.
	if _, err := c.Push(ctx, ref, nil); !errors.Is(err, errdefs.ErrUnauthorized) {
		t.Fatalf("anonymous push: %v, want unauthorized", err)
	}
	// Wrong password: login refuses and stores nothing.
	if err := c.Login(ctx, reg.Host, "alice", "wrong"); !errors.Is(err, errdefs.ErrUnauthorized) {
		t.Fatalf("login with a wrong password: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfgDir, "config.json")); err == nil {
		b, _ := os.ReadFile(filepath.Join(cfgDir, "config.json"))
		if strings.Contains(string(b), reg.Host) {
			t.Fatalf("failed login stored credentials: %s", b)
		}
	}
	if err := c.Login(ctx, reg.Host, "alice", "s3cret"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(cfgDir, "config.json"))
	if err != nil || !strings.Contains(string(b), reg.Host) || !strings.Contains(string(b), base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))) {
		t.Fatalf("config.json after login: %s %v", b, err)
	}
	before := ts.issued.Load()
	if _, err := c.Push(ctx, ref, nil); err != nil {
		t.Fatal(err)
	}
	dst := openStore(t, t.TempDir())
	got, err := registry.New(dst, registry.Options{ConfigDir: cfgDir}).Pull(ctx, ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != local.ID {
		t.Fatalf("pulled %s, pushed %s", got.ID, local.ID)
	}
	if ts.issued.Load() == before {
		t.Fatal("no bearer token was issued: the token flow was not used")
	}
	// A store with no credentials cannot pull it.
	anon := openStore(t, t.TempDir())
	if _, err := newClient(t, anon).Pull(ctx, ref, nil); !errors.Is(err, errdefs.ErrUnauthorized) {
		t.Fatalf("anonymous pull: %v", err)
	}
	assertEmpty(t, anon)
	if err := c.Logout(reg.Host); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(filepath.Join(cfgDir, "config.json"))
	if strings.Contains(string(b), base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))) {
		t.Fatalf("logout kept credentials: %s", b)
	}
}
