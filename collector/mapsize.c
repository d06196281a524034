// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Map sizes and memory (see mapsize.h). The byte counts follow the kernel's
 * own accounting (the map types' map_mem_usage, Linux 6.x), with a page
 * for each map's header where the kernel has a few hundred bytes, so that
 * they bound what bpftool shows as bytes_memlock.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "bpfload.h"
#include "mapio.h"
#include "mapsize.h"
#include "taskmeter.h"
#include "taskmeter.skel.h"
#include "taskmeter_tc.skel.h"
#include "taskmeter_xdp.skel.h"
#include "util.h"

#define CFG(field) offsetof(struct tm_config, field)

const struct tm_map_size tm_mapsize_table[] = {
	{ "tm_counters", "counter_entries", CFG(max_owner_records), 1 },
	{ "tm_class_gen", "counter_entries", CFG(max_owner_records), 1 },
	{ "tm_classes", "counter_entries", CFG(max_owner_records), 1 },
	{ "tm_free", "counter_entries", CFG(max_owner_records), 1 },
	{ "tm_meta", "meta_entries", CFG(meta_entries), 1 },
	{ "tm_events", "ringbuf_kib", CFG(ringbuf_kib), 1024 },
	{ "tm_flows4", "flow_entries", CFG(flow_entries), 1 },
	{ "tm_flows6", "flow_entries", CFG(flow_entries), 1 },
};
const size_t tm_mapsize_table_n = TM_ARRAY_SIZE(tm_mapsize_table);

static const struct tm_own_map own_maps[TM_OWN_MAPS] = {
	[TM_OWN_STATE] = { "state", BPF_MAP_TYPE_ARRAY, sizeof(__u32), sizeof(struct tm_state), 1 },
	[TM_OWN_RETIRED] = { "retired", BPF_MAP_TYPE_HASH, sizeof(struct tm_retired_key),
			     sizeof(struct tm_counter_val), TM_IFACES_MAX * TM_DIR_MAX },
	/* a slot of tm_counters each, at most */
	[TM_OWN_RETIRING] = { "retiring", BPF_MAP_TYPE_HASH, sizeof(__u32), sizeof(__u32), 0,
			      &tm_mapsize_table[0] },
};

unsigned int tm_mapsize_entries(const struct tm_map_size *ms, const struct tm_config *c)
{
	return *(const unsigned int *)((const char *)c + ms->off) * ms->unit;
}

int tm_mapsize_apply(struct bpf_object *obj, const struct tm_config *c)
{
	struct bpf_map *m;
	int err;

	for (size_t i = 0; i < tm_mapsize_table_n; i++) {
		m = bpf_object__find_map_by_name(obj, tm_mapsize_table[i].map);
		err = m ? bpf_map__set_max_entries(m, tm_mapsize_entries(&tm_mapsize_table[i], c))
			: -ENOENT;
		if (err)
			return err;
	}
	return 0;
}

const struct tm_own_map *tm_mapsize_own(enum tm_own_map_id id)
{
	return &own_maps[id];
}

__u32 tm_mapsize_own_entries(const struct tm_own_map *m, const struct tm_config *c)
{
	return m->sized ? tm_mapsize_entries(m->sized, c) : m->entries;
}

/* ---- memory ---- */

/* What the kernel's accounting of a map depends on. */
struct map_shape {
	enum bpf_map_type type;
	__u32 key, value, entries, flags;
};

/* Room for a map's header (struct bpf_array, bpf_htab, ...: a few hundred
 * bytes, more with debug options). */
#define MAP_HDR 4096ull
/* struct htab_elem before its key and value. */
#define HTAB_ELEM 48ull
/* struct bucket; locks per CPU (HASHTAB_MAP_LOCK_COUNT). */
#define HTAB_BUCKET 16ull
#define HTAB_LOCKS 8ull
/* Ring buffer pages besides the data: the consumer and producer positions. */
#define RINGBUF_META_PAGES 4ull
/* Socket storage: an element, and the storage itself for a socket's first. */
#define SK_STORAGE_PER_SOCKET 192ull

static unsigned long long round8(unsigned long long n)
{
	return (n + 7) & ~7ull;
}

static unsigned long long pow2_at_least(unsigned long long n)
{
	unsigned long long p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

static unsigned long long page_align(unsigned long long n, unsigned long long page)
{
	return (n + page - 1) / page * page;
}

/* array_map_mem_usage(), queue_stack_map_mem_usage(), ringbuf_map_mem_usage() */
static unsigned long long array_bytes(const struct map_shape *s, unsigned long long ncpus,
				      unsigned long long page)
{
	unsigned long long n = s->entries, v = round8(s->value);

	switch (s->type) {
	case BPF_MAP_TYPE_PERCPU_ARRAY:
		return MAP_HDR + n * 8 + n * v * ncpus;
	case BPF_MAP_TYPE_STACK:
	case BPF_MAP_TYPE_QUEUE:
		return MAP_HDR + (n + 1) * s->value;
	case BPF_MAP_TYPE_RINGBUF:
		return MAP_HDR + n + RINGBUF_META_PAGES * page +
		       (n / page + RINGBUF_META_PAGES) * 2 * sizeof(void *);
	default:
		if (s->flags & BPF_F_MMAPABLE)
			return page_align(MAP_HDR, page) + page_align(n * v, page);
		return MAP_HDR + n * v;
	}
}

/* htab_map_mem_usage(), at max_entries also where elements are not preallocated. */
static unsigned long long hash_bytes(const struct map_shape *s, unsigned long long ncpus)
{
	bool percpu = s->type == BPF_MAP_TYPE_PERCPU_HASH || s->type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
	bool lru = s->type == BPF_MAP_TYPE_LRU_HASH || s->type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
	bool prealloc = !(s->flags & BPF_F_NO_PREALLOC);
	unsigned long long n = s->entries, v = round8(s->value);
	unsigned long long elem = HTAB_ELEM + round8(s->key) + (percpu ? 8 : v);
	unsigned long long b = MAP_HDR + HTAB_BUCKET * pow2_at_least(n) + 4 * ncpus * HTAB_LOCKS;

	if (!prealloc)
		return b + (elem + 8) * n + (percpu ? (16 + v * ncpus) * n : 0);
	if (!percpu && !lru)
		n += ncpus; /* extra elements for updates of existing keys */
	b += elem * n;
	if (percpu)
		return b + v * ncpus * n;
	return lru ? b : b + 8 * ncpus;
}

static unsigned long long map_bytes(const struct map_shape *s, int ncpus)
{
	long page = sysconf(_SC_PAGESIZE);
	unsigned long long cpus = ncpus > 0 ? (unsigned long long)ncpus : 1;

	switch (s->type) {
	case BPF_MAP_TYPE_HASH:
	case BPF_MAP_TYPE_PERCPU_HASH:
	case BPF_MAP_TYPE_LRU_HASH:
	case BPF_MAP_TYPE_LRU_PERCPU_HASH:
		return hash_bytes(s, cpus);
	case BPF_MAP_TYPE_SK_STORAGE:
		return MAP_HDR + HTAB_BUCKET * pow2_at_least(cpus < 2 ? 2 : cpus);
	default:
		return array_bytes(s, cpus, page > 0 ? (unsigned long long)page : 4096);
	}
}

static const char *sized_by(const char *map)
{
	for (size_t i = 0; i < tm_mapsize_table_n; i++)
		if (!strcmp(tm_mapsize_table[i].map, map))
			return tm_mapsize_table[i].key;
	return NULL;
}

static void print_line(FILE *f, const char *obj, const char *name, const struct map_shape *s,
		       unsigned long long bytes, const char *key)
{
	if (!f)
		return;
	fprintf(f, "  %-9s %-16s %12llu bytes %9u entries", obj, name, bytes, s->entries);
	if (s->type == BPF_MAP_TYPE_SK_STORAGE)
		fprintf(f, "  + %llu bytes per socket", s->value + SK_STORAGE_PER_SOCKET);
	if (key)
		fprintf(f, "  (%s)", key);
	fputc('\n', f);
}

/* The maps obj creates; with only_internal, only its own sections (the
 * solo objects use the main object's maps for the rest). */
static unsigned long long object_bytes(struct bpf_object *obj, const char *label, bool only_internal,
				       int ncpus, FILE *f)
{
	unsigned long long total = 0;
	struct bpf_map *m;

	bpf_object__for_each_map(m, obj) {
		struct map_shape s = { bpf_map__type(m), bpf_map__key_size(m), bpf_map__value_size(m),
				       bpf_map__max_entries(m), bpf_map__map_flags(m) };
		unsigned long long n;

		if (only_internal && !bpf_map__is_internal(m))
			continue;
		n = map_bytes(&s, ncpus);
		total += n;
		print_line(f, label, bpf_map__name(m), &s, n, sized_by(bpf_map__name(m)));
	}
	return total;
}

static unsigned long long own_bytes(const struct tm_config *c, int ncpus, FILE *f)
{
	unsigned long long total = 0;

	for (int i = 0; i < TM_OWN_MAPS; i++) {
		const struct tm_own_map *o = &own_maps[i];
		struct map_shape s = { o->type, o->key_size, o->value_size,
				       tm_mapsize_own_entries(o, c), 0 };
		unsigned long long n = map_bytes(&s, ncpus);

		total += n;
		print_line(f, "collector", o->name, &s, n, o->sized ? o->sized->key : NULL);
	}
	return total;
}

unsigned long long tm_mapsize_print(const struct tm_config *c, int ncpus, FILE *f)
{
	struct taskmeter_bpf *skel = taskmeter_bpf__open();
	struct taskmeter_xdp *xdp = taskmeter_xdp__open();
	struct taskmeter_tc *tc = taskmeter_tc__open();
	unsigned long long total = 0;

	if (skel && xdp && tc && !tm_mapsize_apply(skel->obj, c)) {
		total += object_bytes(skel->obj, "taskmeter", false, ncpus, f);
		total += object_bytes(xdp->obj, "xdp", true, ncpus, f);
		total += object_bytes(tc->obj, "tc", true, ncpus, f);
		total += own_bytes(c, ncpus, f);
	}
	taskmeter_tc__destroy(tc);
	taskmeter_xdp__destroy(xdp);
	taskmeter_bpf__destroy(skel);
	return total;
}

unsigned long long tm_mapsize_ringbuf_events(const struct tm_config *c, size_t size)
{
	/* each record in the ring carries an 8-byte header, 8-byte aligned */
	return (unsigned long long)c->ringbuf_kib * 1024 / ((size + 15) & ~7ull);
}
