package caps

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Apply models, in Go, exactly the order in which hako-runtime's C init
// applies Sets (docs/hardening.md, "Capabilities"). It lives in a test file
// on purpose: the real init is C and runs before any Go runtime exists;
// this copy exists so the order is proven on a real kernel.
//
// It must run on a locked OS thread and uses raw syscalls throughout,
// because capabilities and credentials are per thread and the C init is
// single-threaded: Go's own syscall.Setuid would change every thread.
func Apply(s Sets, lastCap int, uid, gid uint32) error {
	// 1. Bounding set first, while CAP_SETPCAP is still effective: drop
	//    every capability up to the kernel's last one that is not kept.
	for n := 0; n <= lastCap; n++ {
		if s.Bounding&(1<<uint(n)) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(n), 0, 0, 0); err != nil {
			return fmt.Errorf("PR_CAPBSET_DROP %s: %w", capLabel(n), err)
		}
	}
	// 2. Keep the permitted set across the change to a non-root uid.
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("PR_SET_KEEPCAPS 1: %w", err)
	}
	// 3. Change user: groups, then gid, then uid (the uid last, because
	//    changing it takes away the right to change the others).
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0); e != 0 {
		return fmt.Errorf("setgroups: %w", e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(gid), uintptr(gid), uintptr(gid)); e != 0 {
		return fmt.Errorf("setresgid %d: %w", gid, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(uid), uintptr(uid), uintptr(uid)); e != 0 {
		return fmt.Errorf("setresuid %d: %w", uid, e)
	}
	// 4. Back to the default so the user's program does not inherit it.
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("PR_SET_KEEPCAPS 0: %w", err)
	}
	// 5. Effective, permitted and inheritable in one capset(2).
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(s.Effective), Permitted: uint32(s.Permitted), Inheritable: uint32(s.Inheritable)},
		{Effective: uint32(s.Effective >> 32), Permitted: uint32(s.Permitted >> 32), Inheritable: uint32(s.Inheritable >> 32)},
	}
	if _, _, e := unix.RawSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); e != 0 {
		return fmt.Errorf("capset: %w", e)
	}
	// 6. Ambient last: raising needs the capability in permitted and
	//    inheritable, which step 5 just set.
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("PR_CAP_AMBIENT_CLEAR_ALL: %w", err)
	}
	for n := 0; n <= lastCap; n++ {
		if s.Ambient&(1<<uint(n)) == 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(n), 0, 0); err != nil {
			return fmt.Errorf("PR_CAP_AMBIENT_RAISE %s: %w", capLabel(n), err)
		}
	}
	return nil
}

// readStatus reads the five capability masks from a /proc status file.
func readStatus(path string) (Sets, error) {
	f, err := os.Open(path)
	if err != nil {
		return Sets{}, err
	}
	defer f.Close()
	var s Sets
	fields := map[string]*uint64{"CapBnd:": &s.Bounding, "CapEff:": &s.Effective, "CapPrm:": &s.Permitted,
		"CapInh:": &s.Inheritable, "CapAmb:": &s.Ambient}
	seen := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "\t")
		if dst, want := fields[k]; ok && want {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return Sets{}, fmt.Errorf("%s: %s %q: %w", path, k, v, err)
			}
			*dst = n
			seen++
		}
	}
	if seen != len(fields) {
		return Sets{}, fmt.Errorf("%s: found %d of the 5 Cap lines", path, seen)
	}
	return s, sc.Err()
}

// childEnv carries a childRequest to the re-executed test binary.
const childEnv = "HAKO_CAPS_TEST_CHILD"

type childRequest struct {
	Mode    string // "apply": Apply then exec "report"; "report": print own status
	Sets    Sets
	LastCap int
	UID     uint32
	GID     uint32
}

type childReport struct {
	BeforeExec Sets
	AfterExec  Sets
	UID        int
	Err        string
}

func TestMain(m *testing.M) {
	if req := os.Getenv(childEnv); req != "" {
		os.Exit(runChild(req))
	}
	os.Exit(m.Run())
}

func runChild(raw string) int {
	var req childRequest
	if err := json.Unmarshal([]byte(raw), &req); err != nil {
		fmt.Fprintln(os.Stderr, "child: bad request:", err)
		return 3
	}
	out := json.NewEncoder(os.Stdout)
	switch req.Mode {
	case "report":
		s, err := readStatus("/proc/self/status")
		r := childReport{AfterExec: s, UID: os.Getuid()}
		if err != nil {
			r.Err = err.Error()
		}
		_ = out.Encode(r)
		return 0
	case "apply":
		runtime.LockOSThread() // never unlocked: the thread is spoiled
		if err := Apply(req.Sets, req.LastCap, req.UID, req.GID); err != nil {
			_ = out.Encode(childReport{Err: err.Error()})
			return 0
		}
		before, err := readStatus("/proc/thread-self/status")
		if err != nil {
			_ = out.Encode(childReport{Err: err.Error()})
			return 0
		}
		// Hand the "before" masks to the exec'd report through stdout
		// first; execve keeps the fd.
		b, _ := json.Marshal(childReport{BeforeExec: before})
		os.Stdout.Write(append(b, '\n'))
		req.Mode = "report"
		next, _ := json.Marshal(req)
		env := append(environWithout(childEnv), childEnv+"="+string(next))
		// execve from this thread carries this thread's credentials.
		err = syscall.Exec("/proc/self/exe", []string{os.Args[0]}, env)
		_ = out.Encode(childReport{Err: "exec: " + err.Error()})
		return 0
	}
	fmt.Fprintln(os.Stderr, "child: unknown mode", req.Mode)
	return 3
}

