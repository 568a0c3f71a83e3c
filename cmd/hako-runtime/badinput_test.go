package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestBadInput gives create one broken configuration at a time and checks
// that the error names the field, the exit code is non-zero and nothing is
// left behind.
func TestBadInput(t *testing.T) {
	r := newRT(t)
	cases := []struct {
		name   string
		mutate func(b *bundle)
		raw    string // config.json written as is instead of b.spec
		want   []string
	}{
		{name: "malformed JSON", raw: "{\n  \"ociVersion\": \"1.0.0\",\n  \"root\": {\"path\": \"rootfs\"\n}", want: []string{"invalid JSON", "at line 4"}},
		{name: "wrong JSON type", raw: `{"ociVersion": "1.0.0", "process": {"args": "sh"}}`, want: []string{"process.args", "string"}},
		{name: "unknown major version", mutate: func(b *bundle) { b.spec.Version = "2.0.0" }, want: []string{"ociVersion", "2.0.0"}},
		{name: "missing root", mutate: func(b *bundle) { b.spec.Root = nil }, want: []string{"root.path", "missing"}},
		{name: "root does not exist", mutate: func(b *bundle) { b.spec.Root.Path = "nope" }, want: []string{"root.path", "no such file"}},
		{name: "relative cwd", mutate: func(b *bundle) { b.spec.Process.Cwd = "tmp" }, want: []string{"process.cwd", "not an absolute path"}},
		{name: "relative mount destination", mutate: func(b *bundle) {
			b.spec.Mounts = append(b.spec.Mounts, specs.Mount{Destination: "data", Type: "tmpfs", Source: "tmpfs"})
		}, want: []string{"mounts[7].destination", "not an absolute path"}},
		{name: "mount over root", mutate: func(b *bundle) {
			b.spec.Mounts = append(b.spec.Mounts, specs.Mount{Destination: "/", Type: "tmpfs", Source: "tmpfs"})
		}, want: []string{"mounts[7].destination", "root"}},
		{name: "bind source missing", mutate: func(b *bundle) {
			b.spec.Mounts = append(b.spec.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: "/no/such/dir", Options: []string{"bind"}})
		}, want: []string{"mounts[7].source", "/no/such/dir"}},
		{name: "mount over a kernel interface", mutate: func(b *bundle) {
			b.spec.Mounts = append(b.spec.Mounts, specs.Mount{Destination: "/proc/sys/kernel", Type: "tmpfs", Source: "tmpfs"})
		}, want: []string{"mounts[7].destination", "/proc/sys/kernel"}},
		{name: "relative hook path", mutate: func(b *bundle) {
			b.spec.Hooks = &specs.Hooks{Poststart: []specs.Hook{{Path: "bin/true"}}}
		}, want: []string{"hooks.poststart[0].path"}},
		{name: "unknown namespace", mutate: func(b *bundle) {
			b.spec.Linux.Namespaces = append(b.spec.Linux.Namespaces, specs.LinuxNamespace{Type: "bogus"})
		}, want: []string{"linux.namespaces[6].type", "bogus"}},
		{name: "hostname without uts namespace", mutate: func(b *bundle) {
			var nss []specs.LinuxNamespace
			for _, ns := range b.spec.Linux.Namespaces {
				if ns.Type != specs.UTSNamespace {
					nss = append(nss, ns)
				}
			}
			b.spec.Linux.Namespaces = nss
			b.spec.Hostname = "x"
		}, want: []string{"hostname", "UTS"}},
		{name: "host sysctl", mutate: func(b *bundle) { b.spec.Linux.Sysctl = map[string]string{"vm.swappiness": "1"} }, want: []string{"linux.sysctl[", "vm.swappiness", "host"}},
		{name: "unknown rlimit", mutate: func(b *bundle) {
			b.spec.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_BOGUS", Soft: 1, Hard: 1}}
		}, want: []string{"process.rlimits[0].type"}},
		{name: "unknown capability", mutate: func(b *bundle) {
			b.spec.Process.Capabilities.Bounding = append(b.spec.Process.Capabilities.Bounding, "CAP_BOGUS")
		}, want: []string{"process.capabilities.bounding[3]", "CAP_BOGUS"}},
		{name: "unknown seccomp syscall", mutate: func(b *bundle) {
			b.spec.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"not_a_syscall"}, Action: specs.ActErrno}}}
		}, want: []string{"linux.seccomp.syscalls[0].names[0]", "not_a_syscall"}},
		{name: "swap without a memory limit", mutate: func(b *bundle) {
			swap := int64(1 << 30)
			b.spec.Linux.Resources.Memory = &specs.LinuxMemory{Swap: &swap}
		}, want: []string{"linux.resources.memory.swap"}},
		{name: "missing program", mutate: func(b *bundle) { b.spec.Process.Args = []string{"no-such-program"} }, want: []string{"process.args[0]", "no-such-program", "not found"}},
		{name: "bad uid mapping", mutate: func(b *bundle) {
			b.spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}
		}, want: []string{"linux.uidMappings", "user namespace"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBundle(t, "true")
			if tc.mutate != nil {
				tc.mutate(b)
			}
			b.save()
			if tc.raw != "" {
				must(t, os.WriteFile(filepath.Join(b.dir, "config.json"), []byte(tc.raw), 0o644))
			}
			id := uniqueID(t)
			_, errs, code := r.run("create", "--bundle", b.dir, id)
			if code == 0 {
				t.Fatalf("create succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(errs, w) {
					t.Errorf("error %q does not mention %q", errs, w)
				}
			}
			r.assertGone(id, b)
		})
	}
}

