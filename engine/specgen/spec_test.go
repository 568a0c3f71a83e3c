package specgen

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hako-project/hako/errdefs"
	"github.com/moby/profiles/seccomp"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestMergeEntrypointCmdRules(t *testing.T) {
	img := ocispec.ImageConfig{Entrypoint: []string{"/ep", "-x"}, Cmd: []string{"default"}}
	cases := []struct {
		name string
		img  ocispec.ImageConfig
		opts RunOptions
		args []string
	}{
		{"image only", img, RunOptions{}, []string{"/ep", "-x", "default"}},
		{"user cmd replaces image cmd", img, RunOptions{Cmd: []string{"mine"}}, []string{"/ep", "-x", "mine"}},
		{"user entrypoint drops image cmd", img, RunOptions{Entrypoint: []string{"/other"}}, []string{"/other"}},
		{"user entrypoint and cmd", img, RunOptions{Entrypoint: []string{"/other"}, Cmd: []string{"a"}}, []string{"/other", "a"}},
		{"--entrypoint '' clears entrypoint", img, RunOptions{Entrypoint: []string{""}, Cmd: []string{"sh"}}, []string{"sh"}},
		{"empty entrypoint clears", img, RunOptions{Entrypoint: []string{}, Cmd: []string{"sh", "-c", "x"}}, []string{"sh", "-c", "x"}},
		{"cmd only image", ocispec.ImageConfig{Cmd: []string{"sh"}}, RunOptions{}, []string{"sh"}},
		{"cmd only image, user cmd", ocispec.ImageConfig{Cmd: []string{"sh"}}, RunOptions{Cmd: []string{"ls", "/"}}, []string{"ls", "/"}},
	}
	for _, tc := range cases {
		c, err := Merge(tc.img, tc.opts)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !reflect.DeepEqual(c.Args(), tc.args) {
			t.Errorf("%s: args %q, want %q", tc.name, c.Args(), tc.args)
		}
	}
	for _, tc := range []struct {
		img  ocispec.ImageConfig
		opts RunOptions
	}{
		{ocispec.ImageConfig{}, RunOptions{}},
		{img, RunOptions{Entrypoint: []string{""}}},
	} {
		if _, err := Merge(tc.img, tc.opts); err == nil || !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "no command specified") {
			t.Errorf("Merge(%+v, %+v) = %v, want no command specified", tc.img, tc.opts, err)
		}
	}
}

