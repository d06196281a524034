// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The interface layer: XDP and TC programs on every selected interface of
 * the watched network namespaces, attached as interfaces appear (rtnetlink
 * link events) and detached as they go. Only what we created is removed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/ethtool.h>
#include <linux/nsfs.h>
#include <linux/sockios.h>
#include <linux/types.h>
#include <xdp/libxdp.h>

#include "bpfload.h"
#include "ifattach.h"
#include "ifaces.h"
#include "log.h"
#include "netlink.h"
#include "taskmeter.h"
#include "taskmeter.skel.h"

struct tm_netns {
	struct tm_watch w;         /* first: epoll data points here */
	struct tm_netns *next;
	struct tm_ifaces *s;
	char name[TM_LIST_ITEM_MAX];
	int fd;                    /* -1: our own */
	int ref_fd;                /* an fd of it in any case, for RTM_GETNSID */
	uint64_t ino;
	struct tm_nl *nl;
};

struct tm_iface {
	struct tm_iface *next;
	struct tm_netns *ns;
	int ifindex;
	char name[IFNAMSIZ];
	char kind[16];
	int link_ifindex, link_netnsid; /* the veth peer (see struct tm_link) */
	struct tm_ifattach at;
	bool gro, tso;             /* its offloads (ethtool), as of its last link event */
	bool gone;                 /* the device left its namespace */
};

struct tm_ifaces {
	const struct tm_config *cfg;
	struct tm_bpf *bpf;
	struct tm_attacher *at;
	struct tm_netns *nss;
	struct tm_iface *ifs;
	int epfd;
	bool keep;                 /* closing: leave the pinned links counting */
};

/* ---- which interfaces ---- */

static bool selected(const struct tm_config *c, const struct tm_link *l)
{
	for (unsigned int i = 0; i < c->n_ifaces; i++) {
		const char *pat = c->ifaces[i];

		/* loopback only by its exact name, never by a glob */
		if ((l->flags & IFF_LOOPBACK) ? !strcmp(pat, l->name)
					      : !fnmatch(pat, l->name, 0))
			return true;
	}
	return false;
}

/* Attached somewhere, or detached: the hooks' caches of "no TC program of
 * ours on this interface" are stale (TM_SLOT_IFACES's generation). */
static void ifaces_changed(struct tm_ifaces *s)
{
	int fd = bpf_map__fd(s->bpf->skel->maps.tm_class_gen);
	__u32 slot = TM_SLOT_IFACES, gen = 0;

	if (!bpf_map_lookup_elem(fd, &slot, &gen)) {
		gen++;
		bpf_map_update_elem(fd, &slot, &gen, BPF_ANY);
	}
}

static void iface_flags(struct tm_ifaces *s, struct tm_iface *i)
{
	struct tm_iface_key k = { .netns = (__u32)i->ns->ino, .ifindex = (__u32)i->ifindex };
	struct tm_iface_val v = { 0 };
	int fd = bpf_map__fd(s->bpf->skel->maps.tm_ifaces);

	if (i->at.xdp_mode != XDP_MODE_UNSPEC)
		v.flags |= TM_IFACE_XDP_RX;
	if (!i->kind[0]) /* hardware: drivers count wire segments, not skbs */
		v.flags |= TM_IFACE_COUNT_SEGS;
	if (i->at.clsact_created)
		v.flags |= TM_IFACE_CLSACT_OURS;
	if (!strcmp(i->kind, "veth"))
		v.flags |= TM_IFACE_NAPI_L3;
	if (bpf_map_update_elem(fd, &k, &v, BPF_ANY))
		tm_warn("%s: interface map: %s\n", i->name, strerror(errno));
	ifaces_changed(s);
}

/* One legacy ethtool flag of the interface, read in its namespace; false
 * when it cannot be read. */
static bool ethtool_flag(int fd, const char *name, __u32 cmd)
{
	struct ethtool_value v = { .cmd = cmd };
	struct ifreq ifr = { 0 };

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_data = (void *)&v;
	return !ioctl(fd, SIOCETHTOOL, &ifr) && v.data;
}

/* Runs inside the interface's namespace (a socket's ioctls are its netns's). */
static int read_offloads(void *p)
{
	struct tm_iface *i = p;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	i->gro = ethtool_flag(fd, i->name, ETHTOOL_GGRO);
	i->tso = ethtool_flag(fd, i->name, ETHTOOL_GTSO);
	close(fd);
	return 0;
}

/* ---- one interface ---- */

