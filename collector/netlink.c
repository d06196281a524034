// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * rtnetlink links, their counters and events (see netlink.h): one blocking
 * socket for request/reply exchanges and dumps, one non-blocking socket
 * subscribed to RTNLGRP_LINK for events, both tm_nlsock transports created
 * inside the target network namespace.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/net_namespace.h>
#include <linux/rtnetlink.h>

#include "log.h"
#include "netlink.h"
#include "util.h"

/* Room for a few hundred link events between two reads. */
#define EVENT_RCVBUF (1 << 20)
/* Messages per tm_nl_read_events() call, so an event storm cannot starve the loop. */
#define EVENT_BATCH 4096
/* rx/tx packets, bytes, errors, dropped: what every kernel's rtnl_link_stats64 starts with. */
#define STATS64_MIN (8 * sizeof(uint64_t))

struct tm_nl {
	struct tm_nlsock req;
	struct tm_nlsock ev;   /* ev.s NULL unless subscribed */
};

struct stats_ent {
	int ifindex;
	struct tm_link_stats st;
};

/* A dump into a struct tm_vec starts again from empty. */
static void vec_restart(void *v)
{
	((struct tm_vec *)v)->len = 0;
}

static int link_attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	uint16_t type = mnl_attr_get_type(attr);
	int err = 0;

	/* Attributes newer than our headers: not ours to read. */
	if (mnl_attr_type_valid(attr, IFLA_MAX) < 0)
		return MNL_CB_OK;
	if (type == IFLA_IFNAME)
		err = mnl_attr_validate(attr, MNL_TYPE_NUL_STRING);
	else if (type == IFLA_LINK || type == IFLA_LINK_NETNSID)
		err = mnl_attr_validate(attr, MNL_TYPE_U32);
	else if (type == IFLA_LINKINFO || type == IFLA_XDP)
		err = mnl_attr_validate(attr, MNL_TYPE_NESTED);
	if (err)
		return MNL_CB_ERROR;
	if (type == IFLA_STATS64 && mnl_attr_get_payload_len(attr) < STATS64_MIN) {
		errno = EBADMSG;
		return MNL_CB_ERROR;
	}
	tb[type] = attr;
	return MNL_CB_OK;
}

static int info_attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;

	if (mnl_attr_type_valid(attr, IFLA_INFO_MAX) < 0)
		return MNL_CB_OK;
	if (mnl_attr_get_type(attr) == IFLA_INFO_KIND &&
	    mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) < 0)
		return MNL_CB_ERROR;
	tb[mnl_attr_get_type(attr)] = attr;
	return MNL_CB_OK;
}

static int link_kind(const struct nlattr *linkinfo, char *kind, size_t size)
{
	const struct nlattr *tb[IFLA_INFO_MAX + 1] = { 0 };

	kind[0] = '\0';
	if (!linkinfo)
		return 0;
	if (mnl_attr_parse_nested(linkinfo, info_attr_cb, tb) != MNL_CB_OK)
		return -EBADMSG;
	if (tb[IFLA_INFO_KIND])
		snprintf(kind, size, "%s", mnl_attr_get_str(tb[IFLA_INFO_KIND]));
	return 0;
}

static int xdp_attr_cb(const struct nlattr *attr, void *data)
{
	uint32_t *id = data;

	if (mnl_attr_get_type(attr) == IFLA_XDP_PROG_ID &&
	    mnl_attr_validate(attr, MNL_TYPE_U32) == 0)
		*id = mnl_attr_get_u32(attr);
	return MNL_CB_OK;
}

/* The ifinfomsg of an AF_UNSPEC link message, or NULL. */
static const struct ifinfomsg *link_msg(const struct nlmsghdr *nlh)
{
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);

	if (nlh->nlmsg_type != RTM_NEWLINK && nlh->nlmsg_type != RTM_DELLINK)
		return NULL;
	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifi))
		return NULL;
	/*
	 * A bridge reports its ports' state as AF_BRIDGE link messages on the
	 * same group; an RTM_DELLINK of those means "left the bridge".
	 */
	return ifi->ifi_family == AF_UNSPEC ? ifi : NULL;
}

