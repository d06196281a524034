// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* BPF counters -> record store (see mapio.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpfload.h"
#include "bpfmaps.h"
#include "log.h"
#include "mapio.h"
#include "taskmeter.skel.h"

#define TM_BATCH 4096

/*
 * The BPF side bounds slot indexes with masks, not compares (for the
 * verifier): dir & 1, l4 & 3, family & 1, layer & 3 (bpf/class.bpf.h,
 * owner.bpf.h, cgroup_skb.bpf.c), idx & (TM_OVERFLOW_SLOTS - 1) for
 * tm_meta_slot.cls. One more direction, protocol, family or layer would
 * wrap silently there: it must fail here first.
 */
_Static_assert(TM_DIR_MAX == 2 && TM_L4_MAX == 4 && TM_FAMILY_MAX == 2 && TM_LAYER_MAX == 4 &&
	       (TM_OVERFLOW_SLOTS & (TM_OVERFLOW_SLOTS - 1)) == 0,
	       "the BPF programs' index masks cover every enum value");

static int map_fd(struct bpf_map *m)
{
	return bpf_map__fd(m);
}

/* The reserved slots' classes: overflow (by direction, L4, family at the
 * socket layer; by layer and direction for the others) and unattributed. */
static void reserved_classes(struct tm_mapio *m)
{
	for (__u8 dir = 0; dir < TM_DIR_MAX; dir++) {
		for (__u8 l4 = 0; l4 < TM_L4_MAX; l4++) {
			for (__u8 fam = 0; fam < TM_FAMILY_MAX; fam++) {
				struct tm_class k = { .layer = TM_LAYER_CGROUP_SKB, .dir = dir,
						      .l4 = l4, .family = fam };

				m->slots[TM_OVERFLOW_IDX(dir, l4, fam)].k = k;
				m->slots[TM_SLOT_UNATTRIBUTED(dir, l4, fam)].k = k;
			}
		}
		for (__u8 layer = 0; layer < TM_LAYER_MAX; layer++) {
			struct tm_class k = { .layer = layer, .dir = dir, .l4 = TM_L4_OTHER,
					      .family = TM_FAMILY_NONE };

			m->slots[TM_SLOT_IF_OVERFLOW(layer, dir)].k = k;
		}
	}
	m->slots[TM_SLOT_IFACES].k.layer = TM_LAYER_MAX; /* counts nothing */
	for (__u32 i = 0; i < TM_SLOTS_RESERVED; i++)
		m->slots[i].state = TM_SLOT_LIVE;
	m->high = TM_SLOTS_RESERVED;
}

static enum tm_kind kind_of(__u32 slot, const struct tm_class *k)
{
	if (slot < TM_OVERFLOW_SLOTS || (slot >= TM_SLOT_IF_OVERFLOW(0, 0) &&
					 slot < TM_SLOT_UNATTRIBUTED(0, 0, 0)))
		return TM_KIND_OVERFLOW;
	if (slot < TM_SLOT_IFACES)
		return TM_KIND_UNATTRIBUTED;
	if (k->bucket && k->bucket < TM_BUCKET_MAX)
		return (enum tm_kind)(k->bucket + 3); /* see store.c */
	return k->owner.tgid ? TM_KIND_PROCESS : TM_KIND_UNATTRIBUTED;
}

static int zero_slot(struct tm_mapio *m, __u32 slot)
{
	memset(m->cvals, 0, sizeof(struct tm_counter_val) * (size_t)m->ncpus);
	if (bpf_map_update_elem(m->counters_fd, &slot, m->cvals, BPF_ANY))
		return -errno;
	return bpf_map_update_elem(m->free_fd, NULL, &slot, BPF_ANY) ? -errno : 0;
}

/* Slots a previous collector retired and did not free before it stopped. */
static int free_leftovers(struct tm_mapio *m)
{
	__u32 *left = m->keys, k, *prev = NULL, n = 0;
	int err = 0;

	while (n < m->n_slots && !bpf_map_get_next_key(m->retiring_fd, prev, &left[n])) {
		k = left[n];
		prev = &k;
		n++;
	}
	for (__u32 i = 0; !err && i < n; i++) {
		if (left[i] >= TM_SLOTS_RESERVED && left[i] < m->n_slots)
			err = zero_slot(m, left[i]);
		bpf_map_delete_elem(m->retiring_fd, &left[i]);
	}
	if (n)
		tm_info("freed %u slots the previous collector was retiring\n", n);
	return err;
}

