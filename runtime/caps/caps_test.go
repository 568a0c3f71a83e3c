package caps

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func bit(names ...string) uint64 {
	var m uint64
	for _, n := range names {
		i, ok := Number(n)
		if !ok {
			panic("test uses unknown capability " + n)
		}
		m |= 1 << uint(i)
	}
	return m
}

func TestNamesMatchKernelHeaders(t *testing.T) {
	// x/sys/unix carries the kernel's <linux/capability.h> numbers; ours
	// must agree with every one of them.
	want := map[string]int{
		"CAP_CHOWN": unix.CAP_CHOWN, "CAP_DAC_OVERRIDE": unix.CAP_DAC_OVERRIDE,
		"CAP_DAC_READ_SEARCH": unix.CAP_DAC_READ_SEARCH, "CAP_FOWNER": unix.CAP_FOWNER,
		"CAP_FSETID": unix.CAP_FSETID, "CAP_KILL": unix.CAP_KILL, "CAP_SETGID": unix.CAP_SETGID,
		"CAP_SETUID": unix.CAP_SETUID, "CAP_SETPCAP": unix.CAP_SETPCAP,
		"CAP_LINUX_IMMUTABLE": unix.CAP_LINUX_IMMUTABLE, "CAP_NET_BIND_SERVICE": unix.CAP_NET_BIND_SERVICE,
		"CAP_NET_BROADCAST": unix.CAP_NET_BROADCAST, "CAP_NET_ADMIN": unix.CAP_NET_ADMIN,
		"CAP_NET_RAW": unix.CAP_NET_RAW, "CAP_IPC_LOCK": unix.CAP_IPC_LOCK, "CAP_IPC_OWNER": unix.CAP_IPC_OWNER,
		"CAP_SYS_MODULE": unix.CAP_SYS_MODULE, "CAP_SYS_RAWIO": unix.CAP_SYS_RAWIO,
		"CAP_SYS_CHROOT": unix.CAP_SYS_CHROOT, "CAP_SYS_PTRACE": unix.CAP_SYS_PTRACE,
		"CAP_SYS_PACCT": unix.CAP_SYS_PACCT, "CAP_SYS_ADMIN": unix.CAP_SYS_ADMIN,
		"CAP_SYS_BOOT": unix.CAP_SYS_BOOT, "CAP_SYS_NICE": unix.CAP_SYS_NICE,
		"CAP_SYS_RESOURCE": unix.CAP_SYS_RESOURCE, "CAP_SYS_TIME": unix.CAP_SYS_TIME,
		"CAP_SYS_TTY_CONFIG": unix.CAP_SYS_TTY_CONFIG, "CAP_MKNOD": unix.CAP_MKNOD,
		"CAP_LEASE": unix.CAP_LEASE, "CAP_AUDIT_WRITE": unix.CAP_AUDIT_WRITE,
		"CAP_AUDIT_CONTROL": unix.CAP_AUDIT_CONTROL, "CAP_SETFCAP": unix.CAP_SETFCAP,
		"CAP_MAC_OVERRIDE": unix.CAP_MAC_OVERRIDE, "CAP_MAC_ADMIN": unix.CAP_MAC_ADMIN,
		"CAP_SYSLOG": unix.CAP_SYSLOG, "CAP_WAKE_ALARM": unix.CAP_WAKE_ALARM,
		"CAP_BLOCK_SUSPEND": unix.CAP_BLOCK_SUSPEND, "CAP_AUDIT_READ": unix.CAP_AUDIT_READ,
		"CAP_PERFMON": unix.CAP_PERFMON, "CAP_BPF": unix.CAP_BPF,
		"CAP_CHECKPOINT_RESTORE": unix.CAP_CHECKPOINT_RESTORE,
	}
	if len(want) != MaxKnown+1 {
		t.Fatalf("test table has %d entries, want %d", len(want), MaxKnown+1)
	}
	for name, n := range want {
		got, ok := Number(name)
		if !ok || got != n {
			t.Errorf("Number(%q) = %d, %v; want %d", name, got, ok, n)
		}
		if Name(n) != name {
			t.Errorf("Name(%d) = %q, want %q", n, Name(n), name)
		}
	}
	if unix.CAP_LAST_CAP != MaxKnown {
		t.Errorf("kernel headers know up to %d, this package up to %d", unix.CAP_LAST_CAP, MaxKnown)
	}
	for _, bad := range []string{"", "CAP_FOO", "cap_chown", "CHOWN", "CAP_CHOWN "} {
		if _, ok := Number(bad); ok {
			t.Errorf("Number(%q) accepted a name the spec does not allow", bad)
		}
	}
	if Name(-1) != "" || Name(MaxKnown+1) != "" {
		t.Error("Name accepted an out-of-range number")
	}
}

