// Package cgroups is hako-runtime's container cgroup manager: it creates a
// container's cgroup on every mounted hierarchy, moves processes into it,
// applies and updates linux.resources, freezes and thaws it, lists and
// signals its processes, reads runc-compatible statistics, reports OOM kills
// and removes it.
//
// It supports cgroup v2, v1 and the hybrid layout (v1 controllers plus a
// cgroup2 mount at /sys/fs/cgroup/unified) and puts each controller where
// the host has it: on a hybrid host hugetlb may live only on the unified
// hierarchy while cpu and memory are v1. The host layout is read once (one
// read of /proc/self/mountinfo, and of /proc/self/cgroup only for relative
// paths) by New; Load rebuilds a manager from its persisted State without
// reading anything.
//
// The package imports only the standard library, x/sys/unix and the
// runtime-spec types, because it runs in every hako-runtime invocation and
// the cgroup libraries measured here add ~4 ms and ~2 MiB to each (see
// docs/cgroups.md). The eBPF device filter for cgroup v2 is in the
// devicefilter sub-package.
//
// It does not parse the OCI bundle, decide default device rules for a
// container (AllowedDevices is offered as a helper), or speak D-Bus: the
// systemd driver's "slice:prefix:name" paths are validated and refused with
// an error naming --systemd-cgroup.
package cgroups
