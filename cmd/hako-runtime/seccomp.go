package main

import (
	"github.com/opencontainers/runtime-spec/specs-go/features"

	"github.com/hako-project/hako/runtime/seccomp"
)

// seccompFeatures reports the seccomp actions, operators, architectures and
// flags this build and kernel support.
func seccompFeatures() *features.Seccomp { return seccomp.Features() }

// libseccompVersion is the linked libseccomp's version.
func libseccompVersion() string { return seccomp.LibraryVersion() }
