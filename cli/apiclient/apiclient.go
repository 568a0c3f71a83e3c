// Package apiclient connects the hako CLI to an Engine API daemon: it picks
// the daemon's address (-H, then $HAKO_HOST, then $DOCKER_HOST, then hako's
// socket), builds the official moby client on an HTTP client that traces
// every request and settles the API version without a round trip of its
// own (version.go), and serves the one request the moby client has no
// method for: the daemon's spans of a trace (a hako extension to the
// Engine API).
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/docker/go-connections/sockets"
	"github.com/hako-project/hako/cli/clitrace"
	"github.com/hako-project/hako/trace"
	"github.com/moby/moby/client"
)

// DefaultHost is hakod's socket.
const DefaultHost = "unix:///run/hako/hako.sock"

// Environment variables that choose the daemon, in order of precedence.
const (
	EnvHakoHost   = "HAKO_HOST"
	EnvDockerHost = "DOCKER_HOST"
)

// ResolveHost returns the daemon address: flag (from -H) if set, else the
// first non-empty of $HAKO_HOST and $DOCKER_HOST, else DefaultHost. getenv
// is os.Getenv outside tests.
func ResolveHost(flag string, getenv func(string) string) (string, error) {
	host := flag
	for _, env := range []string{EnvHakoHost, EnvDockerHost} {
		if host == "" {
			host = getenv(env)
		}
	}
	if host == "" {
		host = DefaultHost
	}
	return NormalizeHost(host)
}

// NormalizeHost validates a daemon address the way docker's -H does:
// unix://PATH or tcp://HOST[:PORT] (port 2375 when omitted; a bare
// "unix://" is hako's socket).
func NormalizeHost(host string) (string, error) {
	host = strings.TrimSpace(host)
	proto, addr, ok := strings.Cut(host, "://")
	if !ok {
		return "", fmt.Errorf("invalid daemon address %q: want unix://PATH or tcp://HOST:PORT", host)
	}
	switch proto {
	case "unix":
		if addr == "" {
			return DefaultHost, nil
		}
		if !strings.HasPrefix(addr, "/") {
			return "", fmt.Errorf("invalid daemon address %q: the socket path must be absolute", host)
		}
		return host, nil
	case "tcp":
		u, err := url.Parse(host)
		if err != nil || u.Host == "" {
			return "", fmt.Errorf("invalid daemon address %q: want tcp://HOST:PORT", host)
		}
		if u.Port() == "" {
			u.Host += ":2375"
		}
		return u.String(), nil
	default:
		return "", fmt.Errorf("invalid daemon address %q: unsupported protocol %q (want unix or tcp)", host, proto)
	}
}

// Client is the moby client plus what the hako extensions need.
type Client struct {
	*client.Client
	http *http.Client
	base string // scheme://host for hand-built requests
	used atomic.Bool

	// settled is set once the daemon has accepted the client's API
	// version or the version was negotiated (see version.go).
	settled atomic.Bool
	// negotiating serialises negotiations, so concurrent refusals ping
	// once.
	negotiating sync.Mutex
	// opts build the moby client, but for its API version: a change of
	// version is a new moby client (use), which negotiates only down.
	opts []client.Opt
}

