/*
 * The container init of hako-runtime.
 *
 * hako-runtime re-executes itself (from a sealed, read-only copy) with
 * _HAKO_INIT=<fd> in the environment. This constructor runs before the Go
 * runtime starts, reads a program of operations from that fd and executes
 * it: join or create namespaces, fork into a new PID namespace, mount the
 * root filesystem, pivot_root, set up the process and execve the user's
 * program. The Go runtime never starts in the init, which matters twice:
 * setns(2) into a mount or user namespace is refused to a multi-threaded
 * process, and a Go start costs ~8 ms and ~250 page faults per container on
 * the machines we measure, the C path ~2 ms.
 *
 * All policy (what to mount where, in which order, with which flags) is
 * decided in Go by the parent and arrives as the program; this file only
 * carries operations out, securely (every path inside the rootfs is resolved
 * with openat2 RESOLVE_IN_ROOT), and reports errors naming the spec field.
 * See README.md for the process model.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "cside.h"
#include "proto.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

struct hako_mount_attr {
	uint64_t attr_set, attr_clr, propagation, userns_fd;
};

struct hako_sched_attr {
	uint32_t size, sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime, sched_deadline, sched_period;
};

#define MAX_SPAN_DEPTH 8

/* Everything the init carries from one operation to the next. */
static struct {
	int sync_fd, fifo_fd, console_fd, log_fd, trace_fd, log_json;
	int rootfd;           /* the rootfs (before pivot) or / (after) */
	int pivoted;
	char *rootfs;
	char *state;          /* state JSON for hooks */
	uint32_t state_len;
	char *exec_path;      /* from HAKO_OP_LOOKUP */
	const char *field;    /* spec field of the operation in progress */
	char trace_id[33];
	char root_parent[17];
	int depth;
	char span_id[MAX_SPAN_DEPTH][17];
	char *span_name[MAX_SPAN_DEPTH];
	char *span_attrs[MAX_SPAN_DEPTH];
	int64_t span_start[MAX_SPAN_DEPTH];
} st = {.sync_fd = -1, .fifo_fd = -1, .console_fd = -1, .log_fd = -1, .trace_fd = -1, .rootfd = AT_FDCWD};

int64_t hako_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

ssize_t hako_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	size_t done = 0;
	while (done < n) {
		ssize_t w = write(fd, p + done, n - done);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += w;
	}
	return done;
}

/* send_all writes to the sync socket without SIGPIPE when the parent is gone. */
static int send_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	size_t done = 0;
	while (done < n) {
		ssize_t w = send(fd, p + done, n - done, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += w;
	}
	return 0;
}

static int read_full(int fd, void *buf, size_t n)
{
	char *p = buf;
	size_t done = 0;
	while (done < n) {
		ssize_t r = read(fd, p + done, n - done);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			return -1;
		done += r;
	}
	return 0;
}

static int send_msg(uint32_t type, const void *payload, uint32_t len)
{
	uint32_t hdr[2] = {type, len};
	if (st.sync_fd < 0)
		return -1;
	if (send_all(st.sync_fd, hdr, sizeof(hdr)) < 0)
		return -1;
	if (len && send_all(st.sync_fd, payload, len) < 0)
		return -1;
	return 0;
}

void hako_json_escape(char *out, size_t cap, const char *in)
{
	size_t o = 0;
	for (; *in && o + 7 < cap; in++) {
		unsigned char c = *in;
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = c;
		} else if (c < 0x20) {
			o += snprintf(out + o, cap - o, "\\u%04x", c);
		} else {
			out[o++] = c;
		}
	}
	out[o] = 0;
}

