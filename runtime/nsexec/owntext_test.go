package nsexec

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestOwnText: the ranges are the executable's own mappings, none of them
// writable, the text among them; dropping them (as a standby does before
// it idles) loses nothing: the code faults in again and runs.
func TestOwnText(t *testing.T) {
	text := OwnText()
	if len(text) == 0 {
		t.Fatal("no text ranges")
	}
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	type mapping struct {
		start, end  uint64
		perms, path string
	}
	var ms []mapping
	for _, l := range strings.Split(string(maps), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 {
			continue
		}
		a, b, _ := strings.Cut(f[0], "-")
		s, _ := strconv.ParseUint(a, 16, 64)
		e, _ := strconv.ParseUint(b, 16, 64)
		ms = append(ms, mapping{s, e, f[1], f[5]})
	}
	sawExec := false
	for _, r := range text {
		for _, m := range ms {
			if uint64(r[0]) < m.end && uint64(r[1]) > m.start {
				if m.path != exe || strings.Contains(m.perms, "w") {
					t.Errorf("range %#x-%#x overlaps %s %s", r[0], r[1], m.perms, m.path)
				}
				sawExec = sawExec || strings.Contains(m.perms, "x")
			}
		}
	}
	if !sawExec {
		t.Errorf("no executable mapping among %v", text)
	}
	for _, r := range text {
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, r[0], r[1]-r[0], unix.MADV_DONTNEED); errno != 0 {
			t.Fatalf("madvise %#x-%#x: %v", r[0], r[1], errno)
		}
	}
	if got := strings.Repeat("ok", 2); got != "okok" {
		t.Fatalf("after the drop: %q", got)
	}
}
