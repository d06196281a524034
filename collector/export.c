// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The export socket (see export.h): a non-blocking UNIX listener, and per
 * subscriber a bounded ring of messages that share one encoded frame.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "export.h"
#include "frame.h"
#include "log.h"
#include "taskmeter.fields.h"
#include "util.h"

/* How long accepting pauses when a connection cannot even be refused. */
#define TM_ACCEPT_PAUSE_NS (200 * 1000000ull)

static void unlink_ours(struct tm_export *e);

/* sub_push() writes the tag of Frame.frames_dropped as one byte. */
_Static_assert(TM_PB_FRAME_FRAMES_DROPPED < 16, "the tag of Frame.frames_dropped fits one byte");

/* A queued message: varint prefix || shared body || frames_dropped field. */
struct tm_qent {
	struct tm_buf *buf;
	uint8_t head[TM_VARINT_MAX], tail[1 + TM_VARINT_MAX];
	uint8_t head_len, tail_len;
	bool last;  /* the last part of its frame */
	size_t off; /* bytes of this entry already written */
};

/* A subscriber's queue is a ring of messages; a frame takes one per part. */
struct tm_sub {
	struct tm_watch w;
	struct tm_sub *next;
	struct tm_qent *q;
	unsigned int q_head, q_len, q_cap;
	unsigned int frames;    /* frames (last parts) queued */
	size_t bytes;           /* bytes queued */
	uint64_t dropped;
	int want_out;
};

struct tm_export {
	struct tm_watch w;
	int epfd;
	unsigned int queue_max;
	size_t queue_bytes_max;
	unsigned int max_subs;
	struct tm_sub *subs;
	unsigned int n_subs;
	uint64_t dropped;
	uint64_t refused_fds;   /* connections refused: no file descriptor left */
	uint64_t refused_max;   /* ... max_subscribers reached */
	uint64_t refused_mem;   /* ... no memory for its queue (or epoll refused it) */
	uint64_t logged[3];     /* of those (fds, max, mem), already logged */
	uint64_t pauses;        /* accepting paused: not even a refusal was possible */
	uint64_t logged_pauses;
	int pause_err;          /* errno of the last pause */
	int spare_fd;           /* kept open to make room for a refusal */
	uint64_t pause_until;   /* CLOCK_MONOTONIC ns: accepting paused until then */
	bool listening;         /* the listener is in the epoll set */
	bool started;           /* tm_export_start: clients are taken */
	ino_t ino;              /* of our socket file: never unlink another's */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char bound[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* the name bound: a
						 * temporary one until started */
};

struct tm_buf *tm_buf_new(size_t len)
{
	struct tm_buf *b = malloc(sizeof(*b) + (len ? len : 1));

	if (!b)
		return NULL;
	b->refs = 1;
	b->len = len;
	return b;
}

void tm_buf_put(struct tm_buf *b)
{
	if (b && --b->refs == 0)
		free(b);
}

static void sub_close(struct tm_export *e, struct tm_sub *s, const char *why)
{
	struct tm_sub **pp = &e->subs;

	tm_info("subscriber fd %d disconnected: %s\n", s->w.fd, why);
	while (*pp != s)
		pp = &(*pp)->next;
	*pp = s->next;
	epoll_ctl(e->epfd, EPOLL_CTL_DEL, s->w.fd, NULL);
	close(s->w.fd);
	for (unsigned int i = 0; i < s->q_len; i++)
		tm_buf_put(s->q[(s->q_head + i) % s->q_cap].buf);
	free(s->q);
	free(s);
	e->n_subs--;
}

static size_t qent_len(const struct tm_qent *q)
{
	return q->head_len + q->buf->len + q->tail_len;
}

/* iovecs for what is left of q. */
static int qent_iov(const struct tm_qent *q, struct iovec *iov)
{
	struct iovec all[3] = {
		{ (void *)q->head, q->head_len },
		{ q->buf->data, q->buf->len },
		{ (void *)q->tail, q->tail_len },
	};
	size_t skip = q->off;
	int n = 0;

	for (int i = 0; i < 3; i++) {
		if (skip >= all[i].iov_len) {
			skip -= all[i].iov_len;
			continue;
		}
		iov[n].iov_base = (char *)all[i].iov_base + skip;
		iov[n++].iov_len = all[i].iov_len - skip;
		skip = 0;
	}
	return n;
}

static void set_want_out(struct tm_export *e, struct tm_sub *s, int want)
{
	struct epoll_event ev = { .events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = &s->w };

	if (s->want_out == want)
		return;
	s->want_out = want;
	epoll_ctl(e->epfd, EPOLL_CTL_MOD, s->w.fd, &ev);
}

/* Write as much as the socket takes. 0, or -errno when s must be closed. */
static int sub_flush(struct tm_export *e, struct tm_sub *s)
{
	while (s->q_len) {
		struct tm_qent *q = &s->q[s->q_head];
		struct iovec iov[3];
		struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)qent_iov(q, iov) };
		ssize_t n = sendmsg(s->w.fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0)
			return -errno;
		q->off += (size_t)n;
		if (q->off < qent_len(q))
			continue;
		s->bytes -= qent_len(q);
		s->frames -= q->last;
		tm_buf_put(q->buf);
		s->q_head = (s->q_head + 1) % s->q_cap;
		s->q_len--;
	}
	set_want_out(e, s, s->q_len > 0);
	return 0;
}

