/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The interface layer (XDP and TC): every frame an interface carries, in an
 * owner's class or a named bucket, counted as the device counts it, so that
 * per interface the records add up to the kernel's own counters.
 */
#ifndef TM_IFACE_BPF_H
#define TM_IFACE_BPF_H

#include "taskmeter.bpf.h"
#include "packet.bpf.h"
#include "class.bpf.h"
#include "flow.bpf.h"

#define TM_ETH_P_IP 0x0800
#define TM_ETH_P_IPV6 0x86DD
#define TM_ETH_P_8021Q 0x8100
#define TM_ETH_P_8021AD 0x88A8
#define TM_AF_INET 2
#define TM_AF_INET6 10
#define TM_VLAN_HLEN 4
#define TM_ETH_HLEN 14

/* Ethernet header at 0 (and up to two VLAN tags): ethertype and L3 offset. */
static __always_inline int tm_parse_eth(void *ctx, __u32 *l3off, __u16 *proto,
					enum tm_pkt_kind kind)
{
	__u8 h[2];
	__u32 off = 12;

	for (int i = 0; i < 3; i++) {
		if (tm_load(ctx, off, h, 2, kind))
			return -1;
		*proto = (__u16)(h[0] << 8 | h[1]);
		if (*proto != TM_ETH_P_8021Q && *proto != TM_ETH_P_8021AD)
			break;
		off += 4; /* ethertype and TCI, then the next ethertype */
	}
	*l3off = off + 2;
	return 0;
}

static __always_inline __u8 tm_ip_version(__u16 ethertype)
{
	return ethertype == TM_ETH_P_IP ? 4 : 6;
}

/* Not ours: routed through (forwarded) or addressed to this host. */
static __always_inline __u8 tm_bucket_of(void *ctx, const struct tm_pkt *p, __u32 ifindex)
{
	struct bpf_fib_lookup fib = {};
	long rc;

	fib.family = p->family == TM_FAMILY_IPV4 ? TM_AF_INET : TM_AF_INET6;
	fib.l4_protocol = (__u8)p->ip_proto;
	fib.sport = p->sport;
	fib.dport = p->dport;
	fib.ifindex = ifindex;
	if (p->family == TM_FAMILY_IPV4) {
		fib.ipv4_src = p->saddr[0];
		fib.ipv4_dst = p->daddr[0];
	} else {
		__builtin_memcpy(fib.ipv6_src, p->saddr, 16);
		__builtin_memcpy(fib.ipv6_dst, p->daddr, 16);
	}
	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS || rc == BPF_FIB_LKUP_RET_NO_NEIGH ||
	    rc == BPF_FIB_LKUP_RET_FRAG_NEEDED)
		return TM_BUCKET_FORWARDED;
	return TM_BUCKET_LOCAL;
}

/* Payload of one frame: from the IP header's length, so that Ethernet
 * padding of short frames is not taken for data. */
static __always_inline __u64 tm_frame_payload(const struct tm_pkt *p, __u32 l3len)
{
	__u32 ip_len = p->ip_len && p->ip_len < l3len ? p->ip_len : l3len;

	return ip_len > p->hdr_len ? ip_len - p->hdr_len : 0;
}

/* A bucket's class on this interface, looked up by key (buckets without a
 * flow to cache them in: not IP, malformed). */
static __always_inline __u32 tm_bucket_slot(__u8 bucket, __u32 netns, __u32 ifindex, __u8 layer,
					    __u8 dir, __u8 l4, __u8 fam)
{
	struct tm_class k = { .bucket = bucket, .netns = netns, .ifindex = ifindex,
			      .layer = layer, .dir = dir, .l4 = l4, .family = fam };
	__u32 gen;

	return tm_class_slot(&k, &gen);
}

/* A flow that missed tm_flows4/6: its owner through a socket bound to its
 * local port, else its bucket; remembered for the flow's next packets. */
