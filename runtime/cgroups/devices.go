package cgroups

import specs "github.com/opencontainers/runtime-spec/specs-go"

// AllowedDevices returns the device rules every container gets on top of
// its own (the same set runc and docker allow): mknod of any device, and
// read/write/mknod of the standard pseudo devices and ptys. The runtime
// puts a deny-all first, then these, then one allow rule per linux.devices
// entry; this package only enforces the list it is given.
func AllowedDevices() []specs.LinuxDeviceCgroup {
	n := func(v int64) *int64 { return &v }
	wild := n(-1)
	return []specs.LinuxDeviceCgroup{
		{Allow: true, Type: "c", Major: wild, Minor: wild, Access: "m"},
		{Allow: true, Type: "b", Major: wild, Minor: wild, Access: "m"},
		{Allow: true, Type: "c", Major: n(1), Minor: n(3), Access: "rwm"},    // /dev/null
		{Allow: true, Type: "c", Major: n(1), Minor: n(8), Access: "rwm"},    // /dev/random
		{Allow: true, Type: "c", Major: n(1), Minor: n(7), Access: "rwm"},    // /dev/full
		{Allow: true, Type: "c", Major: n(5), Minor: n(0), Access: "rwm"},    // /dev/tty
		{Allow: true, Type: "c", Major: n(1), Minor: n(5), Access: "rwm"},    // /dev/zero
		{Allow: true, Type: "c", Major: n(1), Minor: n(9), Access: "rwm"},    // /dev/urandom
		{Allow: true, Type: "c", Major: n(136), Minor: wild, Access: "rwm"},  // /dev/pts/*
		{Allow: true, Type: "c", Major: n(5), Minor: n(2), Access: "rwm"},    // /dev/ptmx
		{Allow: true, Type: "c", Major: n(10), Minor: n(200), Access: "rwm"}, // /dev/net/tun
	}
}
