package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hako-project/hako/test/hakodtest"
)

// TestContainerLayerStartsEmpty: a container's writable layer holds what
// its program wrote and nothing else: the files its /etc/hostname,
// /etc/hosts and /etc/resolv.conf are mounted on are in the image's init
// layer (image/initlayer.go), and the runtime does not copy them up; so a
// commit leaves them out, as docker's does.
func TestContainerLayerStartsEmpty(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	d.MustDocker("run", "--name", "marked", img, "sh", "-c", "cat /etc/hostname /etc/hosts /etc/resolv.conf >/dev/null && touch /marker-empty")
	marks, _ := filepath.Glob(filepath.Join(d.DataRoot, "snapshots", "snapshots", "*", "fs", "marker-empty"))
	if len(marks) != 1 {
		t.Fatalf("the container's layer: found %v", marks)
	}
	ents, _ := os.ReadDir(filepath.Dir(marks[0]))
	if len(ents) != 1 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("the container's layer holds %v, want only marker-empty", names)
	}
	if out := d.MustDocker("diff", "marked"); out != "A /marker-empty" {
		t.Errorf("diff: %q", out)
	}
	d.MustDocker("rm", "marked")
	assertClean(t, d)
}
