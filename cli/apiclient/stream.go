package apiclient

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/hako-project/hako/cli/clitrace"
	"github.com/moby/moby/client"
)

// GetStream sends GET path (an Engine API path without the version
// prefix) with query at the client's version and returns the answer's
// body, for the caller to read and close. It serves streams whose JSON
// the moby client decodes into types that lack fields docker's CLI shows
// (the deprecated status, id and from of an event, which docker 28 prints
// with `events --format '{{json .}}'`). A daemon error reads as the moby
// client's, "Error response from daemon: MESSAGE", and so does a failure
// to connect (the moby client's ping words it).
func (c *Client) GetStream(ctx context.Context, path string, query url.Values) (io.ReadCloser, error) {
	u := c.base + "/v" + c.ClientVersion() + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if err := clitrace.InjectHeader(req); err != nil {
		return nil, err
	}
	c.used.Store(true)
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if _, perr := c.Ping(ctx, client.PingOptions{}); perr != nil {
			return nil, perr
		}
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		if err != nil {
			return nil, fmt.Errorf("GET %s: %w", path, err)
		}
		msg := strings.TrimPrefix(daemonMessage(data), ": ")
		if msg == "" {
			msg = fmt.Sprintf("API returned a %d (%s) but provided no error-message", resp.StatusCode, http.StatusText(resp.StatusCode))
		}
		return nil, fmt.Errorf("Error response from daemon: %s", msg)
	}
	return resp.Body, nil
}
