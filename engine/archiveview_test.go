package engine

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMountAt(t *testing.T) {
	mounts := []viewMount{{dest: "/data", rw: true}, {dest: "/data/ro"}, {dest: "/etc/hosts", rw: true}}
	for p, want := range map[string]string{
		"/data": "/data", "/data/x": "/data", "/data/ro": "/data/ro", "/data/ro/y": "/data/ro",
		"/data/rox": "/data", "/datax": "", "/": "", "/etc/hosts": "/etc/hosts", "/etc": "",
	} {
		m, ok := mountAt(mounts, p)
		if ok != (want != "") || m.dest != want {
			t.Errorf("mountAt(%q) = %q %v, want %q", p, m.dest, ok, want)
		}
	}
}

func TestCheckWritable(t *testing.T) {
	host := t.TempDir()
	// A symlink is followed inside the container before the mount is
	// chosen, as docker does.
	if err := os.Symlink("/data/ro", filepath.Join(host, "link")); err != nil {
		t.Fatal(err)
	}
	mounts := []viewMount{{dest: "/data", rw: true}, {dest: "/data/ro"}}
	for _, c := range []struct {
		dir    string
		roRoot bool
		want   string
	}{
		{"/data", true, ""},
		{"/data/ro", false, "mounted volume is marked read-only"},
		{"/data/ro/sub", false, "mounted volume is marked read-only"},
		{"/tmp", true, "container rootfs is marked read-only"},
		{"/tmp", false, ""},
		{"/link", false, "mounted volume is marked read-only"},
	} {
		got := ""
		if err := checkWritable(host, mounts, c.dir, c.roRoot); err != nil {
			got = err.Error()
		}
		if got != c.want {
			t.Errorf("%s (read-only root %v): %q, want %q", c.dir, c.roRoot, got, c.want)
		}
	}
}
