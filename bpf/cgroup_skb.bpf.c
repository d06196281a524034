// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cgroup_skb ingress/egress: every IP packet of a socket in the attached
 * cgroup, attributed to the socket's owner. skb data starts at the IP header.
 * The common case is one socket-storage lookup and two array accesses (the
 * class slot cached there, and its generation).
 *
 * Also the recv tracepoint that moves ownership and hands datagrams to their
 * reader: every program that can schedule task_work lives in this one
 * object, because libbpf 1.1's linker cannot merge kfunc externs declared by
 * several objects.
 */
#include "taskmeter.bpf.h"
#include "packet.bpf.h"
#include "class.bpf.h"
#include "metadata.bpf.h"
#include "owner.bpf.h"
#include "flow.bpf.h"

/* Tell the hooks that run before the socket (XDP, TC ingress, drops) whose
 * flow this is: once per socket, owner and exec generation. Listeners and
 * unconnected sockets are published by local address and port only. */
static __noinline void tm_publish_now(struct tm_sk *st, struct sock *ksk, const struct tm_pkt *p,
				      __u8 dir, __u32 wildcard)
{
	struct tm_flow_key k;

	tm_flow_of(p, dir, BPF_CORE_READ(ksk, __sk_common.skc_net.net, ns.inum), &k);
	if (wildcard) {
		k.rport = 0;
		__builtin_memset(k.raddr, 0, sizeof(k.raddr));
	}
	tm_flow_publish(&k, &st->owner, st->exec_seq);
	st->pub_tgid = st->owner.tgid;
	st->pub_seq = st->exec_seq;
}

static __always_inline void tm_publish(struct tm_sk *st, struct bpf_sock *sk, struct sock *ksk,
				       const struct tm_pkt *p, __u8 dir)
{
	if ((st->pub_tgid == st->owner.tgid && st->pub_seq == st->exec_seq) || !p->has_ports ||
	    !st->owner.tgid)
		return;
	tm_publish_now(st, ksk, p, dir, sk->state == BPF_TCP_LISTEN || !sk->dst_port);
}

/* A send by a process other than the owner, in its own context, makes it
 * the owner. Checked in that order: the tgid compare is the cheap part. */
static __always_inline void tm_egress_claim(struct tm_sk *st, struct sock *ksk)
{
	struct task_struct *task = bpf_get_current_task_btf();

	if (!st->adopt && task->tgid == st->owner.tgid)
		return;
	if (tm_sent_by_user(ksk))
		tm_claim(st, task, ksk);
}

/* The class TC egress counts the socket's packets in, on this interface;
 * where no TC program of ours is, TM_SLOT_IFACES (until that changes). */
static __noinline void tm_if_resolve(struct tm_sk *st, struct sk_buff *kskb, __u32 ifindex,
				     __u32 l4, __u32 fam)
{
	struct tm_class k = { .owner = st->owner, .exec_seq = st->exec_seq,
			      .layer = TM_LAYER_TC, .dir = TM_DIR_EGRESS, .l4 = (__u8)l4,
			      .family = (__u8)fam, .ifindex = ifindex };
	struct tm_iface_key ik = { .ifindex = ifindex };

	k.netns = ik.netns = BPF_CORE_READ(kskb, dev, nd_net.net, ns.inum);
	st->if_ifindex = ifindex;
	if (!bpf_map_lookup_elem(&tm_ifaces, &ik)) {
		st->if_slot = TM_SLOT_IFACES;
		st->if_gen = tm_slot_gen(TM_SLOT_IFACES);
		return;
	}
	st->if_slot = tm_class_slot(&k, &st->if_gen);
}

/* TC egress runs next for this skb, on the output interface: leave it the
 * class there (cached per socket), and how the packet parsed and counted. */
static __always_inline void tm_hint_egress(struct __sk_buff *skb, struct tm_sk *st,
					   const struct tm_pkt *p, const struct tm_counter_val *a)
{
	struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb);
	struct tm_egress_hint *h;
	__u32 zero = 0, ifindex = skb->ifindex;

	h = bpf_map_lookup_elem(&tm_egress_hint, &zero);
	if (!h)
		return;
	if (st->if_ifindex != ifindex || !tm_slot_valid(st->if_slot, st->if_gen))
		tm_if_resolve(st, kskb, ifindex, p->l4, p->family);
	h->skb = (__u64)kskb;
	h->sk = (__u64)kskb->sk;
	h->owner = st->owner;
	h->exec_seq = st->exec_seq;
	h->ifindex = ifindex;
	h->if_slot = st->if_slot;
	h->if_gen = st->if_gen;
	h->skb_len = skb->len;
	h->hdr_len = p->hdr_len;
	h->ip_len = p->ip_len;
	h->l4 = p->l4;
	h->family = p->family;
	h->payload = a->payload_bytes;
	h->retrans_bytes = a->retrans_bytes;
	h->retrans_packets = a->retrans_packets;
}

