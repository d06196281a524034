/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A socket's counts held for an owner not known yet (an accepted socket
 * before its first user), apart from owner.bpf.h so that programs which
 * only add to a socket's counts need not pull in the metadata side (and
 * its kfuncs: libbpf 1.1's linker fails on one kfunc declared by two
 * objects).
 */
#ifndef TM_PEND_BPF_H
#define TM_PEND_BPF_H

#include "taskmeter.bpf.h"
#include "packet.bpf.h"

static __always_inline void tm_pend(struct tm_sk *st, __u8 dir, const struct tm_pkt *p,
				    const struct tm_counter_val *a)
{
	st->pend_l4 = p->l4;
	st->pend_family = p->family;
	dir &= 1;
	__sync_fetch_and_add(&st->pend[dir].packets, a->packets);
	__sync_fetch_and_add(&st->pend[dir].bytes, a->bytes);
	__sync_fetch_and_add(&st->pend[dir].payload_bytes, a->payload_bytes);
	__sync_fetch_and_add(&st->pend[dir].retrans_packets, a->retrans_packets);
	__sync_fetch_and_add(&st->pend[dir].retrans_bytes, a->retrans_bytes);
	st->pending = 1; /* after the adds (each a full barrier): see tm_flush_pending */
}

#endif /* TM_PEND_BPF_H */
