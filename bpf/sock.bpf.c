// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Socket lifecycle: every socket created by a process in the attached cgroup
 * is stamped with its creator's identity, in the creator's own context;
 * bound sockets are published by port; datagrams a socket still holds
 * unread when it is released are drops.
 */
#include "taskmeter.bpf.h"
#include "packet.bpf.h"
#include "class.bpf.h"
#include "flow.bpf.h"

SEC("cgroup/sock_create")
int tm_sock_create(struct bpf_sock *sk)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct tm_sk *st;

	st = bpf_sk_storage_get(&tm_sk_owner, sk, NULL, BPF_SK_STORAGE_GET_F_CREATE);
	if (st)
		tm_owner_of_task(task, &st->owner);
	return 1; /* never refuse a socket */
}

/* A bound socket (listener, UDP server) is published by its local address
 * and port as soon as it is bound, so that XDP attributes even the first
 * packet that reaches it. A v4-mapped IPv6 address is published as IPv4,
 * as packets carry it. A bind may change how flows cached before would be
 * classified: it moves the bind epoch. */
static __always_inline int tm_post_bind(struct bpf_sock *sk, bool v6)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct tm_flow_key k = {};
	struct tm_meta_slot *slot;
	struct tm_globals *g;
	struct tm_sk *st;

	st = bpf_sk_storage_get(&tm_sk_owner, sk, NULL, 0);
	if (!st || !st->owner.tgid)
		return 1;
	k.netns = BPF_CORE_READ(task, nsproxy, net_ns, ns.inum);
	k.proto = (__u8)sk->protocol;
	k.lport = bpf_htons((__u16)sk->src_port);
	k.family = v6 ? TM_FAMILY_IPV6 : TM_FAMILY_IPV4;
	if (!v6) {
		k.laddr[0] = sk->src_ip4;
	} else if (!sk->src_ip6[0] && !sk->src_ip6[1] && sk->src_ip6[2] == bpf_htonl(0xffff)) {
		k.family = TM_FAMILY_IPV4;
		k.laddr[0] = sk->src_ip6[3];
	} else {
		k.laddr[0] = sk->src_ip6[0];
		k.laddr[1] = sk->src_ip6[1];
		k.laddr[2] = sk->src_ip6[2];
		k.laddr[3] = sk->src_ip6[3];
	}
	slot = bpf_map_lookup_elem(&tm_meta, &st->owner);
	tm_flow_publish(&k, &st->owner, slot ? slot->exec_seq : 0);
	g = tm_globals_get();
	if (g)
		__sync_fetch_and_add(&g->bind_epoch, 1);
	return 1;
}

SEC("cgroup/post_bind4")
int tm_post_bind4(struct bpf_sock *sk)
{
	return tm_post_bind(sk, false);
}

SEC("cgroup/post_bind6")
int tm_post_bind6(struct bpf_sock *sk)
{
	return tm_post_bind(sk, true);
}

/* Datagrams received and never read: dropped with the socket (the DROP
 * layer, on no interface: the socket dropped them, not a device). */
SEC("cgroup/sock_release")
int tm_sock_release(struct bpf_sock *sk)
{
	struct tm_class k = { .layer = TM_LAYER_DROP, .dir = TM_DIR_INGRESS };
	struct tm_counter_val a = {};
	struct tm_meta_slot *ms;
	struct tm_sk *st;

	st = bpf_sk_storage_get(&tm_sk_owner, sk, NULL, 0);
	if (!st || !st->owner.tgid || !st->dgram.packets)
		return 1;
	a.packets = __sync_lock_test_and_set(&st->dgram.packets, 0);
	a.bytes = __sync_lock_test_and_set(&st->dgram.bytes, 0);
	a.payload_bytes = __sync_lock_test_and_set(&st->dgram.payload_bytes, 0);
	ms = bpf_map_lookup_elem(&tm_meta, &st->owner);
	k.owner = st->owner;
	k.exec_seq = ms ? ms->exec_seq : st->exec_seq;
	k.l4 = st->pend_l4;
	k.family = st->pend_family;
	tm_count_class(&k, &a);
	return 1;
}
