// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cgroup_skb ingress/egress: every IP packet of a socket in the attached
 * cgroup, attributed to the socket's owner. skb data starts at the IP header.
 */
#include "taskmeter.bpf.h"
#include "packet.bpf.h"
#include "metadata.bpf.h"

static __always_inline void tm_cgroup_skb(struct __sk_buff *skb, __u8 dir)
{
	struct tm_counter_key key = { .dir = dir };
	struct tm_owner *owner = NULL;
	struct bpf_sock *sk;
	struct tm_pkt p = {};

	if (tm_parse_ip(skb, 0, &p)) {
		tm_stat_inc(TM_STAT_MALFORMED);
		p.l4 = TM_L4_OTHER;
		p.hdr_len = 0;
		p.family = skb->family == 10 /* AF_INET6 */ ? TM_FAMILY_IPV6 : TM_FAMILY_IPV4;
	}
	sk = skb->sk;
	if (sk)
		sk = bpf_sk_fullsock(sk);
	if (sk)
		owner = bpf_sk_storage_get(&tm_sk_owner, sk, NULL, 0);
	if (owner && owner->tgid) {
		key.owner = *owner;
		key.exec_seq = tm_meta_touch(owner);
	}
	key.l4 = p.l4;
	key.family = p.family;
	tm_account(&key, &p, skb->len, skb->gso_segs);
}

SEC("cgroup_skb/ingress")
int tm_cgskb_ingress(struct __sk_buff *skb)
{
	tm_cgroup_skb(skb, TM_DIR_INGRESS);
	return 1;
}

SEC("cgroup_skb/egress")
int tm_cgskb_egress(struct __sk_buff *skb)
{
	tm_cgroup_skb(skb, TM_DIR_EGRESS);
	return 1;
}
