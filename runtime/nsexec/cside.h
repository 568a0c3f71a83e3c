/*
 * Helpers the C side of hako-runtime shares between its files: nsexec.c (the
 * container init, `gate`) and delete.c (`delete` of a stopped container).
 * Everything here runs before the Go runtime starts.
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
 * hako_fast_delete serves `hako-runtime delete` of a stopped container with a
 * delete plan and exits; it returns, having changed nothing Go would miss,
 * whenever Go must do the delete instead.
 */
void hako_fast_delete(int argc, char **argv);

#endif