// environWithout returns the environment less the variable key: execve
// keeps duplicates and Go's Getenv reads the first one.
func environWithout(key string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// runApply re-executes the test binary to Apply s as uid/gid and returns
// the masks the thread had before exec and the program had after it.
func runApply(t *testing.T, s Sets, lastCap int, uid, gid uint32) (before, after Sets, afterUID int) {
	t.Helper()
	req, _ := json.Marshal(childRequest{Mode: "apply", Sets: s, LastCap: lastCap, UID: uid, GID: gid})
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = append(os.Environ(), childEnv+"="+string(req))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\nstderr: %s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(stdout)), "\n")
	var reports []childReport
	for _, l := range lines {
		var r childReport
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("child output %q: %v", l, err)
		}
		if r.Err != "" {
			t.Fatalf("child: %s", r.Err)
		}
		reports = append(reports, r)
	}
	if len(reports) != 2 {
		t.Fatalf("child printed %d reports, want 2: %s", len(reports), stdout)
	}
	return reports[0].BeforeExec, reports[1].AfterExec, reports[1].UID
}

func requireRoot(t *testing.T) Limits {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("applying capabilities for real needs root (CAP_SETPCAP, CAP_SETUID); run the tests as root")
	}
	l, err := HostLimits(false)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestApplyNonRootWithAmbient(t *testing.T) {
	l := requireRoot(t)
	spec := SpecFor(DockerDefault())
	spec.Inheritable = []string{"CAP_NET_BIND_SERVICE", "CAP_CHOWN"}
	spec.Ambient = []string{"CAP_NET_BIND_SERVICE"}
	s, warnings, err := l.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Fatalf("unexpected warnings: %v", warnings)
	}
	before, after, uid := runApply(t, s, l.LastCap, 1000, 1000)
	if before != s {
		t.Errorf("thread after Apply: %+v\nwant                %+v", before, s)
	}
	// For a non-root program without file capabilities the kernel keeps
	// bounding, inheritable and ambient across execve, and permitted and
	// effective become the ambient set.
	want := Sets{Bounding: s.Bounding, Inheritable: s.Inheritable, Ambient: s.Ambient,
		Permitted: s.Ambient, Effective: s.Ambient}
	if after != want {
		t.Errorf("program after exec: %+v\nwant               %+v", after, want)
	}
	if uid != 1000 {
		t.Errorf("uid after exec = %d, want 1000", uid)
	}
}

func TestApplyRootDockerDefault(t *testing.T) {
	l := requireRoot(t)
	s, _, err := l.Parse(SpecFor(DockerDefault()))
	if err != nil {
		t.Fatal(err)
	}
	before, after, uid := runApply(t, s, l.LastCap, 0, 0)
	if before != s {
		t.Errorf("thread after Apply: %+v\nwant                %+v", before, s)
	}
	// Root's programs get bounding (and inheritable) as permitted and
	// effective on exec, which is why docker sets all three the same.
	want := Sets{Bounding: s.Bounding, Permitted: s.Bounding, Effective: s.Bounding}
	if after != want {
		t.Errorf("program after exec: %+v\nwant               %+v", after, want)
	}
	if uid != 0 {
		t.Errorf("uid after exec = %d, want 0", uid)
	}
}

func TestApplyDropsEverything(t *testing.T) {
	l := requireRoot(t)
	s, _, err := l.Parse(&specs.LinuxCapabilities{})
	if err != nil {
		t.Fatal(err)
	}
	before, after, _ := runApply(t, s, l.LastCap, 0, 0)
	if before != (Sets{}) || after != (Sets{}) {
		t.Fatalf("empty spec left capabilities: before exec %+v, after %+v", before, after)
	}
}

// TestHostLimitIsAWarning covers a spec that asks for a capability the
// host's root does not have (CAP_SYS_RESOURCE on this project's CI host):
// Parse must skip it with a warning and Apply must then succeed, while the
// unfiltered masks really are refused by the kernel.
func TestHostLimitIsAWarning(t *testing.T) {
	l := requireRoot(t)
	missing := -1
	for n := 0; n <= l.LastCap && n <= MaxKnown; n++ {
		if l.Bounding&(1<<uint(n)) == 0 {
			missing = n
			break
		}
	}
	if missing < 0 {
		t.Skip("this host's root has every capability in its bounding set; nothing to refuse")
	}
	name := Name(missing)
	spec := SpecFor(append(DockerDefault(), name))
	s, warnings, err := l.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 3 || warnings[0].Capability != name || !strings.Contains(warnings[0].Reason, "host limit") {
		t.Fatalf("warnings = %v, want three naming %s as a host limit", warnings, name)
	}
	before, _, _ := runApply(t, s, l.LastCap, 0, 0)
	if before != s {
		t.Fatalf("thread after Apply: %+v, want %+v", before, s)
	}

	// Without the skip, capset fails inside the init.
	raw := s
	raw.Permitted |= 1 << uint(missing)
	req, _ := json.Marshal(childRequest{Mode: "apply", Sets: raw, LastCap: l.LastCap})
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = append(os.Environ(), childEnv+"="+string(req))
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var r childReport
	if err := json.Unmarshal(out[:strings.IndexByte(string(out), '\n')+1], &r); err != nil {
		t.Fatalf("child output %q: %v", out, err)
	}
	if !strings.Contains(r.Err, "capset") || !strings.Contains(r.Err, unix.EPERM.Error()) {
		t.Fatalf("applying %s without the skip: %q, want capset refused with EPERM", name, r.Err)
	}
}

func TestReadStatusRejectsGarbage(t *testing.T) {
	p := t.TempDir() + "/status"
	if err := os.WriteFile(p, []byte("CapInh:\tzz\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readStatus(p); err == nil {
		t.Fatal("readStatus accepted a bad mask")
	}
	if _, err := readStatus(p + ".missing"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}
