// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The floor arm of `make bench`: one empty program at every hook taskmeter
 * attaches (the SEC() lines of bpf/), each returning what taskmeter's
 * returns, so that what the kernel's hook framework costs (program
 * dispatch, context set-up, the socket-storage and cgroup walks before a
 * program runs) is measured apart from what taskmeter's own code costs.
 * Loaded and attached by tests/bench/bench_floor.c.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

/* cgroup_skb.bpf.c */
SEC("cgroup_skb/ingress")
int floor_cgskb_ingress(struct __sk_buff *skb)
{
	return 1;
}

SEC("cgroup_skb/egress")
int floor_cgskb_egress(struct __sk_buff *skb)
{
	return 1;
}

SEC("tp_btf/sock_recv_length")
int floor_recv_length(void *ctx)
{
	return 0;
}

/* drop.bpf.c */
SEC("tp_btf/kfree_skb")
int floor_drop(void *ctx)
{
	return 0;
}

SEC("tp_btf/tcp_probe")
int floor_tcp_probe(void *ctx)
{
	return 0;
}

/* sock.bpf.c */
SEC("cgroup/sock_create")
int floor_sock_create(struct bpf_sock *sk)
{
	return 1;
}

SEC("cgroup/post_bind4")
int floor_post_bind4(struct bpf_sock *sk)
{
	return 1;
}

SEC("cgroup/post_bind6")
int floor_post_bind6(struct bpf_sock *sk)
{
	return 1;
}

SEC("cgroup/sock_release")
int floor_sock_release(struct bpf_sock *sk)
{
	return 1;
}

/* task.bpf.c */
SEC("tp_btf/sched_process_exec")
int floor_exec(void *ctx)
{
	return 0;
}

SEC("tp_btf/sched_process_exit")
int floor_exit(void *ctx)
{
	return 0;
}

/* tc.bpf.c: TCX_NEXT, as tm_tc_* return */
SEC("tc")
int floor_tc_ingress(struct __sk_buff *skb)
{
	return -1;
}

SEC("tc")
int floor_tc_egress(struct __sk_buff *skb)
{
	return -1;
}

/* xdp.bpf.c */
SEC("xdp.frags")
int floor_xdp(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
