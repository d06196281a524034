// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * TC (sched_cls) ingress and egress: every frame an interface sends, and
 * those it receives where XDP does not count them. Attached as TCX links
 * (6.6+) or clsact filters; returns "next" (TC_ACT_UNSPEC / TCX_NEXT) so
 * other programs on the interface keep running. Never drops or alters.
 *
 * A standalone object sharing the main object's maps, like xdp.bpf.c
 * (libbpf 1.1's linker cannot merge the kfunc externs of two objects).
 */
#define TM_DEFINE_MAPS
#include "taskmeter.bpf.h"
#include "packet.bpf.h"
#include "flow.bpf.h"
#include "iface.bpf.h"

#define TM_TC_NEXT (-1)

/* Where the IP header starts and the ethertype: data starts at the MAC
 * header, of mac_len bytes (0 on L3 devices such as tun or wireguard). */
static __always_inline int tm_tc_l3(struct __sk_buff *skb, struct sk_buff *kskb, __u32 *l3off,
				    __u16 *ethertype)
{
	__u16 mac = kskb->mac_header, net = kskb->network_header;

	if (net > mac && net - mac >= 14)
		return tm_parse_eth(skb, l3off, ethertype, false);
	*l3off = 0;
	*ethertype = bpf_ntohs(skb->protocol);
	return 0;
}

/* Will the device take this GSO skb whole? If not (no TSO, e.g. a veth
 * whose peer runs native XDP), the stack segments it before the device
 * counts it. As the kernel's net_gso_ok(): the GSO type bits are feature
 * bits shifted by NETIF_F_GSO_SHIFT (== NETIF_F_TSO_BIT). */
static __always_inline bool tm_dev_takes_gso(struct sk_buff *kskb)
{
	struct skb_shared_info *shi = (void *)(BPF_CORE_READ(kskb, head) + BPF_CORE_READ(kskb, end));
	__u64 feature = (__u64)BPF_CORE_READ(shi, gso_type)
			<< NETIF_F_GSO_SHIFT;
	__u64 features = BPF_CORE_READ(kskb, dev, features);

	return (features & feature) == feature;
}

/* Segments as the device counts them: one per skb on veth and other
 * software devices, the wire segments where the collector says the device
 * counts those (hardware) or where the skb is segmented before the device. */
static __always_inline void tm_tc_amount(__u32 len, __u32 segs, const struct tm_iface_val *ifv,
					 __u32 l3off, __u32 hdr_len, struct tm_counter_val *a,
					 struct sk_buff *kskb)
{
	a->packets = 1;
	a->bytes = len;
	if (segs > 1 && ((ifv && (ifv->flags & TM_IFACE_COUNT_SEGS)) ||
			 (kskb && !tm_dev_takes_gso(kskb)))) {
		a->packets = segs;
		a->bytes += (__u64)(segs - 1) * (l3off + hdr_len);
	}
}

static __always_inline struct tm_iface_val *tm_iface(__u32 netns, __u32 ifindex)
{
	struct tm_iface_key k = { .netns = netns, .ifindex = ifindex };

	return bpf_map_lookup_elem(&tm_ifaces, &k);
}

/* Egress: the socket is known. No socket: forwarded if it came in on an
 * interface, else kernel-made; a socket without taskmeter state: kernel. */
static __always_inline void tm_egress_owner(struct __sk_buff *skb, struct tm_if_key *key)
{
	struct bpf_sock *sk = skb->sk;
	struct tm_sk *st = NULL;

	if (sk)
		sk = bpf_sk_fullsock(sk);
	if (sk)
		st = bpf_sk_storage_get(&tm_sk_owner, sk, NULL, 0);
	if (st && st->owner.tgid) {
		tm_if_owner(key, &st->owner, st->exec_seq); /* cgroup_skb egress ran first */
		return;
	}
	key->bucket = !skb->sk && skb->ingress_ifindex ? TM_BUCKET_FORWARDED : TM_BUCKET_LOCAL;
}

/* What cgroup_skb egress left for this very skb, if anything. */
static __always_inline struct tm_egress_hint *tm_hint(struct sk_buff *kskb)
{
	struct tm_egress_hint *h;
	__u32 zero = 0;

	h = bpf_map_lookup_elem(&tm_egress_hint, &zero);
	if (!h || h->skb != (__u64)kskb || h->sk != (__u64)kskb->sk)
		return NULL;
	h->skb = 0;
	return h;
}

/* An owned packet cgroup_skb egress already classified. */
static __always_inline void tm_egress_hinted(const struct tm_egress_hint *h,
					     struct tm_if_key *key, struct tm_pkt *p)
{
	tm_if_owner(key, &h->owner, h->exec_seq);
	key->l4 = p->l4 = h->l4;
	key->family = p->family = h->family;
	p->hdr_len = h->hdr_len;
	p->ip_len = h->ip_len;
}

SEC("tc")
int tm_tc_egress(struct __sk_buff *skb)
{
	struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb);
	struct tm_if_key key = { .ifindex = skb->ifindex, .dir = TM_DIR_EGRESS,
				 .layer = TM_LAYER_TC, .l4 = TM_L4_OTHER,
				 .family = TM_FAMILY_NONE };
	struct tm_egress_hint *h = tm_hint(kskb);
	struct tm_counter_val a = {};
	struct tm_pkt p = {};
	__u32 l3off = 0, segs;
	__u16 ethertype = 0;

	key.netns = kskb->dev->nd_net.net->ns.inum;
	if (h) {
		/* headers start at the network header, as for cgroup_skb */
		l3off = (__u32)(kskb->network_header - kskb->mac_header);
		tm_egress_hinted(h, &key, &p);
	} else if (tm_tc_l3(skb, kskb, &l3off, &ethertype)) {
		key.bucket = TM_BUCKET_MALFORMED;
	} else if (ethertype != TM_ETH_P_IP && ethertype != TM_ETH_P_IPV6) {
		key.bucket = TM_BUCKET_NON_IP;
	} else if (tm_parse_ip(skb, l3off, &p, tm_ip_version(ethertype), false)) {
		key.bucket = TM_BUCKET_MALFORMED;
	} else {
		key.l4 = p.l4;
		key.family = p.family;
		tm_egress_owner(skb, &key);
	}
	segs = skb->gso_segs; /* read once: the verifier wants ctx loads at fixed offsets */
	tm_tc_amount(skb->len, segs, segs > 1 ? tm_iface(key.netns, key.ifindex) : NULL, l3off,
		     p.hdr_len, &a, kskb);
	if (key.family != TM_FAMILY_NONE)
		a.payload_bytes = tm_frame_payload(&p, skb->len - l3off);
	tm_if_count(&key, &a);
	return TM_TC_NEXT;
}

