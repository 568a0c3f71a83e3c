package apiclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	dockerapi "github.com/hako-project/hako/api/docker"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/versions"
)

// versionedDaemon is a fake daemon at API version max that refuses a
// newer one as dockerd does, and records every request it gets.
type versionedDaemon struct {
	max string
	min string // "": any version up to max

	mu     sync.Mutex
	log    []string          // "METHOD PATH", in order
	bodies map[string]string // path -> body of the accepted request
}

func (d *versionedDaemon) requests() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.log)
}

func (d *versionedDaemon) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	d.mu.Lock()
	d.log = append(d.log, r.Method+" "+r.URL.Path)
	d.mu.Unlock()
	w.Header().Set("Api-Version", d.max)
	p := r.URL.Path
	if p == "/_ping" {
		w.Write([]byte("OK"))
		return
	}
	v, rest, ok := strings.Cut(strings.TrimPrefix(p, "/v"), "/")
	if !ok || !strings.HasPrefix(p, "/v") {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if versions.GreaterThan(v, d.max) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"message":"client version %s is too new. Maximum supported API version is %s"}`+"\n", v, d.max)
		return
	}
	if d.min != "" && versions.LessThan(v, d.min) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"message":"client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version"}`+"\n", v, d.min)
		return
	}
	d.mu.Lock()
	if d.bodies == nil {
		d.bodies = map[string]string{}
	}
	d.bodies[p] = string(body)
	d.mu.Unlock()
	switch {
	case rest == "containers/create":
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"Id":"c1","Warnings":[]}`))
	case rest == "containers/bad/json":
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"message":"invalid reference format"}`))
	case rest == "containers/json":
		w.Write([]byte(`[]`))
	case rest == "images/load":
		w.Write([]byte(`{"stream":"Loaded image: x\n"}`))
	case rest == "networks/create":
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"Id":"n1"}`))
	case rest == "containers/c1/attach":
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		buf.WriteString("HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nhello")
		buf.Flush()
	default:
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"message":"page not found"}`))
	}
}

func newVersioned(t *testing.T, max string) (*Client, *versionedDaemon) {
	t.Helper()
	d := &versionedDaemon{max: max}
	c, err := New(fakeDaemon(t, d), "test")
	if err != nil {
		t.Fatal(err)
	}
	return c, d
}

// The CLI speaks hakod's version, so that it need not ask.
func TestDefaultAPIVersionIsHakods(t *testing.T) {
	if DefaultAPIVersion != dockerapi.APIVersion {
		t.Fatalf("DefaultAPIVersion %s, hakod speaks %s: every command would pay a negotiation or speak an older version than it could", DefaultAPIVersion, dockerapi.APIVersion)
	}
}

// A daemon that accepts the CLI's version gets the command's request
// first: no /_ping.
func TestNoPingWhenVersionAccepted(t *testing.T) {
	c, d := newVersioned(t, DefaultAPIVersion)
	ctx := context.Background()
	for range 2 {
		if _, err := c.ContainerList(ctx, client.ContainerListOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.PostJSON(ctx, "/networks/create", map[string]string{"Name": "n"}, nil); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"GET /v" + DefaultAPIVersion + "/containers/json",
		"GET /v" + DefaultAPIVersion + "/containers/json",
		"POST /v" + DefaultAPIVersion + "/networks/create",
	}
	if got := d.requests(); !slices.Equal(got, want) {
		t.Fatalf("requests %q, want %q", got, want)
	}
	// Settled: asking what the daemon supports costs nothing now.
	if ok, err := c.SupportsVersion(ctx, "1.42"); err != nil || ok {
		t.Fatalf("SupportsVersion(1.42) = %v, %v", ok, err)
	}
	if got := d.requests(); len(got) != len(want) {
		t.Fatalf("SupportsVersion of a settled version sent %q", got[len(want):])
	}
}

// A daemon that refuses the CLI's version as too new: negotiate, then
// the same request, body and all, once more at the daemon's version; the
// requests after it go straight to that version.
func TestFallbackOnTooNew(t *testing.T) {
	c, d := newVersioned(t, "1.40")
	ctx := context.Background()
	res, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{Image: "busybox", Cmd: []string{"true"}}, Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if res.ID != "c1" {
		t.Fatalf("create answered %+v", res)
	}
	if _, err := c.ContainerList(ctx, client.ContainerListOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"POST /v" + DefaultAPIVersion + "/containers/create",
		"HEAD /_ping",
		"POST /v1.40/containers/create",
		"GET /v1.40/containers/json",
	}
	if got := d.requests(); !slices.Equal(got, want) {
		t.Fatalf("requests %q, want %q", got, want)
	}
	var cfg container.Config
	if err := json.Unmarshal([]byte(d.bodies["/v1.40/containers/create"]), &cfg); err != nil || cfg.Image != "busybox" {
		t.Fatalf("the retried create's body %q (%v)", d.bodies["/v1.40/containers/create"], err)
	}
	if v := c.ClientVersion(); v != "1.40" {
		t.Fatalf("ClientVersion %s after the fallback, want 1.40", v)
	}
}

// PostJSON, which builds its own requests, falls back the same way.
func TestFallbackPostJSON(t *testing.T) {
	c, d := newVersioned(t, "1.40")
	var out struct{ ID string }
	if err := c.PostJSON(context.Background(), "/networks/create", map[string]string{"Name": "n"}, &out); err != nil {
		t.Fatal(err)
	}
	if out.ID != "n1" || !strings.Contains(d.bodies["/v1.40/networks/create"], `"Name":"n"`) {
		t.Fatalf("answer %+v, body sent %q", out, d.bodies["/v1.40/networks/create"])
	}
	want := []string{"POST /v" + DefaultAPIVersion + "/networks/create", "HEAD /_ping", "POST /v1.40/networks/create"}
	if got := d.requests(); !slices.Equal(got, want) {
		t.Fatalf("requests %q, want %q", got, want)
	}
}

// A streamed body cannot be sent twice: the version is settled before
// it.
func TestStreamedBodyNegotiatesFirst(t *testing.T) {
	c, d := newVersioned(t, "1.40")
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte("not really a tar"))
		pw.Close()
	}()
	res, err := c.ImageLoad(context.Background(), pr)
	if err != nil {
		t.Fatal(err)
	}
	res.Close()
	want := []string{"HEAD /_ping", "POST /v1.40/images/load"}
	if got := d.requests(); !slices.Equal(got, want) {
		t.Fatalf("requests %q, want %q", got, want)
	}
	if d.bodies["/v1.40/images/load"] != "not really a tar" {
		t.Fatalf("load body %q", d.bodies["/v1.40/images/load"])
	}
}

