package cri

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/hako-project/hako/engine"
	"github.com/hako-project/hako/errdefs"
)

func TestUserSpec(t *testing.T) {
	i64 := func(v int64) *runtimeapi.Int64Value { return &runtimeapi.Int64Value{Value: v} }
	for _, tc := range []struct {
		sc      *runtimeapi.LinuxContainerSecurityContext
		image   string
		want    string
		invalid bool
	}{
		{nil, "", "0", false},
		{nil, "www-data:1004", "www-data:1004", false},
		{&runtimeapi.LinuxContainerSecurityContext{RunAsUser: i64(1000)}, "www-data", "1000", false},
		{&runtimeapi.LinuxContainerSecurityContext{RunAsUser: i64(0), RunAsGroup: i64(5)}, "", "0:5", false},
		{&runtimeapi.LinuxContainerSecurityContext{RunAsUsername: "nobody", RunAsGroup: i64(7)}, "", "nobody:7", false},
		{&runtimeapi.LinuxContainerSecurityContext{RunAsGroup: i64(7)}, "1002", "", true},
	} {
		got, err := userSpec(tc.sc, tc.image)
		if tc.invalid {
			if !errdefs.IsInvalid(err) {
				t.Errorf("%v: %v, want invalid", tc.sc, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%v with image user %q: %q %v, want %q", tc.sc, tc.image, got, err, tc.want)
		}
	}
}

func TestMountsPropagationAndReadOnly(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	in := specInput{
		cfg: &runtimeapi.ContainerConfig{Mounts: []*runtimeapi.Mount{
			{HostPath: link, ContainerPath: "/data", Readonly: true},
			{HostPath: filepath.Join(dir, "new"), ContainerPath: "/etc/hosts"},
			{HostPath: dir, ContainerPath: "/rro", Readonly: true, RecursiveReadOnly: true},
		}},
		files:   map[string]string{"/etc/hosts": "/pod/hosts", "/etc/resolv.conf": "/pod/resolv.conf"},
		sandbox: engine.SandboxRecord{Shm: "/pod/shm"},
	}
	ms, err := ociMounts(in)
	if err != nil {
		t.Fatal(err)
	}
	byDst := map[string]specs.Mount{}
	for _, m := range ms {
		byDst[m.Destination] = m
	}
	if m := byDst["/data"]; m.Source != dir || !contains(m.Options, "ro") || !contains(m.Options, "rprivate") {
		t.Errorf("/data: %+v: want the symlink resolved, ro, rprivate", m)
	}
	if m := byDst["/etc/hosts"]; m.Source != filepath.Join(dir, "new") {
		t.Errorf("/etc/hosts: %+v: the CRI's mount wins over the pod's file", m)
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); err != nil {
		t.Errorf("a missing host path is created: %v", err)
	}
	if m := byDst["/etc/resolv.conf"]; m.Source != "/pod/resolv.conf" {
		t.Errorf("/etc/resolv.conf: %+v", m)
	}
	if m := byDst["/dev/shm"]; m.Source != "/pod/shm" {
		t.Errorf("/dev/shm: %+v: want the pod's", m)
	}
	if m := byDst["/rro"]; !contains(m.Options, "rro") {
		t.Errorf("/rro: %+v: want rro", m)
	}
	for _, bad := range []*runtimeapi.Mount{
		{HostPath: dir, ContainerPath: "/x", RecursiveReadOnly: true},
		{HostPath: dir, ContainerPath: "/x", Readonly: true, RecursiveReadOnly: true, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
		{HostPath: dir, ContainerPath: "relative"},
	} {
		in.cfg.Mounts = []*runtimeapi.Mount{bad}
		if _, err := ociMounts(in); !errdefs.IsInvalid(err) {
			t.Errorf("%v: %v, want invalid", bad, err)
		}
	}
}

func TestUsernsOptions(t *testing.T) {
	if err := checkUserns(&runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}); err != nil {
		t.Errorf("node user namespace: %v", err)
	}
	if err := checkUserns(&runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_CONTAINER}); err == nil {
		t.Error("a container user namespace was accepted")
	}
}

func TestToStatus(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code codes.Code
	}{
		{errdefs.NotFoundf("x"), codes.NotFound},
		{errdefs.Invalidf("x"), codes.InvalidArgument},
		{alreadyExistsf("x"), codes.AlreadyExists},
		{errdefs.Conflictf("x"), codes.FailedPrecondition},
		{errdefs.NotImplementedf("x"), codes.Unimplemented},
		{errors.New("x"), codes.Unknown},
	} {
		if got := status.Code(toStatus(tc.err)); got != tc.code {
			t.Errorf("%v: %v, want %v", tc.err, got, tc.code)
		}
	}
}

func TestLimitCapabilities(t *testing.T) {
	c := &specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN", "CAP_SYS_RESOURCE", "CAP_NEW_ONE"}}
	limitCapabilities(c)
	if !contains(c.Bounding, "CAP_CHOWN") || !contains(c.Bounding, "CAP_NEW_ONE") {
		t.Errorf("kept %v: a capability the host has (or one hakod does not know) must stay", c.Bounding)
	}
}

func TestClampOOMScoreAdj(t *testing.T) {
	own := 0
	if b, err := os.ReadFile("/proc/self/oom_score_adj"); err == nil {
		_, _ = fmt.Sscan(string(b), &own)
	}
	if got := clampOOMScoreAdj(own - 1); got != own {
		t.Errorf("a score below hakod's (%d): %d, want hakod's", own-1, got)
	}
	if got := clampOOMScoreAdj(own + 10); got != own+10 {
		t.Errorf("a score above hakod's: %d", got)
	}
}
