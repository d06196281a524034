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
#include "class.bpf.h"
#include "flow.bpf.h"
#include "iface.bpf.h"

#define TM_TC_NEXT (-1)

/* Where the IP header starts and the ethertype: data starts at the MAC
 * header, of mac_len bytes (0 on L3 devices such as tun or wireguard). An
 * untagged IP frame's is what eth_type_trans() or the stack's output put
 * in skb->protocol (a tag in the data says 802.1Q there: parsed). */
static __always_inline int tm_tc_l3(struct __sk_buff *skb, struct sk_buff *kskb, __u32 *l3off,
				    __u16 *ethertype)
{
	__u16 mac = kskb->mac_header, net = kskb->network_header, proto;

	if (net - mac == TM_ETH_HLEN) {
		proto = bpf_ntohs(skb->protocol);
		if (proto == TM_ETH_P_IP || proto == TM_ETH_P_IPV6) {
			*l3off = TM_ETH_HLEN;
			*ethertype = proto;
			return 0;
		}
	}
	if (net > mac && net - mac >= TM_ETH_HLEN)
		return tm_parse_eth(skb, l3off, ethertype, TM_PKT_SKB);
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
	struct skb_shared_info *shi = tm_core_cast(kskb->head + kskb->end, struct skb_shared_info);
	__u64 feature = (__u64)shi->gso_type << NETIF_F_GSO_SHIFT;

	return (kskb->dev->features & feature) == feature;
}

/* Packets and bytes as the device counts them: one per skb on veth and
 * other software devices, the wire segments where the collector says the
 * device counts those (hardware) or where the skb is segmented before the
 * device; a VLAN tag kept aside from the data (hw-accelerated) counts too. */
static __always_inline void tm_tc_amount(struct __sk_buff *skb, __u32 segs,
					 const struct tm_iface_val *ifv, __u32 l3off,
					 __u32 hdr_len, struct tm_counter_val *a,
					 struct sk_buff *kskb)
{
	a->packets = 1;
	a->bytes = skb->len + (skb->vlan_present ? TM_VLAN_HLEN : 0);
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

/* Did this skb come through a veth's NAPI queue (GRO on, or native XDP on
 * this end)? napi_id is set by napi_gro_receive(); the backlog of veth's
 * other mode sets none. Only a software device (one with rtnl_link_ops:
 * what the collector sees as a link kind) can be a veth: a NIC's frames,
 * which all come through NAPI, are not looked up for it. */
static __always_inline bool tm_napi_l3(__u32 netns, __u32 ifindex, struct tm_iface_val **ifv,
				       __u32 segs)
{
	if (segs <= 1)
		*ifv = tm_iface(netns, ifindex);
	return *ifv && ((*ifv)->flags & TM_IFACE_NAPI_L3);
}

/*
 * As veth_xdp_rcv() counts the skbs its peer sent, before napi_gro_receive():
 * one packet per skb, skb->len after eth_type_trans() (14 bytes pulled; a
 * VLAN tag kept aside is not in it). GRO merged gso_segs of them, each with
 * IP and L4 headers of the same length (IP and TCP GRO merge only those),
 * counted from there.
 */
static __always_inline void tm_napi_amount(__u32 len, __u32 segs, __u32 hdr_len,
					   struct tm_counter_val *a)
{
	if (segs < 1)
		segs = 1;
	a->packets = segs;
	a->bytes = (__u64)(len > TM_ETH_HLEN ? len - TM_ETH_HLEN : 0) +
		   (__u64)(segs - 1) * hdr_len;
}

/* What cgroup_skb egress left for this very skb, if anything: the same skb
 * and socket, at the same length (a fragment of it is another packet). */
static __always_inline struct tm_egress_hint *tm_hint(struct sk_buff *kskb, __u32 l3off)
{
	struct tm_egress_hint *h;
	__u32 zero = 0;

	h = bpf_map_lookup_elem(&tm_egress_hint, &zero);
	if (!h || h->skb != (__u64)kskb || h->sk != (__u64)kskb->sk ||
	    h->skb_len + l3off != kskb->len)
		return NULL;
	h->skb = 0;
	return h;
}

/* The class of an owned packet that cgroup_skb egress classified: its
 * cached slot when it was for this interface, else by key. */
static __always_inline __u32 tm_hinted_slot(const struct tm_egress_hint *h, struct tm_class *k)
{
	__u32 gen;

	k->owner = h->owner;
	k->exec_seq = h->exec_seq;
	k->l4 = h->l4;
	k->family = h->family;
	if (h->ifindex == k->ifindex && h->if_slot != TM_SLOT_IFACES &&
	    tm_slot_valid(h->if_slot, h->if_gen))
		return h->if_slot;
	return tm_class_slot(k, &gen);
}

/* A packet without a hint: parsed here; the owner of its socket (if it has
 * one of ours), else forwarded (it came in on an interface) or the host's. */
static __always_inline __u32 tm_egress_slot(struct __sk_buff *skb, struct sk_buff *kskb,
					    struct tm_class *k, struct tm_pkt *p, __u32 *l3off)
{
	struct bpf_sock *sk = skb->sk;
	struct tm_sk *st = NULL;
	__u16 ethertype = 0;
	__u32 gen;

