package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/hako-project/hako/test/hakodtest"
)

// spanLine returns the first line of a rendered trace that names span,
// and the column where the name starts (its depth in the tree).
func spanLine(trace, span string) (string, int) {
	for _, l := range strings.Split(trace, "\n") {
		if i := strings.Index(l, " "+span+" "); i >= 0 || strings.HasSuffix(l, " "+span) {
			if i < 0 {
				i = len(l) - len(span) - 1
			}
			return l, i
		}
	}
	return "", -1
}

// TestRunRmTrace: `hako run --rm --trace` shows where the time goes. The
// first container after hakod's start starts its shim (spare=false), the
// next is given the spare started meanwhile (spare=true); the exit removes
// the container's layer and directory beside the runtime's delete, under
// engine.exited, and the removal's clean-up finds them gone.
func TestRunRmTrace(t *testing.T) {
	d := hakodtest.Start(t)
	img := d.DefaultImage()
	for i, spare := range []string{"spare=false", "spare=true"} {
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
		_, del := spanLine(tr, "engine.task.delete")
		_, snap := spanLine(tr, "engine.remove.snapshot")
		_, dir := spanLine(tr, "engine.remove.dir")
		_, cleanup := spanLine(tr, "engine.remove.cleanup")
		// The first removal spans are siblings of the delete (deeper than
		// the clean-up, which is engine.exited's sibling).
		if del < 0 || snap != del || dir != del || cleanup < 0 || cleanup >= del {
			t.Errorf("run %d: the layer and directory should be removed under engine.exited, beside engine.task.delete:\n%s", i, tr)
		}
	}
	assertClean(t, d)
}
