/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * rtnetlink, per network namespace: the links of a netns and their
 * add/remove events (to attach to new interfaces), their IFLA_STATS64
 * counters (the ground truth accounting is reconciled against) and network
 * namespace ids. The transport is nlsock.h's; the legacy TC attach path
 * (clsact.h) uses the same socket.
 *
 * A struct tm_nl is not thread-safe: one thread uses it at a time.
 */
#ifndef TM_NETLINK_H
#define TM_NETLINK_H

#include <stdbool.h>
#include <stdint.h>

#include <net/if.h> /* IFNAMSIZ */

#include "nlsock.h"

struct tm_link {
	int ifindex;
	char name[IFNAMSIZ];
	unsigned int flags; /* IFF_* */
	char kind[16];      /* IFLA_INFO_KIND ("veth", "bridge", ...), "" for none */
	int link_ifindex;   /* IFLA_LINK: a veth's peer, ... (0: none) */
	int link_netnsid;   /* IFLA_LINK_NETNSID: the peer's netns, as this netns
			     * numbers it; -1: the same netns */
	uint32_t xdp_prog_id; /* IFLA_XDP_PROG_ID: the XDP program attached, 0 none */
};

/* From IFLA_STATS64; for lo every packet counts once as tx and once as rx. */
struct tm_link_stats {
	uint64_t rx_packets, tx_packets, rx_bytes, tx_bytes, rx_dropped, tx_dropped;
};

enum tm_link_event { TM_LINK_NEW = 1, TM_LINK_DEL = 2 };

/*
 * TM_LINK_NEW is an upsert: the kernel sends RTM_NEWLINK for every change of
 * a link (flags, name, master), not only for its creation.
 */
typedef void (*tm_link_cb)(void *ctx, enum tm_link_event ev, const struct tm_link *l);
typedef void (*tm_stats_cb)(void *ctx, int ifindex, const struct tm_link_stats *st);

/* rtnetlink sockets bound to one network namespace. */
struct tm_nl;

/*
 * netns_fd: an fd of /proc/<pid>/ns/net or /run/netns/NAME, or -1 for the
 * calling thread's netns. The sockets are created inside that netns (the
 * calling thread enters it for a moment) and stay bound to it.
 * subscribe: also open a non-blocking socket subscribed to RTNLGRP_LINK.
 * NULL with errno set on failure; ENOTRECOVERABLE if the thread could not
 * return to its own netns.
 */
struct tm_nl *tm_nl_open(int netns_fd, bool subscribe);
void tm_nl_close(struct tm_nl *nl);

/* The event socket, for poll/epoll (level-triggered); -1 if not subscribed. */
int tm_nl_event_fd(const struct tm_nl *nl);

/*
 * Receive buffer of the event socket in bytes (the kernel doubles it for its
 * bookkeeping). Beyond net.core.rmem_max it needs CAP_NET_ADMIN. -EINVAL if
 * not subscribed.
 */
int tm_nl_set_rcvbuf(struct tm_nl *nl, int bytes);

/*
 * Every link of the netns, cb(TM_LINK_NEW) once per link. cb only sees a
 * consistent snapshot: a dump the kernel flags as interrupted (links changed
 * during it) is retried; -EAGAIN if that keeps happening.
 */
int tm_nl_dump_links(struct tm_nl *nl, tm_link_cb cb, void *ctx);

/*
 * Drains pending link events without blocking: cb(TM_LINK_NEW) for
 * RTM_NEWLINK, cb(TM_LINK_DEL) for RTM_DELLINK. Returns 0 once the queue is
 * empty (or after a batch: the fd is then still readable). -ENOBUFS when the
 * kernel dropped events because the socket overran: the events still queued
 * are older than the lost ones and are discarded, and the caller must resync
 * with tm_nl_dump_links and reconcile. -EINVAL if not subscribed, other
 * errors -errno.
 */
int tm_nl_read_events(struct tm_nl *nl, tm_link_cb cb, void *ctx);

/* IFLA_STATS64 of one link: -ENODEV if there is no such ifindex. */
int tm_nl_link_stats(struct tm_nl *nl, int ifindex, struct tm_link_stats *st);

/* Stats of every link in one dump (cheaper than one request per link): cb per link. */
int tm_nl_dump_stats(struct tm_nl *nl, tm_stats_cb cb, void *ctx);

/* The request socket, bound to this netns: for clsact.h. */
struct tm_nlsock *tm_nl_sock(struct tm_nl *nl);

/*
 * The id this netns gives to the netns of other_fd (RTM_GETNSID), as used
 * in IFLA_LINK_NETNSID; -ENOENT if it has none.
 */
int tm_nl_nsid(struct tm_nl *nl, int other_fd);

#endif /* TM_NETLINK_H */
