// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Drops: a received packet that an owner was sent but that never reached its
 * socket (dropped by a firewall rule, for lack of receive buffer, ...). The
 * kfree_skb tracepoint fires for every dropped skb with its reason; consumed
 * skbs take another path. Counted per owner in the DROP layer.
 */
#include "taskmeter.bpf.h"
#include "packet.bpf.h"
#include "flow.bpf.h"

/* IP header and the first 8 bytes after it, in one read. */
union tm_hdrs {
	struct {
		struct iphdr ip;
		__u8 l4[8];
	} v4;
	struct {
		struct ipv6hdr ip;
		__u8 l4[8];
	} v6;
};

/* The packet's headers, from kernel memory (not a packet context): one
 * probe read, then plain parsing of the copy. Drops come in bursts when a
 * receiver is overrun, so this stays cheap. */
static __always_inline int tm_parse_kernel_skb(struct sk_buff *skb, struct tm_pkt *p)
{
	union tm_hdrs h;
	const __u8 *l4;

	if (bpf_probe_read_kernel(&h, sizeof(h), skb->head + skb->network_header))
		return -1;
	if (h.v4.ip.version == 4 && h.v4.ip.ihl == 5) {
		p->family = TM_FAMILY_IPV4;
		p->ip_proto = h.v4.ip.protocol;
		p->l4_off = sizeof(struct iphdr);
		p->ip_len = bpf_ntohs(h.v4.ip.tot_len);
		p->saddr[0] = h.v4.ip.saddr;
		p->daddr[0] = h.v4.ip.daddr;
		l4 = h.v4.l4;
	} else if (h.v6.ip.version == 6) {
		p->family = TM_FAMILY_IPV6;
		p->ip_proto = h.v6.ip.nexthdr; /* extension headers: no ports */
		p->l4_off = sizeof(struct ipv6hdr);
		p->ip_len = bpf_ntohs(h.v6.ip.payload_len) + sizeof(struct ipv6hdr);
		__builtin_memcpy(p->saddr, &h.v6.ip.saddr, 16);
		__builtin_memcpy(p->daddr, &h.v6.ip.daddr, 16);
		l4 = h.v6.l4;
	} else {
		return -1; /* IPv4 options: not worth a second read for a drop */
	}
	p->l4 = tm_l4_of(p->ip_proto);
	p->hdr_len = p->l4_off + (p->l4 == TM_L4_TCP ? 20 : p->l4 == TM_L4_OTHER ? 0 : 8);
	if (p->l4 == TM_L4_TCP || p->l4 == TM_L4_UDP) {
		__builtin_memcpy(&p->sport, &l4[0], 2);
		__builtin_memcpy(&p->dport, &l4[2], 2);
		p->has_ports = 1;
	}
	return 0;
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(tm_drop, struct sk_buff *skb, void *location, enum skb_drop_reason reason,
	     struct sock *rx_sk)
{
	struct tm_if_key key = { .dir = TM_DIR_INGRESS, .layer = TM_LAYER_DROP };
	struct tm_owner *o = NULL;
	struct tm_counter_val a;
	struct tm_flow_val *fv;
	struct tm_flow_key fk;
	struct tm_pkt p = {};
	__u32 exec_seq = 0;
	struct tm_sk *st;
	struct sock *sk;
	__u16 segs = 1;

	key.ifindex = skb->skb_iif; /* BTF loads, not probe reads: drops come in bursts */
	if (reason <= SKB_CONSUMED || !key.ifindex) /* not a received packet */
		return 0;
	sk = rx_sk ? rx_sk : skb->sk;
	st = sk ? bpf_sk_storage_get(&tm_sk_owner, sk, NULL, 0) : NULL;
	if (tm_parse_kernel_skb(skb, &p))
		return 0;
	key.netns = skb->dev ? skb->dev->nd_net.net->ns.inum : 0;
	if (st && st->owner.tgid) {
		o = &st->owner;
		exec_seq = st->exec_seq;
	} else if (p.has_ports) {
		tm_flow_of(&p, TM_DIR_INGRESS, key.netns, &fk);
		fv = tm_flow_owner(&fk);
		if (fv) {
			o = &fv->owner;
			exec_seq = fv->exec_seq;
		}
	}
	if (!o)
		return 0; /* nobody's: the interface layer has it in a bucket */
	tm_if_owner(&key, o, exec_seq);
	key.l4 = p.l4;
	key.family = p.family;
	/* a GRO skb counts as the packets it merged: skb_shinfo(skb)->gso_segs */
	if (skb->data_len)
		bpf_probe_read_kernel(&segs, sizeof(segs),
				      &((struct skb_shared_info *)(skb->head + skb->end))->gso_segs);
	a.packets = segs > 1 ? segs : 1;
	a.bytes = skb->len;
	a.payload_bytes = p.ip_len > p.hdr_len ? p.ip_len - p.hdr_len : 0;
	tm_if_count(&key, &a);
	return 0;
}