/* st may be NULL; -ENODATA if st is wanted and the message has no IFLA_STATS64. */
static int parse_link(const struct nlmsghdr *nlh, struct tm_link *l, struct tm_link_stats *st)
{
	const struct ifinfomsg *ifi = link_msg(nlh);
	const struct nlattr *tb[IFLA_MAX + 1] = { 0 };
	struct rtnl_link_stats64 s = { 0 };
	size_t len;

	if (!ifi || mnl_attr_parse(nlh, sizeof(*ifi), link_attr_cb, tb) != MNL_CB_OK)
		return -EBADMSG;
	*l = (struct tm_link){ .ifindex = ifi->ifi_index, .flags = ifi->ifi_flags,
			       .link_netnsid = -1 };
	if (tb[IFLA_LINK])
		l->link_ifindex = (int)mnl_attr_get_u32(tb[IFLA_LINK]);
	if (tb[IFLA_LINK_NETNSID])
		l->link_netnsid = (int)mnl_attr_get_u32(tb[IFLA_LINK_NETNSID]);
	if (tb[IFLA_IFNAME])
		snprintf(l->name, sizeof(l->name), "%s", mnl_attr_get_str(tb[IFLA_IFNAME]));
	if (link_kind(tb[IFLA_LINKINFO], l->kind, sizeof(l->kind)))
		return -EBADMSG;
	if (tb[IFLA_XDP] && mnl_attr_parse_nested(tb[IFLA_XDP], xdp_attr_cb, &l->xdp_prog_id) !=
			     MNL_CB_OK)
		return -EBADMSG;
	if (!st)
		return 0;
	if (!tb[IFLA_STATS64])
		return -ENODATA;
	/* Older kernels send a shorter struct; 4-byte aligned only, hence the copy. */
	len = mnl_attr_get_payload_len(tb[IFLA_STATS64]);
	memcpy(&s, mnl_attr_get_payload(tb[IFLA_STATS64]), len < sizeof(s) ? len : sizeof(s));
	*st = (struct tm_link_stats){
		.rx_packets = s.rx_packets, .tx_packets = s.tx_packets,
		.rx_bytes = s.rx_bytes, .tx_bytes = s.tx_bytes,
		.rx_dropped = s.rx_dropped, .tx_dropped = s.tx_dropped,
	};
	return 0;
}

static void skip_msg(const struct nlmsghdr *nlh, int err)
{
	tm_warn("rtnetlink: skipping link message (type %u, %u bytes): %s\n", nlh->nlmsg_type,
		nlh->nlmsg_len, strerror(-err));
}

static struct nlmsghdr *link_req(struct tm_nl *nl, uint16_t flags, int ifindex, uint32_t ext)
{
	struct nlmsghdr *nlh = tm_nlsock_msg(&nl->req, RTM_GETLINK, flags);
	struct ifinfomsg *ifi;

	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	if (ext)
		mnl_attr_put_u32(nlh, IFLA_EXT_MASK, ext);
	return nlh;
}

static int collect_link(const struct nlmsghdr *nlh, void *data)
{
	struct tm_link l, *slot;
	int err = parse_link(nlh, &l, NULL);

	if (err) {
		skip_msg(nlh, err);
		return MNL_CB_OK;
	}
	slot = tm_vec_push(data, sizeof(*slot));
	if (!slot)
		return MNL_CB_ERROR; /* errno = ENOMEM */
	*slot = l;
	return MNL_CB_OK;
}

