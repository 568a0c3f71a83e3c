/*
 * Protocol between hako-runtime (Go, the parent) and its container init
 * (C, this package's constructor). Shared by nsexec.c and nsexec.go through
 * cgo, so the numbers are written once.
 *
 * Frames on the sync socket (a SOCK_STREAM socketpair), both directions:
 *     u32 type, u32 length (little endian), then length bytes of payload.
 *
 * The parent sends one MSG_BOOTSTRAP whose payload is a program: a sequence
 * of operations the init executes in order. Each operation is
 *     u32 code, u32 length, then length bytes of fields,
 * and each field is u32 length + bytes. Every operation starts with three
 * string fields: the span name (empty: no span of its own), the spec field it
 * comes from (for error messages) and its span attributes as a JSON object.
 * Integers are 8-byte little-endian fields; a string list is an integer
 * count followed by that many string fields. Strings carry no NUL; the
 * reader terminates them in place.
 */
#ifndef HAKO_NSEXEC_PROTO_H
#define HAKO_NSEXEC_PROTO_H

#define HAKO_INIT_ENV "_HAKO_INIT"

/*
 * The coarse timer slack of hako-runtime's Go commands: internal/timerslack's
 * Coarse (a test in this package checks they agree).
 */
#define HAKO_COARSE_SLACK 2000000

enum hako_msg {
	HAKO_MSG_BOOTSTRAP = 1, /* parent -> init: the program */
	HAKO_MSG_PID,           /* init -> parent: u32 pid of the process that runs the rest */
	HAKO_MSG_USERNS,        /* init -> parent: write my uid/gid maps; parent answers ACK */
	HAKO_MSG_HOOKS,         /* init -> parent: run prestart/createRuntime hooks; ACK carries the state JSON */
	HAKO_MSG_SECCOMP_FD,    /* init -> parent: seccomp listener fd (SCM_RIGHTS); parent answers ACK */
	HAKO_MSG_READY,         /* init -> parent: set up, waiting to be started */
	HAKO_MSG_ACK,           /* parent -> init: go on */
	HAKO_MSG_START,         /* parent -> init: start now (run without exec fifo) */
	HAKO_MSG_ERROR,         /* either way: payload is the message; the init exits after sending it */
	HAKO_MSG_STATE,         /* parent -> init: the state JSON for hooks, sent before START */
};

enum hako_op {
	HAKO_OP_FDS = 1,      /* fifo, console socket, log, trace, log-json, sync: u64 each (-1: none) */
	HAKO_OP_TRACE,        /* trace id, parent span id */
	HAKO_OP_SPAN_BEGIN,   /* a grouping span; its name is the op's span name */
	HAKO_OP_SPAN_END,     /* ends the innermost grouping span */
	HAKO_OP_PDEATHSIG,    /* u64 signal (0 clears) */
	HAKO_OP_SETNS,        /* u64 count, then count x (u64 CLONE_NEW* type, string path): open all, then join in order */
	HAKO_OP_UNSHARE,      /* u64 CLONE_NEW* flags */
	HAKO_OP_USERNS_SYNC,  /* ask the parent to write our id maps, wait for ACK */
	HAKO_OP_SETID_ROOT,   /* setresgid/setresuid 0 in a new or joined user namespace */
	HAKO_OP_WRITE,        /* path, data, u64 flags (1: skip if the file is missing) */
	HAKO_OP_FORK,         /* u64 fork?: with 1, clone(CLONE_PARENT) and let the child go on; always reports the pid */
	HAKO_OP_SETSID,
	HAKO_OP_PROPAGATION,  /* path, u64 flags: set the propagation of the mount at path */
	HAKO_OP_ROOTFS,       /* rootfs path, u64 root propagation flags, private parent, u64 bind: set propagation of /, make the parent private, bind rootfs on itself, open it */
	HAKO_OP_MOUNT,        /* source, destination (in rootfs), fstype, u64 flags, data, u64 propagation, u64 attr_set (recursive mount_setattr), u64 create (0 none, 1 dir, 2 file), u64 resolve flags, u64 remount flags (0: none), u64 source in rootfs (1) */
	HAKO_OP_MKDIR,        /* path (in rootfs), u64 mode */
	HAKO_OP_MKNOD,        /* path (in rootfs), u64 mode incl. type, u64 dev, u64 uid, u64 gid */
	HAKO_OP_BIND_DEV,     /* host path, path (in rootfs) */
	HAKO_OP_SYMLINK,      /* target, path (in rootfs), u64 replace */
	HAKO_OP_HOOKS_SYNC,   /* send HAKO_MSG_HOOKS, wait for ACK (payload: state JSON) */
	HAKO_OP_HOOK,         /* path, args list, env list, u64 timeout seconds (0: none) */
	HAKO_OP_PIVOT_ROOT,   /* make the rootfs the root with pivot_root(2) */
	HAKO_OP_CHROOT,       /* u64 move: (--no-pivot) move the rootfs onto / first; then chroot */
	HAKO_OP_CONSOLE,      /* u64 rows, u64 cols, u64 bind /dev/console: pty, master to the console socket, controlling terminal */
	HAKO_OP_REMOUNT_RO,   /* path (absolute, after pivot): read-only bind of itself, keeping its other flags */
	HAKO_OP_MASK,         /* path (absolute, after pivot): hide it (ro tmpfs on dirs, /dev/null on files) */
	HAKO_OP_HOSTNAME,     /* name */
	HAKO_OP_DOMAINNAME,   /* name */
	HAKO_OP_RLIMIT,       /* u64 resource, u64 soft, u64 hard */
	HAKO_OP_CHDIR,        /* path */
	HAKO_OP_USER,         /* u64 uid, u64 gid, u64 setgroups, u64 count, count x u64 gid */
	HAKO_OP_UMASK,        /* u64 mask */
	HAKO_OP_CAPS,         /* u64 bounding, effective, permitted, inheritable, ambient */
	HAKO_OP_KEEPCAPS,     /* u64 on: PR_SET_KEEPCAPS around the uid change */
	HAKO_OP_NNP,          /* PR_SET_NO_NEW_PRIVS */
	HAKO_OP_SECCOMP,      /* u64 flags, bytes (struct sock_filter[]), u64 notify */
	HAKO_OP_PERSONALITY,  /* u64 persona */
	HAKO_OP_IOPRIO,       /* u64 ioprio value */
	HAKO_OP_SCHED,        /* u64 policy, nice, priority, flags, runtime, deadline, period */
	HAKO_OP_CLOSE_FDS,    /* u64 first: fds >= first close on exec; 3..first-1 stay open */
	HAKO_OP_LOOKUP,       /* name, PATH value: find the program now, so a typo fails at create */
	HAKO_OP_WAIT_START,   /* u64 wait: report READY, then (wait != 0) wait on the exec fifo (or for MSG_START) */
	HAKO_OP_EXEC,         /* args list, env list: execve the looked-up program */
	HAKO_OP_KEYRING,      /* name: join a new session keyring */
	HAKO_OP_MAX
};

#endif
