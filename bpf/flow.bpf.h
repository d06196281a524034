/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Flow -> owner (tm_flows): published by the socket hooks, looked up by the
 * hooks that run before a packet has met its socket.
 */
#ifndef TM_FLOW_BPF_H
#define TM_FLOW_BPF_H

#include "taskmeter.bpf.h"
#include "packet.bpf.h"

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

static __always_inline __u8 tm_proto_of(const struct tm_pkt *p)
{
	return p->l4 == TM_L4_ICMP ? (p->family == TM_FAMILY_IPV6 ? TM_IPPROTO_ICMPV6
								  : TM_IPPROTO_ICMP)
				   : (__u8)p->ip_proto;
}

/* Key of p's flow as seen by this host: local is the source of what it
 * sends (egress) and the destination of what it receives. */
static __always_inline void tm_flow_of(const struct tm_pkt *p, __u8 dir, __u32 netns,
				       struct tm_flow_key *k)
{
	bool out = dir == TM_DIR_EGRESS;

	__builtin_memset(k, 0, sizeof(*k));
	k->netns = netns;
	k->family = p->family;
	k->proto = tm_proto_of(p);
	k->lport = out ? p->sport : p->dport;
	k->rport = out ? p->dport : p->sport;
	__builtin_memcpy(k->laddr, out ? p->saddr : p->daddr, 16);
	__builtin_memcpy(k->raddr, out ? p->daddr : p->saddr, 16);
}

/* The owner of the local socket for k: the connected flow, else a socket
 * bound to the local address and port, else one bound to the wildcard
 * address (for IPv4 also a dual-stack IPv6 one). */
static __always_inline struct tm_flow_val *tm_flow_owner(struct tm_flow_key *k)
{
	struct tm_flow_val *o = bpf_map_lookup_elem(&tm_flows, k);

	if (o)
		return o;
	k->rport = 0;
	__builtin_memset(k->raddr, 0, 16);
	o = bpf_map_lookup_elem(&tm_flows, k);
	if (o)
		return o;
	__builtin_memset(k->laddr, 0, 16);
	o = bpf_map_lookup_elem(&tm_flows, k);
	if (o || k->family != TM_FAMILY_IPV4)
		return o;
	k->family = TM_FAMILY_IPV6;
	return bpf_map_lookup_elem(&tm_flows, k);
}

static __always_inline void tm_flow_publish(const struct tm_flow_key *k, const struct tm_owner *o,
					    __u32 exec_seq)
{
	struct tm_flow_val v = { .owner = *o, .exec_seq = exec_seq };

	if (!bpf_map_update_elem(&tm_flows, k, &v, BPF_ANY))
		tm_stat_inc(TM_STAT_FLOW_PUBLISHED);
}

static __always_inline __u32 tm_skb_netns(struct __sk_buff *skb)
{
	struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb);

	return BPF_CORE_READ(kskb, dev, nd_net.net, ns.inum);
}

/* Interface-layer counting; when the map is full, to the overflow slot. */
static __always_inline void tm_if_count(struct tm_if_key *key, const struct tm_counter_val *a)
{
	struct tm_counter_val *v;
	__u32 idx;

	if (tm_map_add(&tm_if_counters, key, a))
		return;
	tm_stat_inc(TM_STAT_IF_MAP_FULL);
	idx = key->layer * TM_DIR_MAX + key->dir;
	v = bpf_map_lookup_elem(&tm_if_overflow, &idx);
	if (v)
		tm_add(v, a->packets, a->bytes, a->payload_bytes);
}

/* Owner and its exec generation of an interface-layer key. */
static __always_inline void tm_if_owner(struct tm_if_key *key, const struct tm_owner *o,
					__u32 exec_seq)
{
	key->owner = *o;
	key->bucket = TM_BUCKET_OWNER;
	key->exec_seq = exec_seq;
}

#endif /* TM_FLOW_BPF_H */
