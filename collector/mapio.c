// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* BPF counter maps -> record store (see mapio.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpfload.h"
#include "log.h"
#include "mapio.h"
#include "taskmeter.skel.h"

#define TM_BATCH 4096

_Static_assert(sizeof(struct tm_if_key) >= sizeof(struct tm_counter_key),
	       "batch key buffer sized by the larger key");

int tm_mapio_init(struct tm_mapio *m, struct tm_bpf *b, int ncpus)
{
	struct taskmeter_bpf *s = b->skel;

	memset(m, 0, sizeof(*m));
	m->counters_fd = bpf_map__fd(s->maps.tm_counters);
	m->overflow_fd = bpf_map__fd(s->maps.tm_overflow);
	m->if_fd = bpf_map__fd(s->maps.tm_if_counters);
	m->if_overflow_fd = bpf_map__fd(s->maps.tm_if_overflow);
	m->meta_fd = bpf_map__fd(s->maps.tm_meta);
	m->stats_fd = bpf_map__fd(s->maps.tm_stats);
	m->retired_fd = b->retired_fd;
	m->ncpus = ncpus;
	m->batch = TM_BATCH;
	m->keys = calloc(TM_BATCH, sizeof(struct tm_if_key));
	m->vals = calloc(TM_BATCH, sizeof(struct tm_counter_val) * (size_t)ncpus);
	if (!m->keys || !m->vals) {
		tm_mapio_free(m);
		return -ENOMEM;
	}
	return 0;
}

void tm_mapio_free(struct tm_mapio *m)
{
	free(m->keys);
	free(m->vals);
	m->keys = m->vals = NULL;
}

static void sum_cpus(const struct tm_mapio *m, const struct tm_counter_val *v,
		     struct tm_counter_val *sum)
{
	memset(sum, 0, sizeof(*sum));
	for (int i = 0; i < m->ncpus; i++)
		tm_val_add(sum, &v[i]);
}

/* Batch-read a per-CPU hash, calling fn per entry; entries or -errno. */
static long read_map(struct tm_mapio *m, struct tm_store *s, int fd, size_t key_size,
		     void (*fn)(struct tm_mapio *, struct tm_store *, const void *,
				const struct tm_counter_val *))
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	size_t vsz = sizeof(struct tm_counter_val) * (size_t)m->ncpus;
	__u32 in = 0, out = 0, count;
	bool first = true;
	long n = 0;
	int err;

	do {
		count = m->batch;
		err = bpf_map_lookup_batch(fd, first ? NULL : &in, &out, m->keys, m->vals, &count,
					   &opts);
		if (err && errno != ENOENT)
			return -errno;
		n += count;
		for (__u32 i = 0; i < count; i++) {
			struct tm_counter_val sum;

			sum_cpus(m, (struct tm_counter_val *)((char *)m->vals + i * vsz), &sum);
			fn(m, s, (char *)m->keys + i * key_size, &sum);
		}
		in = out;
		first = false;
	} while (!err);
	return n;
}

static void fold_sock(struct tm_mapio *m, struct tm_store *s, const void *k,
		      const struct tm_counter_val *sum)
{
	(void)m;
	tm_store_fold_sock(s, k, sum);
}

/* Interface-layer bytes as the device counts them. */
static void as_device_counts(struct tm_mapio *m, const struct tm_if_key *k,
			     struct tm_counter_val *sum)
{
	if (k->layer != TM_LAYER_DROP && m->l2_less)
		sum->bytes -= sum->packets * m->l2_less(m->l2_less_ctx, k->netns,
							(int)k->ifindex, k->dir);
}

static void fold_if(struct tm_mapio *m, struct tm_store *s, const void *key,
		    const struct tm_counter_val *sum)
{
	struct tm_counter_val v = *sum;

	as_device_counts(m, key, &v);
	tm_store_fold_if(s, key, &v);
}

static int read_array(struct tm_mapio *m, int fd, __u32 i, struct tm_counter_val *sum)
{
	if (bpf_map_lookup_elem(fd, &i, m->vals))
		return -errno;
	sum_cpus(m, m->vals, sum);
	return 0;
}

static int read_overflow(struct tm_mapio *m, struct tm_store *s)
{
	struct tm_counter_val sum;
	int err;

	for (__u32 i = 0; i < TM_OVERFLOW_SLOTS; i++) {
		err = read_array(m, m->overflow_fd, i, &sum);
		if (err)
			return err;
		tm_store_fold_overflow(s, i, &sum);
	}
	return 0;
}

/* Interface-layer overflow: the interface is not known (ifindex 0). */
static int read_if_overflow(struct tm_mapio *m, struct tm_store *s)
{
	struct tm_rec_key rk = { .kind = TM_KIND_OVERFLOW };
	struct tm_if_key k = { .l4 = TM_L4_OTHER, .family = TM_FAMILY_NONE };
	struct tm_counter_val sum;
	struct tm_record *rec;
	int err;

	for (__u32 i = 0; i < TM_IF_OVERFLOW_SLOTS; i++) {
		err = read_array(m, m->if_overflow_fd, i, &sum);
		if (err)
			return err;
		if (!sum.packets)
			continue;
		rec = tm_store_get(s, &rk);
		if (!rec)
			return -ENOMEM;
		k.layer = (__u8)(i / TM_DIR_MAX);
		k.dir = (__u8)(i % TM_DIR_MAX);
		tm_store_fold_if_rec(s, rec, &k, &sum);
	}
	return 0;
}