struct attach_arg {
	struct tm_ifaces *s;
	struct tm_iface *i;
	const struct tm_link *l;
};

/* Runs inside the interface's network namespace: ifindexes are per netns. */
static int attach_in_ns(void *p)
{
	struct attach_arg *a = p;

	tm_attacher_attach(a->s->at, &a->i->at, a->l, a->i->ns->ino, a->i->kind, a->i->ns->nl);
	return 0;
}

static int detach_in_ns(void *p)
{
	struct attach_arg *a = p;

	tm_attacher_detach(a->s->at, &a->i->at, a->i->ns->nl, a->i->ifindex, a->s->keep, a->i->gone);
	return 0;
}

static void iface_add(struct tm_ifaces *s, struct tm_netns *ns, const struct tm_link *l)
{
	struct tm_iface *i = calloc(1, sizeof(*i));
	struct attach_arg a = { s, i, l };

	if (!i) {
		tm_err("%s: out of memory\n", l->name);
		return;
	}
	i->ns = ns;
	i->ifindex = l->ifindex;
	snprintf(i->name, sizeof(i->name), "%s", l->name);
	snprintf(i->kind, sizeof(i->kind), "%s", l->kind);
	i->link_ifindex = l->link_ifindex;
	i->link_netnsid = l->link_netnsid;
	tm_nlsock_netns_run(ns->fd, attach_in_ns, &a);
	tm_nlsock_netns_run(ns->fd, read_offloads, i);
	iface_flags(s, i);
	i->next = s->ifs;
	s->ifs = i;
	tm_info("%s%s%s (ifindex %d): XDP %s%s, TC %s\n", ns->fd >= 0 ? ns->name : "",
		ns->fd >= 0 ? "/" : "", i->name, i->ifindex, tm_ifattach_xdp_mode(i->at.xdp_mode),
		i->at.xdp_mode == XDP_MODE_UNSPEC ? "" : i->at.xdp_dispatcher
							? " (libxdp dispatcher)"
							: " (alone, link)",
		tm_ifattach_tc_mode(&i->at));
}

static void iface_remove(struct tm_ifaces *s, struct tm_iface **pp)
{
	struct tm_iface *i = *pp;
	struct tm_iface_key k = { .netns = (__u32)i->ns->ino, .ifindex = (__u32)i->ifindex };
	struct attach_arg a = { s, i, NULL };

	tm_nlsock_netns_run(i->ns->fd, detach_in_ns, &a);
	if (!s->keep) {
		bpf_map_delete_elem(bpf_map__fd(s->bpf->skel->maps.tm_ifaces), &k);
		ifaces_changed(s);
	}
	*pp = i->next;
	free(i);
}

static struct tm_iface **iface_find(struct tm_ifaces *s, struct tm_netns *ns, int ifindex)
{
	struct tm_iface **pp = &s->ifs;

	while (*pp && ((*pp)->ns != ns || (*pp)->ifindex != ifindex))
		pp = &(*pp)->next;
	return pp;
}

static void on_link(void *ctx, enum tm_link_event ev, const struct tm_link *l)
{
	struct tm_netns *ns = ctx;
	struct tm_iface **pp = iface_find(ns->s, ns, l->ifindex);

	if (ev == TM_LINK_DEL) {
		if (*pp) {
			(*pp)->gone = true;
			tm_info("%s (ifindex %d) went away\n", (*pp)->name, l->ifindex);
			iface_remove(ns->s, pp);
		}
		return;
	}
	if (*pp) {
		/* renamed, or a veth whose peer appeared since */
		if (strcmp((*pp)->name, l->name))
			tm_info("%s (ifindex %d) is now called %s\n", (*pp)->name, l->ifindex,
				l->name);
		snprintf((*pp)->name, sizeof((*pp)->name), "%s", l->name);
		(*pp)->link_ifindex = l->link_ifindex;
		(*pp)->link_netnsid = l->link_netnsid;
		/* an offload changed (ethtool -K): NETDEV_FEAT_CHANGE is a link event */
		tm_nlsock_netns_run(ns->fd, read_offloads, *pp);
		return;
	}
	if (selected(ns->s->cfg, l))
		iface_add(ns->s, ns, l);
}

/* After lost events: drop what is gone, attach what is new. */
struct resync {
	struct tm_netns *ns;
	int seen[4096];
	int n;
};

