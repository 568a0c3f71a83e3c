package prefault

import (
	"os"
	"testing"
)

func TestSegments(t *testing.T) {
	maps := "00400000-00e0d000 r-xp 00000000 fe:00 1234 /usr/bin/ha ko\n" +
		"00e0d000-01200000 r--p 00a0d000 fe:00 1234 /usr/bin/ha ko\n" +
		"01200000-01230000 rw-p 00e00000 fe:00 1234 /usr/bin/ha ko\n" +
		"01230000-01300000 rw-p 00000000 00:00 0 \n" +
		"7f0000000000-7f0000001000 ---p 00000000 fe:00 1234 /usr/bin/ha ko\n" +
		"7f0000001000-7f0000002000 r--p 00000000 fe:00 99 /usr/lib/other\n" +
		"7fff00000000-7fff0000"
	got := segments([]byte(maps), "/usr/bin/ha ko")
	want := []segment{{0x400000, 0xe0d000, false}, {0xe0d000, 0x1200000, false}, {0x1200000, 0x1230000, true}}
	if len(got) != len(want) {
		t.Fatalf("segments = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("segment %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestSegmentsCutShort(t *testing.T) {
	// A read that ends inside a line: that line is dropped, not misread.
	if got := segments([]byte("00400000-00500000 r-xp 00000000 fe:00 1 /a\n00500000-006"), "/a"); len(got) != 1 {
		t.Errorf("segments = %+v, want the one whole line", got)
	}
	if got := segments([]byte("00400000-00500000 r-xp 00000000 fe:00 1 /a"), "/a"); len(got) != 0 {
		t.Errorf("segments of a line without its newline = %+v, want none", got)
	}
}

func TestAddrRange(t *testing.T) {
	for _, tc := range []struct {
		in         string
		start, end uintptr
		ok         bool
	}{
		{"400000-401000", 0x400000, 0x401000, true},
		{"7ffd1c3a2000-7ffd1c3c3000", 0x7ffd1c3a2000, 0x7ffd1c3c3000, true},
		{"401000-400000", 0, 0, false}, // end before start
		{"-401000", 0, 0, false},
		{"400000-", 0, 0, false},
		{"400000", 0, 0, false},
		{"40g000-401000", 0, 0, false},
		{"400000-401000-402000", 0, 0, false},
	} {
		start, end, ok := addrRange([]byte(tc.in))
		if start != tc.start || end != tc.end || ok != tc.ok {
			t.Errorf("addrRange(%q) = %#x, %#x, %v; want %#x, %#x, %v", tc.in, start, end, ok, tc.start, tc.end, tc.ok)
		}
	}
}

// TestOwnExecutable: the test binary's own maps hold its text and its
// writable data, and populating them (again; init did it once) is harmless.
func TestOwnExecutable(t *testing.T) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Skip(err)
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skip(err)
	}
	var text, data bool
	for _, s := range segments(maps, exe) {
		text = text || !s.writable
		data = data || s.writable
	}
	if !text || !data {
		t.Errorf("segments of %s: text %v, data %v\n%s", exe, text, data, maps)
	}
	populate()
}
