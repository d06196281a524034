/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Packet classification and accounting shared by the packet hooks. Parsing
 * goes through bpf_skb_load_bytes() from an L3 offset, so it works on
 * non-linear and GSO skbs alike.
 */
#ifndef TM_PACKET_BPF_H
#define TM_PACKET_BPF_H

#include "taskmeter.bpf.h"

#define TM_IPPROTO_HOPOPTS 0
#define TM_IPPROTO_ICMP 1
#define TM_IPPROTO_TCP 6
#define TM_IPPROTO_UDP 17
#define TM_IPPROTO_ROUTING 43
#define TM_IPPROTO_FRAGMENT 44
#define TM_IPPROTO_ICMPV6 58
#define TM_IPPROTO_DSTOPTS 60
#define TM_IPV6_EXT_MAX 4

/* What one (possibly GSO) skb amounts to. */
struct tm_pkt {
	__u8 l4;          /* enum tm_l4 */
	__u8 family;      /* enum tm_family */
	__u32 hdr_len;    /* L3 + L4 header bytes of one segment */
	__u32 l4_off;     /* offset of the L4 header from L3 start */
	__u32 ip_proto;
	__u8 first_frag;  /* 0: a non-first fragment, no L4 header */
};

static __always_inline __u8 tm_l4_of(__u32 proto)
{
	switch (proto) {
	case TM_IPPROTO_TCP:
		return TM_L4_TCP;
	case TM_IPPROTO_UDP:
		return TM_L4_UDP;
	case TM_IPPROTO_ICMP:
	case TM_IPPROTO_ICMPV6:
		return TM_L4_ICMP;
	default:
		return TM_L4_OTHER;
	}
}

/* IPv4 header at off; returns 0 or -1 (malformed). */
static __always_inline int tm_parse_ipv4(struct __sk_buff *skb, __u32 off, struct tm_pkt *p)
{
	struct iphdr ip;

	if (bpf_skb_load_bytes(skb, off, &ip, sizeof(ip)))
		return -1;
	if (ip.ihl < 5)
		return -1;
	p->family = TM_FAMILY_IPV4;
	p->ip_proto = ip.protocol;
	p->l4_off = ip.ihl * 4;
	p->first_frag = !(ip.frag_off & bpf_htons(0x1fff));
	return 0;
}

/* IPv6 header and up to TM_IPV6_EXT_MAX extension headers. */
static __always_inline int tm_parse_ipv6(struct __sk_buff *skb, __u32 off, struct tm_pkt *p)
{
	struct ipv6hdr ip6;
	__u8 ext[2];
	__u32 nh, pos = sizeof(ip6);

	if (bpf_skb_load_bytes(skb, off, &ip6, sizeof(ip6)))
		return -1;
	p->family = TM_FAMILY_IPV6;
	p->first_frag = 1;
	nh = ip6.nexthdr;
	for (int i = 0; i < TM_IPV6_EXT_MAX; i++) {
		if (nh != TM_IPPROTO_HOPOPTS && nh != TM_IPPROTO_ROUTING &&
		    nh != TM_IPPROTO_DSTOPTS && nh != TM_IPPROTO_FRAGMENT)
			break;
		if (bpf_skb_load_bytes(skb, off + pos, ext, sizeof(ext)))
			return -1;
		if (nh == TM_IPPROTO_FRAGMENT) {
			__be16 frag_off;

			if (bpf_skb_load_bytes(skb, off + pos + 2, &frag_off, sizeof(frag_off)))
				return -1;
			p->first_frag = !(frag_off & bpf_htons(0xfff8));
			pos += 8;
		} else {
			pos += (ext[1] + 1) * 8;
		}
		nh = ext[0];
	}
	p->ip_proto = nh;
	p->l4_off = pos;
	return 0;
}

/* L4 header length; 0 for protocols whose payload we do not separate. */
static __always_inline int tm_parse_l4(struct __sk_buff *skb, __u32 off, struct tm_pkt *p)
{
	__u8 doff;

	p->l4 = tm_l4_of(p->ip_proto);
	p->hdr_len = p->l4_off;
	if (!p->first_frag)
		return 0;
	switch (p->l4) {
	case TM_L4_TCP:
		if (bpf_skb_load_bytes(skb, off + p->l4_off + 12, &doff, 1))
			return -1;
		if ((doff >> 4) < 5)
			return -1;
		p->hdr_len += (doff >> 4) * 4;
		return 0;
	case TM_L4_UDP:
	case TM_L4_ICMP:
		p->hdr_len += 8;
		return 0;
	default:
		return 0;
	}
}

/* Parse the IP packet that starts at off. 0, or -1 when malformed. */
static __always_inline int tm_parse_ip(struct __sk_buff *skb, __u32 off, struct tm_pkt *p)
{
	__u8 ver;
	int err;

	if (bpf_skb_load_bytes(skb, off, &ver, 1))
		return -1;
	if ((ver >> 4) == 4)
		err = tm_parse_ipv4(skb, off, p);
	else if ((ver >> 4) == 6)
		err = tm_parse_ipv6(skb, off, p);
	else
		return -1;
	if (err)
		return err;
	return tm_parse_l4(skb, off, p);
}

static __always_inline void tm_add(struct tm_counter_val *v, __u64 pkts, __u64 bytes, __u64 payload)
{
	v->packets += pkts;
	v->bytes += bytes;
	v->payload_bytes += payload;
}

/* What one skb adds to a counter. A GSO skb is counted as the segments it
 * becomes on the wire, each carrying its own headers. */
static __always_inline void tm_amount(const struct tm_pkt *p, __u32 ip_len, __u32 gso_segs,
				      struct tm_counter_val *a)
{
	a->packets = gso_segs > 1 ? gso_segs : 1;
	a->payload_bytes = ip_len > p->hdr_len ? ip_len - p->hdr_len : 0;
	a->bytes = ip_len + (a->packets - 1) * p->hdr_len;
}

/* Add a to key's counters; to the overflow slot when the map is full. */
static __always_inline void tm_count(struct tm_counter_key *key, const struct tm_counter_val *a)
{
	struct tm_counter_val *v;
	__u32 idx;
	long err;

	v = bpf_map_lookup_elem(&tm_counters, key);
	if (v) {
		tm_add(v, a->packets, a->bytes, a->payload_bytes);
		return;
	}
	err = bpf_map_update_elem(&tm_counters, key, a, BPF_NOEXIST);
	if (!err)
		return;
	if (err == -EEXIST) { /* another CPU created it meanwhile */
		v = bpf_map_lookup_elem(&tm_counters, key);
		if (v) {
			tm_add(v, a->packets, a->bytes, a->payload_bytes);
			return;
		}
	}
	tm_stat_inc(TM_STAT_COUNTER_MAP_FULL);
	idx = TM_OVERFLOW_IDX(key->dir, key->l4, key->family);
	v = bpf_map_lookup_elem(&tm_overflow, &idx);
	if (v)
		tm_add(v, a->packets, a->bytes, a->payload_bytes);
}

#endif /* TM_PACKET_BPF_H */
