// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * rtnetlink via libmnl: one blocking socket for request/reply exchanges and
 * dumps, one non-blocking socket subscribed to RTNLGRP_LINK for events, both
 * created inside the target network namespace. Every request asks for an
 * ACK and the kernel's extended ACK message is kept for the logs.
 */
#define _GNU_SOURCE /* setns */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/net_namespace.h>
#include <linux/rtnetlink.h>

#include "log.h"
#include "netlink.h"

/*
 * The kernel builds dump skbs of up to 32 KiB when the reader offers that
 * much; a smaller buffer makes recvmsg() truncate them (libmnl: ENOSPC).
 */
#define BUF_SIZE 32768
#define REQ_SIZE 1024
/* Room for a few hundred link events between two reads. */
#define EVENT_RCVBUF (1 << 20)
/* Messages per tm_nl_read_events() call, so an event storm cannot starve the loop. */
#define EVENT_BATCH 4096
#define DUMP_TRIES 4
#define KIND_SIZE 16
/* rx/tx packets, bytes, errors, dropped: what every kernel's rtnl_link_stats64 starts with. */
#define STATS64_MIN (8 * sizeof(uint64_t))

struct tm_nl {
	struct mnl_socket *req;
	struct mnl_socket *ev; /* NULL unless subscribed */
	uint32_t portid;       /* of req */
	uint32_t seq;
	char extack[128];      /* the kernel's message for the last failed request */
	char reqbuf[REQ_SIZE] __attribute__((aligned(8)));
	char buf[BUF_SIZE] __attribute__((aligned(8)));
};

/* What one exchange hands to the callbacks mnl_cb_run2() calls. */
struct reply {
	struct tm_nl *nl;
	mnl_cb_t cb; /* per data message, may be NULL */
	void *arg;
};

/* A growable array of fixed-size elements. */
struct vec {
	char *data;
	size_t n, cap, size;
};

struct stats_ent {
	int ifindex;
	struct tm_link_stats st;
};

int tm_netns_run(int netns_fd, int (*fn)(void *arg), void *arg)
{
	int home, ret;

	if (netns_fd == -1)
		return fn(arg);
	if (netns_fd < 0)
		return -EBADF;
	/* thread-self, not self: setns() moves this thread only. */
	home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (home < 0)
		return -errno;
	if (setns(netns_fd, CLONE_NEWNET)) {
		ret = -errno;
		close(home);
		return ret;
	}
	ret = fn(arg);
	if (setns(home, CLONE_NEWNET)) {
		/* Whatever this thread did next would happen in the wrong netns. */
		tm_err("cannot return to the original network namespace: %s\n", strerror(errno));
		ret = -ENOTRECOVERABLE;
	}
	close(home);
	return ret;
}

static void *vec_push(struct vec *v)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 64;
		char *d = reallocarray(v->data, cap, v->size);

		if (!d)
			return NULL;
		v->data = d;
		v->cap = cap;
	}
	return v->data + v->n++ * v->size;
}

/* Reads whatever is queued without blocking: replies of an abandoned exchange. */
static unsigned int drain(struct mnl_socket *s, char *buf)
{
	unsigned int n = 0;

	for (int i = 0; i < EVENT_BATCH; i++) {
		ssize_t r = recv(mnl_socket_get_fd(s), buf, BUF_SIZE, MSG_DONTWAIT);

		if (r < 0 && (errno == EINTR || errno == ENOBUFS))
			continue;
		if (r < 0)
			break;
		n++;
	}
	return n;
}

static int err_attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;

	if (mnl_attr_type_valid(attr, NLMSGERR_ATTR_MAX) < 0)
		return MNL_CB_OK;
	tb[mnl_attr_get_type(attr)] = attr;
	return MNL_CB_OK;
}

