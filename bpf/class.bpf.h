/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Classes and their slots (see struct tm_class): the one way every hook
 * counts. A hook that has a slot cached (in socket storage, the flow value
 * or a hint) checks its generation and adds to it: two array accesses,
 * which the verifier inlines. Only a miss looks the class up by key, and
 * only a new class takes a free slot.
 */
#ifndef TM_CLASS_BPF_H
#define TM_CLASS_BPF_H

#include "taskmeter.bpf.h"
#include "packet.bpf.h"

/* Is a cached (slot, gen) still the class it was? */
static __always_inline bool tm_slot_valid(__u32 slot, __u32 gen)
{
	__u32 *g = bpf_map_lookup_elem(&tm_class_gen, &slot);

	return g && *g == gen;
}

static __always_inline __u32 tm_slot_gen(__u32 slot)
{
	__u32 *g = bpf_map_lookup_elem(&tm_class_gen, &slot);

	return g ? *g : 0;
}

/* Where a class goes when no slot is free. */
static __always_inline __u32 tm_overflow_slot(const struct tm_class *k)
{
	if (k->layer == TM_LAYER_CGROUP_SKB)
		return TM_OVERFLOW_IDX(k->dir & 1, k->l4 & 3, k->family & 1);
	return TM_SLOT_IF_OVERFLOW(k->layer & 3, k->dir & 1);
}

/*
 * The slot counting k, and its generation in *gen; a class seen for the
 * first time takes a free slot. When none is free, the overflow slot of
 * its layer: no byte is lost, and the stat says how many went there.
 * A function of its own (not inlined): the verifier walks it once per
 * state, not once per caller's branch.
 */
static __noinline __attribute__((unused)) __u32 tm_class_slot(const struct tm_class *k, __u32 *gen)
{
	__u32 *s = bpf_map_lookup_elem(&tm_classes, k), slot;

	if (s) {
		slot = *s;
		goto out;
	}
	if (bpf_map_pop_elem(&tm_free, &slot))
		goto full;
	if (bpf_map_update_elem(&tm_classes, k, &slot, BPF_NOEXIST)) {
		/* another CPU made it meanwhile, or the map is full */
		bpf_map_push_elem(&tm_free, &slot, 0);
		s = bpf_map_lookup_elem(&tm_classes, k);
		if (!s)
			goto full;
		slot = *s;
	} else {
		tm_stat_inc(TM_STAT_CLASSES_MADE);
	}
out:
	*gen = tm_slot_gen(slot);
	return slot;
full:
	tm_stat_inc(TM_STAT_CLASS_FULL);
	slot = tm_overflow_slot(k);
	*gen = tm_slot_gen(slot);
	return slot;
}

static __always_inline void tm_slot_add(__u32 slot, const struct tm_counter_val *a)
{
	struct tm_counter_val *v = bpf_map_lookup_elem(&tm_counters, &slot);

	if (v)
		tm_add(v, a);
}

static __always_inline void tm_slot_sub(__u32 slot, const struct tm_counter_val *a)
{
	struct tm_counter_val *v = bpf_map_lookup_elem(&tm_counters, &slot);

	if (v)
		tm_sub(v, a);
}

/* Count a into class k, no cache: for what is rare (buckets, drops). */
static __always_inline __u32 tm_count_class(const struct tm_class *k,
					    const struct tm_counter_val *a)
{
	__u32 gen, slot = tm_class_slot(k, &gen);

	tm_slot_add(slot, a);
	return slot;
}

#endif /* TM_CLASS_BPF_H */
