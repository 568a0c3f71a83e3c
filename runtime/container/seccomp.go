package container

import (
	"errors"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hako-project/hako/runtime/process"
)

// compileSeccomp turns linux.seccomp into a filter for the init.
func compileSeccomp(s *specs.Spec) (*process.Seccomp, error) {
	if s.Linux.Seccomp == nil {
		return nil, nil
	}
	return nil, errors.New("linux.seccomp: not wired yet")
}
