package devicefilter

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func i64(v int64) *int64 { return &v }

// run interprets the generated program for one request, implementing exactly
// the opcodes Compile emits (any other opcode fails the test), so the rule
// semantics are tested without root.
func run(t *testing.T, p Program, devType, major, minor uint32, access uint32) bool {
	t.Helper()
	var reg [11]uint64
	ctx := [3]uint32{access<<16 | devType, major, minor}
	for pc := 0; pc < len(p); pc++ {
		in := p[pc]
		switch in.Code {
		case opLdxMemW:
			if in.Src != regCtx || in.Off%4 != 0 || in.Off > 8 {
				t.Fatalf("bad load at %d", pc)
			}
			reg[in.Dst] = uint64(ctx[in.Off/4])
		case opMov64Reg:
			reg[in.Dst] = reg[in.Src]
		case opMov64Imm:
			reg[in.Dst] = uint64(int64(in.Imm))
		case opAnd64Imm:
			reg[in.Dst] &= uint64(int64(in.Imm))
		case opRsh64Imm:
			reg[in.Dst] >>= uint(in.Imm)
		case opJeqImm:
			if reg[in.Dst] == uint64(int64(in.Imm)) {
				pc += int(in.Off)
			}
		case opJneImm:
			if reg[in.Dst] != uint64(int64(in.Imm)) {
				pc += int(in.Off)
			}
		case opExit:
			return reg[regRet] == 1
		default:
			t.Fatalf("unexpected opcode %#x at %d", in.Code, pc)
		}
	}
	t.Fatalf("program fell off the end")
	return false
}

func rules(t *testing.T, rs ...specs.LinuxDeviceCgroup) []Rule {
	t.Helper()
	out, err := ParseRules(rs)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCompileSemantics(t *testing.T) {
	denyAll := specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"}
	allowAll := specs.LinuxDeviceCgroup{Allow: true}
	null := func(allow bool, acc string) specs.LinuxDeviceCgroup {
		return specs.LinuxDeviceCgroup{Allow: allow, Type: "c", Major: i64(1), Minor: i64(3), Access: acc}
	}
	r, w, m := uint32(AccRead), uint32(AccWrite), uint32(AccMknod)
	cases := []struct {
		name  string
		rules []specs.LinuxDeviceCgroup
		typ   uint32
		maj   uint32
		min   uint32
		acc   uint32
		want  bool
	}{
		{"no rules denies", nil, TypeChar, 1, 3, r, false},
		{"deny all", []specs.LinuxDeviceCgroup{denyAll}, TypeChar, 1, 3, r, false},
		{"allow all", []specs.LinuxDeviceCgroup{allowAll}, TypeBlock, 8, 0, r | w | m, true},
		{"allow null after deny all", []specs.LinuxDeviceCgroup{denyAll, null(true, "rwm")}, TypeChar, 1, 3, r | w, true},
		{"other minor still denied", []specs.LinuxDeviceCgroup{denyAll, null(true, "rwm")}, TypeChar, 1, 5, r, false},
		{"block with same numbers denied", []specs.LinuxDeviceCgroup{denyAll, null(true, "rwm")}, TypeBlock, 1, 3, r, false},
		{"later deny wins", []specs.LinuxDeviceCgroup{null(true, "rwm"), null(false, "rwm")}, TypeChar, 1, 3, r, false},
		{"later allow wins", []specs.LinuxDeviceCgroup{null(false, "rwm"), null(true, "rwm")}, TypeChar, 1, 3, r, true},
		{"partial access: read allowed", []specs.LinuxDeviceCgroup{denyAll, null(true, "r")}, TypeChar, 1, 3, r, true},
		{"partial access: rw refused", []specs.LinuxDeviceCgroup{denyAll, null(true, "r")}, TypeChar, 1, 3, r | w, false},
		{"bits from two rules add up", []specs.LinuxDeviceCgroup{denyAll, null(true, "r"), null(true, "w")}, TypeChar, 1, 3, r | w, true},
		{"deny w after allow rwm keeps r", []specs.LinuxDeviceCgroup{null(true, "rwm"), null(false, "w")}, TypeChar, 1, 3, r, true},
		{"deny w after allow rwm refuses rw", []specs.LinuxDeviceCgroup{null(true, "rwm"), null(false, "w")}, TypeChar, 1, 3, r | w, false},
		{"deny earlier than allow of the same bit is overridden", []specs.LinuxDeviceCgroup{null(false, "w"), null(true, "w")}, TypeChar, 1, 3, w, true},
		{"wildcard major", []specs.LinuxDeviceCgroup{denyAll, {Allow: true, Type: "c", Minor: i64(3), Access: "r"}}, TypeChar, 7, 3, r, true},
		{"wildcard minor", []specs.LinuxDeviceCgroup{denyAll, {Allow: true, Type: "c", Major: i64(136), Access: "rw"}}, TypeChar, 136, 42, r | w, true},
		{"type a ignores numbers", []specs.LinuxDeviceCgroup{denyAll, {Allow: true, Type: "a", Major: i64(9), Access: "m"}}, TypeBlock, 8, 1, m, true},
		{"allow all then deny null", []specs.LinuxDeviceCgroup{allowAll, null(false, "rwm")}, TypeChar, 1, 5, r, true},
		{"allow all then deny null (null)", []specs.LinuxDeviceCgroup{allowAll, null(false, "rwm")}, TypeChar, 1, 3, r, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := Compile(rules(t, c.rules...))
			if got := run(t, p, c.typ, c.maj, c.min, c.acc); got != c.want {
				t.Fatalf("allowed=%v, want %v\n%s", got, c.want, p)
			}
		})
	}
}