int tm_nl_dump_links(struct tm_nl *nl, tm_link_cb cb, void *ctx)
{
	struct tm_vec v = { 0 };
	struct nlmsghdr *nlh;
	int err;

	/* Counters are not needed here: smaller messages, fewer skbs. */
	nlh = link_req(nl, NLM_F_DUMP, 0, RTEXT_FILTER_SKIP_STATS);
	err = tm_nlsock_dump(&nl->req, nlh, collect_link, &v, vec_restart);
	for (size_t i = 0; !err && i < v.len; i++)
		cb(ctx, TM_LINK_NEW, (struct tm_link *)v.data + i);
	tm_vec_free(&v);
	if (err)
		tm_warn("rtnetlink: link dump failed: %s\n", strerror(-err));
	return err;
}

static int collect_stats(const struct nlmsghdr *nlh, void *data)
{
	struct stats_ent e, *slot;
	struct tm_link l;
	int err = parse_link(nlh, &l, &e.st);

	if (err) {
		skip_msg(nlh, err);
		return MNL_CB_OK;
	}
	e.ifindex = l.ifindex;
	slot = tm_vec_push(data, sizeof(*slot));
	if (!slot)
		return MNL_CB_ERROR; /* errno = ENOMEM */
	*slot = e;
	return MNL_CB_OK;
}

int tm_nl_dump_stats(struct tm_nl *nl, tm_stats_cb cb, void *ctx)
{
	struct nlmsghdr *nlh = link_req(nl, NLM_F_DUMP, 0, 0);
	struct tm_vec v = { 0 };
	int err;

	err = tm_nlsock_dump(&nl->req, nlh, collect_stats, &v, vec_restart);
	for (size_t i = 0; !err && i < v.len; i++) {
		const struct stats_ent *e = (struct stats_ent *)v.data + i;

		cb(ctx, e->ifindex, &e->st);
	}
	tm_vec_free(&v);
	if (err)
		tm_warn("rtnetlink: stats dump failed: %s\n", strerror(-err));
	return err;
}

int tm_nl_link_stats(struct tm_nl *nl, int ifindex, struct tm_link_stats *st)
{
	struct nlmsghdr *nlh = link_req(nl, NLM_F_ACK, ifindex, 0);
	struct tm_vec v = { 0 };
	int err;

	err = tm_nlsock_talk(&nl->req, nlh, collect_stats, &v);
	if (!err && v.len != 1)
		err = -ENODATA;
	if (!err)
		*st = ((struct stats_ent *)v.data)->st;
	tm_vec_free(&v);
	if (err && err != -ENODEV)
		tm_warn("rtnetlink: stats of ifindex %d: %s\n", ifindex, strerror(-err));
	return err;
}

/* A link message in the event stream. */
struct event_ctx {
	tm_link_cb cb;
	void *ctx;
};

static int event_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct event_ctx *ec = data;
	struct tm_link l;
	int err;

	if (!link_msg(nlh))
		return MNL_CB_OK;
	err = parse_link(nlh, &l, NULL);
	if (err) {
		skip_msg(nlh, err);
		return MNL_CB_OK;
	}
	ec->cb(ec->ctx, nlh->nlmsg_type == RTM_NEWLINK ? TM_LINK_NEW : TM_LINK_DEL, &l);
	return MNL_CB_OK;
}

/*
 * The kernel dropped events. What is still queued predates the loss (the
 * queue was full when it happened), so replaying it after the caller's
 * resync dump would undo newer state: discard it instead.
 */
static int overrun(struct tm_nl *nl, const char *why)
{
	unsigned int n = tm_nlsock_drain(&nl->ev);

	tm_warn("rtnetlink: link events lost (%s), %u queued events discarded: resyncing\n",
		why, n);
	return -ENOBUFS;
}