/* Keeps NLMSGERR_ATTR_MSG, as iproute2's nl_dump_ext_ack() finds it. */
static void keep_extack(struct tm_nl *nl, const struct nlmsghdr *nlh)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[NLMSGERR_ATTR_MAX + 1] = { 0 };
	size_t hlen = sizeof(*e);

	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		hlen += mnl_nlmsg_get_payload_len(&e->msg);
	if (mnl_attr_parse(nlh, hlen, err_attr_cb, tb) != MNL_CB_OK)
		return;
	if (tb[NLMSGERR_ATTR_MSG] && !mnl_attr_validate(tb[NLMSGERR_ATTR_MSG], MNL_TYPE_NUL_STRING))
		snprintf(nl->extack, sizeof(nl->extack), "%s",
			 mnl_attr_get_str(tb[NLMSGERR_ATTR_MSG]));
}

static int error_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct reply *r = data;
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*e))) {
		errno = EBADMSG;
		return MNL_CB_ERROR;
	}
	if (!e->error)
		return MNL_CB_STOP;
	keep_extack(r->nl, nlh);
	errno = -e->error;
	return MNL_CB_ERROR;
}

/* A dump that failed half-way says so in NLMSG_DONE; libmnl 1.0.4 does not look. */
static int done_cb(const struct nlmsghdr *nlh, void *data)
{
	int err;

	(void)data;
	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(err))
		return MNL_CB_STOP;
	memcpy(&err, mnl_nlmsg_get_payload(nlh), sizeof(err));
	if (err >= 0)
		return MNL_CB_STOP;
	errno = -err;
	return MNL_CB_ERROR;
}

static int data_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct reply *r = data;

	return r->cb ? r->cb(nlh, r->arg) : MNL_CB_OK;
}

