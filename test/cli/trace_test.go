package cli_test

import (
	"slices"
	"strings"
	"testing"
)

// TestTrace: --trace prints the span tree of the command on stderr, with
// one cli.api span per request; against a daemon without the trace
// endpoint it says so and shows the CLI's spans.
func TestTrace(t *testing.T) {
	s := need(t)
	for _, args := range [][]string{
		{"--trace", "run", "--rm", testImage, "echo", "traced"},
		{"run", "--trace", "--rm", testImage, "echo", "traced"},
		// No network to set up: nothing to hold the program at the start
		// gate (engine/gate.go).
		{"run", "--trace", "--rm", "--network", "none", testImage, "echo", "traced"},
	} {
		r := s.run(s.hako, "", args...)
		if r.code != 0 || r.out != "traced\n" {
			t.Fatalf("%v: %s", args, r)
		}
		for _, want := range []string{"trace ", "cli.run  command=run", "cli.api  method=POST path=/v", "/containers/create status=201",
			"/attach", "/wait", "/start status=204"} {
			if !strings.Contains(r.err, want) {
				t.Errorf("%v: trace lacks %q:\n%s", args, want, r.err)
			}
		}
		if s.ownDaemon && !strings.Contains(r.err, "the daemon does not serve traces") {
			t.Errorf("against dockerd the trace must say it has the CLI's spans only:\n%s", r.err)
		}
		if !s.ownDaemon && strings.Contains(r.err, "does not serve traces") {
			t.Errorf("the daemon under test should serve its spans:\n%s", r.err)
		}
		if !s.ownDaemon {
			// hakod's trace reaches down through the shim to the init:
			// one runtime command creates and starts the container, and
			// on the default bridge the start gate's hook holds the
			// program until the network is attached, unless the
			// container took a namespace attached ahead ...
			gate := "runtime.hooks.run  hook=hooks.createRuntime[0]"
			attach := !slices.Contains(args, "none") && !strings.Contains(r.err, "network.spare.take  kind=endpoint")
			if attach != strings.Contains(r.err, gate) {
				t.Errorf("%v: the start gate's hook (%q) should run exactly when there is a network to attach:\n%s", args, gate, r.err)
			}
			// ... and on past the exit: the runtime's delete and the
			// removal that --rm asked for.
			for _, want := range []string{"engine.start", "shim.Start", "shim.runtime.run", "runtime.namespaces", "runtime.rootfs.pivot_root", "runtime.init.execve",
				"engine.exited", "engine.task.delete", "runtime.delete", "engine.remove.cleanup"} {
				if !strings.Contains(r.err, want) {
					t.Errorf("%v: hakod's trace lacks %q:\n%s", args, want, r.err)
				}
			}
		}
	}
	if !s.ownDaemon {
		// An exec into a container started earlier, untraced: the shim's
		// and the runtime's spans still join the exec's trace.
		name := "trace-exec-h"
		s.cleanup(t, name)
		if r := s.run(s.hako, "", "run", "-d", "--name", name, testImage, "sleep", "60"); r.code != 0 {
			t.Fatalf("run -d: %s", r)
		}
		r := s.run(s.hako, "", "exec", "--trace", name, "true")
		if r.code != 0 {
			t.Fatalf("exec --trace: %s", r)
		}
		for _, want := range []string{"engine.exec.start", "shim.runtime.exec", "runtime.exec"} {
			if !strings.Contains(r.err, want) {
				t.Errorf("exec trace lacks %q:\n%s", want, r.err)
			}
		}
	}
	// A failing command still prints its trace, with the error.
	r := s.run(s.hako, "", "--trace", "inspect", "nosuch-object")
	if r.code != 1 || !strings.Contains(r.err, "cli.run  command=inspect  ERROR: ") {
		t.Fatalf("trace of a failed command: %s", r)
	}
}
