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

#define PATH_MAX_LEN 4096
#define PLAN_MAX 65536
#define MAX_CGROUPS 64

struct plan {
	long pid;
	unsigned long long start;
	char *cgroups[MAX_CGROUPS];
	int ncgroups;
	char *parents[MAX_CGROUPS];
	int nparents;
};

/* flag_value matches "--name VALUE", "--name=VALUE" and the one-dash forms Go's flag package takes. */
static int flag_value(char **argv, int argc, int *i, const char *name, const char **val)
{
	const char *a = argv[*i];
	size_t n = strlen(name);
	if (a[0] != '-')
		return 0;
	a += a[1] == '-' ? 2 : 1;
	if (strncmp(a, name, n) != 0)
		return 0;
	if (a[n] == '=') {
		*val = a + n + 1;
		return 1;
	}
	if (a[n] != 0 || *i + 1 >= argc)
		return 0;
	*val = argv[++*i];
	return 1;
}

static int is_flag(const char *a, const char *name)
{
	if (a[0] != '-')
		return 0;
	a += a[1] == '-' ? 2 : 1;
	return strcmp(a, name) == 0 || (strncmp(a, name, strlen(name)) == 0 && strcmp(a + strlen(name), "=true") == 0);
}

/* valid_id is bundle.ValidateID. */
static int valid_id(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > 1024 || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
		return 0;
	for (; *id; id++) {
		char c = *id;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("_+-.", c)))
			return 0;
	}
	return 1;
}