int tm_mapio_read(struct tm_mapio *m, struct tm_store *s)
{
	long n = read_map(m, s, m->counters_fd, sizeof(struct tm_counter_key), fold_sock);
	int err;

	if (n < 0)
		return (int)n;
	m->counter_entries = (uint64_t)n;
	err = read_overflow(m, s);
	if (err)
		return err;
	n = read_map(m, s, m->if_fd, sizeof(struct tm_if_key), fold_if);
	if (n < 0)
		return (int)n;
	m->if_entries = (uint64_t)n;
	return read_if_overflow(m, s);
}

/* ---- expiry ---- */

static bool take(struct tm_mapio *m, int fd, const void *key, struct tm_counter_val *sum)
{
	if (bpf_map_lookup_and_delete_elem(fd, key, m->vals))
		return false;
	sum_cpus(m, m->vals, sum);
	return true;
}

/* An interface-layer entry is deleted: what it counted stays in its
 * interface's sums, across collector restarts too. */
static void retire(struct tm_mapio *m, const struct tm_if_key *k, const struct tm_counter_val *v)
{
	struct tm_retired_key rk = { .netns = k->netns, .ifindex = k->ifindex, .dir = k->dir };
	struct tm_counter_val sum = { 0 };

	if (m->retired_fd < 0 || k->layer == TM_LAYER_DROP || k->dir >= TM_DIR_MAX)
		return;
	bpf_map_lookup_elem(m->retired_fd, &rk, &sum);
	tm_val_add(&sum, v);
	if (bpf_map_update_elem(m->retired_fd, &rk, &sum, BPF_ANY))
		tm_dbg("retired sums: %s\n", strerror(errno));
}

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
		t = tm_store_if_total(s, k.netns, k.ifindex);
		if (!t)
			return -ENOMEM;
		tm_val_add(&t->dir[k.dir], &v);
	}
	return 0;
}

static bool drain_if(struct tm_mapio *m, struct tm_store *s, struct tm_record *rec)
{
	struct tm_counter_val sum;
	bool fresh = false;

	for (uint32_t i = 0; i < rec->n_ifs; i++) {
		struct tm_ifslot *x = &rec->ifs[i];
		struct tm_if_key key = x->key;

		key.owner = rec->key.owner;
		key.exec_seq = rec->key.exec_seq;
		if (take(m, m->if_fd, &key, &sum)) {
			as_device_counts(m, &key, &sum);
			tm_store_fold_if_rec(s, rec, &key, &sum);
			retire(m, &key, &sum);
			x->s.last = (struct tm_counter_val){ 0 }; /* the entry is gone */
		}
		fresh |= x->s.total.packets != x->s.reported.packets;
	}
	return fresh;
}

bool tm_mapio_drain(struct tm_mapio *m, struct tm_store *s, struct tm_record *rec)
{
	struct tm_counter_key key = { .owner = rec->key.owner, .exec_seq = rec->key.exec_seq };
	struct tm_counter_val sum;
	bool fresh;

	if (rec->key.kind != TM_KIND_PROCESS)
		return false;
	fresh = drain_if(m, s, rec);
	for (unsigned int i = 0; i < TM_SOCK_SLOTS; i++) {
		if (!(rec->sock_used & (1u << i)))
			continue;
		key.dir = (__u8)(i / (TM_L4_MAX * TM_FAMILY_MAX));
		key.l4 = (__u8)((i / TM_FAMILY_MAX) % TM_L4_MAX);
		key.family = (__u8)(i % TM_FAMILY_MAX);
		if (take(m, m->counters_fd, &key, &sum)) {
			tm_store_fold_sock(s, &key, &sum);
			rec->sock[i].last = (struct tm_counter_val){ 0 };
		}
		fresh |= rec->sock[i].total.packets != rec->sock[i].reported.packets;
	}
	return fresh;
}

void tm_mapio_forget(struct tm_mapio *m, const struct tm_owner *o)
{
	struct tm_owner key = *o;

	key.pad = 0;
	bpf_map_delete_elem(m->meta_fd, &key);
}

int tm_mapio_stats(struct tm_mapio *m, uint64_t out[TM_STAT_MAX])
{
	uint64_t *percpu = m->vals; /* TM_BATCH values of every CPU: plenty */

	memset(out, 0, TM_STAT_MAX * sizeof(*out));
	for (__u32 i = 0; i < TM_STAT_MAX; i++) {
		if (bpf_map_lookup_elem(m->stats_fd, &i, percpu))
			return -errno;
		for (int c = 0; c < m->ncpus; c++)
			out[i] += percpu[c];
	}
	return 0;
}
