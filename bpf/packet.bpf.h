/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one packet parser: IPv4/IPv6 (with extension headers) and the L4
 * header, from an L3 offset, over three kinds of packet — an XDP frame, an
 * skb context, or an skb in kernel memory (the drop tracepoint) — chosen at
 * compile time at every call, so that each program keeps only its own
 * accessors. Also what one (possibly GSO) packet amounts to.
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
#define TM_TCP_FIN 0x01
#define TM_TCP_SYN 0x02

enum tm_pkt_kind { TM_PKT_XDP, TM_PKT_SKB, TM_PKT_KERNEL };

/* What one (possibly GSO) packet is, and its flow. */
struct tm_pkt {
	__u8 l4;          /* enum tm_l4 */
	__u8 family;      /* enum tm_family */
	__u8 first_frag;  /* 0: a non-first fragment, no L4 header */
	__u8 has_ports;   /* sport/dport valid (TCP, UDP, ICMP echo id) */
	__u8 tcp_flags;
	__u8 is_frag;     /* a fragment, first or not */
	__u8 pad[2];
	__u32 frag_id;    /* its datagram's IP id (IPv4: 16 bits; network order) */
	__u32 hdr_len;    /* L3 + L4 header bytes of one segment */
	__u32 ip_len;     /* length the IP header gives (0: unknown, e.g. jumbo) */
	__u32 l4_off;     /* offset of the L4 header from L3 start */
	__u32 ip_proto;
	__u32 seq;        /* TCP sequence number (host order) */
	__be16 sport, dport;
	__u32 saddr[4], daddr[4];
};

/* Headers are read straight from the packet when they lie this close to
 * its start in the linear part, which is nearly always. */
#define TM_DIRECT_MAX 256

/*
 * Copy len bytes at off. ctx: the XDP or skb context, or for TM_PKT_KERNEL
 * the address of the L3 header in kernel memory. A packet copies directly
 * when it can (a few instructions), else through the load helper, which
 * also reaches non-linear data (GSO skbs, XDP multi-buffer frames).
 *
 * Told the source is aligned, clang copies a word at a time instead of a
 * byte at a time (it cannot know headers' alignment, and BPF has no
 * unaligned load of its own): the verifier allows unaligned packet loads
 * where the CPU does them well (x86, arm64: no strict alignment), and the
 * JIT emits plain loads, which do not care. 5-11 ns a packet.
 */
static __always_inline long tm_load(void *ctx, __u32 off, void *to, __u32 len,
				    enum tm_pkt_kind kind)
{
	void *data, *end, *p;

	if (kind == TM_PKT_KERNEL)
		return bpf_probe_read_kernel(to, len, ctx + off);
	if (kind == TM_PKT_XDP) {
		data = (void *)(long)((struct xdp_md *)ctx)->data;
		end = (void *)(long)((struct xdp_md *)ctx)->data_end;
	} else {
		data = (void *)(long)((struct __sk_buff *)ctx)->data;
		end = (void *)(long)((struct __sk_buff *)ctx)->data_end;
	}
	if (off < TM_DIRECT_MAX) {
		p = data + off;
		if (p + len <= end) {
			__builtin_memcpy(to, __builtin_assume_aligned(p, 8), len);
			return 0;
		}
	}
	if (kind == TM_PKT_XDP)
		return bpf_xdp_load_bytes(ctx, off, to, len);
	return bpf_skb_load_bytes(ctx, off, to, len);
}

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
static __always_inline int tm_parse_ipv4(void *ctx, __u32 off, struct tm_pkt *p,
					 enum tm_pkt_kind kind)
{
	struct iphdr ip;

	if (tm_load(ctx, off, &ip, sizeof(ip), kind))
		return -1;
	/* tot_len 0: a BIG TCP super-packet (over 64 KiB), its length is the skb's */
	if (ip.ihl < 5 || ip.version != 4 || (ip.tot_len && bpf_ntohs(ip.tot_len) < ip.ihl * 4))
		return -1;
	p->family = TM_FAMILY_IPV4;
	p->ip_proto = ip.protocol;
	p->l4_off = ip.ihl * 4;
	p->first_frag = !(ip.frag_off & bpf_htons(0x1fff));
	p->is_frag = !!(ip.frag_off & bpf_htons(0x3fff)); /* MF or an offset */
	p->frag_id = ip.id;
	p->ip_len = bpf_ntohs(ip.tot_len);
	p->saddr[0] = ip.saddr;
	p->daddr[0] = ip.daddr;
	return 0;
}

/* IPv6 header and up to TM_IPV6_EXT_MAX extension headers. */
static __always_inline int tm_parse_ipv6(void *ctx, __u32 off, struct tm_pkt *p,
					 enum tm_pkt_kind kind)
{
	struct ipv6hdr ip6;
	__u8 ext[4];
	__u32 nh, pos = sizeof(ip6);

