/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one netlink transport, after iproute2's lib/mnl_utils.c: a libmnl
 * socket created inside a network namespace (and bound to it for good),
 * requests built in its own buffer, and the receive loop that feeds the
 * replies to a callback until the ACK or NLMSG_DONE, keeping the kernel's
 * extended ACK message for the logs. rtnetlink (netlink.c, clsact.c) and
 * sock_diag (sockdiag.c) all talk through it.
 *
 * A struct tm_nlsock is not thread-safe: one thread uses it at a time.
 */
#ifndef TM_NLSOCK_H
#define TM_NLSOCK_H

#include <stdint.h>

#include <libmnl/libmnl.h>

/*
 * The kernel builds dump skbs of up to 32 KiB when the reader offers that
 * much; a smaller buffer makes recvmsg() truncate them (libmnl: ENOSPC).
 */
#define TM_NLSOCK_BUF_SIZE 32768
#define TM_NLSOCK_REQ_SIZE 1024

struct tm_nlsock {
	struct mnl_socket *s;       /* NULL: not open */
	uint32_t portid;
	uint32_t seq;
	char extack[128];           /* the kernel's message for the last failed request */
	char *buf;                  /* TM_NLSOCK_BUF_SIZE bytes, for what is received */
	char req[TM_NLSOCK_REQ_SIZE] __attribute__((aligned(8)));
};

/*
 * Opens a socket of bus (NETLINK_ROUTE, NETLINK_SOCK_DIAG) inside netns_fd
 * (-1: the calling thread's netns) and binds it; flags: SOCK_NONBLOCK or 0
 * (SOCK_CLOEXEC always). Extended ACKs are asked for where the kernel has
 * them. 0 or -errno; -ENOTRECOVERABLE if the thread could not come back to
 * its own netns. s is closed (tm_nlsock_close is a no-op) after a failure.
 */
int tm_nlsock_open(struct tm_nlsock *s, int bus, int netns_fd, int flags);
void tm_nlsock_close(struct tm_nlsock *s);

static inline int tm_nlsock_fd(const struct tm_nlsock *s)
{
	return mnl_socket_get_fd(s->s);
}

/* A request of that type in s->req: NLM_F_REQUEST | flags, seq set when sent. */
struct nlmsghdr *tm_nlsock_msg(struct tm_nlsock *s, uint16_t type, uint16_t flags);

/*
 * Sends nlh, feeds every data message of the reply to cb (may be NULL)
 * until the ACK or NLMSG_DONE. Returns 0, the kernel's -errno (its message
 * in s->extack), -EAGAIN for a dump the kernel flags as interrupted
 * (NLM_F_DUMP_INTR: redo it), or the -errno of a socket call. After a
 * failure, the replies still queued are dropped: they would otherwise be
 * taken for the answer to the next request.
 */
int tm_nlsock_talk(struct tm_nlsock *s, struct nlmsghdr *nlh, mnl_cb_t cb, void *arg);

/*
 * tm_nlsock_talk for a dump, redone while the kernel says it was
 * inconsistent (up to a few times, then -EAGAIN); restart(arg), if not
 * NULL, runs before every try to forget what the last one collected.
 */
int tm_nlsock_dump(struct tm_nlsock *s, struct nlmsghdr *nlh, mnl_cb_t cb, void *arg,
		   void (*restart)(void *arg));

/* Reads whatever is queued without blocking; returns how many messages. */
unsigned int tm_nlsock_drain(struct tm_nlsock *s);

/*
 * Runs fn(arg) with the calling thread inside netns_fd (-1: where it is),
 * then brings it back. Returns what fn returned, -errno if the netns could
 * not be entered, -ENOTRECOVERABLE if the thread could not come back.
 */
int tm_nlsock_netns_run(int netns_fd, int (*fn)(void *arg), void *arg);

#endif /* TM_NLSOCK_H */