static int recv_replies(struct tm_nl *nl, uint32_t seq, struct reply *r)
{
	/* Not const: mnl_cb_run2() takes a non-const array. */
	static mnl_cb_t ctl[NLMSG_MIN_TYPE] = {
		[NLMSG_ERROR] = error_cb,
		[NLMSG_DONE] = done_cb,
	};
	int ret = MNL_CB_OK;

	do {
		ssize_t n = mnl_socket_recvfrom(nl->req, nl->buf, sizeof(nl->buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		errno = 0;
		ret = mnl_cb_run2(nl->buf, n, seq, nl->portid, data_cb, r, ctl, NLMSG_MIN_TYPE);
	} while (ret > MNL_CB_STOP);
	if (ret == MNL_CB_STOP)
		return 0;
	/* libmnl's EINTR is NLM_F_DUMP_INTR: the dump is inconsistent, redo it. */
	if (errno == EINTR)
		return -EAGAIN;
	return errno ? -errno : -EPROTO;
}

/*
 * Sends nl->reqbuf, feeds the replies to cb until the ACK or NLMSG_DONE.
 * After a failure, replies still queued are dropped: they would otherwise
 * be taken for the answer to the next request.
 */
static int talk(struct tm_nl *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *arg)
{
	struct reply r = { .nl = nl, .cb = cb, .arg = arg };
	int err;

	nlh->nlmsg_seq = ++nl->seq;
	nl->extack[0] = '\0';
	if (mnl_socket_sendto(nl->req, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	err = recv_replies(nl, nlh->nlmsg_seq, &r);
	if (err)
		drain(nl->req, nl->buf);
	return err;
}

/* Runs a dump into v until the kernel says it was consistent. */
static int dump_into(struct tm_nl *nl, struct nlmsghdr *nlh, mnl_cb_t cb, struct vec *v)
{
	int err = -EAGAIN;

	for (int i = 0; i < DUMP_TRIES && err == -EAGAIN; i++) {
		v->n = 0;
		err = talk(nl, nlh, cb, v);
	}
	return err;
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
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(nl->reqbuf);
	struct ifinfomsg *ifi;

	nlh->nlmsg_type = RTM_GETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
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
	slot = vec_push(data);
	if (!slot) {
		errno = ENOMEM;
		return MNL_CB_ERROR;
	}
	*slot = l;
	return MNL_CB_OK;
}

int tm_nl_dump_links(struct tm_nl *nl, tm_link_cb cb, void *ctx)
{
	struct vec v = { .size = sizeof(struct tm_link) };
	struct nlmsghdr *nlh;
	int err;

	/* Counters are not needed here: smaller messages, fewer skbs. */
	nlh = link_req(nl, NLM_F_DUMP, 0, RTEXT_FILTER_SKIP_STATS);
	err = dump_into(nl, nlh, collect_link, &v);
	for (size_t i = 0; !err && i < v.n; i++)
		cb(ctx, TM_LINK_NEW, (struct tm_link *)v.data + i);
	free(v.data);
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
	slot = vec_push(data);
	if (!slot) {
		errno = ENOMEM;
		return MNL_CB_ERROR;
	}
	*slot = e;
	return MNL_CB_OK;
}

int tm_nl_dump_stats(struct tm_nl *nl, tm_stats_cb cb, void *ctx)
{
	struct vec v = { .size = sizeof(struct stats_ent) };
	struct nlmsghdr *nlh = link_req(nl, NLM_F_DUMP, 0, 0);
	int err;

	err = dump_into(nl, nlh, collect_stats, &v);
	for (size_t i = 0; !err && i < v.n; i++) {
		const struct stats_ent *e = (struct stats_ent *)v.data + i;

		cb(ctx, e->ifindex, &e->st);
	}
	free(v.data);
	if (err)
		tm_warn("rtnetlink: stats dump failed: %s\n", strerror(-err));
	return err;
}

int tm_nl_link_stats(struct tm_nl *nl, int ifindex, struct tm_link_stats *st)
{
	struct vec v = { .size = sizeof(struct stats_ent) };
	struct nlmsghdr *nlh = link_req(nl, NLM_F_ACK, ifindex, 0);
	int err;

	err = talk(nl, nlh, collect_stats, &v);
	if (!err && v.n != 1)
		err = -ENODATA;
	if (!err)
		*st = ((struct stats_ent *)v.data)->st;
	free(v.data);
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
	unsigned int n = drain(nl->ev, nl->buf);

	tm_warn("rtnetlink: link events lost (%s), %u queued events discarded: resyncing\n",
		why, n);
	return -ENOBUFS;
}

int tm_nl_read_events(struct tm_nl *nl, tm_link_cb cb, void *ctx)
{
	struct event_ctx ec = { .cb = cb, .ctx = ctx };

	if (!nl->ev)
		return -EINVAL;
	for (int i = 0; i < EVENT_BATCH; i++) {
		ssize_t n = mnl_socket_recvfrom(nl->ev, nl->buf, sizeof(nl->buf));

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
		if (mnl_cb_run(nl->buf, n, 0, 0, event_cb, &ec) == MNL_CB_ERROR)
			tm_warn("rtnetlink: bad link event: %s\n", strerror(errno));
	}
	return 0;
}

int tm_nl_set_rcvbuf(struct tm_nl *nl, int bytes)
{
	int fd;

	if (!nl->ev || bytes <= 0)
		return -EINVAL;
	fd = mnl_socket_get_fd(nl->ev);
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
	return nl->ev ? mnl_socket_get_fd(nl->ev) : -1;
}

struct open_ctx {
	struct mnl_socket *req, *ev;
	bool subscribe;
};

/* Runs inside the target netns: only what must happen there. */
static int create_sockets(void *arg)
{
	struct open_ctx *o = arg;

	o->req = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!o->req)
		return -errno;
	if (!o->subscribe)
		return 0;
	o->ev = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC | SOCK_NONBLOCK);
	return o->ev ? 0 : -errno;
}

static int setup_req(struct tm_nl *nl)
{
	int one = 1;

	if (mnl_socket_bind(nl->req, 0, MNL_SOCKET_AUTOPID) < 0)
		return -errno;
	nl->portid = mnl_socket_get_portid(nl->req);
	/* Best effort: kernels before 4.12 have no extended ACKs, they still ACK. */
	mnl_socket_setsockopt(nl->req, NETLINK_EXT_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(nl->req, NETLINK_CAP_ACK, &one, sizeof(one));
	return 0;
}

/* NETLINK_NO_ENOBUFS stays off on purpose: an overrun must be seen to resync. */
static int setup_ev(struct tm_nl *nl)
{
	int group = RTNLGRP_LINK, err;

	if (mnl_socket_bind(nl->ev, 0, MNL_SOCKET_AUTOPID) < 0)
		return -errno;
	if (mnl_socket_setsockopt(nl->ev, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)) < 0)
		return -errno;
	err = tm_nl_set_rcvbuf(nl, EVENT_RCVBUF);
	if (err)
		tm_warn("rtnetlink: event socket buffer stays at its default: %s\n",
			strerror(-err));
	return 0;
}

struct tm_nl *tm_nl_open(int netns_fd, bool subscribe)
{
	struct open_ctx o = { .subscribe = subscribe };
	struct tm_nl *nl;
	int err;

	nl = calloc(1, sizeof(*nl));
	if (!nl)
		return NULL;
	nl->seq = time(NULL);
	err = tm_netns_run(netns_fd, create_sockets, &o);
	nl->req = o.req;
	nl->ev = o.ev;
	if (!err)
		err = setup_req(nl);
	if (!err && nl->ev)
		err = setup_ev(nl);
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
	if (nl->ev)
		mnl_socket_close(nl->ev);
	if (nl->req)
		mnl_socket_close(nl->req);
	free(nl);
}

/* ---- legacy TC: clsact qdisc and direct-action bpf filters ---- */

static struct nlmsghdr *tc_req(struct tm_nl *nl, uint16_t type, uint16_t flags, int ifindex,
			       uint32_t parent, uint32_t handle)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(nl->reqbuf);
	struct tcmsg *tcm;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	tcm = mnl_nlmsg_put_extra_header(nlh, sizeof(*tcm));
	tcm->tcm_family = AF_UNSPEC;
	tcm->tcm_ifindex = ifindex;
	tcm->tcm_parent = parent;
	tcm->tcm_handle = handle;
	return nlh;
}

static int tc_kind_attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **kind = data;

	if (mnl_attr_get_type(attr) != TCA_KIND)
		return MNL_CB_OK;
	if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) < 0)
		return MNL_CB_ERROR;
	*kind = attr;
	return MNL_CB_OK;
}