	if (tm_load(ctx, off, &ip6, sizeof(ip6), kind) || ip6.version != 6)
		return -1;
	p->family = TM_FAMILY_IPV6;
	p->first_frag = 1;
	p->ip_len = ip6.payload_len ? bpf_ntohs(ip6.payload_len) + sizeof(ip6) : 0;
	__builtin_memcpy(p->saddr, &ip6.saddr, 16);
	__builtin_memcpy(p->daddr, &ip6.daddr, 16);
	nh = ip6.nexthdr;
	for (int i = 0; i < TM_IPV6_EXT_MAX; i++) {
		if (nh != TM_IPPROTO_HOPOPTS && nh != TM_IPPROTO_ROUTING &&
		    nh != TM_IPPROTO_DSTOPTS && nh != TM_IPPROTO_FRAGMENT)
			break;
		if (tm_load(ctx, off + pos, ext, sizeof(ext), kind))
			return -1;
		if (nh == TM_IPPROTO_FRAGMENT) {
			/* ext[2..3]: offset (13 bits) and flags; then the id */
			if (tm_load(ctx, off + pos + 4, &p->frag_id, 4, kind))
				return -1;
			p->first_frag = !((ext[2] << 8 | ext[3]) & 0xfff8);
			p->is_frag = 1;
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

/* L4 header length and ports; payload is everything after the header. A
 * TCP header's options are there when its last byte is. */
static __always_inline int tm_parse_l4(void *ctx, __u32 off, struct tm_pkt *p,
				       enum tm_pkt_kind kind)
{
	__u8 h[8]; /* UDP: ports; ICMP: type .. echo id */
	struct tcphdr th;
	__u8 last;

	p->l4 = tm_l4_of(p->ip_proto);
	p->hdr_len = p->l4_off;
	if (!p->first_frag)
		return 0;
	switch (p->l4) {
	case TM_L4_TCP:
		if (tm_load(ctx, off + p->l4_off, &th, sizeof(th), kind) || th.doff < 5)
			return -1;
		p->hdr_len += th.doff * 4;
		if (th.doff > 5 && tm_load(ctx, off + p->hdr_len - 1, &last, 1, kind))
			return -1;
		p->seq = bpf_ntohl(th.seq);
		p->tcp_flags = ((__u8 *)&th)[13];
		p->sport = th.source;
		p->dport = th.dest;
		p->has_ports = 1;
		return 0;
	case TM_L4_UDP:
	case TM_L4_ICMP:
		if (tm_load(ctx, off + p->l4_off, h, 8, kind))
			return -1;
		p->hdr_len += 8;
		break;
	default:
		return 0;
	}
	if (p->l4 == TM_L4_ICMP) {
		/* echo request/reply: the id plays the port (ping sockets) */
		bool req = h[0] == 8 || h[0] == 128, rep = h[0] == 0 || h[0] == 129;

		if (!req && !rep)
			return 0;
		__builtin_memcpy(rep ? &p->dport : &p->sport, &h[4], 2);
		p->has_ports = 1;
		return 0;
	}
	__builtin_memcpy(&p->sport, &h[0], 2);
	__builtin_memcpy(&p->dport, &h[2], 2);
	p->has_ports = 1;
	return 0;
}

/* Parse the IP packet that starts at off; version: what the link layer
 * says it carries (4 or 6), or 0 when it does not say (then the header's
 * first byte does). 0, or -1 when malformed. */
static __always_inline int tm_parse_ip(void *ctx, __u32 off, struct tm_pkt *p, __u8 version,
				       enum tm_pkt_kind kind)
{
	__u8 ver = version;
	int err;

	if (!ver) {
		if (tm_load(ctx, off, &ver, 1, kind))
			return -1;
		ver >>= 4;
	}
	/* each checks its header's version: one the link layer said and the
	 * header denies is dropped by the stack too */
	if (ver == 4)
		err = tm_parse_ipv4(ctx, off, p, kind);
	else if (ver == 6)
		err = tm_parse_ipv6(ctx, off, p, kind);
	else
		return -1;
	if (err)
		return err;
	return tm_parse_l4(ctx, off, p, kind);
}

static __always_inline void tm_add(struct tm_counter_val *v, const struct tm_counter_val *a)
{
	v->packets += a->packets;
	v->bytes += a->bytes;
	v->payload_bytes += a->payload_bytes;
	v->retrans_packets += a->retrans_packets;
	v->retrans_bytes += a->retrans_bytes;
}

/* Take a back out of v (per CPU: the sum over CPUs stays exact even when
 * this CPU's share goes below zero). */
static __always_inline void tm_sub(struct tm_counter_val *v, const struct tm_counter_val *a)
{
	v->packets -= a->packets;
	v->bytes -= a->bytes;
	v->payload_bytes -= a->payload_bytes;
	v->retrans_packets -= a->retrans_packets;
	v->retrans_bytes -= a->retrans_bytes;
}

/* What one packet whose IP packet is l3_len bytes adds to a counter. A GSO
 * skb counts as the segments it is on the wire, each with its own headers. */
static __always_inline void tm_amount(const struct tm_pkt *p, __u32 l3_len, __u32 gso_segs,
				      struct tm_counter_val *a)
{
	a->packets = gso_segs > 1 ? gso_segs : 1;
	a->payload_bytes = l3_len > p->hdr_len ? l3_len - p->hdr_len : 0;
	a->bytes = l3_len + (a->packets - 1) * p->hdr_len;
	a->retrans_packets = 0;
	a->retrans_bytes = 0;
}

#endif /* TM_PACKET_BPF_H */
