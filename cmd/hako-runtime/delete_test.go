package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hako-project/hako/runtime/state"
	"github.com/hako-project/hako/trace"
)

// traced runs `VERB [ARGS...] ID` the way hako-shim does when its caller
// traces (HAKO_TRACE_FILE and HAKO_TRACEPARENT) and returns the spans it
// recorded by name, after checking the command's two spans: hako-runtime.VERB
// under the caller's, runtime.VERB with the container's ID under it.
func (r *rt) traced(verb, id string, args ...string) map[string]trace.SpanData {
	r.t.Helper()
	file := filepath.Join(r.t.TempDir(), "spans")
	cmd := exec.Command(runtimeBin, append(append([]string{"--root", r.root, "--log-format", "json", verb}, args...), id)...)
	cmd.Env = append(os.Environ(), trace.EnvFile+"="+file,
		trace.EnvParent+"=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	if out, err := cmd.CombinedOutput(); err != nil {
		r.t.Fatalf("%s %s: %v\n%s", verb, id, err, out)
	}
	f, err := os.Open(file)
	must(r.t, err)
	defer f.Close()
	spans, err := trace.ReadSpans(f)
	must(r.t, err)
	byName := map[string]trace.SpanData{}
	for _, s := range spans {
		if s.TraceID != "0af7651916cd43dd8448eb211c80319c" {
			r.t.Errorf("span %s in trace %s", s.Name, s.TraceID)
		}
		byName[s.Name] = s
	}
	root, ok := byName["hako-runtime."+verb]
	if !ok || root.ParentID != "b7ad6b7169203331" {
		r.t.Fatalf("no hako-runtime.%s span under the caller's: %+v", verb, spans)
	}
	if d := byName["runtime."+verb]; d.ParentID != root.SpanID || d.Attrs["id"] != id {
		r.t.Errorf("runtime.%s span %+v, want id=%s under %s", verb, d, id, root.SpanID)
	}
	return byName
}

// stoppedContainer runs b detached and waits until its init has exited.
func (r *rt) stoppedContainer(b *bundle) string {
	r.t.Helper()
	b.save()
	id := uniqueID(r.t)
	r.must("run", "--detach", "--bundle", b.dir, id)
	r.waitStatus(id, "stopped")
	return id
}

// TestDeleteBeforeGo: a stopped container with a delete plan is deleted by
// the C side of the runtime (the span says before_go=true), with the same
// result as the Go command: no state, no cgroup.
func TestDeleteBeforeGo(t *testing.T) {
	r := newRT(t)
	b := newBundle(t, "true")
	b.spec.Linux.CgroupsPath = "hakotest-" + strconv.Itoa(os.Getpid()) + "/nested/" + uniqueID(t)
	id := r.stoppedContainer(b)
	plan, err := os.ReadFile(filepath.Join(r.root, id, state.DeletePlanFile))
	if err != nil || !strings.HasPrefix(string(plan), "hako-delete-plan 1\n") || !strings.HasSuffix(string(plan), "\nend\n") {
		t.Fatalf("delete plan: %q, %v", plan, err)
	}
	var cgroupDirs []string
	for _, line := range strings.Split(string(plan), "\n") {
		if p, ok := strings.CutPrefix(line, "cgroup "); ok {
			cgroupDirs = append(cgroupDirs, p)
		}
	}
	if len(cgroupDirs) == 0 || !strings.Contains(string(plan), "\nparent ") {
		t.Fatalf("plan lists no cgroup or no parent made by create:\n%s", plan)
	}
	spans := r.traced("delete", id)
	if spans["hako-runtime.delete"].Attrs["before_go"] != "true" {
		t.Errorf("delete of a stopped container ran in Go: %+v", spans["hako-runtime.delete"])
	}
	if _, ok := spans["runtime.cgroups.destroy"]; !ok {
		t.Error("no runtime.cgroups.destroy span")
	}
	r.assertGone(id, b)
	for _, d := range cgroupDirs {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("cgroup %s left behind (%v)", d, err)
		}
		// The ancestors create made ("hakotest-PID/nested") go too.
		if top := strings.Index(d, "/hakotest-"); top > 0 {
			anc := d[:top] + "/hakotest-" + strconv.Itoa(os.Getpid())
			if _, err := os.Stat(anc); !os.IsNotExist(err) {
				t.Errorf("cgroup ancestor %s left behind (%v)", anc, err)
			}
		}
	}
	// A second delete finds nothing, in C or in Go alike.
	if _, errs, code := r.run("delete", id); code == 0 || !strings.Contains(errs, "does not exist") {
		t.Errorf("second delete: exit %d, %q", code, errs)
	}
	r.must("delete", "--force", id)
}

