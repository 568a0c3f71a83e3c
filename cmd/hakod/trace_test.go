package main

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/hako-project/hako/test/hakodtest"
)

// spanLine returns the first line of a rendered trace that names span,
// and its depth in the tree: where the name starts after the two time
// columns (whose widths vary).
func spanLine(trace, span string) (string, int) {
	for _, l := range strings.Split(trace, "\n") {
		m := treeLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		if i := strings.Index(m[1]+" ", " "+span+" "); i >= 0 {
			return l, i
		}
	}
	return "", -1
}

// treeLine is a line of a rendered trace: start, duration, then the tree.
var treeLine = regexp.MustCompile(`^\s*\+[0-9.]+ms\s+[0-9.]+ms(.*)$`)

// TestRunRmTrace: `hako run --rm --trace` shows where the time goes. The
// first container after hakod's start starts its shim (spare=false), the
// next is given the spare started meanwhile (spare=true), whose standby
// runtime runs its run (standby=true on both sides); the exit removes
// the container's layer beside the runtime's delete, under engine.exited,
// and the removal's clean-up finds it gone.
func TestRunRmTrace(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	for i, spare := range []string{"spare=false", "spare=true"} {
		if i == 1 {
			// The spare starts 30 ms after the last start (shim.Spares):
			// wait for it, as a machine busy with other tests may be slow
			// to start it.
			hakod := hakodPid(t, d)
			var spare []int
			untilTrue(t, "a spare shim", func() bool { spare = idleSpares(d, hakod); return len(spare) == 1 })
			untilTrue(t, "the spare's standby runtime", func() bool { return standbyOf(d, spare[0]) != 0 })
		}
		cmd := exec.Command(d.Bin.HakoClient, "run", "--rm", "--trace", "--network", "none", img, "true")
		cmd.Env = append(os.Environ(), "HAKO_HOST="+d.Host)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("run %d: %v\n%s", i, err, stderr.String())
		}
		tr := stderr.String()
		if l, _ := spanLine(tr, "shim.Start"); !strings.Contains(l, spare) {
			t.Errorf("run %d: shim.Start should say %s:\n%s", i, spare, tr)
		}
		// The spare's standby runtime runs the container's run.
		for _, name := range []string{"shim.runtime.run", "hako-runtime.run"} {
			if l, _ := spanLine(tr, name); strings.Contains(l, "standby=true") != (i == 1) {
				t.Errorf("run %d: %s should say standby=true only with the spare:\n%s", i, name, tr)
			}
		}
		_, del := spanLine(tr, "engine.task.delete")
		_, snap := spanLine(tr, "engine.remove.snapshot")
		_, cleanup := spanLine(tr, "engine.remove.cleanup")
		// The first removal spans are siblings of the delete (deeper than
		// the clean-up, which is engine.exited's sibling). The directory's
		// files go in the background (engine.remove.dir), which the trace
		// waits for (engine.Traces.Hold).
		if del < 0 || snap != del || cleanup < 0 || cleanup >= del {
			t.Errorf("run %d: the layer should be removed under engine.exited, beside engine.task.delete:\n%s", i, tr)
		}
		if _, dir := spanLine(tr, "engine.remove.dir"); dir != del {
			t.Errorf("run %d: engine.remove.dir should be in the trace, beside engine.task.delete:\n%s", i, tr)
		}
	}
	assertClean(t, d)
}