void hako_log_error(int fd, int json, const char *msg)
{
	char buf[4096], esc[3072], ts[64];
	time_t t = time(NULL);
	struct tm tm;
	int n;
	if (fd < 0)
		return;
	gmtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	hako_json_escape(esc, sizeof(esc), msg);
	if (json)
		n = snprintf(buf, sizeof(buf), "{\"level\":\"error\",\"msg\":\"%s\",\"time\":\"%s\"}\n", esc, ts);
	else
		n = snprintf(buf, sizeof(buf), "time=\"%s\" level=error msg=\"%s\"\n", ts, esc);
	if (n > 0)
		hako_write_all(fd, buf, n < (int)sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/* log_line writes one error line to --log in the caller's format, as runc does. */
static void log_line(const char *msg)
{
	hako_log_error(st.log_fd, st.log_json, msg);
}

void hako_span_id(char out[17])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[8];
	if (getrandom(b, sizeof(b), GRND_NONBLOCK) != sizeof(b)) {
		uint64_t v = (uint64_t)hako_now_ns() ^ ((uint64_t)getpid() << 32);
		memcpy(b, &v, 8);
	}
	b[0] |= 1;
	for (int i = 0; i < 8; i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[16] = 0;
}

static const char *parent_span(void)
{
	return st.depth > 0 ? st.span_id[st.depth - 1] : st.root_parent;
}

void hako_write_span(int fd, const char *trace_id, const char *id, const char *parent, const char *name,
		     int64_t start, int64_t end, const char *attrs, const char *err, const char *proc)
{
	char buf[8192], eerr[2048];
	int n = snprintf(buf, sizeof(buf),
			 "{\"trace_id\":\"%s\",\"span_id\":\"%s\",\"parent_id\":\"%s\",\"name\":\"%s\",\"start\":%lld,\"end\":%lld,\"proc\":\"%s\"",
			 trace_id, id, parent, name, (long long)start, (long long)end, proc);
	if (attrs && attrs[0] == '{' && n < (int)sizeof(buf))
		n += snprintf(buf + n, sizeof(buf) - n, ",\"attrs\":%s", attrs);
	if (err && n < (int)sizeof(buf)) {
		hako_json_escape(eerr, sizeof(eerr), err);
		n += snprintf(buf + n, sizeof(buf) - n, ",\"error\":\"%s\"", eerr);
	}
	if (n < (int)sizeof(buf) - 2) {
		buf[n++] = '}';
		buf[n++] = '\n';
		hako_write_all(fd, buf, n);
	}
}

static void emit_span(const char *name, const char *id, const char *parent, int64_t start, int64_t end,
		      const char *attrs, const char *err)
{
	char proc[32];
	if (st.trace_fd < 0 || !name || !*name || !st.trace_id[0])
		return;
	snprintf(proc, sizeof(proc), "init[%d]", (int)getpid());
	hako_write_span(st.trace_fd, st.trace_id, id, parent, name, start, end, attrs, err, proc);
}

static const char *cur_span_name, *cur_span_attrs;
static int64_t cur_span_start;

/*
 * die reports err as "<spec field>: <what>: <errno text>" to the parent (or,
 * once the parent has gone, to --log and stderr) and exits. Nothing else is
 * left to clean up: the parent removes the state, cgroup and namespaces.
 */
static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	char what[2048], msg[3072], why[256];
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	/* Go's wording of errno ("permission denied"), which callers match on. */
	snprintf(why, sizeof(why), "%s", strerror(saved));
	if (why[0] >= 'A' && why[0] <= 'Z' && !(why[1] >= 'A' && why[1] <= 'Z'))
		why[0] += 'a' - 'A';
	if (saved)
		snprintf(msg, sizeof(msg), "%s%s%s: %s", st.field && *st.field ? st.field : "",
			 st.field && *st.field ? ": " : "", what, why);
	else
		snprintf(msg, sizeof(msg), "%s%s%s", st.field && *st.field ? st.field : "",
			 st.field && *st.field ? ": " : "", what);
	if (cur_span_name) {
		char id[17];
		hako_span_id(id);
		emit_span(cur_span_name, id, parent_span(), cur_span_start, hako_now_ns(), cur_span_attrs, msg);
	}
	if (send_msg(HAKO_MSG_ERROR, msg, strlen(msg)) < 0) {
		log_line(msg);
		dprintf(2, "hako-runtime init: %s\n", msg);
	}
	_exit(1);
}

/* recv_msg reads one frame; the payload is NUL-terminated for convenience. */
static char *recv_msg(uint32_t *type, uint32_t *len)
{
	uint32_t hdr[2];
	char *p;
	if (read_full(st.sync_fd, hdr, sizeof(hdr)) < 0)
		return NULL;
	*type = hdr[0];
	*len = hdr[1];
	p = malloc(hdr[1] + 1);
	if (!p)
		return NULL;
	if (hdr[1] && read_full(st.sync_fd, p, hdr[1]) < 0) {
		free(p);
		return NULL;
	}
	p[hdr[1]] = 0;
	return p;
}

/* wait_ack waits for the parent's go-ahead and returns its payload. */
static char *wait_ack(const char *what, uint32_t *len)
{
	uint32_t type, l;
	char *p = recv_msg(&type, &l);
	if (!p) {
		errno = 0;
		die("%s: the runtime went away", what);
	}
	if (type == HAKO_MSG_ERROR) {
		errno = 0;
		/* The parent already knows what went wrong; just stop. */
		_exit(1);
	}
	if (type != HAKO_MSG_ACK) {
		errno = 0;
		die("%s: unexpected message %u from the runtime", what, type);
	}
	if (len)
		*len = l;
	return p;
}

/* ---- reading the program ---- */

struct rd {
	char *p, *end;
};

static char *rd_field(struct rd *r, uint32_t *len)
{
	uint32_t l;
	char *f;
	if (r->end - r->p < 4)
		goto bad;
	memcpy(&l, r->p, 4);
	if ((uint64_t)(r->end - r->p - 4) < l)
		goto bad;
	f = r->p + 4;
	r->p += 4 + l;
	*len = l;
	return f;
bad:
	errno = 0;
	die("malformed init program");
}

static uint64_t rd_u64(struct rd *r)
{
	uint32_t l;
	uint64_t v;
	char *f = rd_field(r, &l);
	if (l != 8) {
		errno = 0;
		die("malformed init program: integer of %u bytes", l);
	}
	memcpy(&v, f, 8);
	return v;
}

/* Strings arrive with a trailing NUL included in their length. */
static char *rd_str(struct rd *r)
{
	uint32_t l;
	char *f = rd_field(r, &l);
	if (l == 0 || f[l - 1] != 0) {
		errno = 0;
		die("malformed init program: unterminated string");
	}
	return f;
}

static char **rd_list(struct rd *r)
{
	uint64_t n = rd_u64(r);
	char **v;
	if (n > 65536) {
		errno = 0;
		die("malformed init program: list of %llu", (unsigned long long)n);
	}
	v = calloc(n + 1, sizeof(char *));
	if (!v)
		die("out of memory");
	for (uint64_t i = 0; i < n; i++)
		v[i] = rd_str(r);
	return v;
}

/* ---- paths inside the rootfs ---- */

static int openat2_in_root(const char *path, int flags, uint64_t resolve)
{
	struct open_how how = {.flags = (uint64_t)flags | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | resolve};
	while (*path == '/')
		path++;
	if (!*path)
		path = ".";
	return syscall(SYS_openat2, st.rootfd, path, &how, sizeof(how));
}

static void fdpath(char out[64], int fd)
{
	snprintf(out, 64, "/proc/self/fd/%d", fd);
}

/*
 * mkdir_all creates path and its missing parents inside the root, following
 * symlinks the way the kernel would but always within the root (an absolute
 * symlink restarts at the rootfs, ".." stops at it), so a mount point behind
 * a symlink is made where the container will see it and never on the host
 * (CVE-2021-30465 class). Each step reopens its directory with
 * RESOLVE_IN_ROOT, so a component swapped for a symlink meanwhile cannot
 * lead out either. Returns an O_PATH fd of the directory.
 */
static int mkdir_all(const char *path, mode_t mode)
{
	char cur[PATH_MAX] = "", rest[PATH_MAX], target[PATH_MAX], tmp[PATH_MAX];
	int links = 0;
	if (strlen(path) >= sizeof(rest)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(rest, path);
	for (;;) {
		char *p = rest, *slash, comp[NAME_MAX + 1];
		size_t n;
		struct stat sb;
		int dir;
		while (*p == '/')
			p++;
		if (!*p)
			break;
		slash = strchr(p, '/');
		n = slash ? (size_t)(slash - p) : strlen(p);
		if (n > NAME_MAX) {
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(comp, p, n);
		comp[n] = 0;
		memmove(rest, p + n, strlen(p + n) + 1);
		if (!strcmp(comp, "."))
			continue;
		if (!strcmp(comp, "..")) {
			char *last = strrchr(cur, '/');
			if (last)
				*last = 0;
			continue;
		}
		dir = openat2_in_root(cur[0] ? cur : "/", O_PATH | O_DIRECTORY, 0);
		if (dir < 0)
			return -1;
		if (fstatat(dir, comp, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno != ENOENT || (mkdirat(dir, comp, mode) < 0 && errno != EEXIST) ||
			    fstatat(dir, comp, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
				close(dir);
				return -1;
			}
		}
		if (S_ISLNK(sb.st_mode)) {
			ssize_t l = readlinkat(dir, comp, target, sizeof(target) - 1);
			close(dir);
			if (l < 0)
				return -1;
			target[l] = 0;
			if (++links > 40) {
				errno = ELOOP;
				return -1;
			}
			if (strlen(target) + strlen(rest) + 2 >= sizeof(rest)) {
				errno = ENAMETOOLONG;
				return -1;
			}
			snprintf(tmp, sizeof(tmp), "%s/%s", target, rest);
			strcpy(rest, tmp);
			if (target[0] == '/')
				cur[0] = 0;
			continue;
		}
		close(dir);
		if (!S_ISDIR(sb.st_mode)) {
			errno = ENOTDIR;
			return -1;
		}
		if (strlen(cur) + n + 2 >= sizeof(cur)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		strcat(cur, "/");
		strcat(cur, comp);
	}
	return openat2_in_root(cur[0] ? cur : "/", O_PATH | O_DIRECTORY, 0);
}

/* split_parent opens the parent directory of path (creating it) and points *base at the last component. */
static int split_parent(const char *path, char *buf, size_t cap, const char **base)
{
	char *slash;
	int fd;
	if (strlen(path) >= cap) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(buf, path);
	while (strlen(buf) > 1 && buf[strlen(buf) - 1] == '/')
		buf[strlen(buf) - 1] = 0;
	slash = strrchr(buf, '/');
	if (!slash) {
		*base = buf;
		return openat2_in_root("/", O_PATH | O_DIRECTORY, 0);
	}
	*slash = 0;
	*base = slash + 1;
	fd = mkdir_all(buf[0] ? buf : "/", 0755);
	return fd;
}

/*
 * create_file makes an empty file at path inside the root if nothing is
 * there. What is there is only looked at: opening an existing file for
 * writing would make overlayfs copy it up into the container's layer (a
 * file of the image's, or of hakod's init layer, under /etc/hosts), which
 * costs an inode and a copy and shows in `docker diff`.
 */
static int create_file(const char *path)
{
	char buf[PATH_MAX];
	const char *base;
	struct stat st;
	int dir = split_parent(path, buf, sizeof(buf), &base);
	int fd;
	if (dir < 0)
		return -1;
	if (fstatat(dir, base, &st, AT_SYMLINK_NOFOLLOW) == 0)
		fd = 0; /* something is there already; the mount decides whether it fits */
	else
		fd = openat(dir, base, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 && (errno == EEXIST || errno == ELOOP || errno == EISDIR))
		fd = 0;
	close(dir);
	if (fd > 0)
		close(fd);
	return fd < 0 ? -1 : 0;
}

/* ---- operations ---- */

static unsigned long mount_flags_of(int fd)
{
	struct statvfs s;
	unsigned long f = 0;
	if (fstatvfs(fd, &s) < 0)
		return 0;
	if (s.f_flag & ST_NOSUID)
		f |= MS_NOSUID;
	if (s.f_flag & ST_NODEV)
		f |= MS_NODEV;
	if (s.f_flag & ST_NOEXEC)
		f |= MS_NOEXEC;
	if (s.f_flag & ST_RDONLY)
		f |= MS_RDONLY;
	if (s.f_flag & ST_NOATIME)
		f |= MS_NOATIME;
	if (s.f_flag & ST_NODIRATIME)
		f |= MS_NODIRATIME;
	if (s.f_flag & ST_RELATIME)
		f |= MS_RELATIME;
	return f;
}

/*
 * remount applies flags to the mount at fd. A mount inherited from a more
 * privileged namespace has locked flags (nosuid, nodev, noexec, ro, atime);
 * the kernel refuses a remount that would clear them, so retry keeping them.
 */
static int remount(int fd, unsigned long flags)
{
	char p[64];
	fdpath(p, fd);
	if (mount("", p, NULL, MS_REMOUNT | flags, NULL) == 0)
		return 0;
	if (errno != EPERM)
		return -1;
	return mount("", p, NULL, MS_REMOUNT | flags | mount_flags_of(fd), NULL);
}

static void op_mount(struct rd *r)
{
	char *src = rd_str(r), *dst = rd_str(r), *fstype = rd_str(r);
	unsigned long flags = rd_u64(r);
	char *data = rd_str(r);
	unsigned long prop = rd_u64(r);
	uint64_t attr_set = rd_u64(r);
	uint64_t create = rd_u64(r);
	uint64_t resolve = rd_u64(r);
	unsigned long remount_flags = rd_u64(r);
	char p[64];
	int fd;

	if (create == 1) {
		fd = mkdir_all(dst, 0755);
		if (fd < 0)
			die("create mount point %s", dst);
		close(fd);
	} else if (create == 2) {
		if (create_file(dst) < 0)
			die("create mount point %s", dst);
	}
	fd = openat2_in_root(dst, O_PATH, resolve);
	if (fd < 0) {
		if (errno == ELOOP && resolve)
			die("mount point %s is or passes through a symlink, which is refused for %s mounts", dst, fstype);
		die("open mount point %s", dst);
	}
	fdpath(p, fd);
	if (mount(*src ? src : NULL, p, *fstype ? fstype : NULL, flags, *data ? data : NULL) < 0)
		die("mount %s on %s (type %s)", src, dst, *fstype ? fstype : "bind");
	close(fd);
	/* The fd named the directory under the new mount; reopen to reach the mount itself. */
	fd = openat2_in_root(dst, O_PATH, resolve);
	if (fd < 0)
		die("reopen mount point %s", dst);
	if (remount_flags && remount(fd, remount_flags) < 0)
		die("remount %s with its options", dst);
	if (prop) {
		fdpath(p, fd);
		if (mount("", p, NULL, prop, NULL) < 0)
			die("set propagation of %s", dst);
	}
	if (attr_set) {
		struct hako_mount_attr a = {.attr_set = attr_set};
		if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof(a)) < 0)
			die("set recursive mount attributes on %s", dst);
	}
	close(fd);
}

static void op_rootfs(struct rd *r)
{
	char *rootfs = rd_str(r);
	unsigned long prop = rd_u64(r);
	char *private_parent = rd_str(r);
	if (prop && mount("", "/", NULL, prop, NULL) < 0)
		die("set propagation of / (linux.rootfsPropagation)");
	if (*private_parent && mount("", private_parent, NULL, MS_PRIVATE, NULL) < 0)
		die("make %s private", private_parent);
	if (rd_u64(r) && mount(rootfs, rootfs, "bind", MS_BIND | MS_REC, NULL) < 0)
		die("bind mount rootfs %s on itself", rootfs);
	st.rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (st.rootfd < 0)
		die("open rootfs %s", rootfs);
	st.rootfs = rootfs;
}

static void op_mknod(struct rd *r)
{
	char *path = rd_str(r);
	mode_t mode = rd_u64(r);
	dev_t dev = rd_u64(r);
	uid_t uid = rd_u64(r);
	gid_t gid = rd_u64(r);
	char buf[PATH_MAX];
	const char *base;
	int dir = split_parent(path, buf, sizeof(buf), &base);
	if (dir < 0)
		die("create parent of device %s", path);
	if (mknodat(dir, base, mode, dev) < 0) {
		if (errno != EEXIST)
			die("mknod %s", path);
	} else {
		if (fchmodat(dir, base, mode & 07777, 0) < 0)
			die("chmod device %s", path);
	}
	if (fchownat(dir, base, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		die("chown device %s", path);
	close(dir);
}

static void op_bind_dev(struct rd *r)
{
	char *host = rd_str(r), *path = rd_str(r);
	char p[64];
	int fd;
	if (create_file(path) < 0)
		die("create device file %s", path);
	fd = openat2_in_root(path, O_PATH, RESOLVE_NO_SYMLINKS);
	if (fd < 0)
		die("open device file %s", path);
	fdpath(p, fd);
	if (mount(host, p, "bind", MS_BIND, NULL) < 0)
		die("bind device %s on %s", host, path);
	close(fd);
}

static void op_symlink(struct rd *r)
{
	char *target = rd_str(r), *path = rd_str(r);
	uint64_t replace = rd_u64(r);
	char buf[PATH_MAX];
	const char *base;
	int dir = split_parent(path, buf, sizeof(buf), &base);
	if (dir < 0)
		die("create parent of %s", path);
	if (replace && unlinkat(dir, base, 0) < 0 && errno != ENOENT)
		die("remove %s", path);
	if (symlinkat(target, dir, base) < 0 && errno != EEXIST)
		die("symlink %s -> %s", path, target);
	close(dir);
}

static void op_mkdir(struct rd *r)
{
	char *path = rd_str(r);
	mode_t mode = rd_u64(r);
	int fd = mkdir_all(path, mode);
	if (fd < 0)
		die("mkdir %s", path);
	close(fd);
}

static void op_write(struct rd *r)
{
	char *path = rd_str(r), *data = rd_str(r);
	uint64_t flags = rd_u64(r);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		if ((flags & 1) && errno == ENOENT)
			return;
		die("open %s", path);
	}
	if (hako_write_all(fd, data, strlen(data)) < 0) {
		/*
		 * Flag 2 marks oom_score_adj: the kernel refuses to go below
		 * oom_score_adj_min (the lowest value written with
		 * CAP_SYS_RESOURCE) without that capability. Say so.
		 */
		if ((flags & 2) && errno == EACCES)
			die("write %s to %s: below the lowest value set with CAP_SYS_RESOURCE, which this runtime lacks", data, path);
		die("write %s to %s", data, path);
	}
	close(fd);
}

/* run_hook runs a hook with the state JSON on its stdin, as the runtime spec asks. */
static void op_hook(struct rd *r)
{
	char *path = rd_str(r);
	char **args = rd_list(r);
	char **env = rd_list(r);
	uint64_t timeout = rd_u64(r);
	int in[2], out[2], status = 0, pidfd;
	char output[1024];
	ssize_t got = 0;
	pid_t pid;
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
		die("hook %s: pipe", path);
	pid = fork();
	if (pid < 0)
		die("hook %s: fork", path);
	if (pid == 0) {
		char *argv0[] = {path, NULL};
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(out[1], 2);
		execve(path, args[0] ? args : argv0, env);
		dprintf(2, "exec %s: %s", path, strerror(errno));
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	if (st.state)
		hako_write_all(in[1], st.state, st.state_len);
	close(in[1]);
	pidfd = syscall(SYS_pidfd_open, pid, 0);
	if (timeout && pidfd >= 0) {
		struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
		int n;
		do
			n = poll(&pfd, 1, (int)(timeout * 1000));
		while (n < 0 && errno == EINTR);
		if (n == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			errno = 0;
			die("hook %s did not finish within its timeout of %llu s", path, (unsigned long long)timeout);
		}
	}
	while (got < (ssize_t)sizeof(output) - 1) {
		ssize_t n = read(out[0], output + got, sizeof(output) - 1 - got);
		if (n <= 0)
			break;
		got += n;
	}
	output[got] = 0;
	close(out[0]);
	if (pidfd >= 0)
		close(pidfd);
	if (waitpid(pid, &status, 0) < 0)
		die("wait for hook %s", path);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		errno = 0;
		if (WIFSIGNALED(status))
			die("hook %s killed by signal %d: %s", path, WTERMSIG(status), output);
		die("hook %s exited with status %d: %s", path, WEXITSTATUS(status), output);
	}
}

static void op_pivot_root(void)
{
	int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	int newroot = open(st.rootfs, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (oldroot < 0 || newroot < 0)
		die("open old and new root");
	if (fchdir(newroot) < 0)
		die("chdir to rootfs %s", st.rootfs);
	/* pivot_root(".", ".") stacks the old root under the new one; no put_old directory needed. */
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		die("pivot_root to %s", st.rootfs);
	if (fchdir(oldroot) < 0)
		die("chdir to old root");
	/* Keep the unmount of the old root from propagating to the host. */
	if (mount("", ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
		die("make old root slave");
	if (umount2(".", MNT_DETACH) < 0)
		die("unmount old root");
	if (chdir("/") < 0)
		die("chdir /");
	close(oldroot);
	close(newroot);
	close(st.rootfd);
	st.rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	st.pivoted = 1;
}

static void op_chroot(struct rd *r)
{
	uint64_t move = rd_u64(r);
	if (chdir(st.rootfs) < 0)
		die("chdir to rootfs %s", st.rootfs);
	if (move && mount(st.rootfs, "/", NULL, MS_MOVE, NULL) < 0)
		die("move rootfs %s to /", st.rootfs);
	if (chroot(".") < 0)
		die("chroot to rootfs");
	if (chdir("/") < 0)
		die("chdir /");
	close(st.rootfd);
	st.rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	st.pivoted = 1;
}

static void send_fd(int sock, int fd, const char *name)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = (void *)name, .iov_len = strlen(name)};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *c;
	memset(cbuf, 0, sizeof(cbuf));
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	while (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0) {
		if (errno != EINTR)
			die("send terminal to the console socket");
	}
}

static void op_console(struct rd *r)
{
	unsigned short rows = rd_u64(r), cols = rd_u64(r);
	uint64_t bind_console = rd_u64(r);
	int master, slave, n = 0, zero = 0, fd;
	char name[64], p[64];
	master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		die("open /dev/ptmx for the terminal");
	if (ioctl(master, TIOCSPTLCK, &zero) < 0 || ioctl(master, TIOCGPTN, &n) < 0)
		die("unlock terminal");
	snprintf(name, sizeof(name), "/dev/pts/%d", n);
	slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		die("open terminal %s", name);
	if (rows && cols) {
		struct winsize ws = {.ws_row = rows, .ws_col = cols};
		ioctl(master, TIOCSWINSZ, &ws);
	}
	if (bind_console) {
		/* /dev/console is the terminal, as on a real machine. */
		if (create_file("/dev/console") < 0)
			die("create /dev/console");
		fd = openat2_in_root("/dev/console", O_PATH, RESOLVE_NO_SYMLINKS);
		if (fd < 0)
			die("open /dev/console");
		fdpath(p, fd);
		if (mount(name, p, NULL, MS_BIND, NULL) < 0)
			die("bind %s on /dev/console", name);
		close(fd);
	}
	if (st.console_fd < 0) {
		errno = 0;
		die("process.terminal is true but no console socket was given");
	}
	send_fd(st.console_fd, master, name);
	close(master);
	close(st.console_fd);
	st.console_fd = -1;
	if (setsid() < 0 && errno != EPERM)
		die("setsid");
	if (ioctl(slave, TIOCSCTTY, 0) < 0)
		die("make %s the controlling terminal", name);
	for (int i = 0; i < 3; i++)
		if (dup3(slave, i, 0) < 0)
			die("dup terminal to fd %d", i);
	if (slave > 2)
		close(slave);
}

static void op_remount_ro(struct rd *r)
{
	char *path = rd_str(r);
	uint64_t bind_first = rd_u64(r);
	char p[64];
	int fd = openat2_in_root(path, O_PATH, 0);
	if (fd < 0) {
		if (errno == ENOENT)
			return;
		die("open %s", path);
	}
	if (bind_first) {
		fdpath(p, fd);
		if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0)
			die("bind %s on itself", path);
		close(fd);
		fd = openat2_in_root(path, O_PATH, 0);
		if (fd < 0)
			die("reopen %s", path);
	}
	/* Keep nosuid, nodev, noexec and atime: a bare MS_BIND|MS_RDONLY clears them. */
	if (remount(fd, MS_BIND | MS_RDONLY | mount_flags_of(fd) | (bind_first ? MS_REC : 0)) < 0)
		die("remount %s read-only", path);
	close(fd);
}

static void op_mask(struct rd *r)
{
	char *path = rd_str(r);
	char p[64];
	struct stat sb;
	int fd = openat2_in_root(path, O_PATH, 0);
	if (fd < 0) {
		if (errno == ENOENT)
			return;
		die("open %s", path);
	}
	if (fstat(fd, &sb) < 0)
		die("stat %s", path);
	fdpath(p, fd);
	if (S_ISDIR(sb.st_mode)) {
		if (mount("tmpfs", p, "tmpfs", MS_RDONLY, "size=0") < 0 &&
		    mount("tmpfs", p, "tmpfs", MS_RDONLY, NULL) < 0)
			die("mask directory %s", path);
	} else if (mount("/dev/null", p, NULL, MS_BIND, NULL) < 0) {
		die("mask %s with /dev/null", path);
	}
	close(fd);
}

static void op_user(struct rd *r)
{
	uid_t uid = rd_u64(r);
	gid_t gid = rd_u64(r);
	uint64_t do_groups = rd_u64(r);
	uint64_t n = rd_u64(r);
	gid_t *groups = calloc(n + 1, sizeof(gid_t));
	if (!groups)
		die("out of memory");
	for (uint64_t i = 0; i < n; i++)
		groups[i] = rd_u64(r);
	if (do_groups && setgroups(n, groups) < 0)
		die("setgroups");
	if (setresgid(gid, gid, gid) < 0)
		die("setgid %u", gid);
	if (setresuid(uid, uid, uid) < 0)
		die("setuid %u", uid);
	free(groups);
}

static void op_caps(struct rd *r)
{
	uint64_t bounding = rd_u64(r), eff = rd_u64(r), perm = rd_u64(r), inh = rd_u64(r), amb = rd_u64(r);
	uint64_t phase = rd_u64(r);
	if (phase == 1) {
		for (int c = 0; c < 64; c++) {
			if (bounding & (1ULL << c))
				continue;
			if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) {
				if (errno == EINVAL)
					break; /* past the kernel's last capability */
				die("drop capability %d from the bounding set", c);
			}
		}
		return;
	}
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[2] = {
		{.effective = (uint32_t)eff, .permitted = (uint32_t)perm, .inheritable = (uint32_t)inh},
		{.effective = (uint32_t)(eff >> 32), .permitted = (uint32_t)(perm >> 32), .inheritable = (uint32_t)(inh >> 32)},
	};
	if (syscall(SYS_capset, &hdr, data) < 0)
		die("set capabilities (effective %#llx, permitted %#llx, inheritable %#llx)", (unsigned long long)eff,
		    (unsigned long long)perm, (unsigned long long)inh);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		die("clear ambient capabilities");
	for (int c = 0; c < 64; c++) {
		if (!(amb & (1ULL << c)))
			continue;
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0)
			die("raise ambient capability %d (it must also be permitted and inheritable)", c);
	}
}

static void op_seccomp(struct rd *r)
{
	uint64_t flags = rd_u64(r);
	uint32_t len;
	char *prog = rd_field(r, &len);
	uint64_t notify = rd_u64(r);
	struct sock_fprog fp;
	struct sock_filter *filter;
	int fd;
	if (len % sizeof(struct sock_filter) || len == 0) {
		errno = 0;
		die("seccomp program of %u bytes is not a BPF program", len);
	}
	/* The field is not aligned for struct sock_filter; copy it. */
	filter = malloc(len);
	if (!filter)
		die("out of memory");
	memcpy(filter, prog, len);
	fp.len = len / sizeof(struct sock_filter);
	fp.filter = filter;
	fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, (unsigned int)flags, &fp);
	if (fd < 0)
		die("load seccomp filter");
	if (notify) {
		uint32_t type = HAKO_MSG_SECCOMP_FD;
		uint32_t hdr[2] = {type, 0};
		if (send_all(st.sync_fd, hdr, sizeof(hdr)) < 0)
			die("send seccomp listener to the runtime");
		send_fd(st.sync_fd, fd, "seccomp");
		close(fd);
		free(wait_ack("seccomp listener", NULL));
	}
	free(filter);
}

static void op_lookup(struct rd *r)
{
	char *name = rd_str(r), *path = rd_str(r);
	char buf[PATH_MAX];
	struct stat sb;
	if (strchr(name, '/')) {
		if (stat(name, &sb) < 0)
			die("exec %s", name);
		if (S_ISDIR(sb.st_mode)) {
			errno = EISDIR;
			die("exec %s", name);
		}
		/* As execve would, after the user switch: a file we may not run fails now. */
		if (access(name, X_OK) < 0)
			die("exec %s", name);
		st.exec_path = name;
		return;
	}
	for (char *dir = path; dir && *dir;) {
		char *end = strchr(dir, ':');
		size_t dl = end ? (size_t)(end - dir) : strlen(dir);
		if (dl == 0)
			snprintf(buf, sizeof(buf), "./%s", name);
		else
			snprintf(buf, sizeof(buf), "%.*s/%s", (int)dl, dir, name);
		if (stat(buf, &sb) == 0 && S_ISREG(sb.st_mode) && (sb.st_mode & 0111)) {
			st.exec_path = strdup(buf);
			return;
		}
		dir = end ? end + 1 : NULL;
	}
	errno = 0;
	die("exec: \"%s\": executable file not found in $PATH", name);
}

static void op_wait_start(struct rd *r)
{
	uint32_t type, len;
	char *p;
	uint64_t wait = rd_u64(r);
	/* Set up: from here the container outlives the runtime command that made it. */
	prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
	if (send_msg(HAKO_MSG_READY, NULL, 0) < 0)
		die("report ready to the runtime");
	if (!wait) {
		/*
		 * `run` with nothing to do between the two (no startContainer
		 * or poststart hook): the program starts now, while the runtime
		 * records the container, instead of after two wake-ups (ours
		 * by the runtime, the runtime's by us).
		 */
	} else if (st.fifo_fd >= 0) {
		char path[64];
		int fd;
		fdpath(path, st.fifo_fd);
		/* Blocks until `hako-runtime start` opens the fifo for reading. */
		do
			fd = open(path, O_WRONLY | O_CLOEXEC);
		while (fd < 0 && errno == EINTR);
		if (fd < 0)
			die("open exec fifo");
		if (hako_write_all(fd, "0", 1) < 0)
			die("write exec fifo");
		/*
		 * fd stays open (O_CLOEXEC) until our execve: `start` reads
		 * end-of-file then, and so runs poststart hooks only once the
		 * user's program has started (after the startContainer hooks).
		 */
		close(st.fifo_fd);
		st.fifo_fd = -1;
	} else {
		p = recv_msg(&type, &len);
		if (!p || type != HAKO_MSG_START)
			_exit(1); /* the runtime gave up on this container */
		if (len) {
			free(st.state);
			st.state = p;
			st.state_len = len;
		} else {
			free(p);
		}
	}
	/*
	 * From here on nobody reads the sync socket: errors go to --log and
	 * stderr. Our end stays open, close-on-exec, so that the runtime
	 * reads end-of-file when the user's program starts (run waits for
	 * that before its poststart hooks).
	 */
	if (fcntl(st.sync_fd, F_SETFD, FD_CLOEXEC) < 0)
		close(st.sync_fd);
	st.sync_fd = -1;
}

static void op_exec(struct rd *r)
{
	char **args = rd_list(r);
	char **env = rd_list(r);
	sigset_t none;
	char id[17];
	int64_t t = hako_now_ns();
	hako_span_id(id);
	emit_span("runtime.init.execve", id, parent_span(), t, t, NULL, NULL);
	while (st.depth > 0) {
		st.depth--;
		emit_span(st.span_name[st.depth], st.span_id[st.depth], st.depth > 0 ? st.span_id[st.depth - 1] : st.root_parent,
			  st.span_start[st.depth], t, st.span_attrs[st.depth], NULL);
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve(st.exec_path ? st.exec_path : args[0], args, env);
	{
		/* Exit as a shell would: 127 for a missing program, 126 otherwise. */
		int code = errno == ENOENT ? 127 : 126;
		char msg[512];
		snprintf(msg, sizeof(msg), "exec %s: %s", st.exec_path ? st.exec_path : args[0], strerror(errno));
		log_line(msg);
		dprintf(2, "hako-runtime init: %s\n", msg);
		_exit(code);
	}
}

static void __attribute__((noreturn)) run_ops(void);
static void end_op_span(void);

/* The pipe the container init waits on until its pid has been reported (op_fork). */
static int fork_gate[2];

/* The container init's own stack: op_fork's child shares the memory of the process that made it. */
#define INIT_STACK (8 << 20)

/*
 * init_child is where the container init starts after op_fork's clone. It
 * waits at the gate until its pid has been reported, so the runtime always
 * learns the pid before anything the init sends (both write the same
 * socket), then ends the fork's span and goes on with the program.
 */
static int init_child(void *arg)
{
	char go;
	ssize_t n;
	(void)arg;
	close(fork_gate[1]);
	do
		n = read(fork_gate[0], &go, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		_exit(1); /* the reporter died: the runtime gives up on us */
	close(fork_gate[0]);
	/* A parent-death signal does not survive fork. */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	end_op_span();
	run_ops();
}

static void op_fork(struct rd *r)
{
	uint64_t dofork = rd_u64(r);
	uint32_t pid;
	if (dofork) {
		char *stack;
		long child;
		if (pipe2(fork_gate, O_CLOEXEC) < 0)
			die("pipe");
		/*
		 * CLONE_VM: the child shares our memory instead of a copy of our
		 * page tables (a fork costs 0.55-0.65 ms on the VMs we measure, a
		 * clone with CLONE_VM 0.03 ms: bench/runtime/forkcost.c). It
		 * runs on a stack of its own, and we only report its pid, open the
		 * gate and exit, touching nothing it uses. CLONE_PARENT: the init
		 * becomes the runtime's child, so `run` can wait for it.
		 */
		stack = mmap(NULL, INIT_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
			     -1, 0);
		if (stack == MAP_FAILED)
			die("allocate the container init's stack");
		if (mprotect(stack, 4096, PROT_NONE) < 0) /* a guard page below it */
			die("guard the container init's stack");
		child = clone(init_child, stack + INIT_STACK, CLONE_VM | CLONE_PARENT | SIGCHLD, NULL);
		if (child < 0 && errno == EINVAL) {
			/* A new time namespace is refused to a child that shares our memory. */
			child = syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
			if (child == 0)
				init_child(NULL);
		}
		if (child < 0)
			die("clone the container init into its PID namespace");
		pid = child;
		if (send_msg(HAKO_MSG_PID, &pid, sizeof(pid)) < 0)
			_exit(1);
		hako_write_all(fork_gate[1], "g", 1);
		_exit(0);
	}
	pid = getpid();
	if (send_msg(HAKO_MSG_PID, &pid, sizeof(pid)) < 0)
		die("report pid to the runtime");
}

static void op_setns(struct rd *r)
{
	uint64_t n = rd_u64(r);
	int fds[16];
	int types[16];
	char *paths[16];
	if (n > 16) {
		errno = 0;
		die("too many namespaces to join");
	}
	/* Open every path first: after joining a mount namespace they may resolve elsewhere. */
	for (uint64_t i = 0; i < n; i++) {
		types[i] = rd_u64(r);
		paths[i] = rd_str(r);
		fds[i] = open(paths[i], O_RDONLY | O_CLOEXEC);
		if (fds[i] < 0)
			die("open namespace %s", paths[i]);
	}
	for (uint64_t i = 0; i < n; i++) {
		if (setns(fds[i], types[i]) < 0)
			die("join namespace %s", paths[i]);
		close(fds[i]);
	}
}

static void op_sched(struct rd *r)
{
	struct hako_sched_attr a = {.size = sizeof(a)};
	a.sched_policy = rd_u64(r);
	a.sched_nice = (int32_t)rd_u64(r);
	a.sched_priority = rd_u64(r);
	a.sched_flags = rd_u64(r);
	a.sched_runtime = rd_u64(r);
	a.sched_deadline = rd_u64(r);
	a.sched_period = rd_u64(r);
	if (syscall(SYS_sched_setattr, 0, &a, 0) < 0)
		die("sched_setattr");
}

static void op_close_fds(struct rd *r)
{
	unsigned int first = rd_u64(r);
	for (unsigned int fd = 3; fd < first; fd++) {
		if (fcntl(fd, F_SETFD, 0) < 0 && errno != EBADF)
			die("keep fd %u open", fd);
	}
	if (syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
		/* Before Linux 5.11: mark them one by one. */
		for (unsigned int fd = first; fd < 1024 * 1024; fd++) {
			if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 && errno == EBADF && fd > first + 4096)
				break;
		}
	}
}

static void run_op(uint32_t code, struct rd *r)
{
	switch (code) {
	case HAKO_OP_FDS:
		st.fifo_fd = rd_u64(r);
		st.console_fd = rd_u64(r);
		st.log_fd = rd_u64(r);
		st.trace_fd = rd_u64(r);
		st.log_json = rd_u64(r);
		break;
	case HAKO_OP_TRACE: {
		char *tid = rd_str(r), *parent = rd_str(r);
		snprintf(st.trace_id, sizeof(st.trace_id), "%s", tid);
		snprintf(st.root_parent, sizeof(st.root_parent), "%s", parent);
		break;
	}
	case HAKO_OP_PDEATHSIG:
		if (prctl(PR_SET_PDEATHSIG, (unsigned long)rd_u64(r), 0, 0, 0) < 0)
			die("set parent death signal");
		break;
	case HAKO_OP_SETNS:
		op_setns(r);
		break;
	case HAKO_OP_UNSHARE: {
		uint64_t flags = rd_u64(r);
		if (unshare(flags) < 0)
			die("unshare namespaces %#llx", (unsigned long long)flags);
		break;
	}
	case HAKO_OP_USERNS_SYNC: {
		uint32_t pid = getpid();
		/*
		 * An unprivileged runtime (rootless) may write our maps only while
		 * our /proc files are its own, that is while we are dumpable. We
		 * are alone in the new user namespace, so the window is safe.
		 */
		prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
		if (send_msg(HAKO_MSG_USERNS, &pid, sizeof(pid)) < 0)
			die("ask the runtime for id maps");
		free(wait_ack("user namespace id maps", NULL));
		prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
		break;
	}
	case HAKO_OP_SETID_ROOT:
		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
			die("become root in the user namespace (is uid 0 mapped?)");
		/*
		 * Changing ids made us non-dumpable, which hands /proc/self to the
		 * host's root, unmapped here: writes such as timens_offsets would
		 * fail. Nobody else is in the new namespaces yet.
		 */
		prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
		break;
	case HAKO_OP_WRITE:
		op_write(r);
		break;
	case HAKO_OP_FORK:
		op_fork(r);
		break;
	case HAKO_OP_SETSID:
		if (setsid() < 0 && errno != EPERM)
			die("setsid");
		break;
	case HAKO_OP_PROPAGATION: {
		char *p = rd_str(r);
		unsigned long flags = rd_u64(r);
		if (mount("", p, NULL, flags, NULL) < 0)
			die("set propagation of %s", p);
		break;
	}
	case HAKO_OP_ROOTFS:
		op_rootfs(r);
		break;
	case HAKO_OP_MOUNT:
		op_mount(r);
		break;
	case HAKO_OP_MKDIR:
		op_mkdir(r);
		break;
	case HAKO_OP_MKNOD:
		op_mknod(r);
		break;
	case HAKO_OP_BIND_DEV:
		op_bind_dev(r);
		break;
	case HAKO_OP_SYMLINK:
		op_symlink(r);
		break;
	case HAKO_OP_HOOKS_SYNC: {
		uint32_t len;
		if (send_msg(HAKO_MSG_HOOKS, NULL, 0) < 0)
			die("ask the runtime to run hooks");
		free(st.state);
		st.state = wait_ack("prestart and createRuntime hooks", &len);
		st.state_len = len;
		break;
	}
	case HAKO_OP_HOOK:
		op_hook(r);
		break;
	case HAKO_OP_PIVOT_ROOT:
		op_pivot_root();
		break;
	case HAKO_OP_CHROOT:
		op_chroot(r);
		break;
	case HAKO_OP_CONSOLE:
		op_console(r);
		break;
	case HAKO_OP_REMOUNT_RO:
		op_remount_ro(r);
		break;
	case HAKO_OP_MASK:
		op_mask(r);
		break;
	case HAKO_OP_HOSTNAME: {
		char *n = rd_str(r);
		if (sethostname(n, strlen(n)) < 0)
			die("sethostname %s", n);
		break;
	}
	case HAKO_OP_DOMAINNAME: {
		char *n = rd_str(r);
		if (setdomainname(n, strlen(n)) < 0)
			die("setdomainname %s", n);
		break;
	}
	case HAKO_OP_RLIMIT: {
		int res = rd_u64(r);
		struct rlimit rl;
		rl.rlim_cur = rd_u64(r);
		rl.rlim_max = rd_u64(r);
		if (setrlimit(res, &rl) < 0) {
			if (errno == EPERM)
				die("setrlimit (raising a hard limit needs CAP_SYS_RESOURCE, which this runtime lacks)");
			die("setrlimit");
		}
		break;
	}
	case HAKO_OP_CHDIR: {
		char *p = rd_str(r);
		if (chdir(p) < 0)
			die("chdir to %s", p);
		break;
	}
	case HAKO_OP_USER:
		op_user(r);
		break;
	case HAKO_OP_UMASK:
		umask((mode_t)rd_u64(r));
		break;
	case HAKO_OP_CAPS:
		op_caps(r);
		break;
	case HAKO_OP_KEEPCAPS:
		if (prctl(PR_SET_KEEPCAPS, (unsigned long)rd_u64(r), 0, 0, 0) < 0)
			die("PR_SET_KEEPCAPS");
		break;
	case HAKO_OP_NNP:
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
			die("set no_new_privs");
		break;
	case HAKO_OP_SECCOMP:
		op_seccomp(r);
		break;
	case HAKO_OP_PERSONALITY:
		if (personality((unsigned long)rd_u64(r)) < 0)
			die("personality");
		break;
	case HAKO_OP_IOPRIO:
		if (syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0, (int)rd_u64(r)) < 0)
			die("ioprio_set");
		break;
	case HAKO_OP_SCHED:
		op_sched(r);
		break;
	case HAKO_OP_CLOSE_FDS:
		op_close_fds(r);
		break;
	case HAKO_OP_LOOKUP:
		op_lookup(r);
		break;
	case HAKO_OP_WAIT_START:
		op_wait_start(r);
		break;
	case HAKO_OP_EXEC:
		op_exec(r);
		break;
	case HAKO_OP_KEYRING: {
		char *name = rd_str(r);
		/* KEYCTL_JOIN_SESSION_KEYRING: the container must not share the caller's keys. */
		if (syscall(SYS_keyctl, 1, name) < 0 && errno != ENOSYS && errno != EDQUOT)
			die("join a new session keyring %s", name);
		break;
	}
	default:
		errno = 0;
		die("unknown init operation %u", code);
	}
}

/* The program being run, and how far: global, so a CLONE_VM child (op_fork) can go on with it. */
static char *prog_p, *prog_end;

/* end_op_span records the span of the operation that just ran, if it has one. */
static void end_op_span(void)
{
	if (cur_span_name) {
		char id[17];
		hako_span_id(id);
		emit_span(cur_span_name, id, parent_span(), cur_span_start, hako_now_ns(), cur_span_attrs, NULL);
		cur_span_name = NULL;
	}
}

/* run_ops runs the program from prog_p to its end; the last operation execs. */
static void __attribute__((noreturn)) run_ops(void)
{
	while (prog_p < prog_end) {
		uint32_t code, olen;
		struct rd r;
		char *name, *attrs;
		if (prog_end - prog_p < 8) {
			errno = 0;
			die("malformed init program");
		}
		memcpy(&code, prog_p, 4);
		memcpy(&olen, prog_p + 4, 4);
		if ((uint64_t)(prog_end - prog_p - 8) < olen) {
			errno = 0;
			die("malformed init program");
		}
		r.p = prog_p + 8;
		r.end = r.p + olen;
		prog_p = r.end;
		name = rd_str(&r);
		st.field = rd_str(&r);
		attrs = rd_str(&r);
		if (code == HAKO_OP_SPAN_BEGIN) {
			if (st.depth < MAX_SPAN_DEPTH) {
				hako_span_id(st.span_id[st.depth]);
				st.span_name[st.depth] = name;
				st.span_attrs[st.depth] = attrs;
				st.span_start[st.depth] = hako_now_ns();
				st.depth++;
			}
			continue;
		}
		if (code == HAKO_OP_SPAN_END) {
			if (st.depth > 0) {
				st.depth--;
				emit_span(st.span_name[st.depth], st.span_id[st.depth],
					  st.depth > 0 ? st.span_id[st.depth - 1] : st.root_parent,
					  st.span_start[st.depth], hako_now_ns(), st.span_attrs[st.depth], NULL);
			}
			continue;
		}
		if (st.trace_fd >= 0 && *name) {
			cur_span_name = name;
			cur_span_attrs = attrs;
			cur_span_start = hako_now_ns();
		}
		run_op(code, &r);
		end_op_span();
	}
	errno = 0;
	st.field = NULL;
	die("init program ended without exec");
}

static void __attribute__((noreturn)) run_program(char *p, uint32_t len)
{
	prog_p = p;
	prog_end = p + len;
	run_ops();
}

/*
 * `hako-runtime gate FIFO`: the createRuntime hook hakod puts in the spec of
 * a container whose networks it attaches while the runtime creates the
 * container (engine/gate.go). It holds the container's program until hakod
 * writes its verdict to FIFO: '1' (attached) exits 0 and the start goes on;
 * anything else, or hakod closing the FIFO without a verdict (it died),
 * exits 1 and the runtime fails the create. Here rather than in Go: the
 * hook then costs an exec and a read, not a Go runtime start.
 */
static void gate(const char *path)
{
	char buf[4096], v = 0;
	ssize_t n;
	int fd;
	/* The runtime writes the container's state to our stdin: drain it. */
	do
		n = read(0, buf, sizeof(buf));
	while (n > 0 || (n < 0 && errno == EINTR));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "start gate %s: %s\n", path, strerror(errno));
		_exit(1);
	}
	do
		n = read(fd, &v, 1);
	while (n < 0 && errno == EINTR);
	if (n == 1 && v == '1')
		_exit(0);
	if (n == 1)
		fprintf(stderr, "start gate %s: the container's networks could not be attached\n", path);
	else
		fprintf(stderr, "start gate %s: closed without a verdict (did hakod stop?)\n", path);
	_exit(1);
}

