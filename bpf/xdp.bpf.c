// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * XDP: every frame an interface receives, counted first, attributed to the
 * local owner of its flow or to a bucket: one flow lookup, the slot of the
 * flow's class cached in its value. Never drops or alters a frame.
 *
 * A standalone object (its own skeleton): libxdp loads it, as a component of
 * its multi-program dispatcher where that loads, or it is attached alone as
 * a link. Its maps are the main object's, shared by fd before load.
 */
#define TM_DEFINE_MAPS
#include "taskmeter.bpf.h"
#include "packet.bpf.h"
#include "class.bpf.h"
#include "flow.bpf.h"
#include "iface.bpf.h"

SEC("xdp.frags")
int tm_xdp(struct xdp_md *ctx)
{
	/* Plain loads through BTF pointers (one instruction each), not
	 * BPF_CORE_READ's probe-read helper calls: this runs for every frame. */
	struct xdp_buff *x = bpf_cast_to_kern_ctx(ctx);
	struct tm_counter_val a = { .packets = 1 };
	__u32 len, l3off, netns, ifindex, slot;
	struct tm_pkt p = {};
	__u16 ethertype;

	/* a multi-buffer frame's length is the helper's to sum */
	len = x->flags & XDP_FLAGS_HAS_FRAGS ? (__u32)bpf_xdp_get_buff_len(ctx)
					     : (__u32)(x->data_end - x->data);
	a.bytes = len;
	netns = x->rxq->dev->nd_net.net->ns.inum;
	ifindex = ctx->ingress_ifindex;
	if (tm_parse_eth(ctx, &l3off, &ethertype, TM_PKT_XDP))
		slot = tm_bucket_slot(TM_BUCKET_MALFORMED, netns, ifindex, TM_LAYER_XDP,
				      TM_DIR_INGRESS, TM_L4_OTHER, TM_FAMILY_NONE);
	else
		slot = tm_ingress_slot(ctx, l3off, ethertype, len, netns, ifindex, TM_LAYER_XDP,
				       &a, &p, TM_PKT_XDP);
	tm_slot_add(slot, &a);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
