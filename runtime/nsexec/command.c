/*
 * What the runtime commands served before the Go runtime starts (delete.c,
 * start.c) share: runc's command line, the container's locked state
 * directory, the plan create wrote for them, the liveness of the init, and
 * reporting an error or the spans the Go command would.
 *
 * Each of them handles only the plain case and returns to let Go run the
 * command whenever anything is not plainly so; the helpers here return 0 in
 * that case rather than report, because Go reports it better.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "cside.h"

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

/* is_flag matches the boolean flag "--name", "-name" or "--name=true". */
static int is_flag(const char *a, const char *name)
{
	if (a[0] != '-')
		return 0;
	a += a[1] == '-' ? 2 : 1;
	return strcmp(a, name) == 0 || (strncmp(a, name, strlen(name)) == 0 && strcmp(a + strlen(name), "=true") == 0);
}

static int is_any_flag(const char *a, const char *const *names)
{
	for (; *names; names++)
		if (is_flag(a, *names))
			return 1;
	return 0;
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

int hako_cmd_open(struct hako_cmd *c, int argc, char **argv, const char *name, const char *const *sub_flags)
{
	const char *format = "text", *val;
	int i;

	memset(c, 0, sizeof(*c));
	c->dirfd = -1;
	c->t0 = hako_now_ns();
	/* Global flags, then NAME, its flags and one ID; anything else is Go's to handle. */
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (flag_value(argv, argc, &i, "root", &val))
			c->root = val;
		else if (flag_value(argv, argc, &i, "log", &val))
			c->log = val;
		else if (flag_value(argv, argc, &i, "log-format", &val))
			format = val;
		else if (!is_flag(argv[i], "debug"))
			return 0;
	}
	if (i >= argc || strcmp(argv[i], name) != 0)
		return 0;
	for (i++; i < argc && argv[i][0] == '-'; i++)
		if (!is_any_flag(argv[i], sub_flags))
			return 0;
	if (i != argc - 1 || !valid_id(argv[i]))
		return 0;
	c->id = argv[i];
	if (strcmp(format, "text") != 0 && strcmp(format, "json") != 0)
		return 0;
	c->log_json = strcmp(format, "json") == 0;
	if (!c->root) {
		if (geteuid() != 0)
			return 0; /* the rootless default root is Go's to work out */
		c->root = "/run/hako-runtime";
	}
	if (!*c->root || (size_t)snprintf(c->dir, sizeof(c->dir), "%s/%s", c->root, c->id) >= sizeof(c->dir))
		return 0;
	val = getenv("HAKO_TRACE_FILE");
	if (val && *val) {
		if (!parse_traceparent(getenv("HAKO_TRACEPARENT"), c->trace_id, c->parent))
			return 0;
		c->trace_file = val;
	}
	c->dirfd = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->dirfd < 0)
		return 0;
	/* The lock Go's state.Dir.Lock takes; a state directory without state.json is one create has not finished. */
	if (flock(c->dirfd, LOCK_EX) < 0 || faccessat(c->dirfd, "state.json", F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
		hako_cmd_close(c);
		return 0;
	}
	return 1;
}

void hako_cmd_close(struct hako_cmd *c)
{
	if (c->dirfd >= 0)
		close(c->dirfd);
	c->dirfd = -1;
}

void hako_cmd_fail(const struct hako_cmd *c, const char *msg)
{
	int fd;
	if (c->log && (fd = open(c->log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) >= 0) {
		hako_log_error(fd, c->log_json, msg);
		close(fd);
	}
	dprintf(2, "hako-runtime: %s\n", msg);
	_exit(1);
}

int hako_cmd_trace(const struct hako_cmd *c, char proc[32])
{
	if (!c->trace_file)
		return -1;
	snprintf(proc, 32, "hako-runtime[%d]", (int)getpid());
	return open(c->trace_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
}

int hako_read_plan(int dirfd, const char *file, const char *header, char *buf, struct hako_plan *p)
{
	ssize_t n, got = 0;
	int fd = openat(dirfd, file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	char *line, *next;
	int ended = 0, seen_header = 0, init = 0;
	if (fd < 0)
		return 0;
	while ((n = read(fd, buf + got, HAKO_PLAN_MAX - 1 - got)) > 0)
		got += n;
	close(fd);
	if (n < 0 || got == 0 || got >= HAKO_PLAN_MAX - 1)
		return 0;
	buf[got] = 0;
	memset(p, 0, sizeof(*p));
	for (line = buf; *line; line = next) {
		char *nl = strchr(line, '\n');
		if (!nl || ended)
			return 0; /* cut short, or lines after "end" */
		*nl = 0;
		next = nl + 1;
		if (!seen_header) {
			if (strcmp(line, header) != 0)
				return 0;
			seen_header = 1;
		} else if (strncmp(line, "init ", 5) == 0) {
			if (sscanf(line + 5, "%ld %llu", &p->pid, &p->start) != 2 || p->pid <= 0)
				return 0;
			init = 1;
		} else if (strncmp(line, "cgroup /", 8) == 0 && p->ncgroups < HAKO_PLAN_CGROUPS) {
			p->cgroups[p->ncgroups++] = line + 7;
		} else if (strncmp(line, "parent /", 8) == 0 && p->nparents < HAKO_PLAN_CGROUPS) {
			p->parents[p->nparents++] = line + 7;
		} else if (strcmp(line, "end") == 0) {
			ended = 1;
		} else {
			return 0;
		}
	}
	return ended && init;
}

int hako_init_alive(const struct hako_plan *p)
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
