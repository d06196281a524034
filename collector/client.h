/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The subscriber side of the export socket, shared by the taskmeter
 * commands: connecting (waiting for a collector that is starting), reading
 * whole frames (parts reassembled), and telling a stream that ended (the
 * collector stopped or went away) from a broken one, so that every command
 * reports it the same way and can reconnect when asked to.
 */
#ifndef TM_CLIENT_H
#define TM_CLIENT_H

#include <stdbool.h>

#include "frame.h"

/* Exit statuses of the taskmeter commands. */
#define TM_EXIT_OK 0
#define TM_EXIT_FAIL 1   /* cannot connect, a broken stream, an output error */
#define TM_EXIT_USAGE 2
#define TM_EXIT_ENDED 3  /* the stream ended: taskmeterd stopped or went away */

struct tm_client {
	const char *path;
	double wait_s;       /* how long each (re)connect may retry; 0: once */
	bool nonblock;       /* reads return -EAGAIN instead of waiting */
	int fd;              /* -1 while not connected */
	struct tm_frame_reader reader;
	struct tm_frame_parts parts;
	double deadline;     /* of the reconnect in progress (CLOCK_MONOTONIC s) */
	int ended;           /* how the last stream ended: 0 EOF, or -errno */
	bool refused;        /* ... closed before its first frame: refused */
	unsigned conn_frames; /* frames on the connection now open */
	double refused_since; /* first of the refusals in a row (CLOCK_MONOTONIC s) */
	unsigned reconnects; /* connections after the first */
};

void tm_client_init(struct tm_client *c, const char *path, double wait_s, bool nonblock);
void tm_client_free(struct tm_client *c);

/* One attempt: a connected fd (reads non-blocking with nonblock) or -errno. */
int tm_client_connect_once(const char *path, bool nonblock);

/*
 * Connects, retrying for up to wait_s while the collector is not up yet
 * (socket missing or refusing), with one "waiting for" line on stderr.
 * Blocks. Returns 0 or the -errno of the last attempt.
 */
int tm_client_connect(struct tm_client *c);

/*
 * Reads until a whole frame is in. Returns 1 with *f set: the client's,
 * valid until the next call that returns 1 or tm_client_free (the caller
 * may reorder its records); 0 when the stream ended:
 * EOF, EOF inside a frame, connection reset (c->ended says which, the
 * connection is closed); -EAGAIN on a non-blocking client with no whole
 * frame yet; else -errno of a broken stream (-EBADMSG, -ENOMEM), the
 * connection closed.
 */
int tm_client_next(struct tm_client *c, Taskmeter__Frame **f);

/*
 * tm_client_next for a blocking client, with the reconnects wait_s asks
 * for: when the stream ends it says so on stderr and reconnects for up to
 * wait_s (c->reconnects counts them). Returns 1 with *f set, or 0 after a
 * message on stderr with *status set to the exit status: TM_EXIT_ENDED, or
 * TM_EXIT_FAIL for a broken stream.
 */
int tm_client_next_blocking(struct tm_client *c, Taskmeter__Frame **f, int *status);

/* Starts a reconnect after the stream ended: wait_s from now. */
void tm_client_reconnect_start(struct tm_client *c);

/*
 * One attempt of the reconnect in progress, never blocking: 0 when
 * connected again, -EAGAIN to try again later, -ETIMEDOUT once wait_s has
 * passed, another -errno when retrying cannot help.
 */
int tm_client_reconnect_try(struct tm_client *c);

/* Seconds left of the reconnect in progress (0 when past). */
double tm_client_wait_left(const struct tm_client *c);

/* How the last stream ended, for "<path>: <this>". */
const char *tm_client_end_reason(const struct tm_client *c);

/* The error messages every command prints, on stderr: */
void tm_client_warn_connect(const struct tm_client *c, int err);
/* gave_up: a reconnect was tried for wait_s seconds. */
void tm_client_warn_ended(const struct tm_client *c, bool gave_up);
void tm_client_warn_broken(const struct tm_client *c, int err);

/* --wait and --count arguments; 0, or -EINVAL after a message. */
int tm_client_parse_wait(const char *arg, double *out);
int tm_client_parse_count(const char *arg, unsigned long long *out);

#endif /* TM_CLIENT_H */