func TestLastCapMatchesKernel(t *testing.T) {
	got, err := LastCap()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(ProcLastCap)
	if err != nil {
		t.Skipf("no %s on this host: %v", ProcLastCap, err)
	}
	want, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if got != want {
		t.Fatalf("LastCap() = %d, want %d", got, want)
	}
	// The kernel must refuse to read the capability right after the last.
	if _, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(got+1), 0, 0, 0); err == nil {
		t.Fatalf("PR_CAPBSET_READ(%d) succeeded; LastCap %d is too small", got+1, got)
	}
}

func TestHostLimits(t *testing.T) {
	l, err := HostLimits(false)
	if err != nil {
		t.Fatal(err)
	}
	status, err := readStatus("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	if l.Bounding != status.Bounding {
		t.Fatalf("HostLimits bounding %#x, /proc/self/status CapBnd %#x", l.Bounding, status.Bounding)
	}
	u, err := HostLimits(true)
	if err != nil {
		t.Fatal(err)
	}
	if u.Bounding != maskUpTo(u.LastCap) {
		t.Fatalf("user-namespace limits %#x, want every capability up to %d", u.Bounding, u.LastCap)
	}
	if got := len(u.Available()); got != u.LastCap+1 && u.LastCap <= MaxKnown {
		t.Fatalf("Available() in a user namespace lists %d capabilities, want %d", got, u.LastCap+1)
	}
}

var full = Limits{LastCap: MaxKnown, Bounding: maskUpTo(MaxKnown)}

