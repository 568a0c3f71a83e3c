package registry

// SetDockerHubHostForTest points c's Docker Hub endpoint at host (plain
// http on loopback), so mirror tests reach a closed port or a local
// registry instead of waiting on the real Docker Hub.
func SetDockerHubHostForTest(c *Client, host string) { c.hubHost = host }
