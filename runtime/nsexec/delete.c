/*
 * `hako-runtime delete ID` of a container whose init has exited, carried out
 * before the Go runtime starts.
 *
 * Every container's exit ends in a delete: hako-shim runs it once the init is
 * reaped, and `run --rm` waits for it. The work is a few rmdirs and the state
 * directory; a Go runtime start costs ~8 ms more on the machines we measure.
 * create writes the delete down as delete.plan (runtime/container/
 * deleteplan.go) only when nothing at delete needs Go: no poststop hooks, no
 * mounts on the host, cgroupfs rather than systemd. This file carries the plan
 * out and leaves everything else to Go by returning, before it has changed
 * anything where it can: an unknown flag, no plan, the init still alive, a
 * cgroup that still holds a process.
 *
 * What it does is what the Go command does for such a container
 * (runtime/container/delete.go): take the state directory's lock, remove each
 * cgroup directory and the empty ancestors create made, remove the state
 * directory. When HAKO_TRACE_FILE and HAKO_TRACEPARENT are set (hako-shim
 * sets them when the caller traces) it records the same spans.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cside.h"

/* cgroup_empty: the directory is gone, or its cgroup.procs lists nobody. */
static int cgroup_empty(const char *dir)
{
	char path[4096], c;
	int fd;
	ssize_t n;
	if ((size_t)snprintf(path, sizeof(path), "%s/cgroup.procs", dir) >= sizeof(path))
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT;
	n = read(fd, &c, 1);
	close(fd);
	return n == 0;
}

/*
 * remove_state empties and removes the state directory: state.json last, so
 * that until then a Go `delete` finds the container as it was.
 */
static int remove_state(int dirfd, const char *dir)
{
	DIR *d;
	struct dirent *e;
	int fd = dup(dirfd);
	if (fd < 0)
		return -1;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || strcmp(e->d_name, "state.json") == 0)
			continue;
		if (unlinkat(dirfd, e->d_name, 0) < 0 && errno != ENOENT) {
			closedir(d);
			return -1;
		}
	}
	closedir(d);
	if (unlinkat(dirfd, "state.json", 0) < 0 && errno != ENOENT)
		return -1;
	return rmdir(dir);
}

void hako_fast_delete(int argc, char **argv)
{
	static const char *const flags[] = {"force", "f", NULL};
	static char buf[HAKO_PLAN_MAX];
	char span[3][17], attrs[1200], msg[4096 + 256], proc[32];
	struct hako_cmd c;
	struct hako_plan p;
	int i, tfd;
	int64_t t1, t2, t3;

	if (!hako_cmd_open(&c, argc, argv, "delete", flags))
		return;
	if (!hako_read_plan(c.dirfd, "delete.plan", "hako-delete-plan 1", buf, &p) || hako_init_alive(&p) != 0) {
		hako_cmd_close(&c);
		return;
	}
	for (i = 0; i < p.ncgroups; i++)
		if (!cgroup_empty(p.cgroups[i])) {
			hako_cmd_close(&c);
			return; /* Go kills what is left and waits for it */
		}
	t1 = hako_now_ns();
	for (i = 0; i < p.ncgroups; i++)
		if (rmdir(p.cgroups[i]) < 0 && errno != ENOENT) {
			/* A sub-cgroup, or a process that joined since: Go removes trees and retries. */
			hako_cmd_close(&c);
			return;
		}
	for (i = p.nparents - 1; i >= 0; i--)
		rmdir(p.parents[i]); /* one another container still uses stays */
	t2 = hako_now_ns();
	if (remove_state(c.dirfd, c.dir) < 0) {
		snprintf(msg, sizeof(msg), "delete %s: remove state %s: %s", c.id, c.dir, strerror(errno));
		hako_cmd_fail(&c, msg);
	}
	hako_cmd_close(&c);
	t3 = hako_now_ns();

	if ((tfd = hako_cmd_trace(&c, proc)) >= 0) {
		for (i = 0; i < 3; i++)
			hako_span_id(span[i]);
		hako_write_span(tfd, c.trace_id, span[0], c.parent, "hako-runtime.delete", c.t0, t3,
				"{\"before_go\":\"true\"}", NULL, proc);
		snprintf(attrs, sizeof(attrs), "{\"id\":\"%s\"}", c.id);
		hako_write_span(tfd, c.trace_id, span[1], span[0], "runtime.delete", c.t0, t3, attrs, NULL, proc);
		if (p.ncgroups)
			hako_write_span(tfd, c.trace_id, span[2], span[1], "runtime.cgroups.destroy", t1, t2, NULL, NULL,
					proc);
		close(tfd);
	}
	_exit(0);
}