static void on_resync_link(void *ctx, enum tm_link_event ev, const struct tm_link *l)
{
	struct resync *r = ctx;

	if (r->n < 4096)
		r->seen[r->n++] = l->ifindex;
	on_link(r->ns, ev, l);
}

static int resync(struct tm_netns *ns)
{
	struct resync *r = calloc(1, sizeof(*r));
	int err;

	if (!r)
		return -ENOMEM;
	r->ns = ns;
	err = tm_nl_dump_links(ns->nl, on_resync_link, r);
	for (struct tm_iface **pp = &ns->s->ifs; !err && *pp;) {
		bool alive = (*pp)->ns != ns || r->n >= 4096;

		for (int k = 0; !alive && k < r->n; k++)
			alive = r->seen[k] == (*pp)->ifindex;
		if (alive) {
			pp = &(*pp)->next;
			continue;
		}
		(*pp)->gone = true;
		iface_remove(ns->s, pp);
	}
	free(r);
	return err;
}

void tm_ifaces_ready(struct tm_ifaces *s, struct tm_watch *w)
{
	struct tm_netns *ns = (struct tm_netns *)w;
	int err;

	(void)s;
	err = tm_nl_read_events(ns->nl, on_link, ns);
	if (err == -ENOBUFS) {
		tm_warn("%s: link events lost (netlink ENOBUFS): resynchronising\n", ns->name);
		err = resync(ns);
	}
	if (err)
		tm_warn("%s: link events: %s\n", ns->name, strerror(-err));
}

/* ---- namespaces ---- */

static void netns_free(struct tm_netns *ns)
{
	if (ns->nl)
		tm_nl_close(ns->nl);
	if (ns->ref_fd >= 0 && ns->ref_fd != ns->fd)
		close(ns->ref_fd);
	if (ns->fd >= 0)
		close(ns->fd);
	free(ns);
}

static void netns_path(const char *name, char *path, size_t len)
{
	snprintf(path, len, name[0] == '/' ? "%s" : "/run/netns/%s", name);
}

int tm_ifaces_check(const struct tm_config *c)
{
	char path[PATH_MAX], where[128];
	int fd, err = 0;

	for (unsigned int k = 0; !err && k < c->n_netns; k++) {
		netns_path(c->netns[k], path, sizeof(path));
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
		if (fd < 0) {
			err = -errno;
			tm_err("%s: %s: %s\n", tm_config_where(c, "netns", where, sizeof(where)),
			       path, strerror(-err));
		} else if (ioctl(fd, NS_GET_NSTYPE) != CLONE_NEWNET) {
			err = -EINVAL;
			tm_err("%s: %s: not a network namespace\n",
			       tm_config_where(c, "netns", where, sizeof(where)), path);
		}
		if (fd >= 0)
			close(fd);
	}
	return err;
}

static int netns_open(struct tm_ifaces *s, const char *name)
{
	struct tm_netns *ns = calloc(1, sizeof(*ns));
	struct epoll_event ev = { .events = EPOLLIN };
	char path[PATH_MAX];
	struct stat st;
	int err;

	if (!ns)
		return -ENOMEM;
	ns->s = s;
	ns->fd = ns->ref_fd = -1;
	snprintf(ns->name, sizeof(ns->name), "%s", name ? name : "(own)");
	if (name) {
		netns_path(name, path, sizeof(path));
		ns->fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if ((name && ns->fd < 0) ||
	    stat(name ? path : "/proc/thread-self/ns/net", &st)) {
		err = -errno;
		tm_err("network namespace %s: %s\n", name ? path : "(own)", strerror(-err));
		goto fail;
	}
	ns->ino = st.st_ino;
	ns->ref_fd = name ? ns->fd : open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	ns->nl = tm_nl_open(ns->fd, true);
	if (!ns->nl) {
		err = -errno;
		tm_err("%s: rtnetlink: %s\n", ns->name, strerror(-err));
		goto fail;
	}
	ns->w.kind = TM_WATCH_NETLINK;
	ns->w.fd = tm_nl_event_fd(ns->nl);
	ev.data.ptr = &ns->w;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, ns->w.fd, &ev)) {
		err = -errno;
		goto fail;
	}
	ns->next = s->nss;
	s->nss = ns;
	return tm_nl_dump_links(ns->nl, on_link, ns);
fail:
	netns_free(ns);
	return err;
}

struct tm_ifaces *tm_ifaces_open(const struct tm_config *c, struct tm_bpf *b, int epfd)
{
	struct tm_ifaces *s = calloc(1, sizeof(*s));
	int err = 0;

