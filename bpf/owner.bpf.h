/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Socket ownership on the packet path (see struct tm_sk): find a packet's
 * socket state, claim a socket for the process using it, keep the traffic
 * of not-yet-claimed accepted sockets pending.
 */
#ifndef TM_OWNER_BPF_H
#define TM_OWNER_BPF_H

#include "taskmeter.bpf.h"
#include "packet.bpf.h"
#include "metadata.bpf.h"

#define TM_IPPROTO_TCP_SK 6

/*
 * Is the task sending this packet (current) a user of the socket? For UDP,
 * ICMP and raw sockets, transmits happen only in the sender's syscall. For
 * TCP, softirq work (ACKs, retransmits, timers, data released as the window
 * opens) runs on whatever task it interrupted, but never while a process
 * holds the socket lock: the stack defers to the lock owner instead. So a
 * TCP packet sent while the socket is owned by a user is sent by that user.
 */
static __always_inline bool tm_sent_by_user(struct bpf_sock *sk)
{
	struct tcp_sock *tp;

	if (sk->protocol != TM_IPPROTO_TCP_SK)
		return true;
	tp = bpf_skc_to_tcp_sock(sk);
	return tp && tp->inet_conn.icsk_inet.sk.sk_lock.owned;
}

static __always_inline bool tm_same_owner(const struct tm_owner *a, const struct tm_owner *b)
{
	return a->tgid == b->tgid && a->start_ns == b->start_ns;
}

/* Move st's pending traffic to its (new) owner. */
static __always_inline void tm_flush_pending(struct tm_sk *st)
{
	struct tm_counter_key key = {
		.owner = st->owner, .l4 = st->pend_l4, .family = st->pend_family,
	};
	struct tm_counter_val a;

	for (__u8 dir = 0; dir < TM_DIR_MAX; dir++) {
		a.packets = __sync_lock_test_and_set(&st->pending[dir].packets, 0);
		a.bytes = __sync_lock_test_and_set(&st->pending[dir].bytes, 0);
		a.payload_bytes = __sync_lock_test_and_set(&st->pending[dir].payload_bytes, 0);
		if (!a.packets)
			continue;
		key.dir = dir;
		key.exec_seq = tm_meta_touch(&st->owner);
		tm_count(&key, &a);
	}
}

/* task uses the socket: from now on its traffic is task's process's. */
static __always_inline void tm_claim(struct tm_sk *st, struct task_struct *task)
{
	struct tm_owner o;

	if (task->flags & PF_KTHREAD)
		return;
	if (!st->adopt && st->owner.tgid == task->tgid) /* the common case */
		return;
	tm_owner_of_task(task, &o);
	if (!st->adopt && tm_same_owner(&st->owner, &o))
		return;
	st->owner = o;
	st->adopt = 0;
	tm_flush_pending(st);
}

static __always_inline void tm_pend(struct tm_sk *st, __u8 dir, const struct tm_pkt *p,
				    const struct tm_counter_val *a)
{
	st->pend_l4 = p->l4;
	st->pend_family = p->family;
	if (dir >= TM_DIR_MAX)
		return;
	__sync_fetch_and_add(&st->pending[dir].packets, a->packets);
	__sync_fetch_and_add(&st->pending[dir].bytes, a->bytes);
	__sync_fetch_and_add(&st->pending[dir].payload_bytes, a->payload_bytes);
}

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
	if (st && !st->owner.tgid)
		tm_owner_of_task(task, &st->owner);
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
