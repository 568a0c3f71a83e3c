package container

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hako-project/hako/runtime/lsm"
	"github.com/hako-project/hako/runtime/process"
	"github.com/hako-project/hako/runtime/seccomp"
	"github.com/hako-project/hako/runtime/state"
)

// compileSeccomp turns linux.seccomp into the filter the init loads, and
// returns the compiled program for the notify hand-off.
func compileSeccomp(s *specs.Spec, root string) (*process.Seccomp, *seccomp.Program, error) {
	if s.Linux == nil || s.Linux.Seccomp == nil {
		return nil, nil, nil
	}
	prog, err := seccomp.CompileCached(s.Linux.Seccomp, filepath.Join(root, state.CacheDir))
	if err != nil {
		return nil, nil, err
	}
	return seccompOf(prog), prog, nil
}

func seccompOf(prog *seccomp.Program) *process.Seccomp {
	return &process.Seccomp{Flags: uint64(prog.Flags), Filter: prog.Bytes(), Notify: prog.Notify()}
}

// execSeccomp is the filter an exec'd process gets: the container's own,
// as create kept it (state.SeccompFile), or, for a container created by an
// older runtime, compiled from the saved profile.
func (c *Container) execSeccomp(profile json.RawMessage) (*process.Seccomp, *seccomp.Program, error) {
	if len(profile) == 0 || string(profile) == "null" {
		return nil, nil, nil
	}
	if prog, err := seccomp.LoadKept(c.dir.Path(state.SeccompFile)); err == nil {
		return seccompOf(prog), prog, nil
	}
	var s specs.LinuxSeccomp
	if err := json.Unmarshal(profile, &s); err != nil {
		return nil, nil, fmt.Errorf("saved config of %q: linux.seccomp: %w", c.ID(), err)
	}
	return compileSeccomp(&specs.Spec{Linux: &specs.Linux{Seccomp: &s}}, c.rt.Root)
}

// listenerHandoff passes the init's seccomp listener to the agent at
// linux.seccomp.listenerPath, with the container state, as the spec asks.
func listenerHandoff(prog *seccomp.Program, st func(pid int) specs.State) func(int, *os.File) error {
	return func(pid int, fd *os.File) error {
		if prog == nil {
			return fmt.Errorf("linux.seccomp: a listener fd arrived without SCMP_ACT_NOTIFY")
		}
		return seccomp.SendListener(prog.ListenerPath, int(fd.Fd()), prog.ProcessState(pid, st(pid)))
	}
}

// lsmWrites lists the writes to /proc/self/attr the init makes before its
// execve for the AppArmor profile and SELinux labels.
func lsmWrites(p *lsm.Plan) []process.Write {
	if p == nil {
		return nil
	}
	var out []process.Write
	if a := p.AppArmor; a != nil {
		for _, path := range a.Paths {
			// The first of the paths the kernel offers is the one to use.
			if _, err := os.Stat(path); err == nil {
				out = append(out, process.Write{Field: "process.apparmorProfile", Path: path, Data: string(a.Data)})
				break
			}
		}
	}
	for _, w := range p.SELinux {
		out = append(out, process.Write{Field: "process.selinuxLabel", Path: w.Path, Data: string(w.Data)})
	}
	return out
}