func TestMergeEnvPortsVolumesLabelsSignal(t *testing.T) {
	img := ocispec.ImageConfig{
		Cmd:          []string{"x"},
		Env:          []string{"PATH=/img/bin", "FOO=image", "KEEP=1"},
		ExposedPorts: map[string]struct{}{"80/tcp": {}},
		Volumes:      map[string]struct{}{"/data": {}},
		Labels:       map[string]string{"a": "image", "b": "image"},
		StopSignal:   "SIGQUIT",
		WorkingDir:   "/srv",
		User:         "nobody",
	}
	c, err := Merge(img, RunOptions{
		Env: []string{"BAR=user", "FOO=user"}, ExposedPorts: []string{"53/udp", "8080"},
		Volumes: []string{"/cache"}, Labels: map[string]string{"b": "user", "c": "user"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"BAR=user", "FOO=user", "PATH=/img/bin", "KEEP=1"}; !reflect.DeepEqual(c.Env, want) {
		t.Errorf("env %q, want %q", c.Env, want)
	}
	if want := []string{"53/udp", "80/tcp", "8080/tcp"}; !reflect.DeepEqual(c.ExposedPorts, want) {
		t.Errorf("ports %q", c.ExposedPorts)
	}
	if want := []string{"/cache", "/data"}; !reflect.DeepEqual(c.Volumes, want) {
		t.Errorf("volumes %q", c.Volumes)
	}
	if want := map[string]string{"a": "image", "b": "user", "c": "user"}; !reflect.DeepEqual(c.Labels, want) {
		t.Errorf("labels %v", c.Labels)
	}
	if c.StopSignal != "SIGQUIT" || c.WorkingDir != "/srv" || c.User != "nobody" {
		t.Errorf("signal %q workdir %q user %q", c.StopSignal, c.WorkingDir, c.User)
	}
	c, _ = Merge(img, RunOptions{StopSignal: "9", WorkingDir: "/w", User: "0:0"})
	if c.StopSignal != "9" || c.WorkingDir != "/w" || c.User != "0:0" {
		t.Errorf("overrides: %+v", c)
	}
	for _, bad := range []RunOptions{
		{WorkingDir: "relative"}, {ExposedPorts: []string{"80/xyz"}}, {ExposedPorts: []string{"99999"}},
		{StopSignal: "SIGNOPE"}, {Volumes: []string{"rel"}}, {Env: []string{"=x"}},
	} {
		if _, err := Merge(img, bad); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("Merge with %+v: %v, want invalid", bad, err)
		}
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]unix.Signal{
		"SIGTERM": unix.SIGTERM, "term": unix.SIGTERM, "9": unix.SIGKILL, "SIGRTMIN": 34, "SIGRTMIN+3": 37, "USR1": unix.SIGUSR1,
	} {
		got, err := ParseSignal(in)
		if err != nil || got != want {
			t.Errorf("ParseSignal(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "65", "SIGFOO", "SIGRTMIN+40", "SIGRTMIN-1"} {
		if _, err := ParseSignal(bad); err == nil {
			t.Errorf("ParseSignal(%q) accepted", bad)
		}
	}
}

func writeRootfs(t *testing.T) string {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte(`root:x:0:0:root:/root:/bin/sh
# comment
app:x:1000:1000:App:/home/app:/bin/sh
svc:x:1001:50::/var/svc:/bin/false
broken line
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
`), 0o644)
	os.WriteFile(filepath.Join(root, "etc/group"), []byte(`root:x:0:
app:x:1000:
staff:x:50:
audio:x:29:app,svc
video:x:44:app
nogroup:x:65534:
`), 0o644)
	return root
}

func TestResolveUser(t *testing.T) {
	root := writeRootfs(t)
	cases := []struct {
		in   string
		want ExecUser
	}{
		{"", ExecUser{UID: 0, GID: 0, Home: "/root"}},
		{"root", ExecUser{UID: 0, GID: 0, Home: "/root"}},
		{"app", ExecUser{UID: 1000, GID: 1000, AdditionalGids: []uint32{29, 44}, Home: "/home/app"}},
		{"1000", ExecUser{UID: 1000, GID: 1000, AdditionalGids: []uint32{29, 44}, Home: "/home/app"}},
		{"app:staff", ExecUser{UID: 1000, GID: 50, Home: "/home/app"}},
		{"app:7", ExecUser{UID: 1000, GID: 7, Home: "/home/app"}},
		{"svc", ExecUser{UID: 1001, GID: 50, AdditionalGids: []uint32{29}, Home: "/var/svc"}},
		{"4242", ExecUser{UID: 4242, GID: 0, Home: "/"}},
		{"4242:4343", ExecUser{UID: 4242, GID: 4343, Home: "/"}},
		{"nobody", ExecUser{UID: 65534, GID: 65534, Home: "/nonexistent"}},
	}
	for _, tc := range cases {
		got, err := ResolveUser(root, tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %+v want %+v", tc.in, got, tc.want)
		}
	}
	for in, msg := range map[string]string{
		"ghost":          "unable to find user ghost: no matching entries in passwd file",
		"app:ghosts":     "unable to find group ghosts",
		"app:":           "empty group",
		"4294967295":     "out of range",
		"1:999999999999": "out of range",
	} {
		_, err := ResolveUser(root, in)
		if err == nil || !strings.Contains(err.Error(), msg) || !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("%q: %v, want %q", in, err, msg)
		}
	}
	// Without passwd: numeric works, names do not.
	empty := t.TempDir()
	if u, err := ResolveUser(empty, "123:456"); err != nil || u.UID != 123 || u.GID != 456 {
		t.Errorf("numeric without passwd: %+v %v", u, err)
	}
	if _, err := ResolveUser(empty, "app"); err == nil {
		t.Error("named user without passwd resolved")
	}
}

func TestResolveUserStaysInRootfs(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	// An image whose passwd is a symlink to the host's file must read its
	// own tree: /etc/passwd -> /etc/real resolves to rootfs/etc/real.
	os.WriteFile(filepath.Join(root, "etc/real"), []byte("only:x:7:7::/o:/bin/sh\n"), 0o644)
	os.Symlink("/etc/real", filepath.Join(root, "etc/passwd"))
	os.Symlink("../../../../../../etc/group", filepath.Join(root, "etc/group"))
	u, err := ResolveUser(root, "only")
	if err != nil || u.UID != 7 {
		t.Fatalf("symlinked passwd: %+v %v", u, err)
	}
	if _, err := ResolveUser(root, "root"); err == nil {
		t.Fatal("resolved root from the host's passwd")
	}
	if _, err := ResolveUser(root, "0:root"); err == nil {
		t.Fatal("resolved a group from the host's /etc/group")
	}
}

func TestGenerateDockerDefaults(t *testing.T) {
	root := writeRootfs(t)
	res, err := Generate(ocispec.ImageConfig{Cmd: []string{"sh"}, Env: []string{"FOO=1"}}, root, RunOptions{ID: "0123456789abcdef0123", Tty: true})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Spec
	if s.Hostname != "0123456789ab" {
		t.Errorf("hostname %q", s.Hostname)
	}
	wantEnv := []string{"PATH=" + DefaultPathEnv, "HOSTNAME=0123456789ab", "TERM=xterm", "FOO=1", "HOME=/root"}
	if !reflect.DeepEqual(s.Process.Env, wantEnv) {
		t.Errorf("env %q, want %q", s.Process.Env, wantEnv)
	}
	if !reflect.DeepEqual(s.Process.Capabilities.Bounding, DefaultCapabilities()) && len(s.Process.Capabilities.Bounding) != 14 {
		t.Errorf("caps %v", s.Process.Capabilities.Bounding)
	}
	for _, c := range DefaultCapabilities() {
		if !slices.Contains(s.Process.Capabilities.Effective, c) {
			t.Errorf("missing default cap %s", c)
		}
	}
	if len(s.Process.Capabilities.Inheritable) != 0 {
		t.Error("inheritable caps set (docker clears them since CVE-2022-24769)")
	}
	if s.Process.Cwd != "/" || !s.Process.Terminal || s.Root.Path != "rootfs" {
		t.Errorf("cwd %q terminal %v root %q", s.Process.Cwd, s.Process.Terminal, s.Root.Path)
	}
	dests := map[string]specs.Mount{}
	for _, m := range s.Mounts {
		dests[m.Destination] = m
	}
	for _, d := range []string{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"} {
		if _, ok := dests[d]; !ok {
			t.Errorf("default mount %s missing", d)
		}
	}
	if !slices.Contains(dests["/sys"].Options, "ro") || !slices.Contains(dests["/sys/fs/cgroup"].Options, "ro") {
		t.Error("/sys or cgroup not read-only")
	}
	if !slices.Contains(dests["/dev/shm"].Options, "size=65536k") {
		t.Errorf("shm options %v", dests["/dev/shm"].Options)
	}
	if !reflect.DeepEqual(s.Linux.MaskedPaths, MaskedPaths()) || !reflect.DeepEqual(s.Linux.ReadonlyPaths, ReadonlyPaths()) {
		t.Error("masked/readonly paths")
	}
	var ns []specs.LinuxNamespaceType
	for _, n := range s.Linux.Namespaces {
		ns = append(ns, n.Type)
	}
	if want := []specs.LinuxNamespaceType{"mount", "network", "uts", "pid", "ipc"}; !reflect.DeepEqual(ns, want) {
		t.Errorf("namespaces %v", ns)
	}
	if s.Process.Rlimits != nil {
		t.Errorf("rlimits %v, docker sets none", s.Process.Rlimits)
	}
	sc := s.Linux.Seccomp
	if sc == nil || sc.DefaultAction != specs.ActErrno || len(sc.Syscalls) < 10 {
		t.Fatalf("seccomp profile not converted: %+v", sc)
	}
	found := false
	for _, sys := range sc.Syscalls {
		if slices.Contains(sys.Names, "read") && sys.Action == specs.ActAllow {
			found = true
		}
	}
	if !found {
		t.Error("seccomp profile does not allow read(2)")
	}
	if len(s.Linux.Resources.Devices) == 0 || s.Linux.Resources.Devices[0].Allow {
		t.Errorf("device rules %+v", s.Linux.Resources.Devices)
	}
	if res.StopSignal != unix.SIGTERM {
		t.Errorf("stop signal %v", res.StopSignal)
	}
}

func TestGenerateOptions(t *testing.T) {
	root := writeRootfs(t)
	img := ocispec.ImageConfig{Cmd: []string{"sh"}, User: "app", WorkingDir: "/home/app", Env: []string{"PATH=/custom", "HOME=/h"}}
	res, err := Generate(img, root, RunOptions{
		ID: "c", Hostname: "web", CapAdd: []string{"net_admin"}, CapDrop: []string{"CAP_MKNOD", "kill"},
		ReadonlyRootfs: true, NoNewPrivileges: true, CgroupnsPrivate: true, ShmSize: 1 << 30,
		Mounts: []specs.Mount{
			{Destination: "/data/sub", Type: "bind", Source: "/x", Options: []string{"rbind"}},
			{Destination: "/data", Type: "bind", Source: "/y", Options: []string{"rbind"}},
			{Destination: "/dev/shm", Type: "bind", Source: "/z", Options: []string{"rbind"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Spec
	if s.Process.User.UID != 1000 || s.Process.User.GID != 1000 || !reflect.DeepEqual(s.Process.User.AdditionalGids, []uint32{29, 44}) {
		t.Errorf("user %+v", s.Process.User)
	}
	if want := []string{"PATH=/custom", "HOSTNAME=web", "HOME=/h"}; !reflect.DeepEqual(s.Process.Env, want) {
		t.Errorf("env %q, want %q", s.Process.Env, want)
	}
	caps := s.Process.Capabilities.Bounding
	if !slices.Contains(caps, "CAP_NET_ADMIN") || slices.Contains(caps, "CAP_MKNOD") || slices.Contains(caps, "CAP_KILL") {
		t.Errorf("caps %v", caps)
	}
	if !s.Root.Readonly || !s.Process.NoNewPrivileges || s.Process.Cwd != "/home/app" {
		t.Error("readonly/no-new-privileges/cwd not applied")
	}
	if s.Linux.Namespaces[len(s.Linux.Namespaces)-1].Type != specs.CgroupNamespace {
		t.Error("no cgroup namespace")
	}
	var dests []string
	for _, m := range s.Mounts {
		dests = append(dests, m.Destination)
	}
	if strings.Count(strings.Join(dests, " "), "/dev/shm") != 1 {
		t.Errorf("user /dev/shm did not replace the default: %v", dests)
	}
	if slices.Index(dests, "/data") > slices.Index(dests, "/data/sub") {
		t.Errorf("parent mounted after child: %v", dests)
	}
	// Privileged: all caps, no masks, rw sys, no seccomp.
	res, err = Generate(ocispec.ImageConfig{Cmd: []string{"sh"}}, root, RunOptions{Privileged: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Spec.Process.Capabilities.Bounding) != len(allCapabilities) || res.Spec.Linux.Seccomp != nil || res.Spec.Linux.MaskedPaths != nil {
		t.Error("privileged spec still confined")
	}
	// cap-drop ALL then add one.
	res, _ = Generate(ocispec.ImageConfig{Cmd: []string{"sh"}}, root, RunOptions{CapDrop: []string{"ALL"}, CapAdd: []string{"CHOWN"}})
	if !reflect.DeepEqual(res.Spec.Process.Capabilities.Bounding, []string{"CAP_CHOWN"}) {
		t.Errorf("drop ALL add CHOWN: %v", res.Spec.Process.Capabilities.Bounding)
	}
	if _, err := Generate(ocispec.ImageConfig{Cmd: []string{"sh"}}, root, RunOptions{CapAdd: []string{"CAP_BOGUS"}}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("unknown cap: %v", err)
	}
	if _, err := Generate(ocispec.ImageConfig{Cmd: []string{"sh"}, User: "ghost"}, root, RunOptions{}); err == nil {
		t.Error("unknown user accepted")
	}
}

// TestDefaultSeccompCache: specs with the same capabilities share one
// default profile, equal to the one made afresh; other capabilities get
// their own (CAP_SYS_ADMIN allows more system calls).
func TestDefaultSeccompCache(t *testing.T) {
	spec := func(caps ...string) *specs.Spec {
		return &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}}
	}
	a, err := defaultSeccomp(spec("CAP_CHOWN", "CAP_KILL"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := defaultSeccomp(spec("CAP_CHOWN", "CAP_KILL"))
	fresh, _ := seccomp.GetDefaultProfile(spec("CAP_CHOWN", "CAP_KILL"))
	if a != b || !reflect.DeepEqual(a, fresh) {
		t.Errorf("the same capabilities: shared %v, equal to a fresh profile %v", a == b, reflect.DeepEqual(a, fresh))
	}
	admin, _ := defaultSeccomp(spec("CAP_CHOWN", "CAP_KILL", "CAP_SYS_ADMIN"))
	freshAdmin, _ := seccomp.GetDefaultProfile(spec("CAP_CHOWN", "CAP_KILL", "CAP_SYS_ADMIN"))
	if admin == a || !reflect.DeepEqual(admin, freshAdmin) || reflect.DeepEqual(admin, a) {
		t.Errorf("other capabilities did not get their own profile")
	}
}
