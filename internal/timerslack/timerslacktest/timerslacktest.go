// Package timerslacktest helps tests check that processes get the timer
// slack of their caller (see package timerslack).
package timerslacktest

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// With runs fn on one thread whose timer slack is slack (ns), so that the
// processes fn starts begin with it, and restores the thread's slack after.
func With(t testing.TB, slack int, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	old, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err != nil {
		t.Fatalf("PR_GET_TIMERSLACK: %v", err)
	}
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(slack), 0, 0, 0); err != nil {
		t.Fatalf("PR_SET_TIMERSLACK: %v", err)
	}
	defer func() { _ = unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(old), 0, 0, 0) }()
	fn()
}