func TestParse(t *testing.T) {
	docker := DockerDefault()
	tests := []struct {
		name     string
		limits   Limits
		in       *specs.LinuxCapabilities
		want     Sets
		warnings []string // Warning.String() of each, in order
	}{
		{
			name:   "docker default",
			limits: full,
			in:     SpecFor(docker),
			want:   Sets{Bounding: bit(docker...), Effective: bit(docker...), Permitted: bit(docker...)},
		},
		{
			name:   "all five sets",
			limits: full,
			in: &specs.LinuxCapabilities{
				Bounding:    []string{"CAP_CHOWN", "CAP_NET_ADMIN", "CAP_KILL"},
				Effective:   []string{"CAP_CHOWN"},
				Permitted:   []string{"CAP_CHOWN", "CAP_NET_ADMIN"},
				Inheritable: []string{"CAP_NET_ADMIN", "CAP_KILL"},
				Ambient:     []string{"CAP_NET_ADMIN"},
			},
			want: Sets{
				Bounding:    bit("CAP_CHOWN", "CAP_NET_ADMIN", "CAP_KILL"),
				Effective:   bit("CAP_CHOWN"),
				Permitted:   bit("CAP_CHOWN", "CAP_NET_ADMIN"),
				Inheritable: bit("CAP_NET_ADMIN", "CAP_KILL"),
				Ambient:     bit("CAP_NET_ADMIN"),
			},
		},
		{
			name:   "empty lists drop everything",
			limits: full,
			in:     &specs.LinuxCapabilities{},
			want:   Sets{},
		},
		{
			name:   "nil leaves the runtime's capabilities",
			limits: Limits{LastCap: 40, Bounding: maskUpTo(40) &^ bit("CAP_SYS_RESOURCE")},
			in:     nil,
			want: Sets{
				Bounding:  maskUpTo(40) &^ bit("CAP_SYS_RESOURCE"),
				Effective: maskUpTo(40) &^ bit("CAP_SYS_RESOURCE"),
				Permitted: maskUpTo(40) &^ bit("CAP_SYS_RESOURCE"),
			},
		},
		{
			name:   "duplicates are harmless",
			limits: full,
			in:     &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL", "CAP_KILL"}},
			want:   Sets{Bounding: bit("CAP_KILL")},
		},
		{
			name:   "capability newer than the kernel is skipped with a warning",
			limits: Limits{LastCap: 37, Bounding: maskUpTo(37)},
			in: &specs.LinuxCapabilities{
				Bounding:  []string{"CAP_CHOWN", "CAP_BPF"},
				Permitted: []string{"CAP_CHECKPOINT_RESTORE"},
			},
			want: Sets{Bounding: bit("CAP_CHOWN")},
			warnings: []string{
				"process.capabilities.bounding[1]: CAP_BPF skipped: the running kernel does not have it (cap_last_cap is 37)",
				"process.capabilities.permitted[0]: CAP_CHECKPOINT_RESTORE skipped: the running kernel does not have it (cap_last_cap is 37)",
			},
		},
		{
			name:   "capability outside the host bounding set is skipped in every set",
			limits: Limits{LastCap: 40, Bounding: maskUpTo(40) &^ bit("CAP_SYS_RESOURCE")},
			in: &specs.LinuxCapabilities{
				Bounding:  []string{"CAP_SYS_RESOURCE", "CAP_KILL"},
				Effective: []string{"CAP_SYS_RESOURCE"},
				Permitted: []string{"CAP_SYS_RESOURCE"},
			},
			want: Sets{Bounding: bit("CAP_KILL")},
			warnings: []string{
				"process.capabilities.bounding[0]: CAP_SYS_RESOURCE skipped: not in the runtime's bounding set, so no process it starts can hold it (host limit)",
				"process.capabilities.effective[0]: CAP_SYS_RESOURCE skipped: not in the runtime's bounding set, so no process it starts can hold it (host limit)",
				"process.capabilities.permitted[0]: CAP_SYS_RESOURCE skipped: not in the runtime's bounding set, so no process it starts can hold it (host limit)",
			},
		},
		{
			name:   "ambient without inheritable is skipped as runc does",
			limits: full,
			in: &specs.LinuxCapabilities{
				Bounding:    []string{"CAP_KILL", "CAP_CHOWN"},
				Permitted:   []string{"CAP_KILL", "CAP_CHOWN"},
				Ambient:     []string{"CAP_KILL", "CAP_CHOWN"},
				Inheritable: []string{"CAP_CHOWN"},
			},
			want: Sets{
				Bounding:    bit("CAP_KILL", "CAP_CHOWN"),
				Permitted:   bit("CAP_KILL", "CAP_CHOWN"),
				Inheritable: bit("CAP_CHOWN"),
				Ambient:     bit("CAP_CHOWN"),
			},
			warnings: []string{
				"process.capabilities.ambient[0]: CAP_KILL skipped: an ambient capability must also be permitted and inheritable",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, warnings, err := tc.limits.Parse(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("sets = %+v\nwant   %+v", got, tc.want)
			}
			var ws []string
			for _, w := range warnings {
				ws = append(ws, w.String())
			}
			if !slices.Equal(ws, tc.warnings) {
				t.Errorf("warnings = %q\nwant       %q", ws, tc.warnings)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   *specs.LinuxCapabilities
		want string
	}{
		{"unknown in bounding", &specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN", "CAP_KILL", "CAP_FOO"}},
			`process.capabilities.bounding[2]: unknown capability "CAP_FOO"`},
		{"unknown in effective", &specs.LinuxCapabilities{Effective: []string{"CAP_TEST"}},
			`process.capabilities.effective[0]: unknown capability "CAP_TEST"`},
		{"unknown in permitted", &specs.LinuxCapabilities{Permitted: []string{"chown"}},
			`process.capabilities.permitted[0]: unknown capability "chown"`},
		{"unknown in inheritable", &specs.LinuxCapabilities{Inheritable: []string{""}},
			`process.capabilities.inheritable[0]: unknown capability ""`},
		{"unknown in ambient", &specs.LinuxCapabilities{Ambient: []string{"CAP_KILL", "CAP_CHOWN "}},
			`process.capabilities.ambient[1]: unknown capability "CAP_CHOWN "`},
		{"effective not permitted", &specs.LinuxCapabilities{
			Bounding: []string{"CAP_KILL", "CAP_CHOWN"}, Permitted: []string{"CAP_KILL"}, Effective: []string{"CAP_KILL", "CAP_CHOWN"}},
			`process.capabilities.effective[1]: CAP_CHOWN is not in process.capabilities.permitted`},
		{"inheritable outside bounding", &specs.LinuxCapabilities{
			Bounding: []string{"CAP_KILL"}, Inheritable: []string{"CAP_NET_RAW"}},
			`process.capabilities.inheritable[0]: CAP_NET_RAW is not in process.capabilities.bounding`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := full.Parse(tc.in)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error = %v, want prefix %q", err, tc.want)
			}
			if err := Validate(tc.in); err == nil {
				t.Fatal("Validate accepted what Parse refused")
			}
		})
	}
}

func TestParseOnThisHost(t *testing.T) {
	// The package-level Parse must accept docker's default everywhere: all
	// of its capabilities are in every kernel since 2.6.
	s, err := Parse(SpecFor(DockerDefault()))
	if err != nil {
		t.Fatal(err)
	}
	if s.Bounding != bit(DockerDefault()...) {
		t.Fatalf("bounding %#x, want %#x", s.Bounding, bit(DockerDefault()...))
	}
	if _, err := Parse(&specs.LinuxCapabilities{Bounding: []string{"CAP_TEST"}}); err == nil {
		t.Fatal("Parse accepted CAP_TEST")
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"net_admin": "CAP_NET_ADMIN", "NET_ADMIN": "CAP_NET_ADMIN", "cap_net_admin": "CAP_NET_ADMIN",
		"CAP_NET_ADMIN": "CAP_NET_ADMIN", " chown ": "CAP_CHOWN", "all": "ALL", "ALL": "ALL",
	} {
		got, err := Normalize(in)
		if err != nil || got != want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "CAP_", "foo", "CAP_ALL", "net-admin"} {
		if got, err := Normalize(bad); err == nil {
			t.Errorf("Normalize(%q) = %q, want an error", bad, got)
		}
	}
}

func TestDefaults(t *testing.T) {
	d := DockerDefault()
	if len(d) != 14 {
		t.Fatalf("docker default has %d capabilities, want 14", len(d))
	}
	if err := Validate(SpecFor(d)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_MODULE"} {
		if slices.Contains(d, c) {
			t.Errorf("docker default must not grant %s", c)
		}
	}
	r := RuncDefault()
	if !slices.Equal(r, []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}) {
		t.Fatalf("runc default = %v", r)
	}
	// The returned slices are copies: changing one must not change the next.
	d[0] = "CAP_SYS_ADMIN"
	if DockerDefault()[0] != "CAP_CHOWN" {
		t.Fatal("DockerDefault returned shared storage")
	}
	spec := SpecFor(r)
	if spec.Inheritable != nil || spec.Ambient != nil {
		t.Fatalf("SpecFor set inheritable/ambient: %+v", spec)
	}
	spec.Bounding[0] = "CAP_SYS_ADMIN"
	if spec.Effective[0] != "CAP_AUDIT_WRITE" {
		t.Fatal("SpecFor shares storage between sets")
	}
}