// A hijacked request bypasses the fallback; as a command's first request
// it is sent at the negotiated version.
func TestHijackFirstNegotiates(t *testing.T) {
	c, d := newVersioned(t, "1.40")
	resp, err := c.ContainerAttach(context.Background(), "c1", client.ContainerAttachOptions{Stream: true, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Close()
	out, _ := io.ReadAll(resp.Reader)
	if string(out) != "hello" {
		t.Fatalf("attach read %q", out)
	}
	want := []string{"HEAD /_ping", "POST /v1.40/containers/c1/attach"}
	if got := d.requests(); !slices.Equal(got, want) {
		t.Fatalf("requests %q, want %q", got, want)
	}
}

// Other 400s are the daemon's answer, passed on whole and not retried.
func TestOtherBadRequestNotRetried(t *testing.T) {
	c, d := newVersioned(t, DefaultAPIVersion)
	_, err := c.ContainerInspect(context.Background(), "bad", client.ContainerInspectOptions{})
	if err == nil || !strings.Contains(err.Error(), "invalid reference format") {
		t.Fatalf("err %v", err)
	}
	if got, want := d.requests(), []string{"GET /v" + DefaultAPIVersion + "/containers/bad/json"}; !slices.Equal(got, want) {
		t.Fatalf("requests %q, want %q", got, want)
	}
}

// A daemon older than the moby client goes (1.40) keeps its refusal,
// in its own words.
func TestTooOldDaemonRefusalStands(t *testing.T) {
	c, d := newVersioned(t, "1.39")
	_, err := c.ContainerList(context.Background(), client.ContainerListOptions{})
	if err == nil || !strings.Contains(err.Error(), "client version "+DefaultAPIVersion+" is too new. Maximum supported API version is 1.39") {
		t.Fatalf("err %v", err)
	}
	if got, want := d.requests(), []string{"GET /v" + DefaultAPIVersion + "/containers/json", "HEAD /_ping"}; !slices.Equal(got, want) {
		t.Fatalf("requests %q, want %q", got, want)
	}
}

// A daemon whose oldest version is newer than the CLI's first one (dockerd
// 29 refuses below 1.44) gets the request again at the version docker's
// negotiation settles on, the daemon's; later requests go there directly.
func TestFallbackOnTooOld(t *testing.T) {
	c, d := newVersioned(t, "1.52")
	d.min = "1.44"
	ctx := context.Background()
	for range 2 {
		if _, err := c.ContainerList(ctx, client.ContainerListOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"GET /v" + DefaultAPIVersion + "/containers/json", "HEAD /_ping", "GET /v1.52/containers/json", "GET /v1.52/containers/json"}
	if got := d.requests(); !slices.Equal(got, want) {
		t.Errorf("requests %q, want %q", got, want)
	}
}

// A daemon that accepts the CLI's version but speaks a newer one (its
// Api-Version header) is spoken to at that version from the next request
// on, without a ping, up to the moby client's highest: where docker's
// negotiation would have put the CLI.
func TestUpgradeToNewerDaemon(t *testing.T) {
	for _, tc := range []struct{ daemon, want string }{
		{"1.45", "1.45"},
		{"1.99", client.MaxAPIVersion},
	} {
		c, d := newVersioned(t, tc.daemon)
		ctx := context.Background()
		for range 2 {
			if _, err := c.ContainerList(ctx, client.ContainerListOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		want := []string{"GET /v" + DefaultAPIVersion + "/containers/json", "GET /v" + tc.want + "/containers/json"}
		if got := d.requests(); !slices.Equal(got, want) {
			t.Errorf("daemon at %s: requests %q, want %q", tc.daemon, got, want)
		}
		if ok, err := c.SupportsVersion(ctx, "1.42"); err != nil || !ok {
			t.Errorf("daemon at %s: SupportsVersion(1.42) = %v, %v", tc.daemon, ok, err)
		}
	}
}