SEC("tc")
int tm_tc_ingress(struct __sk_buff *skb)
{
	struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb);
	struct tm_if_key key = { .ifindex = skb->ifindex, .dir = TM_DIR_INGRESS,
				 .layer = TM_LAYER_TC };
	struct tm_counter_val a = {};
	struct tm_iface_val *ifv;
	struct tm_pkt p = {};
	__u32 l3off = 0, segs;
	__u16 ethertype = 0;

	key.netns = kskb->dev->nd_net.net->ns.inum;
	segs = skb->gso_segs;
	/* A GRO skb: its flags say how the device counted it. (TC ingress is
	 * attached only where XDP does not count; the flag is checked anyway
	 * for whoever attaches both.) */
	ifv = segs > 1 ? tm_iface(key.netns, key.ifindex) : NULL;
	if (ifv && (ifv->flags & TM_IFACE_XDP_RX))
		return TM_TC_NEXT;
	if (tm_tc_l3(skb, kskb, &l3off, &ethertype)) {
		key.bucket = TM_BUCKET_MALFORMED;
		key.l4 = TM_L4_OTHER;
		key.family = TM_FAMILY_NONE;
	} else {
		tm_ingress_classify(skb, l3off, ethertype, skb->len, &key, &a, &p, false);
	}
	tm_tc_amount(skb->len, segs, ifv, l3off, p.hdr_len, &a, NULL);
	tm_if_count(&key, &a);
	return TM_TC_NEXT;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