func TestAddToAll(t *testing.T) {
	base := SpecFor(RuncDefault())
	got, err := AddToAll(base, "net_admin", "CAP_KILL")
	if err != nil {
		t.Fatal(err)
	}
	for name, set := range map[string][]string{"bounding": got.Bounding, "effective": got.Effective,
		"permitted": got.Permitted, "inheritable": got.Inheritable, "ambient": got.Ambient} {
		if !slices.Contains(set, "CAP_NET_ADMIN") || !slices.Contains(set, "CAP_KILL") {
			t.Errorf("%s = %v, want CAP_NET_ADMIN and CAP_KILL", name, set)
		}
	}
	if n := len(got.Bounding); n != 4 {
		t.Errorf("bounding has %d entries (%v), want 4 without duplicates", n, got.Bounding)
	}
	if slices.Contains(base.Bounding, "CAP_NET_ADMIN") {
		t.Error("AddToAll modified its input")
	}
	if s, _, err := full.Parse(got); err != nil || s.Ambient != bit("CAP_NET_ADMIN", "CAP_KILL") {
		t.Errorf("the result parses to %+v, %v; want both in ambient", s, err)
	}
	if nilBase, err := AddToAll(nil, "CAP_CHOWN"); err != nil || !slices.Equal(nilBase.Ambient, []string{"CAP_CHOWN"}) {
		t.Errorf("AddToAll(nil) = %+v, %v", nilBase, err)
	}
	if _, err := AddToAll(base, "CAP_CHOWN", "CAP_NOPE"); err == nil || !strings.Contains(err.Error(), `--cap[1]: unknown capability "CAP_NOPE"`) {
		t.Errorf("unknown --cap: error = %v", err)
	}
	if _, err := AddToAll(base, "ALL"); err == nil {
		t.Error("AddToAll accepted ALL")
	}
}

