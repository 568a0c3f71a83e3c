// Package mountns runs a function in a mount namespace of its own, so that
// what it mounts is seen by no one else and goes when it returns, even if
// the caller forgets to unmount or dies meanwhile.
package mountns

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// Run runs fn on a locked thread in a new mount namespace, a slave of the
// caller's, and waits for it. The thread is never unlocked: it ends with
// its goroutine, and the namespace with it.
func Run(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		errc <- func() error {
			// CLONE_NEWNS implies CLONE_FS: this thread's root and cwd
			// are its own from here on.
			if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
				return fmt.Errorf("unshare the mount namespace: %w", err)
			}
			if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
				return fmt.Errorf("make the mount namespace a slave: %w", err)
			}
			return fn()
		}()
	}()
	return <-errc
}
