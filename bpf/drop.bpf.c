// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Drops (the kfree_skb tracepoint, which fires for every freed skb with the
 * reason), and TCP duplicates, known where the stack processes them. The DROP layer: packets addressed to an owner that the stack
 * discarded without delivering their data (a firewall rule, a full receive
 * buffer, a full backlog, ...), and packets an owner sent that the device
 * refused (peer down, too big): what the kernel counts in rx/tx_dropped or
 * nowhere. Which frees are drops of an owner's traffic:
 *   - not: skbs consumed, duplicates (TCP_OLD_DATA, TCP_OFOMERGE,
 *     TCP_OFO_DROP, TCP_OLD_SEQUENCE, TCP_RFC7323_PAWS, DUP_FRAG: their
 *     data arrived before; a TCP one counts here as its socket's
 *     retransmitted bytes), segments without payload freed for no
 *     stated reason (teardown: an ACK to a TIME_WAIT socket) or by TCP's
 *     state machine (tm_tcp_control: a repeated SYN-ACK, an old ACK), and
 *     NO_SOCKET (nobody's: the interface layer has them in a bucket);
 *   - yes: every other reason.
 * A drop right after the socket layer or TC egress counted the skb (same
 * CPU, same skb) takes those counts back: the socket layer holds what was
 * delivered, the interface layer what the device carried.
 */
#include "taskmeter.bpf.h"
#include "packet.bpf.h"
#include "class.bpf.h"
#include "flow.bpf.h"
#include "pend.bpf.h"

#define TM_REASON(name) \
	(bpf_core_enum_value_exists(enum skb_drop_reason, name) ? \
	 (int)bpf_core_enum_value(enum skb_drop_reason, name) : -1)

enum tm_drop_kind { TM_NOT_A_DROP, TM_DUPLICATE, TM_DROP };

/* A TCP segment whose data the socket had already. */
static __always_inline bool tm_tcp_duplicate(int reason)
{
	return reason == TM_REASON(SKB_DROP_REASON_TCP_OLD_DATA) ||
	       reason == TM_REASON(SKB_DROP_REASON_TCP_OFOMERGE) ||
	       reason == TM_REASON(SKB_DROP_REASON_TCP_OFO_DROP) ||
	       reason == TM_REASON(SKB_DROP_REASON_TCP_OLD_SEQUENCE) ||
	       reason == TM_REASON(SKB_DROP_REASON_TCP_RFC7323_PAWS);
}

/* What TCP's state machine discards of a segment that carries no data: a
 * stale or repeated control segment (a duplicated SYN-ACK, an old ACK). */
static __always_inline bool tm_tcp_control(int reason)
{
	return reason == TM_REASON(SKB_DROP_REASON_TCP_FLAGS) ||
	       reason == TM_REASON(SKB_DROP_REASON_TCP_RFC7323_PAWS_ACK) ||
	       reason == TM_REASON(SKB_DROP_REASON_TCP_RFC7323_TW_PAWS) ||
	       reason == TM_REASON(SKB_DROP_REASON_TCP_RFC7323_TSECR) ||
	       reason == TM_REASON(SKB_DROP_REASON_TCP_INVALID_SEQUENCE) ||
	       reason == TM_REASON(SKB_DROP_REASON_TCP_INVALID_END_SEQUENCE) ||
	       reason == TM_REASON(SKB_DROP_REASON_TCP_INVALID_ACK_SEQUENCE) ||
	       reason == TM_REASON(SKB_DROP_REASON_TCP_INVALID_SYN) ||
	       reason == TM_REASON(SKB_DROP_REASON_TCP_OLD_ACK) ||
	       reason == TM_REASON(SKB_DROP_REASON_TCP_TOO_OLD_ACK) ||
	       reason == TM_REASON(SKB_DROP_REASON_TCP_ACK_UNSENT_DATA) ||
	       reason == TM_REASON(SKB_DROP_REASON_TCP_RESET) ||
	       reason == TM_REASON(SKB_DROP_REASON_TCP_CLOSE);
}

static __always_inline enum tm_drop_kind tm_drop_kind(int reason, const struct tm_pkt *p,
						      __u64 payload)
{
	if (reason <= TM_REASON(SKB_CONSUMED) || reason == TM_REASON(SKB_DROP_REASON_NO_SOCKET))
		return TM_NOT_A_DROP;
	if (!payload && (reason == TM_REASON(SKB_DROP_REASON_NOT_SPECIFIED) ||
			 (p->l4 == TM_L4_TCP && tm_tcp_control(reason))))
		return TM_NOT_A_DROP;
	if (tm_tcp_duplicate(reason) || reason == TM_REASON(SKB_DROP_REASON_DUP_FRAG))
		return TM_DUPLICATE;
	return TM_DROP;
}

/* What the skb amounts to, as the other layers count: its IP packet
 * (headers parsed, not assumed), as the segments it merged. */
static __always_inline int tm_drop_amount(struct sk_buff *skb, struct tm_pkt *p,
					  struct tm_counter_val *a)
{
	void *l3 = skb->head + skb->network_header;
	long l3_len = (long)skb->len + (long)(skb->data - (unsigned char *)l3);
	__u16 segs = 1;

	if (l3_len <= 0 || tm_parse_ip(l3, 0, p, 0, TM_PKT_KERNEL))
		return -1;
	if (skb->data_len)
		bpf_probe_read_kernel(&segs, sizeof(segs),
				      &((struct skb_shared_info *)(skb->head + skb->end))->gso_segs);
	tm_amount(p, (__u32)l3_len, segs, a);
	return 0;
}

/* Where a drop happens, for the undo: before the socket (netfilter,
 * routing, neighbours): nothing was counted yet. */
static __always_inline bool tm_before_socket(int reason)
{
	return reason == TM_REASON(SKB_DROP_REASON_NETFILTER_DROP) ||
	       reason == TM_REASON(SKB_DROP_REASON_IP_OUTNOROUTES) ||
	       reason == TM_REASON(SKB_DROP_REASON_IP_INNOROUTES) ||
	       reason == TM_REASON(SKB_DROP_REASON_BPF_CGROUP_EGRESS) ||
	       reason == TM_REASON(SKB_DROP_REASON_NEIGH_FAILED) ||
	       reason == TM_REASON(SKB_DROP_REASON_NEIGH_QUEUEFULL) ||
	       reason == TM_REASON(SKB_DROP_REASON_NEIGH_DEAD) ||
	       reason == TM_REASON(SKB_DROP_REASON_NEIGH_CREATEFAIL) ||
	       reason == TM_REASON(SKB_DROP_REASON_XFRM_POLICY);
}

/* The counts the socket layer made for this very skb, taken back. */
static __always_inline void tm_undo_ingress(struct sk_buff *skb, struct sock *sk, int reason,
					    struct tm_sk *st)
{
	struct tm_undo_hint *u;
	__u32 zero = 0;

	u = bpf_map_lookup_elem(&tm_undo, &zero);
	if (!u || u->skb != (__u64)skb || !sk || u->sk != (__u64)sk || tm_before_socket(reason))
		return;
	u->skb = 0;
	if (!u->dgram) {
		tm_slot_sub(u->slot, &u->a);
	} else if (st) {
		__sync_fetch_and_sub(&st->dgram.packets, u->a.packets);
		__sync_fetch_and_sub(&st->dgram.bytes, u->a.bytes);
		__sync_fetch_and_sub(&st->dgram.payload_bytes, u->a.payload_bytes);
	}
	tm_stat_inc(TM_STAT_DROPS_UNDONE);
}

/* A frame TC egress counted and the device (or a qdisc) then refused:
 * not carried. */
static __always_inline bool tm_undo_egress(struct sk_buff *skb, int reason,
					   const struct tm_counter_val *a)
{
	struct tm_undo_hint *u;
	__u32 one = 1;

	u = bpf_map_lookup_elem(&tm_undo, &one);
	if (!u || u->skb != (__u64)skb || u->sk != (__u64)skb->sk || u->len != skb->len ||
	    !skb->dev || u->ifindex != (__u32)skb->dev->ifindex || tm_before_socket(reason))
		return false;
	u->skb = 0;
	tm_slot_sub(u->slot, &u->a);
	if (u->k.owner.tgid) {
		u->k.layer = TM_LAYER_DROP;
		tm_count_class(&u->k, a);
	}
	tm_stat_inc(TM_STAT_DROPS_UNDONE);
	return true;
}

/* Received TCP data the socket had already: retransmitted bytes of its
 * owner (d: retrans_* only), at the socket layer and on the interface it
 * came in by, where XDP or TC ingress counted it as payload. */
static __always_inline void tm_duplicate(struct sk_buff *skb, struct sock *sk, struct tm_sk *st,
					 const struct tm_pkt *p, struct tm_counter_val *d)
{
	if (!st || !d->retrans_bytes)
		return;
	/* the socket's cached class, else held for the socket layer to flush
	 * (an accepted socket before its first user, a class gone stale) */
	if (!st->adopt && st->l4 == p->l4 && st->family == p->family &&
	    tm_slot_valid(st->slot[TM_DIR_INGRESS], st->gen[TM_DIR_INGRESS]))
		tm_slot_add(st->slot[TM_DIR_INGRESS], d);
	else
		tm_pend(st, TM_DIR_INGRESS, p, d);
	/* TCP has let go of skb->dev by now: the socket's netns */
	tm_flow_retrans(p, sk->__sk_common.skc_net.net->ns.inum, skb->skb_iif, d);
}

/* The owner the dropped packet was for: its socket's, else its flow's. */
static __always_inline bool tm_drop_owner(struct tm_sk *st, const struct tm_pkt *p, __u32 netns,
					  struct tm_class *k)
{
	struct tm_flow_val *fv;
	struct tm_flow_key fk;

	if (st && st->owner.tgid) {
		k->owner = st->owner;
		k->exec_seq = st->exec_seq;
		return true;
	}
	if (!p->has_ports)
		return false;
	tm_flow_of(p, TM_DIR_INGRESS, netns, &fk);
	fv = tm_flow_owner(&fk, tm_bind_epoch());
	if (!fv || fv->bucket != TM_BUCKET_OWNER || !fv->owner.tgid)
		return false;
	k->owner = fv->owner;
	k->exec_seq = fv->exec_seq;
	return true;
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(tm_drop, struct sk_buff *skb, void *location, enum skb_drop_reason reason,
	     struct sock *rx_sk)
{
	struct tm_class k = { .layer = TM_LAYER_DROP, .dir = TM_DIR_INGRESS };
	struct tm_counter_val a;
	struct tm_pkt p = {};
	enum tm_drop_kind kind;
	struct tm_sk *st;
	struct sock *sk;

	if ((int)reason <= TM_REASON(SKB_CONSUMED))
		return 0; /* not a drop: the common case, first */
	if (tm_drop_amount(skb, &p, &a))
		return 0;
	kind = tm_drop_kind((int)reason, &p, a.payload_bytes);
	if (kind == TM_NOT_A_DROP)
		return 0;
	if (kind == TM_DROP && tm_undo_egress(skb, (int)reason, &a))
		return 0; /* refused by the device after TC egress counted it */
	if (!skb->skb_iif)
		return 0; /* sent from here: the socket layer has it as sent */
	sk = rx_sk ? rx_sk : skb->sk;
	st = sk ? bpf_sk_storage_get(&tm_sk_owner, sk, NULL, 0) : NULL;
	if (kind == TM_DUPLICATE) {
		struct tm_counter_val d = { .retrans_packets = a.packets,
					    .retrans_bytes = a.payload_bytes };

		if (p.l4 == TM_L4_TCP && tm_tcp_duplicate((int)reason) && sk)
			tm_duplicate(skb, sk, st, &p, &d);
		return 0;
	}
	tm_undo_ingress(skb, rx_sk, (int)reason, st);
	k.ifindex = skb->skb_iif; /* BTF loads, not probe reads: drops come in bursts */
	k.netns = skb->dev ? skb->dev->nd_net.net->ns.inum
			   : sk ? sk->__sk_common.skc_net.net->ns.inum : 0;
	if (!tm_drop_owner(st, &p, k.netns, &k))
		return 0; /* nobody's: the interface layer has it in a bucket */
	k.l4 = p.l4;
	k.family = p.family;
	tm_count_class(&k, &a);
	return 0;
}

/* An established socket's segment where the stack processes it (tcp_probe
 * fires as tcp_rcv_established starts, after the backlog), with rcv_nxt as
 * the stack will judge it: one that starts below rcv_nxt and ends above it
 * is queued, its old part dropped without a word: that part is
 * retransmitted. Segments wholly old are freed with a reason (above). */
SEC("tp_btf/tcp_probe")
int BPF_PROG(tm_tcp_probe, struct sock *sk, struct sk_buff *skb)
{
	/* this runs for every segment received: TCP's control block read in
	 * place (plain loads), not copied by a helper */
	struct tcp_skb_cb *cb = (void *)skb->cb;
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
	struct tm_counter_val a, d = {};
	__u32 nxt, seq, end, len, old;
	struct tm_pkt p = {};
	struct tm_sk *st;

	if (!tp)
		return 0;
	nxt = tp->rcv_nxt;
	seq = cb->seq;
	end = cb->end_seq;
	if ((__s32)(seq - nxt) >= 0 || (__s32)(end - nxt) <= 0)
		return 0; /* in order, or wholly old: not partly */
	/* its data, from the sequence numbers: a backlog merge keeps the first
	 * segment's headers */
	len = end - seq - !!(cb->tcp_flags & TM_TCP_FIN);
	st = bpf_sk_storage_get(&tm_sk_owner, sk, NULL, 0);
	if (!st || !st->owner.tgid || !len || tm_drop_amount(skb, &p, &a))
		return 0;
	old = nxt - seq < len ? nxt - seq : len;
	d.retrans_bytes = old;
	d.retrans_packets = ((__u64)old * a.packets + len - 1) / len;
	tm_duplicate(skb, sk, st, &p, &d);
	return 0;
}
