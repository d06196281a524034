// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* clsact qdisc and direct-action bpf filters over rtnetlink (see clsact.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>

#include "clsact.h"
#include "log.h"

#define KIND_SIZE 16

static struct nlmsghdr *tc_req(struct tm_nlsock *s, uint16_t type, uint16_t flags, int ifindex,
			       uint32_t parent, uint32_t handle)
{
	struct nlmsghdr *nlh = tm_nlsock_msg(s, type, flags);
	struct tcmsg *tcm;

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
static int ingress_qdisc_kind(struct tm_nlsock *s, int ifindex, char kind[KIND_SIZE])
{
	struct nlmsghdr *nlh = tc_req(s, RTM_GETQDISC, NLM_F_DUMP, ifindex, 0, 0);
	struct qdisc_find qf = { .ifindex = ifindex };
	int err = tm_nlsock_dump(s, nlh, qdisc_kind_cb, &qf, NULL);

	snprintf(kind, KIND_SIZE, "%s", qf.kind);
	return err;
}

static void tc_fail(const struct tm_nlsock *s, const char *what, int ifindex, int err)
{
	tm_warn("rtnetlink: %s on ifindex %d: %s%s%s\n", what, ifindex, strerror(-err),
		s->extack[0] ? ": " : "", s->extack);
}

int tm_clsact_ensure(struct tm_nlsock *s, int ifindex, bool *created)
{
	struct nlmsghdr *nlh;
	char kind[KIND_SIZE];
	int err;

	nlh = tc_req(s, RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, ifindex,
		     TC_H_CLSACT, TC_H_MAKE(TC_H_CLSACT, 0));
	mnl_attr_put_strz(nlh, TCA_KIND, "clsact");
	err = tm_nlsock_talk(s, nlh, NULL, NULL);
	*created = !err;
	if (err != -EEXIST)
		goto out;
	/* EEXIST also when an "ingress" qdisc holds the slot: no egress hook there. */
	err = ingress_qdisc_kind(s, ifindex, kind);
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
		tc_fail(s, "adding clsact qdisc", ifindex, err);
	return err;
}

int tm_clsact_del(struct tm_nlsock *s, int ifindex)
{
	struct nlmsghdr *nlh;
	int err;

	nlh = tc_req(s, RTM_DELQDISC, NLM_F_ACK, ifindex, TC_H_CLSACT,
		     TC_H_MAKE(TC_H_CLSACT, 0));
	/* With the kind named, the kernel refuses to delete an "ingress" qdisc instead. */
	mnl_attr_put_strz(nlh, TCA_KIND, "clsact");
	err = tm_nlsock_talk(s, nlh, NULL, NULL);
	if (err)
		tc_fail(s, "deleting clsact qdisc", ifindex, err);
	return err;
}

static uint32_t hook_parent(bool ingress)
{
	return TC_H_MAKE(TC_H_CLSACT, ingress ? TC_H_MIN_INGRESS : TC_H_MIN_EGRESS);
}

static struct nlmsghdr *filter_req(struct tm_nlsock *s, uint16_t type, uint16_t flags,
				   int ifindex, bool ingress, uint16_t prio, uint32_t handle)
{
	struct nlmsghdr *nlh = tc_req(s, type, flags, ifindex, hook_parent(ingress), handle);
	struct tcmsg *tcm = mnl_nlmsg_get_payload(nlh);

	/* tcm_info: priority in the upper half, protocol (network order) in the lower. */
	tcm->tcm_info = TC_H_MAKE((uint32_t)prio << 16, htons(ETH_P_ALL));
	mnl_attr_put_strz(nlh, TCA_KIND, "bpf");
	return nlh;
}

int tm_clsact_filter_add(struct tm_nlsock *s, int ifindex, bool ingress, int prog_fd,
			 const char *name, uint16_t prio, uint32_t handle, bool replace)
{
	struct nlmsghdr *nlh;
	struct nlattr *opts;
	int err;

	nlh = filter_req(s, RTM_NEWTFILTER,
			 NLM_F_CREATE | (replace ? NLM_F_REPLACE : NLM_F_EXCL) | NLM_F_ACK, ifindex,
			 ingress, prio, handle);
	opts = mnl_attr_nest_start(nlh, TCA_OPTIONS);
	mnl_attr_put_u32(nlh, TCA_BPF_FD, prog_fd);
	if (!mnl_attr_put_strz_check(nlh, sizeof(s->req), TCA_BPF_NAME, name))
		return -ENAMETOOLONG;
	/* Direct action: the program's return code is the verdict, no separate action. */
	mnl_attr_put_u32(nlh, TCA_BPF_FLAGS, TCA_BPF_FLAG_ACT_DIRECT);
	mnl_attr_nest_end(nlh, opts);
	err = tm_nlsock_talk(s, nlh, NULL, NULL);
	if (err)
		tc_fail(s, ingress ? "adding ingress filter" : "adding egress filter", ifindex,
			err);
	return err;
}

int tm_clsact_filter_del(struct tm_nlsock *s, int ifindex, bool ingress, uint16_t prio,
			 uint32_t handle)
{
	struct nlmsghdr *nlh;
	int err;

	nlh = filter_req(s, RTM_DELTFILTER, NLM_F_ACK, ifindex, ingress, prio, handle);
	err = tm_nlsock_talk(s, nlh, NULL, NULL);
	if (err)
		tc_fail(s, ingress ? "deleting ingress filter" : "deleting egress filter",
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

static void count_restart(void *data)
{
	*(int *)data = 0;
}

int tm_clsact_filter_count(struct tm_nlsock *s, int ifindex, bool ingress)
{
	struct nlmsghdr *nlh;
	int n, err;

	nlh = tc_req(s, RTM_GETTFILTER, NLM_F_DUMP, ifindex, hook_parent(ingress), 0);
	err = tm_nlsock_dump(s, nlh, count_filter, &n, count_restart);
	if (err)
		tc_fail(s, "listing filters", ifindex, err);
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

int tm_clsact_filter_prog(struct tm_nlsock *s, int ifindex, bool ingress, uint16_t prio,
			  uint32_t handle)
{
	struct filter_find ff = { .handle = handle, .prog_id = -ENOENT };
	struct nlmsghdr *nlh;
	int err;

	nlh = tc_req(s, RTM_GETTFILTER, NLM_F_DUMP, ifindex, hook_parent(ingress), 0);
	((struct tcmsg *)mnl_nlmsg_get_payload(nlh))->tcm_info = TC_H_MAKE((uint32_t)prio << 16, 0);
	err = tm_nlsock_dump(s, nlh, find_filter, &ff, NULL);
	return err ? err : ff.prog_id;
}

