// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The netlink transport (see nlsock.h): open in a netns, request/reply
 * exchanges and dumps through mnl_cb_run2() with our own NLMSG_ERROR and
 * NLMSG_DONE handling (libmnl 1.0.4 neither keeps the extended ACK nor
 * looks at the error a failed dump puts in NLMSG_DONE).
 */
#define _GNU_SOURCE /* setns */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/netlink.h>

#include "log.h"
#include "nlsock.h"

/* Messages one drain reads at most, so that a flood cannot hold it. */
#define DRAIN_MAX 4096
#define DUMP_TRIES 4

/* What one exchange hands to the callbacks mnl_cb_run2() calls. */
struct reply {
	struct tm_nlsock *s;
	mnl_cb_t cb; /* per data message, may be NULL */
	void *arg;
};

int tm_nlsock_netns_run(int netns_fd, int (*fn)(void *arg), void *arg)
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

struct open_ctx {
	int bus, flags;
	struct mnl_socket *s;
};

/* Runs inside the target netns: a netlink socket belongs to the netns it
 * was created in, so only socket() has to happen there. */
static int create_socket(void *arg)
{
	struct open_ctx *o = arg;

	o->s = mnl_socket_open2(o->bus, SOCK_CLOEXEC | o->flags);
	return o->s ? 0 : -errno;
}

int tm_nlsock_open(struct tm_nlsock *s, int bus, int netns_fd, int flags)
{
	struct open_ctx o = { .bus = bus, .flags = flags };
	int one = 1, err;

	memset(s, 0, sizeof(*s));
	s->seq = (uint32_t)time(NULL);
	s->buf = malloc(TM_NLSOCK_BUF_SIZE);
	if (!s->buf)
		return -ENOMEM;
	err = tm_nlsock_netns_run(netns_fd, create_socket, &o);
	s->s = o.s;
	if (!err && mnl_socket_bind(s->s, 0, MNL_SOCKET_AUTOPID) < 0)
		err = -errno;
	if (err) {
		tm_nlsock_close(s);
		return err;
	}
	s->portid = mnl_socket_get_portid(s->s);
	/* Best effort: kernels before 4.12 have no extended ACKs, they still ACK. */
	mnl_socket_setsockopt(s->s, NETLINK_EXT_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(s->s, NETLINK_CAP_ACK, &one, sizeof(one));
	return 0;
}

void tm_nlsock_close(struct tm_nlsock *s)
{
	if (s->s)
		mnl_socket_close(s->s);
	free(s->buf);
	s->s = NULL;
	s->buf = NULL;
}

struct nlmsghdr *tm_nlsock_msg(struct tm_nlsock *s, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(s->req);

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	return nlh;
}

unsigned int tm_nlsock_drain(struct tm_nlsock *s)
{
	unsigned int n = 0;

	for (int i = 0; i < DRAIN_MAX; i++) {
		ssize_t r = recv(tm_nlsock_fd(s), s->buf, TM_NLSOCK_BUF_SIZE, MSG_DONTWAIT);

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
static void keep_extack(struct tm_nlsock *s, const struct nlmsghdr *nlh)
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
		snprintf(s->extack, sizeof(s->extack), "%s",
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
	keep_extack(r->s, nlh);
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

static int recv_replies(struct tm_nlsock *s, uint32_t seq, struct reply *r)
{
	/* Not const: mnl_cb_run2() takes a non-const array. */
	static mnl_cb_t ctl[NLMSG_MIN_TYPE] = {
		[NLMSG_ERROR] = error_cb,
		[NLMSG_DONE] = done_cb,
	};
	int ret = MNL_CB_OK;

	do {
		ssize_t n = mnl_socket_recvfrom(s->s, s->buf, TM_NLSOCK_BUF_SIZE);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		errno = 0;
		ret = mnl_cb_run2(s->buf, n, seq, s->portid, data_cb, r, ctl, NLMSG_MIN_TYPE);
	} while (ret > MNL_CB_STOP);
	if (ret == MNL_CB_STOP)
		return 0;
	/* libmnl's EINTR is NLM_F_DUMP_INTR: the dump is inconsistent, redo it. */
	if (errno == EINTR)
		return -EAGAIN;
	return errno ? -errno : -EPROTO;
}

int tm_nlsock_talk(struct tm_nlsock *s, struct nlmsghdr *nlh, mnl_cb_t cb, void *arg)
{
	struct reply r = { .s = s, .cb = cb, .arg = arg };
	int err;

	nlh->nlmsg_seq = ++s->seq;
	s->extack[0] = '\0';
	if (mnl_socket_sendto(s->s, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	err = recv_replies(s, nlh->nlmsg_seq, &r);
	if (err)
		tm_nlsock_drain(s);
	return err;
}

int tm_nlsock_dump(struct tm_nlsock *s, struct nlmsghdr *nlh, mnl_cb_t cb, void *arg,
		   void (*restart)(void *arg))
{
	int err = -EAGAIN;

	for (int i = 0; i < DUMP_TRIES && err == -EAGAIN; i++) {
		if (restart)
			restart(arg);
		err = tm_nlsock_talk(s, nlh, cb, arg);
	}
	return err;
}