/* read_plan parses delete.plan in place; 0 when it is missing, cut short or unknown. */
static int read_plan(int dirfd, char *buf, struct plan *p)
{
	ssize_t n, got = 0;
	int fd = openat(dirfd, "delete.plan", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	char *line, *next;
	int ended = 0, header = 0, init = 0;
	if (fd < 0)
		return 0;
	while ((n = read(fd, buf + got, PLAN_MAX - 1 - got)) > 0)
		got += n;
	close(fd);
	if (n < 0 || got == 0 || got >= PLAN_MAX - 1)
		return 0;
	buf[got] = 0;
	memset(p, 0, sizeof(*p));
	for (line = buf; *line; line = next) {
		char *nl = strchr(line, '\n');
		if (!nl || ended)
			return 0; /* cut short, or lines after "end" */
		*nl = 0;
		next = nl + 1;
		if (!header) {
			if (strcmp(line, "hako-delete-plan 1") != 0)
				return 0;
			header = 1;
		} else if (strncmp(line, "init ", 5) == 0) {
			if (sscanf(line + 5, "%ld %llu", &p->pid, &p->start) != 2 || p->pid <= 0)
				return 0;
			init = 1;
		} else if (strncmp(line, "cgroup /", 8) == 0 && p->ncgroups < MAX_CGROUPS) {
			p->cgroups[p->ncgroups++] = line + 7;
		} else if (strncmp(line, "parent /", 8) == 0 && p->nparents < MAX_CGROUPS) {
			p->parents[p->nparents++] = line + 7;
		} else if (strcmp(line, "end") == 0) {
			ended = 1;
		} else {
			return 0;
		}
	}
	return ended && init;
}

/* init_alive is state.State.Alive: the pid runs, is no zombie and started when ours did. */
static int init_alive(const struct plan *p)
{
	char path[64], buf[1024], *s, *f;
	unsigned long long start = 0;
	ssize_t n;
	int fd, field;
	snprintf(path, sizeof(path), "/proc/%ld/stat", p->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ESRCH ? 0 : -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n == 0 || errno == ESRCH ? 0 : -1;
	buf[n] = 0;
	/* The command name may hold spaces and ')': fields start after the last ')'. */
	s = strrchr(buf, ')');
	if (!s || s[1] != ' ')
		return -1;
	s += 2;
	if (*s == 'Z' || *s == 'X')
		return 0;
	/* starttime is the 20th field after the name (22nd of the line). */
	for (field = 0, f = s; field < 19 && f; field++) {
		f = strchr(f, ' ');
		if (f)
			f++;
	}
	if (!f || sscanf(f, "%llu", &start) != 1)
		return -1;
	return start == p->start;
}

/* cgroup_empty: the directory is gone, or its cgroup.procs lists nobody. */
static int cgroup_empty(const char *dir)
{
	char path[PATH_MAX_LEN], c;
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

/* parse_traceparent takes "00-<32 hex>-<16 hex>-<2 hex>" apart. */
static int parse_traceparent(const char *tp, char trace_id[33], char parent[17])
{
	if (!tp || strlen(tp) != 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-')
		return 0;
	for (int i = 0; i < 55; i++) {
		char c = tp[i];
		if (i != 2 && i != 35 && i != 52 && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return 0;
	}
	memcpy(trace_id, tp + 3, 32);
	trace_id[32] = 0;
	memcpy(parent, tp + 36, 16);
	parent[16] = 0;
	return strspn(trace_id, "0") != 32 && strspn(parent, "0") != 16 && strncmp(tp, "ff", 2) != 0;
}

/* fail reports an error the way the Go command does (its --log in its format, and stderr) and exits 1. */
static void __attribute__((noreturn)) fail(const char *log, int log_json, const char *msg)
{
	int fd;
	if (log && (fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) >= 0) {
		hako_log_error(fd, log_json, msg);
		close(fd);
	}
	dprintf(2, "hako-runtime: %s\n", msg);
	_exit(1);
}

void hako_fast_delete(int argc, char **argv)
{
	const char *root = NULL, *log = NULL, *format = "text", *id = NULL, *tfile, *val;
	char dir[PATH_MAX_LEN], trace_id[33], parent[17], span[3][17], attrs[1200], msg[PATH_MAX_LEN + 256];
	static char buf[PLAN_MAX];
	struct plan p;
	int i, dirfd, tfd = -1;
	int64_t t0 = hako_now_ns(), t1, t2, t3;

	/* Global flags, then "delete", its flags and one ID; anything else is Go's to handle. */
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (flag_value(argv, argc, &i, "root", &val))
			root = val;
		else if (flag_value(argv, argc, &i, "log", &val))
			log = val;
		else if (flag_value(argv, argc, &i, "log-format", &val))
			format = val;
		else if (!is_flag(argv[i], "debug"))
			return;
	}
	if (i >= argc || strcmp(argv[i], "delete") != 0)
		return;
	for (i++; i < argc && argv[i][0] == '-'; i++)
		if (!is_flag(argv[i], "force") && !is_flag(argv[i], "f"))
			return;
	if (i != argc - 1 || !valid_id(argv[i]))
		return;
	id = argv[i];
	if (strcmp(format, "text") != 0 && strcmp(format, "json") != 0)
		return;
	if (!root) {
		if (geteuid() != 0)
			return; /* the rootless default root is Go's to work out */
		root = "/run/hako-runtime";
	}
	if (!*root || (size_t)snprintf(dir, sizeof(dir), "%s/%s", root, id) >= sizeof(dir))
		return;
	tfile = getenv("HAKO_TRACE_FILE");
	if (tfile && *tfile && !parse_traceparent(getenv("HAKO_TRACEPARENT"), trace_id, parent))
		return;

	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return;
	if (flock(dirfd, LOCK_EX) < 0 || faccessat(dirfd, "state.json", F_OK, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !read_plan(dirfd, buf, &p) || init_alive(&p) != 0) {
		close(dirfd);
		return;
	}
	for (i = 0; i < p.ncgroups; i++)
		if (!cgroup_empty(p.cgroups[i])) {
			close(dirfd);
			return; /* Go kills what is left and waits for it */
		}
	t1 = hako_now_ns();
	for (i = 0; i < p.ncgroups; i++)
		if (rmdir(p.cgroups[i]) < 0 && errno != ENOENT) {
			/* A sub-cgroup, or a process that joined since: Go removes trees and retries. */
			close(dirfd);
			return;
		}
	for (i = p.nparents - 1; i >= 0; i--)
		rmdir(p.parents[i]); /* one another container still uses stays */
	t2 = hako_now_ns();
	if (remove_state(dirfd, dir) < 0) {
		snprintf(msg, sizeof(msg), "delete %s: remove state %s: %s", id, dir, strerror(errno));
		close(dirfd);
		fail(log, strcmp(format, "json") == 0, msg);
	}
	close(dirfd);
	t3 = hako_now_ns();

	if (tfile && *tfile && (tfd = open(tfile, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) >= 0) {
		char proc[32];
		snprintf(proc, sizeof(proc), "hako-runtime[%d]", (int)getpid());
		for (i = 0; i < 3; i++)
			hako_span_id(span[i]);
		hako_write_span(tfd, trace_id, span[0], parent, "hako-runtime.delete", t0, t3, "{\"before_go\":\"true\"}",
				NULL, proc);
		snprintf(attrs, sizeof(attrs), "{\"id\":\"%s\"}", id);
		hako_write_span(tfd, trace_id, span[1], span[0], "runtime.delete", t0, t3, attrs, NULL, proc);
		if (p.ncgroups)
			hako_write_span(tfd, trace_id, span[2], span[1], "runtime.cgroups.destroy", t1, t2, NULL, NULL, proc);
		close(tfd);
	}
	_exit(0);
}
