/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The socket layer's state per socket (struct tm_sk): find it, claim a
 * socket for the process using it, keep the traffic of not-yet-claimed
 * accepted sockets pending, the owner's class slots cached, and what TCP's
 * and datagram sockets' accounting needs.
 *
 * What payload means here:
 *   TCP sent      sequence space not sent before (tx_next): retransmitted
 *                 segments count as retransmitted, not as payload again;
 *   TCP received  tcp_sock.bytes_received, the in-order data the stack took
 *                 (duplicates are retransmitted, never payload);
 *   datagrams     received: when a process reads them (recv tracepoint), so
 *                 that they count for the reader; a datagram nobody reads is
 *                 a drop (at close, or when the receive buffer was full).
 */
#ifndef TM_OWNER_BPF_H
#define TM_OWNER_BPF_H

#include "taskmeter.bpf.h"
#include "packet.bpf.h"
#include "class.bpf.h"
#include "metadata.bpf.h"
#include "pend.bpf.h"

#define TM_SOCK_STREAM 1
#define TM_MSG_PEEK 2

static __always_inline bool tm_same_owner(const struct tm_owner *a, const struct tm_owner *b)
{
	return a->tgid == b->tgid && a->start_ns == b->start_ns;
}

/* ---- class slots of the socket's owner ---- */

/* Miss: the owner's class for dir, l4, family, by key (and the owner's
 * metadata asked for, if missing). Cached unless an execve raced with it.
 * Not inlined: the verifier walks the slow path once, not per caller. */
static __noinline __attribute__((unused)) __u32 tm_sk_resolve(struct tm_sk *st, __u8 dir, __u8 l4, __u8 fam)
{
	struct tm_meta_slot *ms = st->owner.tgid ? tm_meta_touch(&st->owner) : NULL;
	struct tm_class k = { .owner = st->owner, .layer = TM_LAYER_CGROUP_SKB, .dir = dir,
			      .l4 = l4, .family = fam };
	__u32 idx = TM_OVERFLOW_IDX(dir & 1, l4 & 3, fam & 1), slot, gen;

	if (!st->owner.tgid) {
		slot = TM_SLOT_UNATTRIBUTED(dir & 1, l4 & 3, fam & 1);
		gen = tm_slot_gen(slot);
		goto cache;
	}
	k.exec_seq = ms ? ms->exec_seq : 0;
	if (k.exec_seq != st->exec_seq)
		st->if_gen = 0; /* TC egress's class too is of the old image */
	slot = tm_class_slot(&k, &gen);
	if (ms) {
		ms->cls[idx & (TM_OVERFLOW_SLOTS - 1)] = slot; /* an execve retires it */
		if (ms->exec_seq != k.exec_seq)
			gen = 0; /* raced with one: look again next time */
	}
	st->exec_seq = k.exec_seq;
cache:
	if (st->l4 != l4 || st->family != fam)
		st->gen[dir ^ 1] = 0; /* the other direction's was for other packets */
	st->l4 = l4;
	st->family = fam;
	st->slot[dir & 1] = slot;
	st->gen[dir & 1] = gen;
	return slot;
}

/* Hit: one array access for the generation. */
static __always_inline __u32 tm_sk_slot(struct tm_sk *st, __u8 dir, __u8 l4, __u8 fam)
{
	dir &= 1;
	if (st->l4 == l4 && st->family == fam && tm_slot_valid(st->slot[dir], st->gen[dir]))
		return st->slot[dir];
	return tm_sk_resolve(st, dir, l4, fam);
}

/* ---- TCP ---- */

/* In-order data the stack took since we last looked: received payload. */
static __always_inline __u64 tm_tcp_rx_taken(struct tm_sk *st, struct sock *sk)
{
	struct tcp_sock *tp = tm_core_cast(sk, struct tcp_sock);
	__u64 now = tp->bytes_received, seen = st->rx_seen;

	/* bytes_received counts the peer's FIN as a byte: no payload */
	if (st->rx_fin == 1 && (__s32)(tp->rcv_nxt - st->rx_fin_seq) > 0)
		st->rx_fin = 2;
	now -= st->rx_fin == 2;

	if (seen == (__u64)-1) { /* a socket from before the collector: from now on */
		__sync_val_compare_and_swap(&st->rx_seen, seen, now);
		return 0;
	}
	/* Ingress (softirq) and egress (e.g. the reader's ACK) may look at once,
	 * on two CPUs: whoever moves rx_seen counts what it moved over. */
	if (now <= seen || __sync_val_compare_and_swap(&st->rx_seen, seen, now) != seen)
		return 0;
	return now - seen;
}

