// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
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

/* One encoded frame, shared by the queues that hold it. */
struct tm_buf {
	unsigned int refs;
	size_t len;
	uint8_t data[];
};

/* A queued frame: varint prefix || shared body || frames_dropped field. */
struct tm_qent {
	struct tm_buf *buf;
	uint8_t head[10], tail[11];
	uint8_t head_len, tail_len;
	size_t off; /* bytes of this entry already written */
};

struct tm_sub {
	struct tm_watch w;
	struct tm_sub *next;
	struct tm_qent *q;
	unsigned int q_head, q_len;
	uint64_t dropped;
	int want_out;
};

struct tm_export {
	struct tm_watch w;
	int epfd;
	unsigned int queue_max;
	struct tm_sub *subs;
	unsigned int n_subs;
	uint64_t dropped;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static void buf_put(struct tm_buf *b)
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
		buf_put(s->q[(s->q_head + i) % e->queue_max].buf);
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
		buf_put(q->buf);
		s->q_head = (s->q_head + 1) % e->queue_max;
		s->q_len--;
	}
	set_want_out(e, s, s->q_len > 0);
	return 0;
}

static int listen_on(const char *path, unsigned int mode)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, err;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(fd);
		return -EADDRINUSE; /* a live collector owns it */
	}
	unlink(path); /* stale socket of a collector that died */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || chmod(path, mode) ||
	    listen(fd, 64)) {
		err = -errno;
		close(fd);
		return err;
	}
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

struct tm_export *tm_export_open(const char *path, unsigned int mode, unsigned int queue_max,
				 int epfd, int *err)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct tm_export *e = calloc(1, sizeof(*e));

	if (!e) {
		*err = -ENOMEM;
		return NULL;
	}
	e->epfd = epfd;
	e->queue_max = queue_max;
	e->w.kind = TM_WATCH_LISTENER;
	snprintf(e->path, sizeof(e->path), "%s", path);
	*err = mkdir_parent(path);
	e->w.fd = *err ? *err : listen_on(path, mode);
	if (e->w.fd < 0) {
		*err = e->w.fd;
		free(e);
		return NULL;
	}
	ev.data.ptr = &e->w;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, e->w.fd, &ev)) {
		*err = -errno;
		close(e->w.fd);
		unlink(path);
		free(e);
		return NULL;
	}
	return e;
}

static void sub_add(struct tm_export *e, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct tm_sub *s = calloc(1, sizeof(*s));

	if (s)
		s->q = calloc(e->queue_max, sizeof(*s->q));
	if (!s || !s->q) {
		free(s);
		close(fd);
		tm_warn("out of memory: subscriber refused\n");
		return;
	}
	s->w.kind = TM_WATCH_SUBSCRIBER;
	s->w.fd = fd;
	ev.data.ptr = &s->w;
	if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		free(s->q);
		free(s);
		close(fd);
		return;
	}
	s->next = e->subs;
	e->subs = s;
	e->n_subs++;
	tm_info("subscriber fd %d connected\n", fd);
}

void tm_export_accept(struct tm_export *e)
{
	for (;;) {
		int fd = accept4(e->w.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				tm_warn("accept on %s: %s\n", e->path, strerror(errno));
			return;
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

static void sub_enqueue(struct tm_export *e, struct tm_sub *s, struct tm_buf *b)
{
	struct tm_qent *q;

	if (s->q_len == e->queue_max) {
		s->dropped++;
		e->dropped++;
		return;
	}
	q = &s->q[(s->q_head + s->q_len) % e->queue_max];
	q->buf = b;
	b->refs++;
	q->off = 0;
	/* Frame field 6 (frames_dropped), varint: protobuf lets a field be
	 * appended to an encoded message, so the shared body stays as is. */
	q->tail[0] = 6 << 3;
	q->tail_len = (uint8_t)(1 + tm_varint_encode(s->dropped, q->tail + 1));
	q->head_len = (uint8_t)tm_varint_encode(b->len + q->tail_len, q->head);
	s->q_len++;
}

int tm_export_publish(struct tm_export *e, const uint8_t *body, size_t len)
{
	struct tm_buf *b = malloc(sizeof(*b) + len);
	struct tm_sub *s, *next;
	int err;

	if (!b)
		return -ENOMEM;
	b->refs = 1;
	b->len = len;
	memcpy(b->data, body, len);
	for (s = e->subs; s; s = next) {
		next = s->next;
		sub_enqueue(e, s, b);
		err = sub_flush(e, s);
		if (err)
			sub_close(e, s, strerror(-err));
	}
	buf_put(b);
	return 0;
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
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
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
		clock_gettime(CLOCK_MONOTONIC, &now);
		left = timeout_ms - ((now.tv_sec - start.tv_sec) * 1000 +
				     (now.tv_nsec - start.tv_nsec) / 1000000);
		if (!n || left <= 0)
			return;
		if (poll(pfd, n, (int)left) < 0 && errno != EINTR)
			return;
	}
}

void tm_export_close(struct tm_export *e)
{
	if (!e)
		return;
	drain_all(e, 2000);
	while (e->subs)
		sub_close(e, e->subs, "collector exiting");
	epoll_ctl(e->epfd, EPOLL_CTL_DEL, e->w.fd, NULL);
	close(e->w.fd);
	unlink(e->path);
	free(e);
}