/* What this skb added where, for a drop right after (see tm_undo_hint). */
static __always_inline void tm_hint_undo(struct sk_buff *kskb, __u32 slot, __u32 dgram,
					 const struct tm_counter_val *a)
{
	struct tm_undo_hint *u;
	__u32 zero = 0;

	u = bpf_map_lookup_elem(&tm_undo, &zero);
	if (!u)
		return;
	u->skb = (__u64)kskb;
	u->sk = (__u64)kskb->sk;
	u->len = kskb->len;
	u->slot = slot;
	u->dgram = dgram;
	u->a = *a;
}

static __noinline void tm_unowned(struct __sk_buff *skb, __u32 dir, const struct tm_pkt *p,
				       const struct tm_counter_val *a)
{
	__u32 slot = TM_SLOT_UNATTRIBUTED(dir & 1, p->l4 & 3, p->family & 1);

	tm_slot_add(slot, a);
	if (dir == TM_DIR_INGRESS)
		tm_hint_undo(bpf_cast_to_kern_ctx(skb), slot, 0, a);
}

static __always_inline void tm_cgroup_skb(struct __sk_buff *skb, __u8 dir)
{
	struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb);
	struct bpf_sock *sk = NULL;
	struct tm_counter_val a, undo;
	struct tm_pkt p = {};
	struct sock *ksk;
	struct tm_sk *st;
	bool listener, tcp;
	__u32 slot;

	if (tm_parse_ip(skb, 0, &p, 0, TM_PKT_SKB)) {
		tm_stat_inc(TM_STAT_MALFORMED);
		p.l4 = TM_L4_OTHER;
		p.hdr_len = 0;
		p.family = skb->family == 10 /* AF_INET6 */ ? TM_FAMILY_IPV6 : TM_FAMILY_IPV4;
	}
	tm_amount(&p, skb->len, skb->gso_segs, &a);
	st = tm_sk_of(skb, &listener, &sk);
	if (!st || !sk) {
		tm_unowned(skb, dir, &p, &a);
		return;
	}
	ksk = kskb->sk;
	if (!ksk) { /* it has one (sk above): for the verifier */
		tm_unowned(skb, dir, &p, &a);
		return;
	}
	tcp = !listener && p.l4 == TM_L4_TCP && sk->type == TM_SOCK_STREAM && p.first_frag;
	if (!listener && dir == TM_DIR_EGRESS)
		tm_egress_claim(st, ksk);
	if (tcp && dir == TM_DIR_EGRESS)
		tm_tcp_tx(st, &p, &a);
	else if (tcp)
		tm_tcp_rx(st, &p, &a);
	undo = a;
	undo.payload_bytes = tcp ? 0 : a.payload_bytes;
	if (tcp && dir == TM_DIR_INGRESS)
		a.payload_bytes = tm_tcp_rx_taken(st, ksk); /* in-order data taken so far */
	if (!listener) {
		if (st->adopt) {
			tm_pend(st, dir, &p, &a);
			return;
		}
		if (st->pending)
			tm_flush_pending(st); /* raced with a claim, or duplicates held */
	}
	if (!listener && sk->type != TM_SOCK_STREAM && dir == TM_DIR_INGRESS) {
		tm_dgram_in(st, &p, &a); /* the reader's once read */
		tm_hint_undo(kskb, 0, 1, &a);
		tm_publish(st, sk, ksk, &p, dir);
		return;
	}
	slot = tm_sk_slot(st, dir, p.l4, p.family);
	tm_slot_add(slot, &a);
	if (dir == TM_DIR_INGRESS)
		tm_hint_undo(kskb, slot, 0, &undo);
	tm_publish(st, sk, ksk, &p, dir);
	if (dir == TM_DIR_EGRESS && st->owner.tgid)
		tm_hint_egress(skb, st, &p, &a);
	if (tcp && dir == TM_DIR_EGRESS)
		tm_tcp_rx_flush(st, ksk); /* e.g. the ACK of what just came in */
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
 * sockets, follow the process that uses them even if it never sends. On a
 * datagram socket the datagram it took becomes its received traffic. The
 * tracepoint fires after the data moved; sends are claimed by the egress
 * hook, before their packets are counted.
 */
SEC("tp_btf/sock_recv_length")
int BPF_PROG(tm_recv_length, struct sock *sk, int ret, int flags)
{
	struct tm_sk *st = bpf_sk_storage_get(&tm_sk_owner, sk, NULL, 0);

	if (!st)
		return 0;
	tm_claim(st, bpf_get_current_task_btf(), sk);
	if (sk->sk_type != TM_SOCK_STREAM && ret >= 0 && !(flags & TM_MSG_PEEK) && !st->adopt)
		tm_dgram_read(st, (__u64)ret);
	return 0;
}