/* Count the received payload taken since we last looked for the owner. */
static __always_inline void tm_tcp_rx_flush(struct tm_sk *st, struct sock *sk)
{
	struct tm_counter_val a = {};

	a.payload_bytes = tm_tcp_rx_taken(st, sk);
	if (a.payload_bytes)
		tm_slot_add(tm_sk_slot(st, TM_DIR_INGRESS, st->l4, st->family), &a);
}

/* Sent: split this skb's payload into new and retransmitted by sequence
 * space (a GSO skb's retransmitted segments in proportion). */
static __always_inline void tm_tcp_tx(struct tm_sk *st, const struct tm_pkt *p,
				      struct tm_counter_val *a)
{
	__u32 len = (__u32)a->payload_bytes, seq = p->seq + !!(p->tcp_flags & TM_TCP_SYN);
	__u32 end = seq + len, old;

	if (!len)
		return;
	if (!st->tx_init || (__s32)(seq - st->tx_next) >= 0) {
		st->tx_next = end; /* all new (a gap: data sent before we looked) */
		st->tx_init = 1;
		return;
	}
	old = (__s32)(end - st->tx_next) <= 0 ? len : st->tx_next - seq;
	if (old < len)
		st->tx_next = end;
	a->payload_bytes = len - old;
	a->retrans_bytes = old;
	a->retrans_packets = old == len ? a->packets : (old * a->packets + len - 1) / len;
}

/* Received: the payload comes from bytes_received, later. Whether a
 * segment repeats data is not known here: the socket may be owned by its
 * reader, and then the segment waits in the backlog, where it can also be
 * merged with the next one; rcv_nxt moves on meanwhile. The stack itself
 * says so where it processes the segment (drop.bpf.c: a whole old segment
 * is freed with a reason that says so, a partly old one reaches
 * tcp_data_queue below rcv_nxt). Here: the peer's FIN, for the payload. */
static __always_inline void tm_tcp_rx(struct tm_sk *st, const struct tm_pkt *p,
				      struct tm_counter_val *a)
{
	__u32 seq = p->seq + !!(p->tcp_flags & TM_TCP_SYN);

	if ((p->tcp_flags & TM_TCP_FIN) && !st->rx_fin) {
		st->rx_fin_seq = seq + (__u32)a->payload_bytes; /* the FIN's own number */
		st->rx_fin = 1;
	}
	a->payload_bytes = 0;
}

/* ---- ownership ---- */

/*
 * Is the task sending this packet (current) a user of the socket? For UDP,
 * ICMP and raw sockets, transmits happen only in the sender's syscall. For
 * TCP, softirq work (ACKs, retransmits, timers, data released as the window
 * opens) runs on whatever task it interrupted, but never while a process
 * holds the socket lock: the stack defers to the lock owner instead. So a
 * TCP packet sent while the socket is owned by a user is sent by that user.
 */
static __always_inline bool tm_sent_by_user(struct sock *ksk)
{
	return ksk->sk_protocol != TM_IPPROTO_TCP || ksk->sk_lock.owned;
}

/* Move st's pending traffic (an accepted socket's, before its first user)
 * to its owner. The flag is cleared before the counts are taken: an add
 * that lands after them sets it again after itself, so the next packet
 * flushes it (at worst a flush finds nothing). */
static __noinline __attribute__((unused)) void tm_flush_pending(struct tm_sk *st)
{
	struct tm_counter_val a;

	__sync_lock_test_and_set(&st->pending, 0);
	for (__u8 dir = 0; dir < TM_DIR_MAX; dir++) {
		a.packets = __sync_lock_test_and_set(&st->pend[dir].packets, 0);
		a.bytes = __sync_lock_test_and_set(&st->pend[dir].bytes, 0);
		a.payload_bytes = __sync_lock_test_and_set(&st->pend[dir].payload_bytes, 0);
		a.retrans_packets = __sync_lock_test_and_set(&st->pend[dir].retrans_packets, 0);
		a.retrans_bytes = __sync_lock_test_and_set(&st->pend[dir].retrans_bytes, 0);
		if (!a.packets && !a.payload_bytes && !a.retrans_packets)
			continue; /* (a duplicate adds retransmitted alone) */
		tm_slot_add(tm_sk_slot(st, dir, st->pend_l4, st->pend_family), &a);
	}
}

/* The slow part of a claim: the owner changes. */
static __noinline __attribute__((unused)) void tm_claim_now(struct tm_sk *st,
							   struct task_struct *task,
							   struct sock *ksk)
{
	struct tm_owner o;