struct qdisc_find {
	int ifindex;
	char kind[KIND_SIZE];
};

static int qdisc_kind_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct tcmsg *tcm = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *kind = NULL;
	struct qdisc_find *qf = data;

	if (nlh->nlmsg_type != RTM_NEWQDISC || mnl_nlmsg_get_payload_len(nlh) < sizeof(*tcm))
		return MNL_CB_OK;
	if (tcm->tcm_ifindex != qf->ifindex || tcm->tcm_parent != TC_H_CLSACT)
		return MNL_CB_OK;
	if (mnl_attr_parse(nlh, sizeof(*tcm), tc_kind_attr_cb, &kind) == MNL_CB_OK && kind)
		snprintf(qf->kind, sizeof(qf->kind), "%s", mnl_attr_get_str(kind));
	return MNL_CB_OK;
}

/*
 * Kind of the qdisc in the ingress/clsact slot ("ingress" and "clsact" share
 * it), "" for none. A dump, not a get: on the 6.18 development kernel an
 * RTM_GETQDISC for that slot was ACKed without the qdisc being sent.
 */
static int ingress_qdisc_kind(struct tm_nl *nl, int ifindex, char kind[KIND_SIZE])
{
	struct nlmsghdr *nlh = tc_req(nl, RTM_GETQDISC, NLM_F_DUMP, ifindex, 0, 0);
	struct qdisc_find qf = { .ifindex = ifindex };
	int err = -EAGAIN;

	for (int i = 0; i < DUMP_TRIES && err == -EAGAIN; i++)
		err = talk(nl, nlh, qdisc_kind_cb, &qf);
	snprintf(kind, KIND_SIZE, "%s", qf.kind);
	return err;
}

static void tc_fail(const struct tm_nl *nl, const char *what, int ifindex, int err)
{
	tm_warn("rtnetlink: %s on ifindex %d: %s%s%s\n", what, ifindex, strerror(-err),
		nl->extack[0] ? ": " : "", nl->extack);
}

