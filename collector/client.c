// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The subscriber side of the export socket: connect, whole frames, how a
 * stream ended (see client.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "log.h"
#include "util.h"

#define CONNECT_RETRY_NS 100000000L

static double now_s(void)
{
	return (double)tm_now_ns(CLOCK_MONOTONIC) / 1e9;
}

void tm_client_init(struct tm_client *c, const char *path, double wait_s, bool nonblock)
{
	memset(c, 0, sizeof(*c));
	c->path = path;
	c->wait_s = wait_s;
	c->nonblock = nonblock;
	c->fd = -1;
	tm_frame_reader_init(&c->reader);
	tm_frame_parts_init(&c->parts);
}

/* Whatever was half read belonged to the old connection. */
static void disconnect(struct tm_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	tm_frame_reader_free(&c->reader);
	tm_frame_parts_reset(&c->parts);
}

void tm_client_free(struct tm_client *c)
{
	disconnect(c);
	tm_frame_parts_free(&c->parts);
}

int tm_client_connect_once(const char *path, bool nonblock)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, err;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* connect(2) on a UNIX socket does not wait for the peer: only reads
	 * need to be non-blocking. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    (!nonblock || fcntl(fd, F_SETFL, O_NONBLOCK) == 0))
		return fd;
	err = -errno;
	close(fd);
	return err;
}

/* What a collector that is still starting looks like from here. */
static bool not_up_yet(int err)
{
	return err == -ENOENT || err == -ECONNREFUSED || err == -EAGAIN;
}

int tm_client_connect(struct tm_client *c)
{
	struct timespec pause = { .tv_nsec = CONNECT_RETRY_NS };
	double deadline = now_s() + c->wait_s;
	bool announced = false;
	int fd;

	disconnect(c);
	for (;;) {
		fd = tm_client_connect_once(c->path, c->nonblock);
		if (fd >= 0 || !not_up_yet(fd) || now_s() >= deadline)
			break;
		if (!announced) {
			fprintf(stderr, "waiting for taskmeterd at %s...\n", c->path);
			announced = true;
		}
		nanosleep(&pause, NULL);
	}
	if (fd < 0)
		return fd;
	c->fd = fd;
	c->conn_frames = 0;
	return 0;
}

/* A peer that closed, crashed or was killed, as opposed to a broken stream. */
static bool stream_ended(int err)
{
	return err == 0 || err == -EPROTO || err == -ECONNRESET || err == -EPIPE;
}

int tm_client_next(struct tm_client *c, Taskmeter__Frame **f)
{
	Taskmeter__Frame *part;
	int err;

	if (c->fd < 0)
		return 0;
	for (;;) {
		err = tm_frame_read(&c->reader, c->fd, &part);
		if (err <= 0)
			break;
		err = tm_frame_parts_add(&c->parts, part, f);
		if (err)
			break;
	}
	if (err == 1) {
		c->conn_frames++;
		c->refused_since = 0;
	}
	if (err == -EAGAIN || err == 1)
		return err;
	if (stream_ended(err)) {
		c->ended = err;
		/* taskmeterd closes a connection it cannot serve at once (no
		 * descriptor left, max_subscribers): no frame, then the end */
		c->refused = !err && !c->conn_frames;
	}
	disconnect(c);
	return stream_ended(err) ? 0 : err;
}

int tm_client_next_blocking(struct tm_client *c, Taskmeter__Frame **f, int *status)
{
	int err;

	for (;;) {
		err = tm_client_next(c, f);
		if (err > 0)
			return 1;
		if (err < 0) {
			tm_client_warn_broken(c, err);
			*status = TM_EXIT_FAIL;
			return 0;
		}
		if (c->refused && !c->refused_since)
			c->refused_since = now_s();
		if (c->wait_s <= 0 || (c->refused && now_s() - c->refused_since >= c->wait_s)) {
			tm_client_warn_ended(c, c->wait_s > 0);
			*status = c->refused ? TM_EXIT_FAIL : TM_EXIT_ENDED;
			return 0;
		}
		if (c->refused) { /* not at once again: it is full, not gone */
			struct timespec pause = { .tv_sec = 1 };

			nanosleep(&pause, NULL);
		}
		tm_warn("%s: %s; reconnecting for up to %g s\n", c->path, tm_client_end_reason(c),
			c->wait_s);
		if (tm_client_connect(c)) {
			tm_client_warn_ended(c, true);
			*status = TM_EXIT_ENDED;
			return 0;
		}
		c->reconnects++;
		tm_info("reconnected to %s\n", c->path);
	}
}

void tm_client_reconnect_start(struct tm_client *c)
{
	c->deadline = now_s() + c->wait_s;
}

int tm_client_reconnect_try(struct tm_client *c)
{
	int fd = tm_client_connect_once(c->path, c->nonblock);

	if (fd >= 0) {
		disconnect(c);
		c->fd = fd;
		c->conn_frames = 0;
		c->reconnects++;
		return 0;
	}
	if (!not_up_yet(fd))
		return fd;
	return now_s() >= c->deadline ? -ETIMEDOUT : -EAGAIN;
}

double tm_client_wait_left(const struct tm_client *c)
{
	double left = c->deadline - now_s();

	return left > 0 ? left : 0;
}

const char *tm_client_end_reason(const struct tm_client *c)
{
	if (c->refused)
		return "taskmeterd closed the connection before its first frame (it refused it: "
		       "max_subscribers reached or no file descriptor left, see its log; or it "
		       "stopped)";
	switch (c->ended) {
	case 0: return "taskmeterd closed the stream (it stopped, or was restarted)";
	case -EPROTO: return "the stream ended inside a frame (taskmeterd died?)";
	default: return "the connection was reset (taskmeterd died?)";
	}
}

void tm_client_warn_connect(const struct tm_client *c, int err)
{
	tm_err("cannot connect to %s: %s (is taskmeterd running?)\n", c->path, strerror(-err));
}

void tm_client_warn_ended(const struct tm_client *c, bool gave_up)
{
	if (gave_up)
		tm_err("%s: %s; %s within %g s\n", c->path, tm_client_end_reason(c),
		       c->refused ? "still refused" : "no taskmeterd came back", c->wait_s);
	else
		tm_err("%s: %s\n", c->path, tm_client_end_reason(c));
}

void tm_client_warn_broken(const struct tm_client *c, int err)
{
	tm_err("reading %s: %s\n", c->path,
	       err == -EBADMSG ? "malformed frame" : strerror(-err));
}

int tm_client_parse_wait(const char *arg, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(arg, &end);
	if (errno || end == arg || *end || !(*out >= 0)) {
		fprintf(stderr, "taskmeter: --wait wants a non-negative number, not '%s'\n", arg);
		return -EINVAL;
	}
	return 0;
}

int tm_client_parse_count(const char *arg, unsigned long long *out)
{
	char *end;

	errno = 0;
	*out = strtoull(arg, &end, 10);
	if (errno || end == arg || *end || *out == 0 || arg[0] == '-') {
		fprintf(stderr, "taskmeter: --count wants a positive integer, not '%s'\n", arg);
		return -EINVAL;
	}
	return 0;
}
