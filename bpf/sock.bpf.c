// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Ownership: every socket created by a process in the attached cgroup is
 * stamped with its creator's identity, in the creator's own context.
 */
#include "taskmeter.bpf.h"

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
 * as packets carry it. */
static __always_inline int tm_post_bind(struct bpf_sock *sk, bool v6)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct tm_flow_val v = {};
	struct tm_flow_key k = {};
	struct tm_meta_slot *slot;
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
	v.owner = st->owner;
	slot = bpf_map_lookup_elem(&tm_meta, &st->owner);
	v.exec_seq = slot ? slot->exec_seq : 0;
	if (!bpf_map_update_elem(&tm_flows, &k, &v, BPF_ANY))
		tm_stat_inc(TM_STAT_FLOW_PUBLISHED);
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
