/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The export socket: a UNIX stream listener and its subscribers. One encoded
 * frame is shared by every subscriber's bounded queue; a subscriber whose
 * queue is full loses that frame (counted, and reported to it in the
 * frames_dropped field of the next frame it gets). Nothing here blocks.
 */
#ifndef TM_EXPORT_H
#define TM_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "watch.h"

/* One encoded Frame message (no length prefix), shared by the queues that
 * hold it. */
struct tm_buf {
	unsigned int refs;
	size_t len;
	uint8_t data[];
};

/* A buffer of len bytes with one reference; NULL with errno set. */
struct tm_buf *tm_buf_new(size_t len);
void tm_buf_put(struct tm_buf *b);

struct tm_export;

struct tm_export_opts {
	const char *path;
	unsigned int mode;              /* of the socket file */
	int gid;                        /* its group, or -1 to leave it */
	unsigned int queue_frames;      /* per subscriber */
	size_t queue_bytes;             /* per subscriber (a frame is always let in
					 * when the queue is empty) */
	unsigned int max_subscribers;
};

/*
 * Make the socket for o->path (creating its directory), with its mode and
 * group, bound under the temporary name "<path>.<pid>" until
 * tm_export_start. An existing file at the path is replaced only when it is
 * a socket no collector listens on: -EADDRINUSE when one does, -ENOTSOCK or
 * -EISDIR when it is not a socket at all, -ENAMETOOLONG when the temporary
 * name does not fit. NULL with errno set on failure.
 */
struct tm_export *tm_export_open(const struct tm_export_opts *o, int epfd);
/* Take clients from now on: listen, then move the socket to its path (at
 * once, never over another's), once the programs count, so that a client
 * that finds the path finds counting started. -EADDRINUSE: another
 * collector took the path meanwhile. */
int tm_export_start(struct tm_export *e);
/* A reload: queue limits, mode and group of the socket (path stays). */
int tm_export_configure(struct tm_export *e, const struct tm_export_opts *o);
/* Once per interval: log refused connections, resume accepting. */
void tm_export_tick(struct tm_export *e);
/* Accept every pending connection. Over max_subscribers, or with no file
 * descriptor left (a spare one kept for this makes room), a connection is
 * accepted and closed at once: refused, counted, never left pending. */
void tm_export_accept(struct tm_export *e);
/* A subscriber's fd is ready (events from epoll). */
void tm_export_ready(struct tm_export *e, struct tm_watch *w, uint32_t events);
/* Queue one frame, sent as n messages (parts), to every subscriber: each
 * gets all of them or, if its queue has no room, none (and counts one
 * frame dropped). The caller keeps its references. */
int tm_export_publish(struct tm_export *e, struct tm_buf *const *parts, size_t n);
unsigned int tm_export_subscribers(const struct tm_export *e);
uint64_t tm_export_dropped(const struct tm_export *e);
/* Connections refused so far (fd limit, max_subscribers). */
uint64_t tm_export_refused(const struct tm_export *e);
/* Close every connection, unlink the socket (if it is still ours). */
void tm_export_close(struct tm_export *e);

#endif /* TM_EXPORT_H */
