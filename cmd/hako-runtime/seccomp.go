package main

import "github.com/opencontainers/runtime-spec/specs-go/features"

// seccompFeatures reports seccomp support (filled in from runtime/seccomp).
func seccompFeatures() *features.Seccomp {
	f := false
	return &features.Seccomp{Enabled: &f}
}

// libseccompVersion is the linked libseccomp's version ("" without one).
func libseccompVersion() string { return "" }
