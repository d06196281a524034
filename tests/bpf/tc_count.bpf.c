// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* A bystander TC program for the coexistence test: counts packets, passes. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} tc_count_packets SEC(".maps");

SEC("tc")
int tc_count(struct __sk_buff *skb)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&tc_count_packets, &zero);

	if (n)
		__sync_fetch_and_add(n, 1);
	return 0; /* TC_ACT_OK */
}

char LICENSE[] SEC("license") = "GPL";