int tm_nl_clsact_ensure(struct tm_nl *nl, int ifindex, bool *created)
{
	struct nlmsghdr *nlh;
	char kind[KIND_SIZE];
	int err;

	nlh = tc_req(nl, RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, ifindex,
		     TC_H_CLSACT, TC_H_MAKE(TC_H_CLSACT, 0));
	mnl_attr_put_strz(nlh, TCA_KIND, "clsact");
	err = talk(nl, nlh, NULL, NULL);
	*created = !err;
	if (err != -EEXIST)
		goto out;
	/* EEXIST also when an "ingress" qdisc holds the slot: no egress hook there. */
	err = ingress_qdisc_kind(nl, ifindex, kind);
	/* Gone again before we looked: someone else is at work on it. */
	if (!err && !kind[0])
		err = -EAGAIN;
	if (!err && strcmp(kind, "clsact")) {
		tm_warn("rtnetlink: ifindex %d has a \"%s\" qdisc where clsact goes\n", ifindex,
			kind);
		return -EBUSY;
	}
out:
	if (err)
		tc_fail(nl, "adding clsact qdisc", ifindex, err);
	return err;
}

int tm_nl_clsact_del(struct tm_nl *nl, int ifindex)
{
	struct nlmsghdr *nlh;
	int err;

	nlh = tc_req(nl, RTM_DELQDISC, NLM_F_ACK, ifindex, TC_H_CLSACT,
		     TC_H_MAKE(TC_H_CLSACT, 0));
	/* With the kind named, the kernel refuses to delete an "ingress" qdisc instead. */
	mnl_attr_put_strz(nlh, TCA_KIND, "clsact");
	err = talk(nl, nlh, NULL, NULL);
	if (err)
		tc_fail(nl, "deleting clsact qdisc", ifindex, err);
	return err;
}

static uint32_t hook_parent(bool ingress)
{
	return TC_H_MAKE(TC_H_CLSACT, ingress ? TC_H_MIN_INGRESS : TC_H_MIN_EGRESS);
}

static struct nlmsghdr *filter_req(struct tm_nl *nl, uint16_t type, uint16_t flags,
				   int ifindex, bool ingress, uint16_t prio, uint32_t handle)
{
	struct nlmsghdr *nlh = tc_req(nl, type, flags, ifindex, hook_parent(ingress), handle);
	struct tcmsg *tcm = mnl_nlmsg_get_payload(nlh);

	/* tcm_info: priority in the upper half, protocol (network order) in the lower. */
	tcm->tcm_info = TC_H_MAKE((uint32_t)prio << 16, htons(ETH_P_ALL));
	mnl_attr_put_strz(nlh, TCA_KIND, "bpf");
	return nlh;
}

int tm_nl_filter_add(struct tm_nl *nl, int ifindex, bool ingress, int prog_fd, const char *name,
		     uint16_t prio, uint32_t handle, bool replace)
{
	struct nlmsghdr *nlh;
	struct nlattr *opts;
	int err;

	nlh = filter_req(nl, RTM_NEWTFILTER,
			 NLM_F_CREATE | (replace ? NLM_F_REPLACE : NLM_F_EXCL) | NLM_F_ACK, ifindex,
			 ingress, prio, handle);
	opts = mnl_attr_nest_start(nlh, TCA_OPTIONS);
	mnl_attr_put_u32(nlh, TCA_BPF_FD, prog_fd);
	if (!mnl_attr_put_strz_check(nlh, sizeof(nl->reqbuf), TCA_BPF_NAME, name))
		return -ENAMETOOLONG;
	/* Direct action: the program's return code is the verdict, no separate action. */
	mnl_attr_put_u32(nlh, TCA_BPF_FLAGS, TCA_BPF_FLAG_ACT_DIRECT);
	mnl_attr_nest_end(nlh, opts);
	err = talk(nl, nlh, NULL, NULL);
	if (err)
		tc_fail(nl, ingress ? "adding ingress filter" : "adding egress filter", ifindex,
			err);
	return err;
}

