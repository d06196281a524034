/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Flow -> owner (tm_flows4 and tm_flows6, one map to the code below):
 * published by the socket hooks, looked up by the hooks that run before a
 * packet has met its socket, with the slot of the flow's interface-layer
 * class cached in the value. A flow with no local socket is classified
 * once (forwarded, local without owner) and cached there too, until a bind
 * could change the answer (tm_globals.bind_epoch).
 */
#ifndef TM_FLOW_BPF_H
#define TM_FLOW_BPF_H

#include "taskmeter.bpf.h"
#include "packet.bpf.h"
#include "class.bpf.h"

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

/* ---- the two maps as one: an IPv4 flow's key is its addresses alone ---- */

static __always_inline struct tm_flow_val *tm_flows_get(const struct tm_flow_key *k)
{
	struct tm_flow_key4 k4;

	if (k->family == TM_FAMILY_IPV6)
		return bpf_map_lookup_elem(&tm_flows6, k);
	tm_flow_key4_of(k, &k4);
	return bpf_map_lookup_elem(&tm_flows4, &k4);
}

static __always_inline long tm_flows_put(const struct tm_flow_key *k, const struct tm_flow_val *v,
					 __u64 flags)
{
	struct tm_flow_key4 k4;

	if (k->family == TM_FAMILY_IPV6)
		return bpf_map_update_elem(&tm_flows6, k, v, flags);
	tm_flow_key4_of(k, &k4);
	return bpf_map_update_elem(&tm_flows4, &k4, v, flags);
}

/* ---- bound ports ---- */

static __always_inline __u32 tm_ports_of(__u8 proto)
{
	return proto == TM_IPPROTO_TCP ? TM_PORTS_TCP : proto == TM_IPPROTO_UDP ? TM_PORTS_UDP
										: TM_PORTS_ICMP;
}

/* Note that a socket may be bound to this local port (network order). A
 * bit newly set changes what cached classifications would say. */
static __always_inline void tm_port_mark(__u8 proto, __be16 port)
{
	__u16 p = bpf_ntohs(port);
	__u32 idx = tm_ports_of(proto) * TM_PORT_WORDS + p / 64;
	__u64 bit = 1ull << (p % 64), *w = bpf_map_lookup_elem(&tm_ports, &idx);
	struct tm_globals *g;

	if (!w || (*w & bit))
		return;
	__sync_fetch_and_or(w, bit);
	g = tm_globals_get();
	if (g)
		__sync_fetch_and_add(&g->bind_epoch, 1);
}

static __always_inline bool tm_port_maybe(__u8 proto, __be16 port)
{
	__u16 p = bpf_ntohs(port);
	__u32 idx = tm_ports_of(proto) * TM_PORT_WORDS + p / 64;
	__u64 *w = bpf_map_lookup_elem(&tm_ports, &idx);

	return w && (*w & (1ull << (p % 64)));
}

static __always_inline __u64 tm_bind_epoch(void)
{
	struct tm_globals *g = tm_globals_get();

	return g ? g->bind_epoch : 0;
}

/* ---- publishing and looking up ---- */

static __always_inline void tm_flow_publish(const struct tm_flow_key *k, const struct tm_owner *o,
					    __u32 exec_seq)
{
	struct tm_flow_val v = { .owner = *o, .exec_seq = exec_seq };

	if (!k->rport)
		tm_port_mark(k->proto, k->lport); /* found by port only */
	if (!tm_flows_put(k, &v, BPF_ANY))
		tm_stat_inc(TM_STAT_FLOW_PUBLISHED);
}

/* A flow's value that is a cache of a classification, made before a bind
 * that may have changed it, is no answer. */
static __always_inline struct tm_flow_val *tm_flow_get(const struct tm_flow_key *k, __u64 epoch)
{
	struct tm_flow_val *v = tm_flows_get(k);

	if (v && v->cached && v->epoch != epoch)
		return NULL;
	return v;
}

/* The value for k: the connected flow, else (only where the local port may
 * be bound) a socket bound to the local address and port, else one bound
 * to the wildcard address (for IPv4 also a dual-stack IPv6 one). */