/*
 * Is there a live collector on the socket at path? Only a refused
 * connection proves the socket stale: a full backlog (EAGAIN) is a live but
 * busy collector.
 */
static int probe_socket(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), err = 0;

	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 || errno == EAGAIN)
		err = -EADDRINUSE;
	else if (errno != ECONNREFUSED)
		err = -errno;
	close(fd);
	return err;
}

/* Make way for our socket: remove only a socket proven stale, never
 * anything else. */
static int clear_path(const struct sockaddr_un *sa)
{
	struct stat st;
	int err;

	if (lstat(sa->sun_path, &st))
		return errno == ENOENT ? 0 : -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISSOCK(st.st_mode))
		return -ENOTSOCK;
	err = probe_socket(sa);
	if (err)
		return err;
	return unlink(sa->sun_path) && errno != ENOENT ? -errno : 0;
}

/*
 * Bind under a temporary name next to the path, "<path>.<pid>": the path
 * itself appears only once the socket listens (tm_export_start), so a
 * client that finds it finds counting started, and a second collector
 * probing the path meanwhile neither takes a half-started one for stale nor
 * gets taken for stale itself. Only our own temporary name is ever cleared
 * (left by a killed process whose pid we now have); another pid's belongs
 * to a collector starting now, or one killed while it started.
 */
static int listen_on(struct tm_export *e, const struct tm_export_opts *o)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, err;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", o->path);
	err = clear_path(&sa);
	if (err)
		return err;
	if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s.%d", o->path, (int)getpid()) >=
	    (int)sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	err = clear_path(&sa);
	if (err)
		return err;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err = -errno;
		close(fd);
		return err;
	}
	snprintf(e->bound, sizeof(e->bound), "%s", sa.sun_path);
	e->ino = 0;
	if (stat(e->bound, &st) || chmod(e->bound, o->mode) ||
	    (o->gid >= 0 && chown(e->bound, (uid_t)-1, (gid_t)o->gid))) {
		err = -errno;
		close(fd);
		unlink(e->bound);
		return err;
	}
	e->ino = st.st_ino;
	return fd;
}

static int mkdir_parent(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

struct tm_export *tm_export_open(const struct tm_export_opts *o, int epfd)
{
	struct tm_export *e = calloc(1, sizeof(*e));
	int err;

	if (!e)
		return NULL;
	e->epfd = epfd;
	e->queue_max = o->queue_frames;
	e->queue_bytes_max = o->queue_bytes;
	e->max_subs = o->max_subscribers;
	e->w.kind = TM_WATCH_LISTENER;
	e->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	snprintf(e->path, sizeof(e->path), "%s", o->path);
	err = mkdir_parent(o->path);
	e->w.fd = err ? err : listen_on(e, o);
	if (e->w.fd < 0) {
		err = e->w.fd;
		goto err_free;
	}
	return e;
err_free:
	if (e->spare_fd >= 0)
		close(e->spare_fd);
	free(e);
	errno = -err;
	return NULL;
}

int tm_export_start(struct tm_export *e)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &e->w };

	if (listen(e->w.fd, 64))
		return -errno;
	/* the path appears listening, with its mode, at once; never over a
	 * socket another collector put there since tm_export_open */
	if (renameat2(AT_FDCWD, e->bound, AT_FDCWD, e->path, RENAME_NOREPLACE))
		return errno == EEXIST ? -EADDRINUSE : -errno;
	snprintf(e->bound, sizeof(e->bound), "%s", e->path);
	if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->w.fd, &ev))
		return -errno;
	e->listening = e->started = true;
	return 0;
}

static void sub_add(struct tm_export *e, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct tm_sub *s = calloc(1, sizeof(*s));

	if (s) {
		s->q_cap = e->queue_max;
		s->q = calloc(s->q_cap, sizeof(*s->q));
	}
	if (s && s->q) {
		s->w.kind = TM_WATCH_SUBSCRIBER;
		s->w.fd = fd;
		ev.data.ptr = &s->w;
		if (!epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev))
			goto added;
		free(s->q);
	}
	free(s);
	close(fd); /* its client sees the stream end */
	e->refused_mem++;
	return;
