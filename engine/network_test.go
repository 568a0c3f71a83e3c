package engine

import (
	"testing"

	"github.com/moby/moby/api/types/container"
)

// TestNetnsReusable: a container's namespace is offered for reuse only
// when nothing of it could have changed the namespace's configuration.
func TestNetnsReusable(t *testing.T) {
	ctr := func(id string, hc container.HostConfig, st container.ContainerState) *Container {
		c := &Container{}
		c.ID, c.Name = id, "/"+id
		c.HostConfig = &hc
		c.State.Status = st
		return c
	}
	for _, tc := range []struct {
		name    string
		hc      container.HostConfig
		tainted bool
		joiner  container.ContainerState // of a container:ID joiner, "" for none
		want    bool
	}{
		{name: "plain", want: true},
		{name: "cap-add chown", hc: container.HostConfig{CapAdd: []string{"CHOWN"}}, want: true},
		{name: "privileged", hc: container.HostConfig{Privileged: true}},
		{name: "cap-add net_admin", hc: container.HostConfig{CapAdd: []string{"net_admin"}}},
		{name: "cap-add CAP_SYS_ADMIN", hc: container.HostConfig{CapAdd: []string{"CAP_SYS_ADMIN"}}},
		{name: "cap-add all", hc: container.HostConfig{CapAdd: []string{"ALL"}}},
		{name: "sysctl", hc: container.HostConfig{Sysctls: map[string]string{"net.ipv4.ip_forward": "1"}}},
		{name: "pid host", hc: container.HostConfig{PidMode: "host"}},
		{name: "privileged exec", tainted: true},
		{name: "joiner running", joiner: container.StateRunning},
		{name: "joiner exited", joiner: container.StateExited, want: true},
	} {
		e := &Engine{containers: map[string]*Container{}}
		c := ctr("owner", tc.hc, container.StateExited)
		c.netnsTainted = tc.tainted
		e.containers[c.ID] = c
		if tc.joiner != "" {
			j := ctr("joiner", container.HostConfig{NetworkMode: "container:owner"}, tc.joiner)
			e.containers[j.ID] = j
		}
		if got := e.netnsReusable(c); got != tc.want {
			t.Errorf("%s: reusable %v, want %v", tc.name, got, tc.want)
		}
	}
}