int tm_mapio_init(struct tm_mapio *m, struct tm_bpf *b, int ncpus, bool fresh)
{
	struct taskmeter_bpf *s = b->skel;
	int err;

	memset(m, 0, sizeof(*m));
	m->counters_fd = map_fd(s->maps.tm_counters);
	m->classes_fd = map_fd(s->maps.tm_classes);
	m->gen_fd = map_fd(s->maps.tm_class_gen);
	m->free_fd = map_fd(s->maps.tm_free);
	m->meta_fd = map_fd(s->maps.tm_meta);
	m->stats_fd = map_fd(s->maps.tm_stats);
	m->retired_fd = b->retired_fd;
	m->retiring_fd = b->retiring_fd;
	m->ncpus = ncpus;
	m->n_slots = bpf_map__max_entries(s->maps.tm_counters);
	m->batch = TM_BATCH;
	m->slots = calloc(m->n_slots, sizeof(*m->slots));
	m->keys = calloc(TM_BATCH > m->n_slots ? TM_BATCH : m->n_slots, sizeof(struct tm_class));
	m->vals = calloc(TM_BATCH, sizeof(__u32));
	m->cvals = calloc(m->n_slots, sizeof(struct tm_counter_val) * (size_t)ncpus);
	if (!m->slots || !m->keys || !m->vals || !m->cvals) {
		tm_mapio_free(m);
		return -ENOMEM;
	}
	reserved_classes(m);
	err = fresh ? tm_bpfmaps_fill_slots(b->skel->obj) : free_leftovers(m);
	if (err)
		tm_mapio_free(m);
	return err;
}

void tm_mapio_free(struct tm_mapio *m)
{
	free(m->slots);
	free(m->keys);
	free(m->vals);
	free(m->cvals);
	tm_vec_free(&m->retiring);
	m->slots = NULL;
	m->keys = m->vals = m->cvals = NULL;
}

/* ---- reading ---- */

static void unlist(struct tm_record *rec, __u32 slot)
{
	__u32 *v = rec->bpf_slots.data;

	for (size_t i = 0; i < rec->bpf_slots.len; i++) {
		if (v[i] != slot)
			continue;
		v[i] = v[--rec->bpf_slots.len];
		return;
	}
}

/* A slot now counts for rec: it is retired with it (even if it never
 * counted anything). */
static void attach_slot(struct tm_mapio *m, struct tm_store *s, __u32 slot)
{
	struct tm_slotinfo *si = &m->slots[slot];
	__u32 *p;

	si->rec = tm_store_record_of(s, kind_of(slot, &si->k), &si->k);
	p = si->rec && slot >= TM_SLOTS_RESERVED ? tm_vec_push(&si->rec->bpf_slots, sizeof(*p))
						  : NULL;
	if (p)
		*p = slot;
}

/* One of tm_stats, summed over CPUs. */
static int read_stat(struct tm_mapio *m, __u32 i, uint64_t *out)
{
	uint64_t *percpu = m->cvals; /* room for many values of every CPU */

	if (bpf_map_lookup_elem(m->stats_fd, &i, percpu))
		return -errno;
	*out = 0;
	for (int c = 0; c < m->ncpus; c++)
		*out += percpu[c];
	return 0;
}

/*
 * tm_classes: which slot counts what, for the slots taken since. Only the
 * hooks add classes (class.bpf.h), and each one they add moves
 * TM_STAT_CLASSES_MADE once it is in the map: when the stat has not moved
 * since the last read (taken before it), no slot changed hands and the
 * read is skipped. It is most of an interval's work when nothing changed.
 */
static int read_classes(struct tm_mapio *m, struct tm_store *s)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	struct tm_class *keys = m->keys;
	__u32 *vals = m->vals, in = 0, out = 0, count;
	bool first = true;
	uint64_t made;
	int err;

	err = read_stat(m, TM_STAT_CLASSES_MADE, &made);
	if (err)
		return err;
	if (m->classes_read && made == m->made)
		return 0;
	m->classes = 0;
	do {
		count = m->batch;
		err = bpf_map_lookup_batch(m->classes_fd, first ? NULL : &in, &out, keys, vals,
					   &count, &opts);
		if (err && errno != ENOENT)
			return -errno;
		for (__u32 i = 0; i < count; i++) {
			struct tm_slotinfo *si;

			if (vals[i] < TM_SLOTS_RESERVED || vals[i] >= m->n_slots)
				continue;
			si = &m->slots[vals[i]];
			if (si->state != TM_SLOT_LIVE || memcmp(&si->k, &keys[i], sizeof(keys[i]))) {
				if (si->rec)
					unlist(si->rec, vals[i]);
				memset(si, 0, sizeof(*si)); /* a new class: it starts at zero */
				si->k = keys[i];
				si->state = TM_SLOT_LIVE;
				attach_slot(m, s, vals[i]);
			}
			if (vals[i] >= m->high)
				m->high = vals[i] + 1;
		}
		m->classes += count;
		in = out;
		first = false;
	} while (!err);
	m->made = made;
	m->classes_read = true;
	return 0;
}

