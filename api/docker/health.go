package docker

import (
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"

	"github.com/hako-project/hako/errdefs"
)

// healthText is what docker ps appends to "Up ..." for a container with a
// health check: " (healthy)", " (unhealthy)", " (health: starting)".
func healthText(h *container.Health) string {
	if h == nil {
		return ""
	}
	if h.Status == container.Starting {
		return " (health: starting)"
	}
	return " (" + string(h.Status) + ")"
}

// healthStatus is the value the health filter compares: "none" without a
// health check.
func healthStatus(h *container.Health) string {
	if h == nil {
		return string(container.NoHealthcheck)
	}
	return string(h.Status)
}

// nameMatch is docker's name filter: a regular expression matched against
// the name with its leading "/" (a pattern that does not compile is
// matched as text).
func nameMatch(pattern, name string) bool {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return strings.Contains(name, strings.TrimPrefix(pattern, "/"))
	}
	return re.MatchString("/" + name)
}

// psFilters are the filters docker ps accepts.
var psFilters = []string{"ancestor", "before", "exited", "expose", "health", "id", "isolation", "is-task",
	"label", "name", "network", "publish", "since", "status", "volume"}

// validateContainerFilters refuses what dockerd refuses, with its words.
func validateContainerFilters(f filters) error {
	for k := range f {
		if !slices.Contains(psFilters, k) {
			return errdefs.Invalidf("Invalid filter '%s'", k)
		}
	}
	for _, v := range f["status"] {
		switch container.ContainerState(v) {
		case container.StateCreated, container.StateRunning, container.StatePaused, container.StateRestarting,
			container.StateRemoving, container.StateExited, container.StateDead:
		default:
			return errdefs.Invalidf("Invalid filter 'status=%s'", v)
		}
	}
	for _, v := range f["health"] {
		switch container.HealthStatus(v) {
		case container.NoHealthcheck, container.Starting, container.Healthy, container.Unhealthy:
		default:
			return errdefs.Invalidf("Unrecognised filter value for health: %s", v)
		}
	}
	for _, v := range f["exited"] {
		if _, err := strconv.Atoi(v); err != nil {
			return errdefs.Invalidf("Invalid filter 'exited=%s'", v)
		}
	}
	for _, v := range f["is-task"] {
		if v != "true" && v != "false" {
			return errdefs.Invalidf("Invalid filter 'is-task=%s'", v)
		}
	}
	return nil
}