// TestDeleteLeftToGo: whenever the C side cannot do exactly what Go would,
// it changes nothing and Go does the delete.
func TestDeleteLeftToGo(t *testing.T) {
	r := newRT(t)

	t.Run("process left in the cgroup", func(t *testing.T) {
		r := &rt{t: t, root: r.root}
		// No PID namespace: a background process outlives the init and
		// stays in the container's cgroup. Go kills it at delete.
		pidFile := "/tmp/bg.pid"
		b := newBundle(t, "sh", "-c", "sleep 60 & echo $! > "+pidFile)
		var nss []specs.LinuxNamespace
		for _, ns := range b.spec.Linux.Namespaces {
			if ns.Type != specs.PIDNamespace {
				nss = append(nss, ns)
			}
		}
		b.spec.Linux.Namespaces = nss
		id := r.stoppedContainer(b)
		// The pid file holds the pid in the container's (here the
		// host's) PID namespace.
		var bg int
		for deadline := time.Now().Add(5 * time.Second); bg == 0 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			data, _ := os.ReadFile(filepath.Join(b.dir, "rootfs", pidFile))
			bg, _ = strconv.Atoi(strings.TrimSpace(string(data)))
		}
		if bg == 0 || syscall.Kill(bg, 0) != nil {
			t.Fatalf("background process %d not running", bg)
		}
		spans := r.traced("delete", id)
		if spans["hako-runtime.delete"].Attrs["before_go"] != "" {
			t.Error("the C side deleted a container whose cgroup still held a process")
		}
		r.assertGone(id, b)
		deadline := time.Now().Add(5 * time.Second)
		for syscall.Kill(bg, 0) == nil {
			if st, _ := os.ReadFile("/proc/" + strconv.Itoa(bg) + "/stat"); strings.Contains(string(st), ") Z") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("background process %d survived delete", bg)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})

	t.Run("poststop hook", func(t *testing.T) {
		r := &rt{t: t, root: r.root}
		b := newBundle(t, "true")
		mark := filepath.Join(t.TempDir(), "poststop")
		b.spec.Hooks = &specs.Hooks{Poststop: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo ran > " + mark}}}}
		id := r.stoppedContainer(b)
		if _, err := os.Stat(filepath.Join(r.root, id, state.DeletePlanFile)); !os.IsNotExist(err) {
			t.Errorf("a container with poststop hooks has a delete plan (%v)", err)
		}
		spans := r.traced("delete", id)
		if spans["hako-runtime.delete"].Attrs["before_go"] != "" {
			t.Error("the C side deleted a container with poststop hooks")
		}
		if data, err := os.ReadFile(mark); err != nil || string(data) != "ran\n" {
			t.Errorf("poststop hook: %q, %v", data, err)
		}
		r.assertGone(id, b)
	})

	t.Run("plan cut short", func(t *testing.T) {
		r := &rt{t: t, root: r.root}
		b := newBundle(t, "true")
		id := r.stoppedContainer(b)
		planFile := filepath.Join(r.root, id, state.DeletePlanFile)
		plan, err := os.ReadFile(planFile)
		must(t, err)
		must(t, os.WriteFile(planFile, []byte(strings.TrimSuffix(string(plan), "end\n")), 0o600))
		spans := r.traced("delete", id)
		if spans["hako-runtime.delete"].Attrs["before_go"] != "" {
			t.Error("the C side carried out a plan without its end line")
		}
		r.assertGone(id, b)
	})

	t.Run("unknown flag", func(t *testing.T) {
		r := &rt{t: t, root: r.root}
		b := newBundle(t, "true")
		id := r.stoppedContainer(b)
		// --debug is known; an unknown global flag is Go's to report.
		if _, errs, code := r.run("--no-such-flag", "delete", id); code != 2 || !strings.Contains(errs, "no-such-flag") {
			t.Errorf("unknown flag: exit %d, %q", code, errs)
		}
		if _, err := os.Stat(filepath.Join(r.root, id)); err != nil {
			t.Errorf("state gone after a refused command: %v", err)
		}
		if spans := r.traced("delete", id, "--force"); spans["hako-runtime.delete"].Attrs["before_go"] != "true" {
			t.Error("delete --force of a stopped container ran in Go")
		}
		r.assertGone(id, b)
	})
}
