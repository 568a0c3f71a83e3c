/*
 * `hako-runtime start ID` of a created container, carried out before the Go
 * runtime starts.
 *
 * Callers that drive the runtime as runc (containerd, docker, podman) create
 * a container, then start it: one start per container, on the path of every
 * `docker run` (hakod's own shim runs hako-runtime's `run` instead). The work
 * is to open the exec fifo the init waits on and read its byte; a Go runtime
 * start costs ~8 ms more on the machines we measure (bench/runtime/cmdstat.sh:
 * `start` 11.6 ms of CPU before, `state` 11.2).
 *
 * create writes start.plan (runtime/container/deleteplan.go) only when no
 * poststart hook is to run after the start. This file does what the Go
 * command does for such a container (runtime/container/start.go): take the
 * state directory's lock, check the container is created (its init alive, the
 * fifo there), read the fifo's byte with the init's pidfd beside it so that an
 * init that dies first is an error rather than a hang, remove the fifo. It
 * returns to let Go run the command, having changed nothing, whenever the
 * container is not plainly created; once the fifo is open it finishes here,
 * because opening the fifo is what lets the init go on.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cside.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

void hako_fast_start(int argc, char **argv)
{
	static const char *const no_flags[] = {NULL};
	static char buf[HAKO_PLAN_MAX];
	char span[2][17], attrs[1200], msg[4096 + 256], proc[32], b;
	struct hako_cmd c;
	struct hako_plan p;
	int pidfd, fd, tfd;
	ssize_t n;
	int64_t t1;

	if (!hako_cmd_open(&c, argc, argv, "start", no_flags))
		return;
	if (!hako_read_plan(c.dirfd, "start.plan", "hako-start-plan 1", buf, &p) || hako_init_alive(&p) != 1 ||
	    faccessat(c.dirfd, "exec.fifo", F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
		/* Stopped, running, paused or unknown: Go says which. */
		hako_cmd_close(&c);
		return;
	}
	pidfd = syscall(SYS_pidfd_open, p.pid, 0);
	if (pidfd < 0) {
		hako_cmd_close(&c);
		return;
	}
	fd = openat(c.dirfd, "exec.fifo", O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		close(pidfd);
		hako_cmd_close(&c);
		return;
	}
	for (;;) {
		struct pollfd fds[2] = {{.fd = fd, .events = POLLIN}, {.fd = pidfd, .events = POLLIN}};
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			snprintf(msg, sizeof(msg), "wait for container \"%s\" to start: %s", c.id, strerror(errno));
			hako_cmd_fail(&c, msg);
		}
		if (!(fds[0].revents & (POLLIN | POLLHUP)) && !fds[1].revents)
			continue;
		n = read(fd, &b, 1);
		if (n == 1)
			break;
		/* Before a writer ever opened the fifo, it polls neither readable nor hung up. */
		if (fds[1].revents || (fds[0].revents & POLLHUP)) {
			snprintf(msg, sizeof(msg), "container \"%s\": init exited before it was started", c.id);
			hako_cmd_fail(&c, msg);
		}
	}
	if (unlinkat(c.dirfd, "exec.fifo", 0) < 0) {
		snprintf(msg, sizeof(msg), "remove %s/exec.fifo: %s", c.dir, strerror(errno));
		hako_cmd_fail(&c, msg);
	}
	close(fd);
	close(pidfd);
	hako_cmd_close(&c);
	t1 = hako_now_ns();

	if ((tfd = hako_cmd_trace(&c, proc)) >= 0) {
		hako_span_id(span[0]);
		hako_span_id(span[1]);
		hako_write_span(tfd, c.trace_id, span[0], c.parent, "hako-runtime.start", c.t0, t1,
				"{\"before_go\":\"true\"}", NULL, proc);
		snprintf(attrs, sizeof(attrs), "{\"id\":\"%s\"}", c.id);
		hako_write_span(tfd, c.trace_id, span[1], span[0], "runtime.start", c.t0, t1, attrs, NULL, proc);
		close(tfd);
	}
	_exit(0);
}
