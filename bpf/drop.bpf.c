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

/* The packet's headers, read from kernel memory (not a packet context). */
static __always_inline int tm_parse_kernel_skb(struct sk_buff *skb, struct tm_pkt *p)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 nh = BPF_CORE_READ(skb, network_header), th;
	__u8 ver, h[14];

	if (bpf_probe_read_kernel(&ver, 1, head + nh))
		return -1;
	if ((ver >> 4) == 4) {
		struct iphdr ip;

		if (bpf_probe_read_kernel(&ip, sizeof(ip), head + nh) || ip.ihl < 5)
			return -1;
		p->family = TM_FAMILY_IPV4;
		p->ip_proto = ip.protocol;
		p->l4_off = ip.ihl * 4;
		p->ip_len = bpf_ntohs(ip.tot_len);
		p->saddr[0] = ip.saddr;
		p->daddr[0] = ip.daddr;
	} else if ((ver >> 4) == 6) {
		struct ipv6hdr ip6;

		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), head + nh))
			return -1;
		p->family = TM_FAMILY_IPV6;
		p->ip_proto = ip6.nexthdr; /* extension headers: no ports */
		p->l4_off = sizeof(ip6);
		p->ip_len = bpf_ntohs(ip6.payload_len) + sizeof(ip6);
		__builtin_memcpy(p->saddr, &ip6.saddr, 16);
		__builtin_memcpy(p->daddr, &ip6.daddr, 16);
	} else {
		return -1;
	}
	p->l4 = tm_l4_of(p->ip_proto);
	p->hdr_len = p->l4_off + (p->l4 == TM_L4_TCP ? 20 : p->l4 == TM_L4_OTHER ? 0 : 8);
	th = nh + p->l4_off;
	if ((p->l4 == TM_L4_TCP || p->l4 == TM_L4_UDP) &&
	    !bpf_probe_read_kernel(h, 4, head + th)) {
		__builtin_memcpy(&p->sport, &h[0], 2);
		__builtin_memcpy(&p->dport, &h[2], 2);
		p->has_ports = 1;
	}
	return 0;
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(tm_drop, struct sk_buff *skb, void *location, enum skb_drop_reason reason,
	     struct sock *rx_sk)
{
	struct tm_if_key key = { .dir = TM_DIR_INGRESS, .layer = TM_LAYER_DROP };
	struct tm_flow_val *fv = NULL;
	struct tm_owner *o = NULL;
	__u32 exec_seq = 0;
	struct tm_counter_val a;
	struct tm_flow_key fk;
	struct tm_pkt p = {};
	struct sock *sk;
	struct skb_shared_info *shi;
	struct tm_sk *st;
	__u32 segs;

	key.ifindex = BPF_CORE_READ(skb, skb_iif);
	if (reason <= SKB_CONSUMED || !key.ifindex) /* not a received packet */
		return 0;
	if (tm_parse_kernel_skb(skb, &p))
		return 0;
	key.netns = BPF_CORE_READ(skb, dev, nd_net.net, ns.inum);
	sk = rx_sk ? rx_sk : skb->sk; /* a BTF pointer, as sk_storage_get wants */
	st = sk ? bpf_sk_storage_get(&tm_sk_owner, sk, NULL, 0) : NULL;
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
	/* a GRO skb: as many packets as it merged (skb_shinfo(skb)->gso_segs) */
	shi = (struct skb_shared_info *)(BPF_CORE_READ(skb, head) + BPF_CORE_READ(skb, end));
	segs = BPF_CORE_READ(shi, gso_segs);
	a.packets = segs > 1 ? segs : 1;
	a.bytes = BPF_CORE_READ(skb, len);
	a.payload_bytes = p.ip_len > p.hdr_len ? p.ip_len - p.hdr_len : 0;
	tm_if_count(&key, &a);
	return 0;
}