func TestParseRuleErrors(t *testing.T) {
	bad := []struct {
		rule specs.LinuxDeviceCgroup
		want string
	}{
		{specs.LinuxDeviceCgroup{Type: "x"}, `type "x"`},
		{specs.LinuxDeviceCgroup{Type: "cc"}, `type "cc"`},
		{specs.LinuxDeviceCgroup{Type: "c", Access: "rx"}, `unknown letter 'x'`},
		{specs.LinuxDeviceCgroup{Type: "c", Access: "rr"}, `letter 'r' repeated`},
		{specs.LinuxDeviceCgroup{Type: "c", Major: i64(-2)}, "major -2"},
		{specs.LinuxDeviceCgroup{Type: "c", Major: i64(4096)}, "major 4096"},
		{specs.LinuxDeviceCgroup{Type: "b", Minor: i64(1 << 20)}, "minor 1048576"},
	}
	for _, b := range bad {
		_, err := ParseRules([]specs.LinuxDeviceCgroup{{Allow: true}, b.rule})
		if err == nil || !strings.Contains(err.Error(), b.want) || !strings.Contains(err.Error(), "devices[1]") {
			t.Errorf("%+v: err=%v, want it to name devices[1] and %q", b.rule, err, b.want)
		}
	}
}

func TestRuleString(t *testing.T) {
	got := rules(t,
		specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "mwr"},
		specs.LinuxDeviceCgroup{},
		specs.LinuxDeviceCgroup{Type: "b", Major: i64(8), Access: "r"},
	)
	want := []string{"c 1:3 rwm", "a *:* rwm", "b 8:* r"}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("rule %d = %q, want %q", i, got[i].String(), want[i])
		}
	}
}

func TestBytesLayout(t *testing.T) {
	b := Program{{Code: opLdxMemW, Dst: 2, Src: 1, Off: 4, Imm: -1}}.Bytes()
	if isBigEndian() {
		t.Skip("layout check written for little-endian hosts")
	}
	want := []byte{0x61, 0x12, 4, 0, 0xff, 0xff, 0xff, 0xff}
	if !bytes.Equal(b, want) {
		t.Fatalf("bytes %x, want %x", b, want)
	}
}

// unifiedRoot is the cgroup2 mount the real tests use: the hybrid host's
// /sys/fs/cgroup/unified, or /sys/fs/cgroup on a pure v2 host.
func unifiedRoot(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: attaches a BPF program to a real cgroup2 directory")
	}
	for _, d := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		var st unix.Statfs_t
		if unix.Statfs(d, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			return d
		}
	}
	t.Skip("no cgroup2 mount at /sys/fs/cgroup/unified or /sys/fs/cgroup")
	return ""
}

func tempCgroup(t *testing.T, root string) (string, int) {
	t.Helper()
	dir := filepath.Join(root, fmt.Sprintf("hako-devfilter-test-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Remove(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	})
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return dir, fd
}

// openIn starts sh inside the cgroup (clone3 CLONE_INTO_CGROUP) and has it
// open path for reading; it returns sh's stderr and whether it succeeded.
func openIn(t *testing.T, cgFD int, path string) (string, bool) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", "exec 3<"+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cgFD}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run sh in cgroup: %v", err)
	}
	return stderr.String(), err == nil
}

func TestAttachRealKernel(t *testing.T) {
	root := unifiedRoot(t)
	_, fd := tempCgroup(t, root)

	rs := rules(t,
		specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"},
		specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "rwm"}, // /dev/zero
	)
	if err := Attach(fd, rs); err != nil {
		t.Fatal(err)
	}
	if msg, ok := openIn(t, fd, "/dev/null"); ok || !strings.Contains(msg, "Operation not permitted") {
		t.Fatalf("open /dev/null in filtered cgroup: ok=%v stderr=%q, want EPERM", ok, msg)
	}
	if msg, ok := openIn(t, fd, "/dev/zero"); !ok {
		t.Fatalf("open /dev/zero (allowed) failed: %s", msg)
	}

	// Replacing the filter leaves exactly one program, the new one.
	rs2 := rules(t,
		specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"},
		specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rw"},
	)
	if err := Attach(fd, rs2); err != nil {
		t.Fatal(err)
	}
	ids, err := attached(fd)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 {
		t.Fatalf("%d programs attached after replace, want 1", len(ids))
	}
	if msg, ok := openIn(t, fd, "/dev/null"); !ok {
		t.Fatalf("open /dev/null after replace failed: %s", msg)
	}
	if _, ok := openIn(t, fd, "/dev/zero"); ok {
		t.Fatal("open /dev/zero after replace succeeded, want EPERM")
	}

	if err := Detach(fd); err != nil {
		t.Fatal(err)
	}
	if ids, _ := attached(fd); len(ids) != 0 {
		t.Fatalf("%d programs left after Detach", len(ids))
	}
	if msg, ok := openIn(t, fd, "/dev/zero"); !ok {
		t.Fatalf("open /dev/zero after detach failed: %s", msg)
	}
}

func TestLoadRejectsBadProgram(t *testing.T) {
	unifiedRoot(t)
	// A program that never sets r0 must be refused by the verifier and the
	// error must carry the verifier's log.
	_, err := Load(Program{{Code: opExit}})
	if err == nil || !strings.Contains(err.Error(), "verifier") {
		t.Fatalf("err = %v, want a verifier rejection", err)
	}
}