func TestBadIDs(t *testing.T) {
	r := newRT(t)
	b := newBundle(t, "sleep", "30")
	b.save()
	id := uniqueID(t)
	r.must("create", "--bundle", b.dir, id)
	// A second container with the same ID is refused, and the first is untouched.
	if _, errs, code := r.run("create", "--bundle", b.dir, id); code == 0 || !strings.Contains(errs, "already exists") || !strings.Contains(errs, id) {
		t.Errorf("duplicate id: code %d %q", code, errs)
	}
	if st := r.state(id)["status"]; st != "created" {
		t.Errorf("first container disturbed: %v", st)
	}
	for _, cmd := range [][]string{{"state"}, {"start"}, {"kill"}, {"delete"}, {"exec", "", "true"}, {"ps"}, {"pause"}} {
		args := append([]string{cmd[0], "no-such-id"}, cmd[1:]...)
		if cmd[0] == "exec" {
			args = []string{"exec", "no-such-id", "true"}
		}
		_, errs, code := r.run(args...)
		if code == 0 || !strings.Contains(errs, "no-such-id") || !strings.Contains(errs, "does not exist") {
			t.Errorf("%s of an unknown id: code %d %q", cmd[0], code, errs)
		}
	}
	for _, bad := range []string{"a/b", "..", ""} {
		if _, _, code := r.run("state", bad); code == 0 {
			t.Errorf("id %q accepted", bad)
		}
	}
	r.must("delete", "--force", id)
	r.assertGone(id, b)
}