func TestTweak(t *testing.T) {
	all := []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_ADMIN", "CAP_SYS_ADMIN"}
	base := []string{"CAP_CHOWN", "CAP_KILL"}
	tests := []struct {
		name      string
		add, drop []string
		want      []string
	}{
		{"nothing", nil, nil, base},
		{"add and drop", []string{"net_admin"}, []string{"KILL"}, []string{"CAP_CHOWN", "CAP_NET_ADMIN"}},
		{"add ALL minus drop", []string{"ALL"}, []string{"cap_sys_admin"}, []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_ADMIN"}},
		{"drop ALL plus add", []string{"CAP_KILL"}, []string{"all"}, []string{"CAP_KILL"}},
		{"add existing", []string{"CAP_CHOWN"}, nil, base},
		{"add wins over drop", []string{"CAP_KILL"}, []string{"CAP_KILL"}, base},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Tweak(base, tc.add, tc.drop, all)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Tweak = %v, want %v", got, tc.want)
			}
		})
	}
	if _, err := Tweak(base, []string{"CAP_BOGUS"}, nil, all); err == nil || !strings.Contains(err.Error(), "--cap-add[0]") {
		t.Errorf("bad --cap-add: %v", err)
	}
	if _, err := Tweak(base, nil, []string{"KILL", "bogus"}, all); err == nil || !strings.Contains(err.Error(), "--cap-drop[1]") {
		t.Errorf("bad --cap-drop: %v", err)
	}
}

func TestNamesOf(t *testing.T) {
	if got := NamesOf(bit("CAP_KILL", "CAP_CHOWN", "CAP_CHECKPOINT_RESTORE") | 1<<50); !slices.Equal(got,
		[]string{"CAP_CHOWN", "CAP_KILL", "CAP_CHECKPOINT_RESTORE"}) {
		t.Fatalf("NamesOf = %v", got)
	}
	if len(All()) != MaxKnown+1 {
		t.Fatal("All() is incomplete")
	}
}
