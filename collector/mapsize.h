/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the BPF maps are sized by and what they take. One table says which
 * config key sets which map's max_entries (its default is the size the map
 * is defined with, include/taskmeter.h's TM_DEFAULT_*): the loader applies
 * it, a pinned state is checked against it, a reload keeps those keys. One
 * more table describes the maps the collector creates itself. And
 * --print-memory goes over every map of every object (the main one, XDP,
 * TC, their .rodata) and those, so that none can be left out of it.
 */
#ifndef TM_MAPSIZE_H
#define TM_MAPSIZE_H

#include <stddef.h>
#include <stdio.h>

#include <bpf/libbpf.h>
#include <linux/types.h>

#include "config.h"

/* A map whose max_entries a config key sets. */
struct tm_map_size {
	const char *map;        /* its name in the object */
	const char *key;        /* the config key */
	size_t off;             /* the key's unsigned int in struct tm_config */
	unsigned int unit;      /* max_entries per unit of the key */
};

extern const struct tm_map_size tm_mapsize_table[];
extern const size_t tm_mapsize_table_n;

/* max_entries the config gives ms's map. */
unsigned int tm_mapsize_entries(const struct tm_map_size *ms, const struct tm_config *c);
/* Before load: every sized map of obj gets its max_entries; -ENOENT if obj
 * lacks one of them. */
int tm_mapsize_apply(struct bpf_object *obj, const struct tm_config *c);

/* The maps the collector makes itself, pinned with the state (no program
 * uses them). */
enum tm_own_map_id {
	TM_OWN_STATE,           /* the state stamp (struct tm_state) */
	TM_OWN_RETIRED,         /* interface sums of retired classes */
	TM_OWN_RETIRING,        /* slots retired, not yet freed */
	TM_OWN_MAPS,
};

struct tm_own_map {
	const char *name;       /* also its pin */
	enum bpf_map_type type;
	__u32 key_size, value_size;
	__u32 entries;          /* when no key sizes it */
	const struct tm_map_size *sized; /* else: the same key as this object map */
};

const struct tm_own_map *tm_mapsize_own(enum tm_own_map_id id);
__u32 tm_mapsize_own_entries(const struct tm_own_map *m, const struct tm_config *c);

/*
 * Bytes of kernel memory all the maps may take with this config: an upper
 * bound, as the kernel accounts them (bpftool's bytes_memlock), socket
 * storage aside (it grows with the sockets: printed per socket). With f,
 * one line per map: object, map, bytes, entries, the key that sizes it.
 */
unsigned long long tm_mapsize_print(const struct tm_config *c, int ncpus, FILE *f);

/* Events of size bytes the configured ring buffer holds. */
unsigned long long tm_mapsize_ringbuf_events(const struct tm_config *c, size_t size);

#endif /* TM_MAPSIZE_H */
