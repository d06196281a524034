// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * XDP: every frame an interface receives, counted first, attributed to the
 * local owner of its flow or to a bucket. Never drops or alters a frame.
 *
 * A standalone object (its own skeleton): libxdp loads it, as a component of
 * its multi-program dispatcher where that loads, or alone. Its maps are the
 * main object's, shared by fd before load.
 */
#define TM_DEFINE_MAPS
#include "taskmeter.bpf.h"
#include "packet.bpf.h"
#include "flow.bpf.h"
#include "iface.bpf.h"

/* Plain loads through BTF pointers (one instruction each), not
 * BPF_CORE_READ's probe-read helper calls: this runs for every frame. */
static __always_inline __u32 tm_xdp_netns(struct xdp_md *ctx)
{
	struct xdp_buff *x = bpf_cast_to_kern_ctx(ctx);

	return x->rxq->dev->nd_net.net->ns.inum;
}

SEC("xdp.frags")
int tm_xdp(struct xdp_md *ctx)
{
	struct tm_if_key key = {
		.ifindex = ctx->ingress_ifindex, .dir = TM_DIR_INGRESS, .layer = TM_LAYER_XDP,
	};
	struct tm_counter_val a = { .packets = 1 };
	struct tm_pkt p;
	__u32 len = (__u32)bpf_xdp_get_buff_len(ctx), l3off;
	__u16 ethertype;

	a.bytes = len;
	key.netns = tm_xdp_netns(ctx);
	if (tm_parse_eth(ctx, &l3off, &ethertype, true)) {
		key.bucket = TM_BUCKET_MALFORMED;
		key.l4 = TM_L4_OTHER;
		key.family = TM_FAMILY_NONE;
	} else {
		tm_ingress_classify(ctx, l3off, ethertype, len, &key, &a, &p, true);
	}
	tm_if_count(&key, &a);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