added:
	s->next = e->subs;
	e->subs = s;
	e->n_subs++;
	tm_info("subscriber fd %d connected\n", fd);
}

/*
 * Out of file descriptors: a connection left pending keeps the listener
 * readable (a spin on accept()) and its client waiting for a stream that
 * does not come. The spare descriptor makes room to accept it and close it
 * at once: the client sees the stream end, the refusal is counted.
 * 1: one refused; 0: none was pending; -1: no room even for that.
 */
static int refuse_one(struct tm_export *e)
{
	int fd, err;

	if (e->spare_fd < 0)
		return -1;
	close(e->spare_fd);
	fd = accept4(e->w.fd, NULL, NULL, SOCK_CLOEXEC);
	err = errno;
	if (fd >= 0)
		close(fd);
	e->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		e->refused_fds++;
		return 1;
	}
	errno = err;
	return err == EAGAIN || err == EWOULDBLOCK ? 0 : -1;
}

/* Not even a refusal is possible (no spare descriptor, no memory): stop
 * polling the listener for a while instead of spinning on accept().
 * tm_export_tick resumes. */
static void pause_accepting(struct tm_export *e, int err)
{
	if (e->listening && !epoll_ctl(e->epfd, EPOLL_CTL_DEL, e->w.fd, NULL))
		e->listening = false;
	e->pause_until = tm_now_ns(CLOCK_MONOTONIC) + TM_ACCEPT_PAUSE_NS;
	e->pauses++;
	e->pause_err = err;
}

int tm_export_configure(struct tm_export *e, const struct tm_export_opts *o)
{
	e->queue_max = o->queue_frames;
	e->queue_bytes_max = o->queue_bytes;
	e->max_subs = o->max_subscribers;
	if (chmod(e->bound, o->mode) || (o->gid >= 0 && chown(e->bound, (uid_t)-1, (gid_t)o->gid)))
		return -errno;
	return 0;
}

/* One line per interval at most, with the counts since the last one. */
static void log_refused(struct tm_export *e)
{
	static const char *const whys[] = { "no file descriptor left", "max_subscribers reached",
					    "out of memory" };
	uint64_t now[] = { e->refused_fds, e->refused_max, e->refused_mem };
	char why[160] = "";
	size_t len = 0;
	uint64_t all = 0;

	for (size_t k = 0; k < TM_ARRAY_SIZE(whys); k++) {
		uint64_t n = now[k] - e->logged[k];

		if (!n)
			continue;
		len += (size_t)snprintf(why + len, sizeof(why) - len, "%s%llu: %s",
					len ? ", " : "", (unsigned long long)n, whys[k]);
		if (len >= sizeof(why))
			len = sizeof(why) - 1;
		all += n;
		e->logged[k] = now[k];
	}
	if (all)
		tm_warn("%s: refused %llu connection(s) (%s; max_subscribers = %u)\n", e->path,
			(unsigned long long)all, why, e->max_subs);
	if (e->pauses > e->logged_pauses)
		tm_warn("%s: accepting paused %llu time(s): %s\n", e->path,
			(unsigned long long)(e->pauses - e->logged_pauses), strerror(e->pause_err));
	e->logged_pauses = e->pauses;
}

void tm_export_tick(struct tm_export *e)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &e->w };

	log_refused(e);
	if (e->spare_fd < 0)
		e->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (e->started && !e->listening && tm_now_ns(CLOCK_MONOTONIC) >= e->pause_until &&
	    !epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->w.fd, &ev))
		e->listening = true;
}

void tm_export_accept(struct tm_export *e)
{
	for (;;) {
		int fd = accept4(e->w.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			int r = errno == EMFILE || errno == ENFILE ? refuse_one(e) : -1;

			if (errno == EINTR || errno == ECONNABORTED || r > 0)
				continue;
			if (r == 0 || errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				pause_accepting(e, errno); /* logged once per interval, by tick */
			else
				tm_warn("accept on %s: %s\n", e->path, strerror(errno));
			return;
		}
		if (e->n_subs >= e->max_subs) {
			close(fd);
			e->refused_max++;
			continue;
		}
		sub_add(e, fd);
	}
}

void tm_export_ready(struct tm_export *e, struct tm_watch *w, uint32_t events)
{
	struct tm_sub *s = (struct tm_sub *)w; /* w is the first member */
	char c;
	ssize_t n;
	int err;

	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		n = recv(s->w.fd, &c, 1, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			sub_close(e, s, n == 0 ? "closed" : strerror(errno));
			return;
		}
		if (n > 0) { /* subscribers only read: anything else is a protocol error */
			sub_close(e, s, "sent data on a read-only stream");
			return;
		}
	}
	if (events & EPOLLOUT) {
		err = sub_flush(e, s);
		if (err)
			sub_close(e, s, strerror(-err));
	}
}

