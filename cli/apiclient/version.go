package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"

	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/versions"
)

// DefaultAPIVersion is the Engine API version the CLI sends its first
// request at: hakod's (api/docker.APIVersion), the version the CLI would
// negotiate with it anyway. Sending it straight away saves the HEAD /_ping
// that the moby client's negotiation puts before the first request of
// every command (1.5-2 ms). A daemon that refuses it, as too new or too
// old, is negotiated with and the refused request sent again; one that
// accepts it but speaks a newer version (its Api-Version header) gets that
// version, up to the moby client's, from the next request on
// (versionFallback). So the CLI ends up where docker's negotiation would
// put it: the lower of the daemon's version and the client's.
const DefaultAPIVersion = "1.41"

// refusal matches the message a daemon gives, with a 400, for a request
// at a version it does not speak: dockerd's wording
// (daemon/server/middleware/version.go), which hakod's api/docker repeats.
var refusal = regexp.MustCompile(`client version (\S+) is too (?:new\. Maximum|old\. Minimum) supported API version is \S+`)

// versionFallback sends requests at the client's version and, until the
// daemon has accepted one, watches for the daemon refusing that version:
// then it negotiates (a ping, moby's negotiation: the lower of the two
// versions) and sends the request once more at the negotiated version.
// The retry is safe whatever the method: the daemon checks the version
// before it routes a request, so a refused request did nothing.
type versionFallback struct {
	c    *Client
	base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t versionFallback) RoundTrip(req *http.Request) (*http.Response, error) {
	c := t.c
	if c.settled.Load() {
		return t.base.RoundTrip(req)
	}
	sent := c.ClientVersion()
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		// A streamed body (image load, build) cannot be sent twice:
		// settle the version first.
		if v, err := c.negotiate(req.Context()); err == nil && v != sent {
			if r := withVersion(req, sent, v); r != nil {
				req = r
			}
		}
		return t.base.RoundTrip(req)
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	refused := refusedVersion(resp)
	if refused == "" {
		if hasVersion(req.URL.Path, sent) {
			c.settle(resp.Header.Get("Api-Version"))
		}
		return resp, nil
	}
	// Another request may have negotiated already; else negotiate now.
	v := c.ClientVersion()
	if v == refused {
		if v, err = c.negotiate(req.Context()); err != nil || v == refused {
			// No lower version to offer: the daemon's refusal stands.
			return resp, nil
		}
	}
	retry := withVersion(req, refused, v)
	if retry == nil {
		return resp, nil
	}
	if req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return resp, nil
		}
		retry.Body = body
	}
	resp.Body.Close()
	return t.base.RoundTrip(retry)
}

// refusedVersion returns the version a daemon refused, or ""
// for any other response. It leaves resp's body readable from its start.
func refusedVersion(resp *http.Response) string {
	if resp.StatusCode != http.StatusBadRequest || resp.Body == nil {
		return ""
	}
	// Docker's errors are small JSON documents; read no more than one.
	head, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
	if err != nil {
		return ""
	}
	var m struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(head, &m) != nil {
		return ""
	}
	if sm := refusal.FindStringSubmatch(m.Message); sm != nil {
		return strings.TrimPrefix(sm[1], "v")
	}
	return ""
}

// hasVersion reports whether an API path carries version v ("/v1.41/...",
// possibly under a base path).
func hasVersion(path, v string) bool {
	return strings.Contains(path, "/v"+v+"/")
}

// withVersion returns a copy of req (without a body) whose path asks for
// version to instead of from, or nil when its path does not carry from.
func withVersion(req *http.Request, from, to string) *http.Request {
	if !hasVersion(req.URL.Path, from) {
		return nil
	}
	r := req.Clone(req.Context())
	r.URL.Path = strings.Replace(r.URL.Path, "/v"+from+"/", "/v"+to+"/", 1)
	if r.URL.RawPath != "" {
		r.URL.RawPath = strings.Replace(r.URL.RawPath, "/v"+from+"/", "/v"+to+"/", 1)
	}
	return r
}

// negotiate settles the API version as docker's negotiation does (a ping;
// the lower of the daemon's version and the moby client's highest) and
// returns it. Concurrent callers ping once.
//
// A new version is a new moby client (Client.use), so negotiation must not
// run while other requests are being built: it happens only before the
// version is settled, which is the first request of a command, and the
// CLI's commands send their first request alone.
func (c *Client) negotiate(ctx context.Context) (string, error) {
	c.negotiating.Lock()
	defer c.negotiating.Unlock()
	if c.settled.Load() {
		return c.ClientVersion(), nil
	}
	ping, err := c.Client.Ping(ctx, client.PingOptions{})
	if err != nil {
		return "", err
	}
	v := client.MaxAPIVersion // what moby assumes of a daemon that does not say
	if ping.APIVersion != "" {
		if versions.LessThan(ping.APIVersion, client.MinAPIVersion) {
			return "", fmt.Errorf("API version %s is not supported by this client: the minimum supported API version is %s", ping.APIVersion, client.MinAPIVersion)
		}
		if versions.LessThan(ping.APIVersion, v) {
			v = ping.APIVersion
		}
	}
	if v != c.ClientVersion() {
		if err := c.use(v); err != nil {
			return "", err
		}
	}
	c.settled.Store(true)
	return v, nil
}

// settle records that the daemon accepted the client's version; if it
// speaks a newer one (its Api-Version header), later requests use that,
// up to the moby client's highest, as after docker's negotiation.
func (c *Client) settle(daemon string) {
	c.negotiating.Lock()
	defer c.negotiating.Unlock()
	if c.settled.Load() {
		return
	}
	c.settled.Store(true)
	if daemon == "" || !versions.GreaterThan(daemon, c.ClientVersion()) {
		return
	}
	v := daemon
	if versions.GreaterThan(v, client.MaxAPIVersion) {
		v = client.MaxAPIVersion
	}
	_ = c.use(v) // a version moby refuses leaves the one that worked
}

// settleBeforeHijack is a request hook: a hijacked request (attach, exec
// start) bypasses versionFallback and its refusal reaches the moby client
// only as "unable to upgrade", so when one is the first request of a
// command the version is negotiated before it is sent. The CLI's commands
// send some other request first, so this costs nothing in practice.
func (c *Client) settleBeforeHijack(req *http.Request) error {
	if req.Header.Get("Upgrade") == "" || c.settled.Load() {
		return nil
	}
	from := c.ClientVersion()
	v, err := c.negotiate(req.Context())
	if err != nil || v == from {
		// An unreachable daemon fails the request itself.
		return nil
	}
	req.URL.Path = strings.Replace(req.URL.Path, "/v"+from+"/", "/v"+v+"/", 1)
	if req.URL.RawPath != "" {
		req.URL.RawPath = strings.Replace(req.URL.RawPath, "/v"+from+"/", "/v"+v+"/", 1)
	}
	return nil
}

// SupportsVersion reports whether the API version spoken with the daemon
// is at least min. A version the daemon has not yet accepted is settled
// first, with a ping (which also says whether the daemon is there at all);
// a settled one answers without a request.
func (c *Client) SupportsVersion(ctx context.Context, min string) (bool, error) {
	if !c.settled.Load() {
		if _, err := c.negotiate(ctx); err != nil {
			return false, err
		}
	}
	return !versions.LessThan(c.ClientVersion(), min), nil
}