func TestHooksOrderAndState(t *testing.T) {
	r := newRT(t)
	b := newBundle(t, "sh", "-c", "echo process >> /log")
	log := filepath.Join(b.dir, "rootfs", "log")
	hostHook := func(name string) specs.Hook {
		// Runs in the runtime's namespaces: records its name and the state it got.
		return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > " + filepath.Join(b.dir, name+".json") + "; echo " + name + " >> " + log}}
	}
	ctrHook := func(name, logPath string) specs.Hook {
		// Runs in the container's namespaces: its UTS namespace is not ours.
		return specs.Hook{Path: "/bin/busybox", Args: []string{"sh", "-c", "echo " + name + " $(readlink /proc/self/ns/uts) >> " + logPath}}
	}
	b.spec.Hostname = "inbox"
	b.spec.Hooks = &specs.Hooks{
		Prestart:        []specs.Hook{hostHook("prestart")},
		CreateRuntime:   []specs.Hook{hostHook("createRuntime")},
		CreateContainer: []specs.Hook{ctrHook("createContainer", log)},
		StartContainer:  []specs.Hook{ctrHook("startContainer", "/log")},
		Poststart:       []specs.Hook{hostHook("poststart"), {Path: "/bin/false"}, hostHook("poststart2")},
		Poststop:        []specs.Hook{{Path: "/bin/false"}, hostHook("poststop")},
	}
	b.spec.Annotations = map[string]string{"org.example": "yes"}
	id := uniqueID(t)
	_, errs, code := r.runBundle(b, id)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	data, _ := os.ReadFile(log)
	if strings.Contains(string(data), hostNS(t, "uts")) {
		t.Errorf("a container hook ran in the runtime's UTS namespace:\n%s", data)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	wantOrder := []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststart2", "poststop"}
	// The program's line may come before or after the poststart hooks.
	var got []string
	for _, l := range lines {
		if l != "process" {
			got = append(got, strings.Fields(l)[0])
		}
	}
	if strings.Join(got, "|") != strings.Join(wantOrder, "|") {
		t.Errorf("hook order:\n got %q\nwant %q", got, wantOrder)
	}
	// A failing poststart or poststop hook is a warning; the rest still run.
	if !strings.Contains(errs, "poststart hook failed") || !strings.Contains(errs, "poststop hook failed") {
		t.Errorf("no warnings for failing hooks: %q", errs)
	}
	for name, status := range map[string]specs.ContainerState{"prestart": specs.StateCreated, "poststart": specs.StateRunning, "poststop": specs.StateStopped} {
		var st specs.State
		raw, err := os.ReadFile(filepath.Join(b.dir, name+".json"))
		must(t, err)
		must(t, json.Unmarshal(raw, &st))
		if st.ID != id || st.Status != status || st.Bundle != b.dir || st.Annotations["org.example"] != "yes" {
			t.Errorf("%s hook got state %+v", name, st)
		}
		if name != "poststop" && st.Pid <= 0 {
			t.Errorf("%s hook got no pid", name)
		}
	}
	r.assertGone(id, b)
}

func TestHookTimeoutAndFailure(t *testing.T) {
	r := newRT(t)
	one := 1
	b := newBundle(t, "true")
	b.spec.Hooks = &specs.Hooks{
		CreateRuntime: []specs.Hook{{Path: "/bin/sleep", Args: []string{"sleep", "10"}, Timeout: &one}},
		Poststop:      []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "touch " + filepath.Join(b.dir, "poststop-ran")}}},
	}
	id := uniqueID(t)
	_, errs, code := r.runBundle(b, id)
	if code == 0 || !strings.Contains(errs, "hooks.createRuntime[0]") || !strings.Contains(errs, "timeout") {
		t.Errorf("hook timeout: code %d %q", code, errs)
	}
	// A failed create-time hook stops the container and runs the poststop hooks.
	if _, err := os.Stat(filepath.Join(b.dir, "poststop-ran")); err != nil {
		t.Errorf("poststop hooks did not run after a failed createRuntime hook")
	}
	r.assertGone(id, b)

	b2 := newBundle(t, "true")
	b2.spec.Hooks = &specs.Hooks{CreateContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo broken >&2; exit 4"}}}}
	id2 := uniqueID(t)
	_, errs, code = r.runBundle(b2, id2)
	if code == 0 || !strings.Contains(errs, "hooks.createContainer[0]") || !strings.Contains(errs, "broken") || !strings.Contains(errs, "status 4") {
		t.Errorf("failing createContainer hook: code %d %q", code, errs)
	}
	r.assertGone(id2, b2)
}

