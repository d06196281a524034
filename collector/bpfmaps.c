// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Helpers for the loaded maps that the daemon, the packet tests and the
 * benchmark share. */
#include <errno.h>
#include <stdlib.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>

#include "bpfmaps.h"
#include "taskmeter.h"

int tm_bpfmaps_reuse(struct bpf_object *obj, struct bpf_object *main)
{
	struct bpf_map *m, *mm;
	int err;

	bpf_object__for_each_map(m, obj) {
		if (bpf_map__is_internal(m))
			continue; /* .rodata/.bss of its own */
		mm = bpf_object__find_map_by_name(main, bpf_map__name(m));
		if (!mm)
			return -ENOENT;
		err = bpf_map__reuse_fd(m, bpf_map__fd(mm));
		if (err)
			return err;
	}
	return 0;
}

int tm_bpfmaps_fill_slots(struct bpf_object *obj)
{
	struct bpf_map *gen = bpf_object__find_map_by_name(obj, "tm_class_gen");
	struct bpf_map *stack = bpf_object__find_map_by_name(obj, "tm_free");
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 n, count, *keys, *gens;
	int err = 0;

	if (!gen || !stack)
		return -ENOENT;
	n = count = bpf_map__max_entries(gen);
	keys = calloc(n, sizeof(*keys));
	gens = calloc(n, sizeof(*gens));
	if (!keys || !gens)
		err = -ENOMEM;
	for (__u32 i = 0; !err && i < n; i++) {
		keys[i] = i;
		gens[i] = TM_GEN_FIRST;
	}
	if (!err && bpf_map_update_batch(bpf_map__fd(gen), keys, gens, &count, &opts))
		err = -errno;
	/* highest first, so that the lowest is taken first */
	for (__u32 i = n; !err && i-- > TM_SLOTS_RESERVED;)
		if (bpf_map_update_elem(bpf_map__fd(stack), NULL, &i, BPF_ANY))
			err = -errno;
	free(keys);
	free(gens);
	return err;
}
