package main

import (
	"strings"
	"unsafe"
)

// retitle rewrites the process's command line after argv[0] in place, as
// setproctitle(3) does: the kernel shows the memory of the original
// arguments, not a copy. args must fit in what argv[1:] took; false (and
// nothing changed) if not, or if argv is not the kernel's contiguous
// block. A spare (shim.Spares) is started with a blank argument as room
// for the `--state-dir DIR` it shows once assigned, so that ps and
// /proc/PID/cmdline name a shim's container whichever way it started.
// The old argument strings (os.Args) change with it: nothing may
// hold them (main parses copies).
func retitle(argv []string, args ...string) bool {
	if len(argv) < 2 {
		return false
	}
	first := unsafe.StringData(argv[1])
	next := uintptr(unsafe.Pointer(first))
	for _, a := range argv[1:] {
		if uintptr(unsafe.Pointer(unsafe.StringData(a))) != next {
			return false // not one block (empty args have no data pointer either)
		}
		next += uintptr(len(a)) + 1 // and its NUL
	}
	room := unsafe.Slice(first, next-1-uintptr(unsafe.Pointer(first))) // the last NUL stays
	title := strings.Join(args, "\x00")
	if len(title) > len(room) {
		return false
	}
	copy(room, title)
	clear(room[len(title):])
	return true
}
