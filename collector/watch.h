/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The daemon's one poll loop: epoll_event.data.ptr of every fd it polls
 * points at a struct tm_watch, first member of whatever owns the fd, so
 * that dispatch knows what became ready.
 */
#ifndef TM_WATCH_H
#define TM_WATCH_H

enum tm_watch_kind {
	TM_WATCH_RINGBUF = 1,
	TM_WATCH_TIMER,
	TM_WATCH_LISTENER,
	TM_WATCH_SUBSCRIBER,
	TM_WATCH_NETLINK,
	TM_WATCH_SIGNAL,
};

struct tm_watch {
	enum tm_watch_kind kind;
	int fd;
};

#endif /* TM_WATCH_H */