// New builds a client for host (already resolved) that identifies itself
// as userAgent. The connection is made lazily, on the first request, which
// goes out at DefaultAPIVersion; only a daemon that refuses that version
// costs a negotiation (version.go).
func New(host, userAgent string) (*Client, error) {
	u, err := client.ParseHostURL(host)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{}
	if err := sockets.ConfigureTransport(tr, u.Scheme, u.Host); err != nil {
		return nil, fmt.Errorf("configure transport for %s: %w", host, err)
	}
	// A missing socket is "Cannot connect to the Docker daemon at HOST.
	// Is the docker daemon running?", as docker 28 says it, not the moby
	// client's newer wording: hide the ENOENT from it.
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil && errors.Is(err, fs.ErrNotExist) {
			return nil, noSocketError{err.Error()}
		}
		return conn, err
	}
	c := &Client{base: "http://" + client.DummyHost}
	if u.Scheme == "tcp" {
		c.base = "http://" + u.Host + strings.TrimSuffix(u.Path, "/")
	}
	c.http = &http.Client{
		Transport:     versionFallback{c: c, base: clitrace.Transport{Base: tr}},
		CheckRedirect: client.CheckRedirect,
	}
	// WithHost first: it sets the address the hijacking dialer uses; then
	// WithHTTPClient replaces the transport WithHost configured with ours.
	c.opts = []client.Opt{
		client.WithHost(host),
		client.WithHTTPClient(c.http),
		client.WithUserAgent(userAgent),
		client.WithHTTPRequestHook(clitrace.InjectHeader),
		// Hooks see every request, hijacked ones included.
		client.WithHTTPRequestHook(func(*http.Request) error { c.used.Store(true); return nil }),
		// A hijacked request bypasses versionFallback, so it cannot be
		// retried: settle the version before it if nothing has yet.
		client.WithHTTPRequestHook(c.settleBeforeHijack),
	}
	// A fixed version: the moby client's own negotiation would send
	// HEAD /_ping before the first request of every command.
	if err := c.use(DefaultAPIVersion); err != nil {
		return nil, fmt.Errorf("create API client for %s: %w", host, err)
	}
	return c, nil
}

// use makes the moby client speak API version v from the next request on.
func (c *Client) use(v string) error {
	mc, err := client.New(append(c.opts, client.WithAPIVersion(v))...)
	if err != nil {
		return err
	}
	c.Client = mc
	return nil
}

// noSocketError is a dial error that says what happened but no longer
// unwraps to fs.ErrNotExist.
type noSocketError struct{ msg string }

func (e noSocketError) Error() string   { return e.msg }
func (e noSocketError) Timeout() bool   { return false }
func (e noSocketError) Temporary() bool { return false }

// Used reports whether any request was sent.
func (c *Client) Used() bool { return c.used.Load() }

// TracePath is the hako extension that returns the daemon's spans of a
// trace as a JSON array of trace.SpanData.
func TracePath(apiVersion, traceID string) string {
	return "/v" + apiVersion + "/hako/traces/" + url.PathEscape(traceID)
}

// DaemonSpans fetches the daemon's spans of traceID. A daemon without the
// endpoint (404, or a 400/405 from a strict router) yields
// clitrace.ErrNotServed.
func (c *Client) DaemonSpans(ctx context.Context, traceID string) ([]trace.SpanData, error) {
	p := TracePath(c.ClientVersion(), traceID)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+p, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", p, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", p, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusBadRequest:
		return nil, fmt.Errorf("%w (GET %s: %s%s)", clitrace.ErrNotServed, p, resp.Status, daemonMessage(body))
	default:
		return nil, fmt.Errorf("GET %s: %s%s", p, resp.Status, daemonMessage(body))
	}
	var spans []trace.SpanData
	if err := json.Unmarshal(body, &spans); err != nil {
		return nil, fmt.Errorf("GET %s: decode spans: %w", p, err)
	}
	return spans, nil
}

func daemonMessage(body []byte) string {
	var m struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &m) == nil && m.Message != "" {
		return ": " + m.Message
	}
	return ""
}

// PostJSON sends body as JSON to path (an Engine API path without the
// version prefix) at the client's version (settled as for every request,
// by versionFallback) and decodes a JSON answer into
// out (unless nil). It serves requests whose body the moby client's types
// cannot carry as docker's CLI sends them (network create's addresses as
// the user typed them, so that the daemon judges a malformed one). A
// daemon error reads as the moby client's: "Error response from daemon:
// MESSAGE".
func (c *Client) PostJSON(ctx context.Context, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v"+c.ClientVersion()+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if err := clitrace.InjectHeader(req); err != nil {
		return err
	}
	c.used.Store(true)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	if resp.StatusCode >= 400 {
		msg := strings.TrimPrefix(daemonMessage(data), ": ")
		if msg == "" {
			msg = fmt.Sprintf("API returned a %d (%s) but provided no error-message", resp.StatusCode, http.StatusText(resp.StatusCode))
		}
		return fmt.Errorf("Error response from daemon: %s", msg)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("POST %s: decode the answer: %w", path, err)
		}
	}
	return nil
}
