// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cgroup_skb ingress/egress: every IP packet of a socket in the attached
 * cgroup, attributed to the socket's owner. skb data starts at the IP header.
 *
 * Also the send/recv tracepoints that move ownership: every program that can
 * schedule task_work lives in this one object, because libbpf 1.1's linker
 * cannot merge kfunc externs declared by several objects.
 */
#include "taskmeter.bpf.h"
#include "packet.bpf.h"
#include "metadata.bpf.h"
#include "owner.bpf.h"
#include "flow.bpf.h"

/* Tell the hooks that run before the socket (XDP, TC ingress, drops) whose
 * flow this is: once per socket and owner. Listeners and unconnected
 * sockets are published by local address and port only. */
static __always_inline void tm_publish(struct __sk_buff *skb, struct tm_sk *st,
				       struct bpf_sock *sk, const struct tm_pkt *p, __u8 dir)
{
	struct sk_buff *kskb;
	struct tm_flow_key k;

	if ((st->pub_tgid == st->owner.tgid && st->pub_seq == st->exec_seq) || !p->has_ports)
		return;
	kskb = bpf_cast_to_kern_ctx(skb);
	tm_flow_of(p, dir, BPF_CORE_READ(kskb, sk, __sk_common.skc_net.net, ns.inum), &k);
	if (sk->state == BPF_TCP_LISTEN || !sk->dst_port) {
		k.rport = 0;
		__builtin_memset(k.raddr, 0, sizeof(k.raddr));
	}
	tm_flow_publish(&k, &st->owner, st->exec_seq);
	st->pub_tgid = st->owner.tgid;
	st->pub_seq = st->exec_seq;
}

/* The owner's exec_seq, from the socket's cache while no execve happened
 * anywhere since; else from tm_meta, which also asks for metadata. */
static __always_inline __u32 tm_exec_seq(struct tm_sk *st)
{
	struct tm_globals *g = tm_globals_get();
	__u64 epoch = g ? g->exec_epoch : 0; /* before the lookup: an exec after it is seen next time */

	if (st->meta_tgid == st->owner.tgid && st->meta_epoch == epoch)
		return st->exec_seq;
	st->exec_seq = tm_meta_touch(&st->owner);
	st->meta_tgid = st->owner.tgid;
	st->meta_epoch = epoch;
	return st->exec_seq;
}

/* A send by a process other than the owner, in its own context, makes it
 * the owner. Checked in that order: the tgid compare is the cheap part. */
static __always_inline void tm_egress_claim(struct tm_sk *st, struct bpf_sock *sk)
{
	struct task_struct *task = bpf_get_current_task_btf();

	if (!st->adopt && task->tgid == st->owner.tgid)
		return;
	if (tm_sent_by_user(sk))
		tm_claim(st, task);
}

/* Leave TC egress what it would otherwise look up again (tm_egress_hint). */
static __always_inline void tm_hint_egress(struct __sk_buff *skb, const struct tm_counter_key *key,
					   const struct tm_pkt *p)
{
	struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb);
	struct tm_egress_hint *h;
	__u32 zero = 0;

	h = bpf_map_lookup_elem(&tm_egress_hint, &zero);
	if (!h)
		return;
	h->skb = (__u64)kskb;
	h->sk = (__u64)kskb->sk;
	h->owner = key->owner;
	h->exec_seq = key->exec_seq;
	h->hdr_len = p->hdr_len;
	h->ip_len = p->ip_len;
	h->l4 = p->l4;
	h->family = p->family;
}

static __always_inline void tm_cgroup_skb(struct __sk_buff *skb, __u8 dir)
{
	struct tm_counter_key key = { .dir = dir };
	struct bpf_sock *sk = NULL;
	struct tm_counter_val a;
	struct tm_pkt p = {};
	struct tm_sk *st;
	bool listener;

	if (tm_parse_ip(skb, 0, &p, 0, false)) {
		tm_stat_inc(TM_STAT_MALFORMED);
		p.l4 = TM_L4_OTHER;
		p.hdr_len = 0;
		p.family = skb->family == 10 /* AF_INET6 */ ? TM_FAMILY_IPV6 : TM_FAMILY_IPV4;
	}
	tm_amount(&p, skb->len, skb->gso_segs, &a);
	st = tm_sk_of(skb, &listener, &sk);
	if (st && !listener) {
		if (dir == TM_DIR_EGRESS)
			tm_egress_claim(st, sk);
		if (st->adopt) {
			tm_pend(st, dir, &p, &a);
			return;
		}
		if (st->pending[0].packets | st->pending[1].packets)
			tm_flush_pending(st); /* raced with a claim on another CPU */
	}
	key.l4 = p.l4;
	key.family = p.family;
	if (st && sk) {
		key.owner = st->owner;
		key.exec_seq = tm_exec_seq(st);
		tm_publish(skb, st, sk, &p, dir);
		if (dir == TM_DIR_EGRESS && st->owner.tgid)
			tm_hint_egress(skb, &key, &p);
	}
	tm_count(&key, &a);
}

SEC("cgroup_skb/ingress")
int tm_cgskb_ingress(struct __sk_buff *skb)
{
	tm_cgroup_skb(skb, TM_DIR_INGRESS);
	return 1;
}

SEC("cgroup_skb/egress")
int tm_cgskb_egress(struct __sk_buff *skb)
{
	tm_cgroup_skb(skb, TM_DIR_EGRESS);
	return 1;
}

/*
 * A process that receives on a socket in a syscall (recv, read, ...)
 * becomes its owner: sockets passed by fork or SCM_RIGHTS, and accepted
 * sockets, follow the process that uses them even if it never sends. The
 * tracepoint fires after the data moved; sends are claimed by the egress
 * hook, before their packets are counted.
 */
static __always_inline void tm_syscall_claim(struct sock *sk)
{
	struct tm_sk *st = bpf_sk_storage_get(&tm_sk_owner, sk, NULL, 0);

	if (st)
		tm_claim(st, bpf_get_current_task_btf());
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(tm_recv_length, struct sock *sk, int ret, int flags)
{
	tm_syscall_claim(sk);
	return 0;
}