func TestTraceTree(t *testing.T) {
	r := newRT(t)
	b := newBundle(t, "true")
	id := uniqueID(t)
	b.save()
	_, errs, code := r.run("--trace", "run", "--bundle", b.dir, id)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, span := range []string{"hako-runtime.run", "runtime.create", "runtime.bundle.load", "runtime.cgroups.create",
		"runtime.init", "runtime.namespaces.unshare", "runtime.rootfs.mount", "runtime.rootfs.pivot_root", "runtime.init.execve", "runtime.delete"} {
		if !strings.Contains(errs, span) {
			t.Errorf("trace lacks %s:\n%s", span, errs)
		}
	}
	// Without startContainer or poststart hooks the init executes the
	// program without waiting for the start; with one, it waits.
	if !strings.Contains(errs, "exec_at_once=true") {
		t.Errorf("run without hooks: runtime.start lacks exec_at_once=true:\n%s", errs)
	}
	bh := newBundle(t, "true")
	bh.spec.Hooks = &specs.Hooks{Poststart: []specs.Hook{{Path: "/bin/true"}}}
	bh.save()
	if _, herrs, code := r.run("--trace", "run", "--bundle", bh.dir, uniqueID(t)); code != 0 || strings.Contains(herrs, "exec_at_once") || !strings.Contains(herrs, "runtime.start") {
		t.Errorf("run with a poststart hook: exit %d, exec_at_once or no runtime.start:\n%s", code, herrs)
	}
	// On v1 and hybrid hosts the init is moved into its cgroups, which
	// may wait for the kernel (joinCgroup); on pure v2 it is cloned in.
	if join := strings.Contains(errs, "runtime.cgroups.join"); join == pureV2() {
		t.Errorf("runtime.cgroups.join in the trace: %v, want %v on this host:\n%s", join, !pureV2(), errs)
	}
	// A caller's trace: spans land in its file with its trace and parent IDs.
	file := filepath.Join(t.TempDir(), "spans.json")
	parent := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	id2 := uniqueID(t)
	r.must("--trace-file", file, "--traceparent", parent, "run", "--bundle", b.dir, id2)
	raw, err := os.ReadFile(file)
	must(t, err)
	var initSpans, rootSeen int
	for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var s struct {
			TraceID  string `json:"trace_id"`
			ParentID string `json:"parent_id"`
			Name     string `json:"name"`
			Proc     string `json:"proc"`
		}
		must(t, json.Unmarshal([]byte(l), &s))
		if s.TraceID != "0af7651916cd43dd8448eb211c80319c" {
			t.Errorf("span %s in trace %s", s.Name, s.TraceID)
		}
		if s.Name == "hako-runtime.run" {
			rootSeen++
			if s.ParentID != "b7ad6b7169203331" {
				t.Errorf("root span's parent %s", s.ParentID)
			}
		}
		if strings.HasPrefix(s.Proc, "init[") {
			initSpans++
		}
	}
	if rootSeen != 1 || initSpans < 5 {
		t.Errorf("root spans %d, init spans %d in\n%s", rootSeen, initSpans, raw)
	}
	r.assertGone(id, b)
	r.assertGone(id2, b)
}