/* Room for n more messages in s's ring. */
static int sub_reserve(struct tm_sub *s, unsigned int n)
{
	unsigned int cap = s->q_cap;
	struct tm_qent *q;

	if (s->q_len + n <= cap)
		return 0;
	while (cap < s->q_len + n)
		cap *= 2;
	q = calloc(cap, sizeof(*q));
	if (!q)
		return -ENOMEM;
	for (unsigned int i = 0; i < s->q_len; i++)
		q[i] = s->q[(s->q_head + i) % s->q_cap];
	free(s->q);
	s->q = q;
	s->q_head = 0;
	s->q_cap = cap;
	return 0;
}

static void sub_push(struct tm_sub *s, struct tm_buf *b, bool last)
{
	struct tm_qent *q = &s->q[(s->q_head + s->q_len) % s->q_cap];

	q->buf = b;
	b->refs++;
	q->off = 0;
	q->last = last;
	/* Frame.frames_dropped, varint (wire type 0): protobuf lets a field be
	 * appended to an encoded message, so the shared body stays as is. */
	q->tail[0] = TM_PB_FRAME_FRAMES_DROPPED << 3;
	q->tail_len = (uint8_t)(1 + tm_frame_varint_encode(s->dropped, q->tail + 1));
	q->head_len = (uint8_t)tm_frame_varint_encode(b->len + q->tail_len, q->head);
	s->q_len++;
	s->bytes += qent_len(q);
}

/* All parts of the frame, or none: a subscriber never sees half a snapshot. */
static void sub_enqueue(struct tm_export *e, struct tm_sub *s, struct tm_buf *const *parts,
			size_t n, size_t len)
{
	if (s->frames >= e->queue_max || (s->bytes && s->bytes + len > e->queue_bytes_max) ||
	    sub_reserve(s, (unsigned int)n)) {
		s->dropped++;
		e->dropped++;
		return;
	}
	for (size_t i = 0; i < n; i++)
		sub_push(s, parts[i], i + 1 == n);
	s->frames++;
}

int tm_export_publish(struct tm_export *e, struct tm_buf *const *parts, size_t n)
{
	struct tm_sub *s, *next;
	size_t len = 0;
	int err;

	for (size_t i = 0; i < n; i++)
		len += parts[i]->len;
	for (s = e->subs; s; s = next) {
		next = s->next;
		sub_enqueue(e, s, parts, n, len);
		err = sub_flush(e, s);
		if (err)
			sub_close(e, s, strerror(-err));
	}
	return 0;
}

uint64_t tm_export_refused(const struct tm_export *e)
{
	return e->refused_fds + e->refused_max + e->refused_mem;
}

unsigned int tm_export_subscribers(const struct tm_export *e)
{
	return e->n_subs;
}

uint64_t tm_export_dropped(const struct tm_export *e)
{
	return e->dropped;
}

/* Give queued frames up to timeout_ms to leave, so that a subscriber that
 * is merely behind gets the final frame whole instead of a cut stream. */
static void drain_all(struct tm_export *e, int timeout_ms)
{
	uint64_t start = tm_now_ns(CLOCK_MONOTONIC);

	for (;;) {
		struct pollfd pfd[64];
		struct tm_sub *s, *next;
		nfds_t n = 0;
		long left;

		for (s = e->subs; s && n < 64; s = next) {
			next = s->next;
			if (s->q_len && sub_flush(e, s)) {
				sub_close(e, s, "write failed at exit");
				continue;
			}
			if (s->q_len)
				pfd[n++] = (struct pollfd){ .fd = s->w.fd, .events = POLLOUT };
		}
		left = timeout_ms - (long)((tm_now_ns(CLOCK_MONOTONIC) - start) / 1000000);
		if (!n || left <= 0)
			return;
		if (poll(pfd, n, (int)left) < 0 && errno != EINTR)
			return;
	}
}

/* Remove the socket file, if it is still the one we made. */
static void unlink_ours(struct tm_export *e)
{
	struct stat st;

	if (!lstat(e->bound, &st) && S_ISSOCK(st.st_mode) && st.st_ino == e->ino)
		unlink(e->bound);
}

void tm_export_close(struct tm_export *e)
{
	if (!e)
		return;
	drain_all(e, 2000);
	while (e->subs)
		sub_close(e, e->subs, "collector exiting");
	if (e->listening)
		epoll_ctl(e->epfd, EPOLL_CTL_DEL, e->w.fd, NULL);
	close(e->w.fd);
	unlink_ours(e);
	if (e->spare_fd >= 0)
		close(e->spare_fd);
	free(e);
}