static __always_inline struct tm_flow_val *tm_flow_owner(struct tm_flow_key *k, __u64 epoch)
{
	struct tm_flow_val *o = tm_flow_get(k, epoch);

	if (o || !tm_port_maybe(k->proto, k->lport))
		return o;
	k->rport = 0;
	__builtin_memset(k->raddr, 0, 16);
	o = tm_flows_get(k);
	if (o)
		return o;
	__builtin_memset(k->laddr, 0, 16);
	o = tm_flows_get(k);
	if (o || k->family != TM_FAMILY_IPV4)
		return o;
	k->family = TM_FAMILY_IPV6;
	return tm_flows_get(k);
}

/* Remember how flow k (the packet's own, not a fallback key) was
 * classified: its owner (found through its listener) or its bucket. */
static __always_inline struct tm_flow_val *tm_flow_remember(const struct tm_flow_key *k,
							    const struct tm_flow_val *as,
							    __u8 bucket, __u64 epoch)
{
	struct tm_flow_val v = { .bucket = bucket, .cached = 1, .epoch = epoch }, *old;

	if (as) {
		v.owner = as->owner;
		v.exec_seq = as->exec_seq;
	}
	/* Never over a socket's own entry (published meanwhile): it knows
	 * better. A stale cache of ours is renewed in place. */
	if (!tm_flows_put(k, &v, BPF_NOEXIST))
		return tm_flows_get(k);
	old = tm_flows_get(k);
	if (!old || !old->cached)
		return old;
	old->owner = v.owner;
	old->exec_seq = v.exec_seq;
	old->bucket = bucket;
	old->c_gen = 0; /* its class too */
	old->epoch = epoch;
	return old;
}

/* ---- the interface layer's class of a flow ---- */

/* Its class key on this interface and layer, in direction dir. */
static __always_inline void tm_flow_class(const struct tm_flow_val *v, __u32 netns, __u32 ifindex,
					  __u8 layer, __u8 dir, __u8 l4, __u8 fam,
					  struct tm_class *k)
{
	__builtin_memset(k, 0, sizeof(*k));
	if (v->bucket == TM_BUCKET_OWNER) {
		k->owner = v->owner;
		k->exec_seq = v->exec_seq;
	}
	k->bucket = v->bucket;
	k->netns = netns;
	k->ifindex = ifindex;
	k->layer = layer;
	k->dir = dir;
	k->l4 = l4;
	k->family = fam;
}

/* The slot of the flow's received traffic on this interface: the cached
 * one while it holds, else by key (and cached for the next packet). */
static __always_inline __u32 tm_flow_slot(struct tm_flow_val *v, __u32 netns, __u32 ifindex,
					  __u8 layer, __u8 l4, __u8 fam)
{
	struct tm_class k;
	__u32 slot, gen;

	if (v->c_ifindex == ifindex && v->c_layer == layer && tm_slot_valid(v->c_slot, v->c_gen))
		return v->c_slot;
	tm_flow_class(v, netns, ifindex, layer, TM_DIR_INGRESS, l4, fam, &k);
	slot = tm_class_slot(&k, &gen);
	v->c_ifindex = ifindex;
	v->c_layer = layer;
	v->c_slot = slot;
	v->c_gen = gen;
	return slot;
}

/* A received segment that XDP or TC ingress counted as payload of the
 * flow's owner on its interface turned out to carry data the socket had
 * (a->retrans_*): move that much from payload to retransmitted there. */
static __always_inline void tm_flow_retrans(const struct tm_pkt *p, __u32 netns, __u32 ifindex,
					    const struct tm_counter_val *a)
{
	struct tm_counter_val d = { .retrans_packets = a->retrans_packets,
				    .retrans_bytes = a->retrans_bytes };
	struct tm_flow_val *v;
	struct tm_flow_key k;

	tm_flow_of(p, TM_DIR_INGRESS, netns, &k);
	v = tm_flows_get(&k);
	if (!v || v->c_ifindex != ifindex || !tm_slot_valid(v->c_slot, v->c_gen))
		return;
	d.payload_bytes = -a->retrans_bytes; /* per CPU, summed modulo 2^64 */
	tm_slot_add(v->c_slot, &d);
}

#endif /* TM_FLOW_BPF_H */