	tm_owner_of_task(task, &o);
	if (!st->adopt && tm_same_owner(&st->owner, &o))
		return;
	if (ksk && ksk->sk_protocol == TM_IPPROTO_TCP && ksk->sk_type == TM_SOCK_STREAM) {
		if (st->adopt)
			st->pend[TM_DIR_INGRESS].payload_bytes += tm_tcp_rx_taken(st, ksk); /* flushed below */
		else
			tm_tcp_rx_flush(st, ksk);
	}
	st->owner = o;
	st->adopt = 0;
	st->gen[0] = st->gen[1] = st->if_gen = 0; /* another owner's classes */
	tm_flush_pending(st);
}

/* task uses the socket: from now on its traffic is task's process's. ksk:
 * the socket, for TCP's received data until now (the previous owner's). */
static __always_inline void tm_claim(struct tm_sk *st, struct task_struct *task, struct sock *ksk)
{
	if (task->flags & PF_KTHREAD)
		return;
	if (!st->adopt && st->owner.tgid == task->tgid) /* the common case */
		return;
	tm_claim_now(st, task, ksk);
}

/* ---- datagram sockets: received when read ---- */

/* A datagram socket is never accepted, so its pend_l4/pend_family say what
 * its unread datagrams are. */
static __always_inline void tm_dgram_in(struct tm_sk *st, const struct tm_pkt *p,
					const struct tm_counter_val *a)
{
	st->dgram_hdr = p->hdr_len;
	st->pend_l4 = p->l4;
	st->pend_family = p->family;
	__sync_fetch_and_add(&st->dgram.packets, a->packets);
	__sync_fetch_and_add(&st->dgram.bytes, a->bytes);
	__sync_fetch_and_add(&st->dgram.payload_bytes, a->payload_bytes);
}

/* The reader took a datagram of len payload bytes: it is the reader's. */
static __always_inline void tm_dgram_read(struct tm_sk *st, __u64 len)
{
	struct tm_counter_val a = { .packets = 1 };

	if (!st->dgram.packets)
		return; /* counted before the collector began, or already a drop */
	a.payload_bytes = len < st->dgram.payload_bytes ? len : st->dgram.payload_bytes;
	a.bytes = a.payload_bytes + st->dgram_hdr;
	if (a.bytes > st->dgram.bytes)
		a.bytes = st->dgram.bytes;
	__sync_fetch_and_sub(&st->dgram.packets, 1);
	__sync_fetch_and_sub(&st->dgram.bytes, a.bytes);
	__sync_fetch_and_sub(&st->dgram.payload_bytes, a.payload_bytes);
	tm_slot_add(tm_sk_slot(st, TM_DIR_INGRESS, st->pend_l4, st->pend_family), &a);
}

/* ---- finding the state ---- */

/* State of a socket from before the collector: created from tm_seed. */
static __always_inline struct tm_sk *tm_sk_seeded(struct __sk_buff *skb, struct bpf_sock *sk)
{
	__u64 cookie = bpf_get_socket_cookie(skb);
	struct task_struct *task;
	struct tm_sk *st;
	__u32 *tgid;

	tgid = bpf_map_lookup_elem(&tm_seed, &cookie);
	if (!tgid)
		return NULL;
	task = bpf_task_from_pid(*tgid);
	if (!task)
		return NULL;
	st = bpf_sk_storage_get(&tm_sk_owner, sk, NULL, BPF_SK_STORAGE_GET_F_CREATE);
	if (st && !st->owner.tgid) {
		tm_owner_of_task(task, &st->owner);
		st->rx_seen = (__u64)-1; /* TCP: start from what the socket has now */
	}
	bpf_task_release(task);
	return st;
}

/* The ownership state of skb's socket, or NULL (no socket, or not ours). */
static __always_inline struct tm_sk *tm_sk_of(struct __sk_buff *skb, bool *listener,
					      struct bpf_sock **skp)
{
	struct bpf_sock *sk = skb->sk;
	struct tm_sk *st;

	*listener = false;
	if (!sk)
		return NULL;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return NULL;
	st = bpf_sk_storage_get(&tm_sk_owner, sk, NULL, 0);
	if (!st)
		st = tm_sk_seeded(skb, sk);
	if (!st)
		return NULL;
	if (sk->state == BPF_TCP_LISTEN) {
		*listener = true;
		st->adopt = 1; /* what is accepted from it inherits this */
	}
	*skp = sk;
	return st;
}

#endif /* TM_OWNER_BPF_H */
