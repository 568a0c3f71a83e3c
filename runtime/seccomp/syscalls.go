package seccomp

// newerSyscalls lists Linux system calls that a libseccomp release may not
// know yet, because they were added to the kernel after it (the table
// starts at pidfd_send_signal, Linux 5.1, number 424 on every architecture;
// libseccomp 2.5.0 is the oldest release this package supports).
//
// A profile naming one of these is not wrong, only newer than the
// libseccomp hako-runtime was linked with: docker's default profile names
// mseal and statmount, which libseccomp 2.5.4 does not know. Such names are
// skipped like runc skips them, and the ENOSYS stub makes the syscall fail
// with ENOSYS, so programs fall back to older calls. Any other name that
// libseccomp does not know is a typo and an error. Extend this list when a
// kernel adds system calls (a test checks docker's profile compiles).
var newerSyscalls = [...]string{
	"pidfd_send_signal", "io_uring_setup", "io_uring_enter", "io_uring_register",
	"open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick",
	"pidfd_open", "clone3", "close_range", "openat2", "pidfd_getfd",
	"faccessat2", "process_madvise", "epoll_pwait2", "mount_setattr",
	"quotactl_fd", "landlock_create_ruleset", "landlock_add_rule",
	"landlock_restrict_self", "memfd_secret", "process_mrelease", "futex_waitv",
	"set_mempolicy_home_node", "cachestat", "fchmodat2", "map_shadow_stack",
	"futex_wake", "futex_wait", "futex_requeue", "statmount", "listmount",
	"lsm_get_self_attr", "lsm_set_self_attr", "lsm_list_modules", "mseal",
	"setxattrat", "getxattrat", "listxattrat", "removexattrat",
	"open_tree_attr", "file_getattr", "file_setattr",
	// Architecture-specific ones of the same era.
	"riscv_hwprobe", "riscv_flush_icache", "uretprobe", "uprobe",
}

// isNewerSyscall reports whether name is a Linux system call that may be
// missing from libseccomp's table.
func isNewerSyscall(name string) bool {
	for _, n := range newerSyscalls {
		if n == name {
			return true
		}
	}
	return false
}
