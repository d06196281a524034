// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Baselines for tests/bench/bench_prog.c: one program per type under test
 * that does nothing but return its "pass" verdict, so that what the test
 * run itself costs (context setup, the timer, the loop) can be subtracted.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("xdp")
int empty_xdp(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("tc")
int empty_tc(struct __sk_buff *skb)
{
	return -1; /* TC_ACT_UNSPEC, as tm_tc_* return */
}

SEC("cgroup_skb/egress")
int empty_cgskb_egress(struct __sk_buff *skb)
{
	return 1;
}

SEC("cgroup_skb/ingress")
int empty_cgskb_ingress(struct __sk_buff *skb)
{
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