/* Interface-layer bytes as the device counts them. */
static void as_device_counts(struct tm_mapio *m, const struct tm_class *k,
			     struct tm_counter_val *d)
{
	/* TC ingress counts what came through a veth's NAPI queue itself */
	if (k->layer == TM_LAYER_TC && k->dir == TM_DIR_INGRESS)
		return;
	if (k->layer != TM_LAYER_DROP && k->layer != TM_LAYER_CGROUP_SKB && m->l2_less)
		d->bytes -= d->packets * m->l2_less(m->l2_less_ctx, k->netns, (int)k->ifindex,
						    k->dir);
}

static void fold(struct tm_mapio *m, struct tm_store *s, __u32 slot,
		 const struct tm_counter_val *cur)
{
	struct tm_slotinfo *si = &m->slots[slot];
	struct tm_counter_val d;
	tm_store_val_sub(&d, cur, &si->last);
	if (!d.packets && !d.bytes && !d.payload_bytes && !d.retrans_bytes)
		return;
	si->last = *cur;
	if (!si->rec)
		attach_slot(m, s, slot);
	if (!si->rec)
		return;
	as_device_counts(m, &si->k, &d);
	tm_store_add(s, si->rec, &si->k, &d);
}

static int read_counters(struct tm_mapio *m, struct tm_store *s)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	size_t vsz = sizeof(struct tm_counter_val) * (size_t)m->ncpus;
	__u32 *keys = m->keys, out = 0, count = m->high;

	if (bpf_map_lookup_batch(m->counters_fd, NULL, &out, keys, m->cvals, &count, &opts) &&
	    errno != ENOENT)
		return -errno;
	for (__u32 i = 0; i < count; i++) {
		const struct tm_counter_val *v = (void *)((char *)m->cvals + i * vsz);
		struct tm_counter_val sum = { 0 };

		if (keys[i] >= m->high || m->slots[keys[i]].state == TM_SLOT_FREE)
			continue;
		for (int c = 0; c < m->ncpus; c++)
			tm_store_val_add(&sum, &v[c]);
		fold(m, s, keys[i], &sum);
	}
	return 0;
}

/* A retired interface-layer class's counts stay in its interface's sums
 * across collector restarts. */
static void retire_sums(struct tm_mapio *m, const struct tm_slotinfo *si)
{
	struct tm_retired_key rk = { .iface = { .netns = si->k.netns, .ifindex = si->k.ifindex },
				     .dir = si->k.dir };
	struct tm_counter_val sum = { 0 };

	if (m->retired_fd < 0 || si->k.layer == TM_LAYER_DROP ||
	    si->k.layer == TM_LAYER_CGROUP_SKB)
		return;
	bpf_map_lookup_elem(m->retired_fd, &rk, &sum);
	tm_store_val_add(&sum, &si->last);
	if (bpf_map_update_elem(m->retired_fd, &rk, &sum, BPF_ANY))
		tm_dbg("retired sums: %s\n", strerror(errno));
}

/* A slot retired a read ago: that read was its last; zeroed and freed. */
static int free_retired(struct tm_mapio *m, __u32 i)
{
	struct tm_slotinfo *si = &m->slots[i];
	int err;

	err = zero_slot(m, i);
	if (err) { /* tried again at the next read: its sums not yet added */
		tm_warn("freeing slot %u: %s\n", i, strerror(-err));
		return err;
	}
	retire_sums(m, si);
	bpf_map_delete_elem(m->retiring_fd, &i);
	if (si->rec)
		unlist(si->rec, i);
	memset(si, 0, sizeof(*si));
	m->recycled++;
	return 0;
}

/* The slots of m->retiring that are done leave it: freed, or taken by a
 * class again meanwhile (read_classes made them live). Those retired at
 * this read, or that failed to zero, stay for the next. */
