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

/* epoll_event.data.ptr of every fd the daemon polls points at one of these. */
enum tm_watch_kind {
	TM_WATCH_RINGBUF = 1,
	TM_WATCH_TIMER,
	TM_WATCH_LISTENER,
	TM_WATCH_SUBSCRIBER,
	TM_WATCH_NETLINK,
};

struct tm_watch {
	enum tm_watch_kind kind;
	int fd;
};

struct tm_export;

/* Bind path (creating its directory), chmod mode, listen, watch on epfd.
 * Refuses to replace a socket another collector still listens on. */
struct tm_export *tm_export_open(const char *path, unsigned int mode, unsigned int queue_max,
				 int epfd, int *err);
/* Accept every pending connection. */
void tm_export_accept(struct tm_export *e);
/* A subscriber's fd is ready (events from epoll). */
void tm_export_ready(struct tm_export *e, struct tm_watch *w, uint32_t events);
/* Queue one packed Frame (no length prefix) to every subscriber. */
int tm_export_publish(struct tm_export *e, const uint8_t *body, size_t len);
unsigned int tm_export_subscribers(const struct tm_export *e);
uint64_t tm_export_dropped(const struct tm_export *e);
/* Close every connection, unlink the socket. */
void tm_export_close(struct tm_export *e);

#endif /* TM_EXPORT_H */
