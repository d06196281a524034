/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * XDP and TC on the selected interfaces of the watched network namespaces,
 * following link events; and the kernel's own counters of those interfaces.
 */
#ifndef TM_IFACES_H
#define TM_IFACES_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "watch.h"
#include "netlink.h"

struct tm_bpf;
struct tm_ifaces;

struct tm_iface_info {
	uint64_t netns;          /* network namespace inode */
	int ifindex;
	const char *name;
	const char *xdp;         /* "native", "skb", "off" */
	const char *tc;          /* "tcx", "clsact", "off" */
	struct tm_link_stats stats;
};

typedef void (*tm_iface_cb)(void *ctx, const struct tm_iface_info *info);

/*
 * Can every configured network namespace be opened, and is it one? Says
 * which is not (with its config line) and returns -errno; called before
 * anything is loaded, so that a missing netns is a config error.
 */
int tm_ifaces_check(const struct tm_config *c);
/* Load the TC programs, open the namespaces (rtnetlink, watched on epfd),
 * attach to every selected interface there now. NULL with errno set on
 * failure (ENOENT, ENOTDIR: a configured netns is not there). */
struct tm_ifaces *tm_ifaces_open(const struct tm_config *c, struct tm_bpf *b, int epfd);
/* A namespace's link events are readable (w: TM_WATCH_NETLINK). */
void tm_ifaces_ready(struct tm_ifaces *s, struct tm_watch *w);
/* Each attached interface with its kernel counters, read now. */
int tm_ifaces_each(struct tm_ifaces *s, tm_iface_cb cb, void *ctx);
/* Bytes per frame the device's counter for direction dir (enum tm_dir)
 * leaves out, though XDP and TC saw them: 14 on a veth pair whose receiving
 * end runs native XDP (its queue counts from the network header); else 0. */
unsigned int tm_ifaces_l2_less(struct tm_ifaces *s, uint64_t netns, int ifindex, int dir);

/* Detach everything we attached, remove what we created; keep: leave the
 * pinned links attached for the next collector. */
void tm_ifaces_close(struct tm_ifaces *s, bool keep);

#endif /* TM_IFACES_H */