func TestSpecAndFeatures(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	r := &rt{t: t, root: t.TempDir()}
	r.must("spec", "--bundle", dir)
	var s specs.Spec
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	must(t, err)
	must(t, json.Unmarshal(raw, &s))
	if s.Root.Path != "rootfs" || len(s.Linux.Namespaces) == 0 || !s.Process.Terminal {
		t.Errorf("spec: %+v", s)
	}
	if _, errs, code := r.run("spec", "--bundle", dir); code == 0 || !strings.Contains(errs, "exists") {
		t.Errorf("spec over an existing config: %d %q", code, errs)
	}
	rl := t.TempDir()
	r.must("spec", "--rootless", "--bundle", rl)
	raw, _ = os.ReadFile(filepath.Join(rl, "config.json"))
	if !strings.Contains(string(raw), `"user"`) || !strings.Contains(string(raw), "uidMappings") {
		t.Errorf("rootless spec lacks a user namespace:\n%s", raw)
	}
	var f map[string]any
	must(t, json.Unmarshal([]byte(r.must("features")), &f))
	if f["ociVersionMax"] != specs.Version || f["linux"] == nil {
		t.Errorf("features: %v", f)
	}
	if out := r.must("--version"); !strings.Contains(out, "spec: "+specs.Version) {
		t.Errorf("--version: %q", out)
	}
}

// TestPoststartAfterProgramStarts: poststart hooks run only once the
// user's program has started, i.e. after the startContainer hooks, however
// long those take, with create+start (the init's fifo end is close-on-exec)
// and with run (its sync socket end is).
func TestPoststartAfterProgramStarts(t *testing.T) {
	r := newRT(t)
	b := newBundle(t, "sh", "-c", "echo process >> /log")
	log := filepath.Join(b.dir, "rootfs", "log")
	b.spec.Hooks = &specs.Hooks{
		StartContainer: []specs.Hook{{Path: "/bin/busybox", Args: []string{"sh", "-c", "sleep 0.3; echo startContainer >> /log"}}},
		Poststart:      []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo poststart >> " + log}}},
	}
	// The program's own line may come before or after poststart's.
	want := "startContainer|poststart"
	order := func() string {
		data, _ := os.ReadFile(log)
		var got []string
		for _, l := range strings.Fields(string(data)) {
			if l != "process" {
				got = append(got, l)
			}
		}
		return strings.Join(got, "|")
	}
	id := uniqueID(t)
	b.save()
	r.must("create", "--bundle", b.dir, id)
	r.must("start", id)
	if got := order(); got != want {
		t.Errorf("create+start: order %q, want %q", got, want)
	}
	r.must("delete", "--force", id)
	must(t, os.Remove(log))
	if _, errs, code := r.runBundle(b, id); code != 0 {
		t.Fatalf("run: exit %d: %s", code, errs)
	}
	if got := order(); got != want {
		t.Errorf("run: order %q, want %q", got, want)
	}
}

// TestGate: `hako-runtime gate FIFO`, the createRuntime hook hakod uses to
// hold a program until its networks are attached (engine/gate.go), exits 0
// on the verdict '1' only: on '0', and when the writer goes away without a
// verdict (hakod died), it exits 1 and says why.
func TestGate(t *testing.T) {
	for _, c := range []struct {
		name    string
		verdict string // "" : close without one
		code    int
		msg     string
	}{
		{"attached", "1", 0, ""},
		{"failed", "0", 1, "networks could not be attached"},
		{"writer gone", "", 1, "closed without a verdict"},
	} {
		t.Run(c.name, func(t *testing.T) {
			fifo := filepath.Join(t.TempDir(), "start-gate")
			must(t, unix.Mkfifo(fifo, 0o600))
			w, err := os.OpenFile(fifo, os.O_RDWR, 0)
			must(t, err)
			cmd := exec.Command(runtimeBin, "gate", fifo)
			cmd.Stdin = strings.NewReader(`{"ociVersion":"1.2.0","id":"c","status":"creating","pid":1,"bundle":"/b"}`)
			var errs strings.Builder
			cmd.Stderr = &errs
			must(t, cmd.Start())
			time.Sleep(50 * time.Millisecond) // usually waiting in read by now
			if c.verdict != "" {
				_, err = w.WriteString(c.verdict)
				must(t, err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			if c.verdict == "" {
				w.Close()
			}
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatal("gate did not return")
			}
			w.Close()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != c.code || !strings.Contains(errs.String(), c.msg) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errs.String(), c.code, c.msg)
			}
		})
	}
}
