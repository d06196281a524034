// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * An observer for the softirq test, on TC egress of lo: which task was
 * current when each IPv4 TCP packet left, and its payload. A packet sent
 * from softirq (an ACK that reopened the window, processed on whatever
 * task it interrupted) shows another task than its socket's owner; one
 * sent in process context shows the owner. Passes every packet unchanged.
 */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define ETH_HLEN 14
#define ETH_P_IP 0x0800

struct xmit_key {
	__u32 tgid;  /* current's, 0 for the idle task */
	__u16 sport; /* host order */
	__u16 dport;
};

struct xmit_val {
	__u64 packets;
	__u64 payload; /* TCP payload bytes, all segments of a GSO packet */
};

/* Key: struct xmit_key. Written: this program; read: the test (bpftool). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct xmit_key);
	__type(value, struct xmit_val);
} xmit_task SEC(".maps");

SEC("tc")
int xmit_task_count(struct __sk_buff *skb)
{
	struct xmit_key k = { .tgid = bpf_get_current_pid_tgid() >> 32 };
	struct xmit_val one = { 1, 0 }, *v;
	struct iphdr ip;
	struct tcphdr tcp;
	__u32 ihl, doff;

	if (skb->protocol != bpf_htons(ETH_P_IP) ||
	    bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) || ip.protocol != IPPROTO_TCP)
		return 0; /* TC_ACT_OK */
	ihl = ip.ihl * 4;
	if (ihl < sizeof(ip) || bpf_skb_load_bytes(skb, ETH_HLEN + ihl, &tcp, sizeof(tcp)))
		return 0;
	doff = tcp.doff * 4;
	if (skb->len < ETH_HLEN + ihl + doff)
		return 0;
	k.sport = bpf_ntohs(tcp.source);
	k.dport = bpf_ntohs(tcp.dest);
	one.payload = skb->len - ETH_HLEN - ihl - doff;
	v = bpf_map_lookup_elem(&xmit_task, &k);
	if (!v) {
		if (!bpf_map_update_elem(&xmit_task, &k, &one, BPF_NOEXIST))
			return 0;
		v = bpf_map_lookup_elem(&xmit_task, &k); /* another CPU made it */
		if (!v)
			return 0;
	}
	__sync_fetch_and_add(&v->packets, 1);
	__sync_fetch_and_add(&v->payload, one.payload);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