/*
 * An ordinary command's threads get a coarse timer slack from the start,
 * sysmon included, which Go makes before main (internal/timerslack says
 * why). The original stays here for the Go side (OriginalTimerSlack),
 * which gives it back to the container's processes and hooks; not in the
 * environment, which Go reads from the process's stack, not from environ.
 * Paths that exec the user's program (the init) or nothing (gate, the C
 * delete and start) keep the caller's slack.
 */
unsigned long hako_original_slack;

static void coarse_timer_slack(void)
{
	int cur = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
	if (cur <= 0 || cur >= HAKO_COARSE_SLACK)
		return;
	if (prctl(PR_SET_TIMERSLACK, HAKO_COARSE_SLACK, 0, 0, 0) == 0)
		hako_original_slack = (unsigned long)cur;
}

__attribute__((constructor)) static void hako_nsexec(int argc, char **argv, char **envp)
{
	const char *env = getenv(HAKO_INIT_ENV);
	uint32_t type, len;
	char *prog;
	(void)envp;
	if ((!env || !*env) && argc == 3 && strcmp(argv[1], "gate") == 0)
		gate(argv[2]);
	if (!env || !*env) {
		/* delete of a stopped container, start of a created one: done here, or left to Go. */
		hako_fast_delete(argc, argv);
		hako_fast_start(argc, argv);
		/*
		 * An ordinary hako-runtime command: let Go start. With cgo,
		 * Go's threads are pthreads, and glibc gives each thread that
		 * calls malloc an arena of its own (a 64 MiB reservation,
		 * trimmed with munmap: TLB shootdowns on every CPU). The C
		 * side of a runtime command mallocs little (libseccomp), so
		 * one arena serves.
		 */
		mallopt(M_ARENA_MAX, 1);
		coarse_timer_slack();
		hako_prefault_self();
		return;
	}
	st.sync_fd = atoi(env);
	/*
	 * Not dumpable while we set up: a process already in a namespace we
	 * join (exec, shared PID namespaces) cannot ptrace us or open our
	 * /proc files. execve of the user's program resets it.
	 */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	/* If the runtime dies while we set up, do not linger half-made. */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	/* Device nodes and mount points get exactly the modes asked for. */
	umask(0);
	prog = recv_msg(&type, &len);
	if (!prog)
		_exit(1); /* the runtime gave up before sending the program */
	if (type != HAKO_MSG_BOOTSTRAP) {
		errno = 0;
		die("expected the init program, got message %u", type);
	}
	run_program(prog, len);
}
