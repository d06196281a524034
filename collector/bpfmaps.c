// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>

#include <bpf/libbpf.h>

#include "bpfmaps.h"

int tm_bpf_reuse_maps(struct bpf_object *obj, struct bpf_object *main)
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