static __noinline __attribute__((unused)) struct tm_flow_val *tm_flow_classify(void *ctx, const struct tm_pkt *p,
							    const struct tm_flow_key *fk,
							    __u32 ifindex, __u64 epoch)
{
	struct tm_flow_key k = *fk;
	struct tm_flow_val *o = tm_flow_owner(&k, epoch);

	return tm_flow_remember(fk, o, o ? TM_BUCKET_OWNER : tm_bucket_of(ctx, p, ifindex), epoch);
}

static __always_inline void tm_frag_key_of(const struct tm_pkt *p, __u32 netns,
					   struct tm_frag_key *k)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->netns = netns;
	k->family = p->family;
	k->proto = (__u8)p->ip_proto;
	k->id = p->frag_id;
	__builtin_memcpy(k->saddr, p->saddr, 16);
	__builtin_memcpy(k->daddr, p->daddr, 16);
}

/* The flow of a received packet: its own ports, or, for a fragment after
 * the first, those its first fragment had. false: no flow (not TCP, UDP or
 * ICMP echo; a fragment whose first was not seen). */
static __always_inline bool tm_ingress_flow(const struct tm_pkt *p, __u32 netns,
					    struct tm_flow_key *fk)
{
	struct tm_flow_key *first;
	struct tm_frag_key k;

	if (p->has_ports) {
		tm_flow_of(p, TM_DIR_INGRESS, netns, fk);
		if (p->is_frag) {
			tm_frag_key_of(p, netns, &k);
			bpf_map_update_elem(&tm_frags, &k, fk, BPF_ANY);
		}
		return true;
	}
	if (!p->is_frag || p->first_frag)
		return false;
	tm_frag_key_of(p, netns, &k);
	first = bpf_map_lookup_elem(&tm_frags, &k);
	if (!first)
		return false;
	*fk = *first;
	return true;
}

/*
 * The slot of a received frame whose IP packet starts at l3off: its flow's
 * (one lookup when the flow is known), else a bucket's. Fills
 * a->payload_bytes and *p, which the caller zeroed (the parsed packet; its
 * header length stays 0 when it is not IP or malformed).
 */
static __always_inline __u32 tm_ingress_slot(void *ctx, __u32 l3off, __u16 ethertype, __u32 len,
					     __u32 netns, __u32 ifindex, __u8 layer,
					     struct tm_counter_val *a, struct tm_pkt *p,
					     enum tm_pkt_kind kind)
{
	struct tm_flow_val *v = NULL;
	struct tm_flow_key fk;
	__u64 epoch;

	if (ethertype != TM_ETH_P_IP && ethertype != TM_ETH_P_IPV6)
		return tm_bucket_slot(TM_BUCKET_NON_IP, netns, ifindex, layer, TM_DIR_INGRESS,
				      TM_L4_OTHER, TM_FAMILY_NONE);
	if (tm_parse_ip(ctx, l3off, p, tm_ip_version(ethertype), kind)) {
		p->hdr_len = 0; /* what it parsed before it gave up */
		return tm_bucket_slot(TM_BUCKET_MALFORMED, netns, ifindex, layer, TM_DIR_INGRESS,
				      TM_L4_OTHER, TM_FAMILY_NONE);
	}
	a->payload_bytes = tm_frame_payload(p, len > l3off ? len - l3off : 0);
#ifdef TM_BENCH_STAGE /* make bench only (tests/bench): what each step costs */
	if (TM_BENCH_STAGE == 1)
		return 0; /* parsed: no flow */
#endif
	if (tm_ingress_flow(p, netns, &fk)) {
		epoch = tm_bind_epoch();
		v = tm_flow_get(&fk, epoch);
		if (!v)
			v = tm_flow_classify(ctx, p, &fk, ifindex, epoch);
	}
#ifdef TM_BENCH_STAGE
	if (TM_BENCH_STAGE == 2)
		return v ? 0 : 1; /* the flow looked up: no class */
#endif
	if (v)
		return tm_flow_slot(v, netns, ifindex, layer, p->l4, p->family);
	return tm_bucket_slot(tm_bucket_of(ctx, p, ifindex), netns, ifindex, layer,
			      TM_DIR_INGRESS, p->l4, p->family);
}

#endif /* TM_IFACE_BPF_H */
