/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Objects loaded on their own (XDP, TC) use the main object's maps. */
#ifndef TM_BPFMAPS_H
#define TM_BPFMAPS_H

struct bpf_object;

/* Before obj is loaded: every map of obj (but its own .rodata/.bss) becomes
 * the main object's map of the same name, by fd. -ENOENT if main has none. */
int tm_bpfmaps_reuse(struct bpf_object *obj, struct bpf_object *main);

/* A fresh state: every slot's generation at its first (TM_GEN_FIRST), every
 * slot but the reserved ones in tm_free. */
int tm_bpfmaps_fill_slots(struct bpf_object *main);

#endif /* TM_BPFMAPS_H */