	if (!s)
		return NULL;
	s->cfg = c;
	s->bpf = b;
	s->epfd = epfd;
	s->at = tm_attacher_new(c, b);
	if (!s->at)
		err = -errno;
	if (!err && !c->n_netns)
		err = netns_open(s, NULL);
	for (unsigned int k = 0; !err && k < c->n_netns; k++)
		err = netns_open(s, c->netns[k]);
	if (err) {
		tm_ifaces_close(s, false);
		errno = -err;
		return NULL;
	}
	tm_attacher_sweep(s->at); /* what the last collector left on interfaces gone since */
	return s;
}

void tm_ifaces_close(struct tm_ifaces *s, bool keep)
{
	struct tm_netns *ns, *next;

	if (!s)
		return;
	s->keep = keep;
	while (s->ifs)
		iface_remove(s, &s->ifs);
	for (ns = s->nss; ns; ns = next) {
		next = ns->next;
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, ns->w.fd, NULL);
		netns_free(ns);
	}
	tm_attacher_free(s->at);
	free(s);
}

/* ---- kernel counters, for reconciliation ---- */

struct stats_ctx {
	struct tm_ifaces *s;
	struct tm_netns *ns;
	tm_iface_cb cb;
	void *ctx;
};

static void on_stats(void *p, int ifindex, const struct tm_link_stats *st)
{
	struct stats_ctx *x = p;
	struct tm_iface *i = *iface_find(x->s, x->ns, ifindex);
	struct tm_iface_info info;

	if (!i)
		return;
	info.netns = x->ns->ino;
	info.ifindex = ifindex;
	info.name = i->name;
	info.xdp = tm_ifattach_xdp_mode(i->at.xdp_mode);
	info.tc = tm_ifattach_tc_mode(&i->at);
	info.stats = *st;
	x->cb(x->ctx, &info);
}

static struct tm_iface *iface_by(struct tm_ifaces *s, uint64_t netns, int ifindex)
{
	for (struct tm_iface *i = s ? s->ifs : NULL; i; i = i->next)
		if (i->ns->ino == netns && i->ifindex == ifindex)
			return i;
	return NULL;
}

/* The other end of a veth, if we manage it too. */
static struct tm_iface *veth_peer(struct tm_ifaces *s, const struct tm_iface *i)
{
	struct tm_netns *peer_ns = i->link_netnsid < 0 ? i->ns : NULL;

	for (struct tm_netns *ns = s->nss; ns && !peer_ns; ns = ns->next)
		if (ns != i->ns && tm_nl_nsid(i->ns->nl, ns->ref_fd) == i->link_netnsid)
			peer_ns = ns;
	return peer_ns ? iface_by(s, peer_ns->ino, i->link_ifindex) : NULL;
}

/*
 * A veth's counters come from the receiving end's NAPI queue when that end
 * runs native XDP, or has GRO on and the sending end no TSO (veth.c's
 * veth_skb_is_eligible_for_gro(); with TSO on only skbs a datagram socket
 * owns (sock_wfree) go there, and only with rx-gro-list or
 * rx-udp-gro-forwarding on: not told apart here, their tx is 14 B over). That queue counts from the network header: the frame's rx
 * on that end and its tx on the peer are 14 bytes short of what XDP and TC
 * saw. (TC ingress sees whether an skb came through the queue and counts
 * it so itself: tc.bpf.c, tm_napi_amount.)
 */
unsigned int tm_ifaces_l2_less(struct tm_ifaces *s, uint64_t netns, int ifindex, int dir)
{
	struct tm_iface *i = iface_by(s, netns, ifindex), *rx_end, *tx_end;

	if (!i || strcmp(i->kind, "veth"))
		return 0;
	rx_end = dir == TM_DIR_INGRESS ? i : veth_peer(s, i);
	tx_end = dir == TM_DIR_INGRESS ? veth_peer(s, i) : i;
	if (!rx_end)
		return 0;
	if (rx_end->at.xdp_mode == XDP_MODE_NATIVE)
		return 14;
	return rx_end->gro && tx_end && !tx_end->tso ? 14 : 0;
}

int tm_ifaces_each(struct tm_ifaces *s, tm_iface_cb cb, void *ctx)
{
	int err = 0;

	for (struct tm_netns *ns = s ? s->nss : NULL; ns && !err; ns = ns->next) {
		struct stats_ctx x = { s, ns, cb, ctx };

		err = tm_nl_dump_stats(ns->nl, on_stats, &x);
	}
	return err;
}