static void recycle(struct tm_mapio *m)
{
	__u32 *v = m->retiring.data;

	for (size_t j = 0; j < m->retiring.len;) {
		const struct tm_slotinfo *si = &m->slots[v[j]];

		if (si->state == TM_SLOT_RETIRING &&
		    (si->retired_read >= m->reads || free_retired(m, v[j]))) {
			j++;
			continue;
		}
		v[j] = v[--m->retiring.len];
	}
	while (m->high > TM_SLOTS_RESERVED && m->slots[m->high - 1].state == TM_SLOT_FREE)
		m->high--;
}

int tm_mapio_read(struct tm_mapio *m, struct tm_store *s)
{
	int err;

	m->reads++;
	err = read_classes(m, s);
	if (!err)
		err = read_counters(m, s);
	if (!err)
		recycle(m);
	return err;
}

/* ---- expiry ---- */

/* Stop the hooks using slot: its class goes, its generation moves. */
static void retire(struct tm_mapio *m, __u32 slot)
{
	struct tm_slotinfo *si = &m->slots[slot];
	__u32 gen = 0, one = 1, *p = tm_vec_push(&m->retiring, sizeof(*p));

	if (!p) {
		tm_warn("retiring slot %u: %s\n", slot, strerror(ENOMEM));
		return; /* still live: its record's next drain tries again */
	}
	*p = slot;
	if (!bpf_map_delete_elem(m->classes_fd, &si->k) && m->classes)
		m->classes--; /* kept right between reads of tm_classes */
	if (!bpf_map_lookup_elem(m->gen_fd, &slot, &gen)) {
		gen++;
		bpf_map_update_elem(m->gen_fd, &slot, &gen, BPF_ANY);
	}
	bpf_map_update_elem(m->retiring_fd, &slot, &one, BPF_ANY);
	si->state = TM_SLOT_RETIRING;
	si->retired_read = m->reads;
}

static bool fresh(const struct tm_record *rec)
{
	for (unsigned int i = 0; i < TM_SOCK_SLOTS; i++)
		if ((rec->sock_used & (1u << i)) &&
		    memcmp(&rec->sock[i].total, &rec->sock[i].reported, sizeof(rec->sock[i].total)))
			return true;
	for (uint32_t i = 0; i < rec->n_ifs; i++)
		if (memcmp(&rec->ifs[i].s.total, &rec->ifs[i].s.reported,
			   sizeof(rec->ifs[i].s.total)))
			return true;
	return false;
}

bool tm_mapio_drain(struct tm_mapio *m, struct tm_store *s, struct tm_record *rec)
{
	__u32 *v = rec->bpf_slots.data;
	bool busy = false;

	(void)s;
	if (rec->key.kind != TM_KIND_PROCESS)
		return true; /* buckets live on */
	for (size_t i = 0; i < rec->bpf_slots.len; i++) {
		struct tm_slotinfo *si = &m->slots[v[i]];

		if (si->state == TM_SLOT_LIVE)
			retire(m, v[i]);
		busy = true;
	}
	return busy || fresh(rec);
}

/* ---- the rest ---- */

int tm_mapio_load_retired(struct tm_mapio *m, struct tm_store *s)
{
	struct tm_retired_key k, next;
	struct tm_counter_val v;
	struct tm_if_total *t;
	void *prev = NULL;

	while (!bpf_map_get_next_key(m->retired_fd, prev, &next)) {
		k = next;
		prev = &k;
		if (bpf_map_lookup_elem(m->retired_fd, &k, &v) || k.dir >= TM_DIR_MAX)
			continue;
		t = tm_store_if_total(s, k.iface.netns, k.iface.ifindex);
		if (!t)
			return -ENOMEM;
		tm_store_val_add(&t->dir[k.dir], &v);
	}
	return 0;
}

void tm_mapio_forget(struct tm_mapio *m, const struct tm_owner *o)
{
	struct tm_owner key = *o;

	key.pad = 0;
	bpf_map_delete_elem(m->meta_fd, &key);
}

int tm_mapio_stats(struct tm_mapio *m, uint64_t out[TM_STAT_MAX])
{
	memset(out, 0, TM_STAT_MAX * sizeof(*out));
	for (__u32 i = 0; i < TM_STAT_MAX; i++) {
		int err = read_stat(m, i, &out[i]);

		if (err)
			return err;
	}
	return 0;
}
