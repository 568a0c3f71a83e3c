package seccomp

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// kernel answers what the running kernel supports, so an action or flag
// it lacks is refused by Compile, naming the field, instead of failing
// inside the init. Tests replace it to play an old kernel.
type kernel interface {
	// actionAvailable returns nil if the kernel implements the
	// SECCOMP_RET_* action.
	actionAvailable(ret uint32) error
	// flagsSupported returns nil if seccomp(SECCOMP_SET_MODE_FILTER)
	// accepts the flag combination.
	flagsSupported(flags uint) error
}

// errUnsupported is wrapped by the kernel probes' refusals.
var errUnsupported = errors.New("not supported by the running kernel")

// hostKernel asks the running kernel.
type hostKernel struct{}

func (hostKernel) actionAvailable(ret uint32) error {
	a := ret
	_, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_ACTION_AVAIL, 0, uintptr(unsafe.Pointer(&a)))
	switch e {
	case 0:
		return nil
	case unix.EOPNOTSUPP:
		return errUnsupported
	case unix.EINVAL:
		// Kernels before 4.14 cannot be asked, and have exactly the
		// actions that existed then.
		switch ret {
		case unix.SECCOMP_RET_KILL_THREAD, unix.SECCOMP_RET_TRAP, unix.SECCOMP_RET_ERRNO,
			unix.SECCOMP_RET_TRACE, unix.SECCOMP_RET_ALLOW:
			return nil
		}
		return errUnsupported
	}
	return fmt.Errorf("seccomp(SECCOMP_GET_ACTION_AVAIL): %w", e)
}

func (hostKernel) flagsSupported(flags uint) error {
	// With a NULL program the kernel checks the flags and then fails to
	// copy the program: EFAULT means the flags were accepted.
	_, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(flags), 0)
	switch e {
	case unix.EFAULT:
		return nil
	case unix.EINVAL:
		return errUnsupported
	case 0:
		return errors.New("seccomp(SECCOMP_SET_MODE_FILTER) accepted a NULL program")
	}
	return fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER) probe: %w", e)
}
