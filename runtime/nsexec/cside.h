/*
 * Helpers the C side of hako-runtime shares between its files: nsexec.c (the
 * container init, `gate`), and the commands served before Go with command.c:
 * delete.c (`delete` of a stopped container) and start.c (`start` of a
 * created one). Everything here runs before the Go runtime starts.
 */
#ifndef HAKO_NSEXEC_CSIDE_H
#define HAKO_NSEXEC_CSIDE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* hako_now_ns is the wall clock in Unix nanoseconds, as trace spans record it. */
int64_t hako_now_ns(void);
/* hako_write_all writes all of buf, retrying on EINTR; -1 on error. */
ssize_t hako_write_all(int fd, const void *buf, size_t n);
/* hako_json_escape copies in into out (cap bytes) as the inside of a JSON string. */
void hako_json_escape(char *out, size_t cap, const char *in);
/* hako_span_id makes a random 16-hex-digit span ID. */
void hako_span_id(char out[17]);
/* hako_write_span appends one span to fd as a JSON line in the trace package's format; attrs is a JSON object or NULL, err NULL for none. */
void hako_write_span(int fd, const char *trace_id, const char *id, const char *parent, const char *name,
		     int64_t start, int64_t end, const char *attrs, const char *err, const char *proc);
/* hako_log_error appends msg to fd as one error line in runc's log format, JSON or text. */
void hako_log_error(int fd, int json, const char *msg);
/*
 * A runtime command served before Go (command.c): runc's global flags
 * (--root, --log, --log-format, --debug), the command's name and flags, one
 * container ID, and the container's state directory, open and locked.
 */
struct hako_cmd {
	const char *root, *log, *id;
	const char *trace_file; /* HAKO_TRACE_FILE, when the caller traces */
	int log_json;
	char dir[4096];
	int dirfd;
	char trace_id[33], parent[17]; /* from HAKO_TRACEPARENT */
	int64_t t0;		       /* when the command started */
};
/*
 * hako_cmd_open parses the command line as `NAME [FLAG...] ID` after the
 * global flags, FLAG being one of the NULL-terminated boolean sub_flags, then
 * opens and locks the state directory (the lock Go's state.Dir.Lock takes).
 * 0, with nothing held, when the line is not one it knows, the tracing
 * environment is malformed, or there is no finished state directory: Go then
 * runs the command and reports.
 */
int hako_cmd_open(struct hako_cmd *c, int argc, char **argv, const char *name, const char *const *sub_flags);
/* hako_cmd_close releases the state directory and its lock. */
void hako_cmd_close(struct hako_cmd *c);
/* hako_cmd_fail reports msg as the Go command would (its --log in its format, and stderr) and exits 1. */
void __attribute__((noreturn)) hako_cmd_fail(const struct hako_cmd *c, const char *msg);
/* hako_cmd_trace opens the trace file and names this process in proc; -1 when the caller does not trace. */
int hako_cmd_trace(const struct hako_cmd *c, char proc[32]);

#define HAKO_PLAN_MAX 65536
#define HAKO_PLAN_CGROUPS 64
/*
 * A plan create wrote in the state directory for a command served before Go
 * (runtime/container/deleteplan.go): lines of "KEY VALUE...", a header first
 * and "end" last.
 */
struct hako_plan {
	long pid; /* the init's pid and start time (clock ticks since boot) */
	unsigned long long start;
	char *cgroups[HAKO_PLAN_CGROUPS]; /* the container's cgroup directories */
	int ncgroups;
	char *parents[HAKO_PLAN_CGROUPS]; /* ancestors create made, outermost first */
	int nparents;
};
/* hako_read_plan parses file into p, in buf (HAKO_PLAN_MAX bytes); 0 when it is missing, cut short or unknown. */
int hako_read_plan(int dirfd, const char *file, const char *header, char *buf, struct hako_plan *p);
/* hako_init_alive is state.State.Alive: 1 when the pid runs, is no zombie and started when the plan's did; -1 on error. */
int hako_init_alive(const struct hako_plan *p);

/*
 * hako_fast_delete serves `hako-runtime delete` of a stopped container with a
 * delete plan and exits; it returns, having changed nothing Go would miss,
 * whenever Go must do the delete instead.
 */
void hako_fast_delete(int argc, char **argv);
/*
 * hako_fast_start serves `hako-runtime start` of a created container with a
 * start plan and exits; it returns, having changed nothing, whenever Go must
 * do the start instead.
 */
void hako_fast_start(int argc, char **argv);
/*
 * hako_prefault_self maps the executable's file-backed segments before a Go
 * command starts, rather than a page fault per page (prefault.c); off with
 * HAKO_NOPREFAULT set.
 */
void hako_prefault_self(void);
/*
 * hako_self_text fills starts and ends (max entries) with the page-aligned
 * ranges of the executable's never-written segments (text, read-only data)
 * and returns how many (prefault.c).
 */
int hako_self_text(uintptr_t *starts, uintptr_t *ends, int max);

#endif
