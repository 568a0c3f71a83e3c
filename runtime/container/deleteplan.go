package container

import (
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hako-project/hako/runtime/state"
)

// deletePlan is what `delete` of this container does once its init has
// exited, written down at create for the C side of the runtime
// (runtime/nsexec/delete.c) to carry out before Go starts.
//
// Why: every container's exit ends in a delete (hako-shim runs it as soon as
// the init is reaped, and `run --rm` waits for it), and that delete is a few
// rmdirs and a state directory, next to a Go runtime start of ~8 ms here.
// The plan exists only when nothing at delete needs Go: no poststop hooks,
// the container's own mount namespace (nothing to unmount on the host),
// cgroupfs rather than systemd. Without a plan, or when the C side finds
// anything not plainly so (the init alive, a cgroup still holding a process
// or a sub-cgroup, an unknown flag), the Go command runs as before.
//
// The format is lines of "KEY VALUE...", first "hako-delete-plan 1":
//
//	init PID START     the init's pid and start time (clock ticks since boot)
//	cgroup PATH        a cgroup directory of the container, one per hierarchy
//	parent PATH        an ancestor create made, outermost first; removed
//	                   innermost first when empty
//	end                the last line: a plan cut short is not carried out
func deletePlan(st *state.State, s *specs.Spec, systemd bool) ([]byte, bool) {
	if st.HostMounts || systemd || st.InitPid <= 0 {
		return nil, false
	}
	if s.Hooks != nil && len(s.Hooks.Poststop) > 0 {
		return nil, false
	}
	var b strings.Builder
	fmt.Fprintf(&b, "hako-delete-plan 1\ninit %d %d\n", st.InitPid, st.InitStart)
	if cg := st.Cgroup; cg != nil {
		for _, h := range cg.Hierarchies {
			if !planPath(h.Path) {
				return nil, false
			}
			fmt.Fprintf(&b, "cgroup %s\n", h.Path)
		}
		for _, p := range cg.Parents {
			if !planPath(p) {
				return nil, false
			}
			fmt.Fprintf(&b, "parent %s\n", p)
		}
	}
	b.WriteString("end\n")
	return []byte(b.String()), true
}

// planPath: one absolute path per line, or the plan is not written.
func planPath(p string) bool {
	return strings.HasPrefix(p, "/") && !strings.ContainsAny(p, "\x00\n")
}

// startPlan is the plan of `start` for the C side of the runtime
// (runtime/nsexec/start.c): open the exec fifo once the init is checked to be
// the one create made. Callers that drive the runtime as runc (create, then
// start) run one per container, and its work is small next to a Go runtime
// start. It is written only when
// no poststart hook is to run after the start (the hooks run in Go); the C
// side leaves anything else, a stopped, running or paused container, to Go.
//
// The format is delete.plan's: "hako-start-plan 1", the init line, "end".
func startPlan(st *state.State, s *specs.Spec) ([]byte, bool) {
	if st.InitPid <= 0 || s.Hooks != nil && len(s.Hooks.Poststart) > 0 {
		return nil, false
	}
	return fmt.Appendf(nil, "hako-start-plan 1\ninit %d %d\nend\n", st.InitPid, st.InitStart), true
}