	k->l4 = TM_L4_OTHER;
	k->family = TM_FAMILY_NONE;
	if (tm_tc_l3(skb, kskb, l3off, &ethertype)) {
		k->bucket = TM_BUCKET_MALFORMED;
	} else if (ethertype != TM_ETH_P_IP && ethertype != TM_ETH_P_IPV6) {
		k->bucket = TM_BUCKET_NON_IP;
	} else if (tm_parse_ip(skb, *l3off, p, tm_ip_version(ethertype), TM_PKT_SKB)) {
		k->bucket = TM_BUCKET_MALFORMED;
	} else {
		k->l4 = p->l4;
		k->family = p->family;
		if (sk)
			sk = bpf_sk_fullsock(sk);
		if (sk)
			st = bpf_sk_storage_get(&tm_sk_owner, sk, NULL, 0);
		if (st && st->owner.tgid) {
			k->owner = st->owner;
			k->exec_seq = st->exec_seq;
		} else {
			k->bucket = !skb->sk && skb->ingress_ifindex ? TM_BUCKET_FORWARDED
								     : TM_BUCKET_LOCAL;
		}
	}
	return tm_class_slot(k, &gen);
}

/* For a device that refuses the frame after this (see drop.bpf.c). */
static __always_inline void tm_hint_sent(struct sk_buff *kskb, __u32 slot, const struct tm_class *k,
					 const struct tm_counter_val *a)
{
	struct tm_undo_hint *u;
	__u32 one = 1;

	u = bpf_map_lookup_elem(&tm_undo, &one);
	if (!u)
		return;
	u->skb = (__u64)kskb;
	u->sk = (__u64)kskb->sk;
	u->len = kskb->len;
	u->ifindex = k->ifindex;
	u->slot = slot;
	u->dgram = 0;
	u->a = *a;
	u->k = *k;
}

SEC("tc")
int tm_tc_egress(struct __sk_buff *skb)
{
	struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb);
	struct tm_class k = { .ifindex = skb->ifindex, .dir = TM_DIR_EGRESS,
			      .layer = TM_LAYER_TC };
	__u32 l3off = (__u32)(kskb->network_header - kskb->mac_header), segs, slot;
	struct tm_counter_val a = {};
	struct tm_egress_hint *h;
	struct tm_pkt p = {};

	k.netns = kskb->dev->nd_net.net->ns.inum;
	h = tm_hint(kskb, l3off);
	if (h) {
		slot = tm_hinted_slot(h, &k);
		p.hdr_len = h->hdr_len;
	} else {
		slot = tm_egress_slot(skb, kskb, &k, &p, &l3off);
	}
	segs = skb->gso_segs; /* read once: the verifier wants ctx loads at fixed offsets */
	tm_tc_amount(skb, segs, segs > 1 ? tm_iface(k.netns, k.ifindex) : NULL, l3off, p.hdr_len,
		     &a, kskb);
	if (h) {
		a.payload_bytes = h->payload;
		a.retrans_bytes = h->retrans_bytes;
		a.retrans_packets = h->retrans_packets;
	} else if (k.family != TM_FAMILY_NONE) {
		a.payload_bytes = tm_frame_payload(&p, skb->len - l3off);
	}
	tm_slot_add(slot, &a);
	tm_hint_sent(kskb, slot, &k, &a);
	return TM_TC_NEXT;
}

SEC("tc")
int tm_tc_ingress(struct __sk_buff *skb)
{
	struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb);
	__u32 l3off = 0, segs, slot, netns, ifindex = skb->ifindex;
	struct tm_counter_val a = {};
	struct tm_iface_val *ifv;
	struct tm_pkt p = {};
	__u16 ethertype = 0;

	netns = kskb->dev->nd_net.net->ns.inum;
	segs = skb->gso_segs;
	/* A GRO skb: its flags say how the device counted it. (TC ingress is
	 * attached only where XDP does not count; the flag is checked anyway
	 * for whoever attaches both.) */
	ifv = segs > 1 ? tm_iface(netns, ifindex) : NULL;
	if (ifv && (ifv->flags & TM_IFACE_XDP_RX))
		return TM_TC_NEXT;
	if (tm_tc_l3(skb, kskb, &l3off, &ethertype))
		slot = tm_bucket_slot(TM_BUCKET_MALFORMED, netns, ifindex, TM_LAYER_TC,
				      TM_DIR_INGRESS, TM_L4_OTHER, TM_FAMILY_NONE);
	else
		slot = tm_ingress_slot(skb, l3off, ethertype, skb->len, netns, ifindex,
				       TM_LAYER_TC, &a, &p, TM_PKT_SKB);
	tm_tc_amount(skb, segs, ifv, l3off, p.hdr_len, &a, NULL);
	if (skb->napi_id && kskb->dev->rtnl_link_ops && tm_napi_l3(netns, ifindex, &ifv, segs))
		tm_napi_amount(skb->len, segs, p.hdr_len, &a);
	tm_slot_add(slot, &a);
	return TM_TC_NEXT;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