int tm_nl_filter_del(struct tm_nl *nl, int ifindex, bool ingress, uint16_t prio, uint32_t handle)
{
	struct nlmsghdr *nlh;
	int err;

	nlh = filter_req(nl, RTM_DELTFILTER, NLM_F_ACK, ifindex, ingress, prio, handle);
	err = talk(nl, nlh, NULL, NULL);
	if (err)
		tc_fail(nl, ingress ? "deleting ingress filter" : "deleting egress filter",
			ifindex, err);
	return err;
}

static int count_filter(const struct nlmsghdr *nlh, void *data)
{
	const struct tcmsg *tcm = mnl_nlmsg_get_payload(nlh);

	if (nlh->nlmsg_type != RTM_NEWTFILTER ||
	    mnl_nlmsg_get_payload_len(nlh) < sizeof(*tcm))
		return MNL_CB_OK;
	/* Each priority is also listed once on its own, with handle 0. */
	if (tcm->tcm_handle)
		(*(int *)data)++;
	return MNL_CB_OK;
}

int tm_nl_filter_count(struct tm_nl *nl, int ifindex, bool ingress)
{
	struct nlmsghdr *nlh;
	int n, err = -EAGAIN;

	nlh = tc_req(nl, RTM_GETTFILTER, NLM_F_DUMP, ifindex, hook_parent(ingress), 0);
	for (int i = 0; i < DUMP_TRIES && err == -EAGAIN; i++) {
		n = 0;
		err = talk(nl, nlh, count_filter, &n);
	}
	if (err)
		tc_fail(nl, "listing filters", ifindex, err);
	return err ? err : n;
}

struct filter_find {
	uint32_t handle;
	int prog_id;      /* -ENOENT until found */
};

static int bpf_opt_cb(const struct nlattr *attr, void *data)
{
	struct filter_find *ff = data;

	if (mnl_attr_get_type(attr) == TCA_BPF_ID && mnl_attr_validate(attr, MNL_TYPE_U32) == 0)
		ff->prog_id = (int)mnl_attr_get_u32(attr);
	return MNL_CB_OK;
}

static int filter_attr_cb(const struct nlattr *attr, void *data)
{
	if (mnl_attr_get_type(attr) == TCA_OPTIONS &&
	    mnl_attr_validate(attr, MNL_TYPE_NESTED) == 0)
		return mnl_attr_parse_nested(attr, bpf_opt_cb, data);
	return MNL_CB_OK;
}

static int find_filter(const struct nlmsghdr *nlh, void *data)
{
	const struct tcmsg *tcm = mnl_nlmsg_get_payload(nlh);
	struct filter_find *ff = data;

	if (nlh->nlmsg_type != RTM_NEWTFILTER ||
	    mnl_nlmsg_get_payload_len(nlh) < sizeof(*tcm) || tcm->tcm_handle != ff->handle)
		return MNL_CB_OK;
	return mnl_attr_parse(nlh, sizeof(*tcm), filter_attr_cb, ff);
}

int tm_nl_filter_prog(struct tm_nl *nl, int ifindex, bool ingress, uint16_t prio, uint32_t handle)
{
	struct filter_find ff = { .handle = handle, .prog_id = -ENOENT };
	struct nlmsghdr *nlh;
	int err = -EAGAIN;

	nlh = tc_req(nl, RTM_GETTFILTER, NLM_F_DUMP, ifindex, hook_parent(ingress), 0);
	((struct tcmsg *)mnl_nlmsg_get_payload(nlh))->tcm_info = TC_H_MAKE((uint32_t)prio << 16, 0);
	for (int i = 0; i < DUMP_TRIES && err == -EAGAIN; i++)
		err = talk(nl, nlh, find_filter, &ff);
	return err ? err : ff.prog_id;
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
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(nl->reqbuf);
	struct rtgenmsg *g;
	int id = -1, err;

	nlh->nlmsg_type = RTM_GETNSID;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK; /* the reply, then an ACK */
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->rtgen_family = AF_UNSPEC;
	mnl_attr_put_u32(nlh, NETNSA_FD, (uint32_t)other_fd);
	err = talk(nl, nlh, nsid_cb, &id);
	if (err)
		return err;
	return id < 0 ? -ENOENT : id;
}