int tm_nl_read_events(struct tm_nl *nl, tm_link_cb cb, void *ctx)
{
	struct event_ctx ec = { .cb = cb, .ctx = ctx };

	if (!nl->ev.s)
		return -EINVAL;
	for (int i = 0; i < EVENT_BATCH; i++) {
		ssize_t n = mnl_socket_recvfrom(nl->ev.s, nl->ev.buf, TM_NLSOCK_BUF_SIZE);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0 && errno == ENOBUFS)
			return overrun(nl, "receive queue overrun, ENOBUFS");
		/* A truncated event is a lost event too. */
		if (n < 0 && errno == ENOSPC)
			return overrun(nl, "event larger than the buffer");
		if (n < 0)
			return -errno;
		/* Notifications carry seq 0 and portid 0: no checks. */
		if (mnl_cb_run(nl->ev.buf, n, 0, 0, event_cb, &ec) == MNL_CB_ERROR)
			tm_warn("rtnetlink: bad link event: %s\n", strerror(errno));
	}
	return 0;
}

int tm_nl_set_rcvbuf(struct tm_nl *nl, int bytes)
{
	int fd;

	if (!nl->ev.s || bytes <= 0)
		return -EINVAL;
	fd = tm_nlsock_fd(&nl->ev);
	/* FORCE goes past net.core.rmem_max with CAP_NET_ADMIN; plain is capped. */
	if (!setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)))
		return 0;
	if (errno != EPERM)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes)))
		return -errno;
	return 0;
}

int tm_nl_event_fd(const struct tm_nl *nl)
{
	return nl->ev.s ? tm_nlsock_fd(&nl->ev) : -1;
}

struct tm_nlsock *tm_nl_sock(struct tm_nl *nl)
{
	return &nl->req;
}

/* NETLINK_NO_ENOBUFS stays off on purpose: an overrun must be seen to resync. */
static int subscribe(struct tm_nl *nl, int netns_fd)
{
	int group = RTNLGRP_LINK, err;

	err = tm_nlsock_open(&nl->ev, NETLINK_ROUTE, netns_fd, SOCK_NONBLOCK);
	if (err)
		return err;
	if (mnl_socket_setsockopt(nl->ev.s, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)) < 0)
		return -errno;
	err = tm_nl_set_rcvbuf(nl, EVENT_RCVBUF);
	if (err)
		tm_warn("rtnetlink: event socket buffer stays at its default: %s\n",
			strerror(-err));
	return 0;
}

struct tm_nl *tm_nl_open(int netns_fd, bool subscribe_links)
{
	struct tm_nl *nl = calloc(1, sizeof(*nl));
	int err;

	if (!nl)
		return NULL;
	err = tm_nlsock_open(&nl->req, NETLINK_ROUTE, netns_fd, 0);
	if (!err && subscribe_links)
		err = subscribe(nl, netns_fd);
	if (err) {
		tm_nl_close(nl);
		errno = -err;
		return NULL;
	}
	return nl;
}

void tm_nl_close(struct tm_nl *nl)
{
	if (!nl)
		return;
	tm_nlsock_close(&nl->ev);
	tm_nlsock_close(&nl->req);
	free(nl);
}

static int nsid_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *a;

	mnl_attr_for_each(a, nlh, sizeof(struct rtgenmsg)) {
		if (mnl_attr_get_type(a) == NETNSA_NSID &&
		    mnl_attr_validate(a, MNL_TYPE_U32) == 0)
			*(int *)data = (int)mnl_attr_get_u32(a);
	}
	return MNL_CB_OK;
}

int tm_nl_nsid(struct tm_nl *nl, int other_fd)
{
	struct nlmsghdr *nlh = tm_nlsock_msg(&nl->req, RTM_GETNSID, NLM_F_ACK); /* reply, ACK */
	struct rtgenmsg *g;
	int id = -1, err;

	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->rtgen_family = AF_UNSPEC;
	mnl_attr_put_u32(nlh, NETNSA_FD, (uint32_t)other_fd);
	err = tm_nlsock_talk(&nl->req, nlh, nsid_cb, &id);
	if (err)
		return err;
	return id < 0 ? -ENOENT : id;
}
