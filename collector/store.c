// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The record store (see store.h): a chained hash table of records and the
 * arithmetic of folding cumulative readings into totals. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

#define TM_STORE_INITIAL_BUCKETS 1024

_Static_assert(sizeof(struct tm_counter_val) % sizeof(__u64) == 0,
	       "tm_counter_val is an array of __u64 counters");
#define TM_VAL_FIELDS (sizeof(struct tm_counter_val) / sizeof(__u64))

_Static_assert(TM_KIND_FORWARDED == TM_BUCKET_FORWARDED + 3 &&
	       TM_KIND_LOCAL_NO_OWNER == TM_BUCKET_LOCAL + 3 &&
	       TM_KIND_NON_IP == TM_BUCKET_NON_IP + 3 &&
	       TM_KIND_MALFORMED == TM_BUCKET_MALFORMED + 3 && TM_BUCKET_MAX == 5,
	       "bucket records: kind = bucket + 3");

void tm_store_val_add(struct tm_counter_val *a, const struct tm_counter_val *b)
{
	__u64 *x = (__u64 *)a;
	const __u64 *y = (const __u64 *)b;

	for (size_t i = 0; i < TM_VAL_FIELDS; i++)
		x[i] += y[i];
}

void tm_store_val_sub(struct tm_counter_val *d, const struct tm_counter_val *a,
		const struct tm_counter_val *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;
	__u64 *z = (__u64 *)d;

	for (size_t i = 0; i < TM_VAL_FIELDS; i++)
		z[i] = x[i] - y[i];
}

/* ---- the table ---- */

/* Every exec generation of an owner hashes alike: exits find them all. */
static uint64_t key_hash(const struct tm_rec_key *k)
{
	return tm_hash64(((uint64_t)k->owner.tgid << 8 | k->kind) ^ tm_hash64(k->owner.start_ns));
}

static bool key_eq(const struct tm_rec_key *a, const struct tm_rec_key *b)
{
	return a->owner.tgid == b->owner.tgid && a->owner.start_ns == b->owner.start_ns &&
	       a->exec_seq == b->exec_seq && a->kind == b->kind;
}

int tm_store_init(struct tm_store *s)
{
	memset(s, 0, sizeof(*s));
	tm_list_init(&s->dirty);
	tm_list_init(&s->expiring);
	tm_list_init(&s->unresolved);
	tm_slab_init(&s->rec_mem, sizeof(struct tm_record));
	return tm_htab_init(&s->records, TM_STORE_INITIAL_BUCKETS);
}

/* Out of s->reported: the last one takes its place. */
static void unreport(struct tm_store *s, struct tm_record *rec)
{
	struct tm_record **v = s->reported.data;

	if (!rec->reported)
		return;
	v[rec->reported - 1] = v[--s->reported.len];
	v[rec->reported - 1]->reported = rec->reported;
	rec->reported = 0;
}

static void record_free(struct tm_store *s, struct tm_record *rec)
{
	tm_list_del(&rec->dirty);
	unreport(s, rec);
	tm_list_del(&rec->expiring);
	tm_list_del(&rec->unresolved);
	tm_meta_clear(&rec->meta);
	if (rec->enc && s->free_enc)
		s->free_enc(rec->enc);
	free(rec->ifs);
	tm_vec_free(&rec->bpf_slots);
	tm_slab_free(&s->rec_mem, rec);
}

void tm_store_free(struct tm_store *s)
{
	for (size_t i = 0; s->records.b && i < s->records.n_b; i++) {
		struct tm_hnode *x = s->records.b[i], *next;

		for (; x; x = next) {
			next = x->next;
			record_free(s, tm_store_rec(x));
		}
	}
	tm_htab_free(&s->records);
	tm_vec_free(&s->reported);
	tm_vec_free(&s->if_totals);
	tm_vec_free(&s->if_names);
	memset(s, 0, sizeof(*s));
}

static bool rec_is(const struct tm_hnode *x, const void *k)
{
	return key_eq(&tm_store_rec((struct tm_hnode *)x)->key, k);
}

struct tm_record *tm_store_find(struct tm_store *s, const struct tm_rec_key *k)
{
	return tm_store_rec(tm_htab_find(&s->records, key_hash(k), rec_is, k));
}

struct tm_record *tm_store_get(struct tm_store *s, const struct tm_rec_key *k)
{
	struct tm_record *rec = tm_store_find(s, k);

	if (rec)
		return rec;
	rec = tm_slab_alloc(&s->rec_mem);
	if (!rec)
		return NULL;
	rec->key = *k;
	rec->first_frame = s->frames;
	tm_store_changed(s, rec);
	rec->node.hash = key_hash(k);
	tm_htab_insert(&s->records, &rec->node);
	s->count++;
	if (k->kind == TM_KIND_PROCESS) {
		s->processes++;
		tm_list_add_tail(&s->unresolved, &rec->unresolved);
	}
	return rec;
}

/* Onto s->dirty, once however often it changes. */
static void dirty(struct tm_store *s, struct tm_record *rec)
{
	rec->changed = true;
	if (!tm_list_linked(&rec->dirty))
		tm_list_add_tail(&s->dirty, &rec->dirty);
}

void tm_store_changed(struct tm_store *s, struct tm_record *rec)
{
	rec->meta_changed = true;
	dirty(s, rec);
}

struct tm_record *tm_store_process(struct tm_store *s, const struct tm_owner *o, __u32 exec_seq)
{
	struct tm_rec_key k = { .owner = *o, .exec_seq = exec_seq, .kind = TM_KIND_PROCESS };

	k.owner.pad = 0;
	return tm_store_get(s, &k);
}

/* ---- adding ---- */

struct tm_record *tm_store_record_of(struct tm_store *s, __u32 kind, const struct tm_class *k)
{
	struct tm_rec_key rk = { .kind = kind };

	if (kind == TM_KIND_PROCESS) {
		rk.owner.tgid = k->owner.tgid;
		rk.owner.start_ns = k->owner.start_ns;
		rk.exec_seq = k->exec_seq;
	}
	return tm_store_get(s, &rk);
}

static bool nonzero(const struct tm_counter_val *d)
{
	return d->packets || d->bytes || d->payload_bytes || d->retrans_bytes;
}

static bool class_eq(const struct tm_class *a, const struct tm_class *b)
{
	return a->netns == b->netns && a->ifindex == b->ifindex && a->dir == b->dir &&
	       a->l4 == b->l4 && a->family == b->family && a->layer == b->layer;
}

static struct tm_ifslot *ifslot(struct tm_record *rec, const struct tm_class *k)
{
	struct tm_ifslot *x;

	for (uint32_t i = 0; i < rec->n_ifs; i++)
		if (class_eq(&rec->ifs[i].key, k))
			return &rec->ifs[i];
	if (tm_array_reserve(&rec->ifs, &rec->cap_ifs, sizeof(*rec->ifs), rec->n_ifs + 1, 4))
		return NULL;
	x = &rec->ifs[rec->n_ifs++];
	memset(x, 0, sizeof(*x));
	x->key = *k;
	memset(&x->key.owner, 0, sizeof(x->key.owner));
	x->key.exec_seq = 0;
	x->key.bucket = 0;
	return x;
}

/* Its first counts: from now on in every frame. A record that does not
 * fit the array (no memory) is tried again with its next counts. */
static void reported(struct tm_store *s, struct tm_record *rec)
{
	struct tm_record **slot;

	if (rec->reported)
		return;
	slot = tm_vec_push(&s->reported, sizeof(*slot));
	if (!slot)
		return;
	*slot = rec;
	rec->reported = s->reported.len;
}

void tm_store_add(struct tm_store *s, struct tm_record *rec, const struct tm_class *k,
		  const struct tm_counter_val *d)
{
	struct tm_if_total *t;
	struct tm_ifslot *x;
	unsigned int idx;

	if (k->dir >= TM_DIR_MAX || k->layer >= TM_LAYER_MAX || !nonzero(d))
		return;
	dirty(s, rec);
	if (k->layer == TM_LAYER_CGROUP_SKB) {
		if (k->l4 >= TM_L4_MAX || k->family >= TM_FAMILY_MAX)
			return;
		idx = TM_OVERFLOW_IDX(k->dir, k->l4, k->family);
		tm_store_val_add(&rec->sock[idx].total, d);
		rec->sock_used |= (uint16_t)(1u << idx);
		reported(s, rec);
		return;
	}
	x = ifslot(rec, k);
	if (!x)
		return;
	tm_store_val_add(&x->s.total, d);
	reported(s, rec);
	/* drops are not traffic the interface carried: left out of its sums */
	if (k->layer == TM_LAYER_DROP)
		return;
	t = tm_store_if_total(s, k->netns, k->ifindex);
	if (t)
		tm_store_val_add(&t->dir[k->dir], d);
}

/* ---- exits and expiry ---- */

static bool same_owner(const struct tm_owner *a, const struct tm_owner *b)
{
	return a->tgid == b->tgid && a->start_ns == b->start_ns;
}

/*
 * Into s->expiring at its deadline. Deadlines are now + exited_ttl, so it
 * goes at the tail but after a reload that shortened exited_ttl: the walk
 * back from the tail keeps the list ordered whatever the ttl.
 */
static void expiring(struct tm_store *s, struct tm_record *rec)
{
	struct tm_list *pos = s->expiring.prev;

	while (pos != &s->expiring && tm_store_rec_on(pos, expiring)->expire_ns > rec->expire_ns)
		pos = pos->prev;
	tm_list_add_after(pos, &rec->expiring);
}

void tm_store_exit(struct tm_store *s, const struct tm_owner *o, bool has_code, int32_t code,
		   uint64_t now, uint64_t ttl_ns)
{
	struct tm_rec_key k = { .owner = { .tgid = o->tgid, .start_ns = o->start_ns },
				.kind = TM_KIND_PROCESS };
	uint64_t h = key_hash(&k);

	/* An exit before any counter reading still gets its (final) record. */
	if (!tm_store_owner_has_records(s, o) && !tm_store_get(s, &k))
		return;
	for (struct tm_hnode *x = tm_htab_chain(&s->records, h); x; x = x->next) {
		struct tm_record *rec = tm_store_rec(x);

		if (x->hash != h || rec->key.kind != TM_KIND_PROCESS ||
		    !same_owner(&rec->key.owner, o) || rec->exited)
			continue;
		rec->exited = true;
		rec->has_exit_code = has_code;
		rec->exit_code = code;
		rec->expire_ns = now + ttl_ns;
		tm_store_changed(s, rec);
		expiring(s, rec);
	}
}

bool tm_store_owner_has_records(struct tm_store *s, const struct tm_owner *o)
{
	struct tm_rec_key k = { .owner = *o, .kind = TM_KIND_PROCESS };
	uint64_t h = key_hash(&k);

	for (struct tm_hnode *x = tm_htab_chain(&s->records, h); x; x = x->next)
		if (x->hash == h && tm_store_rec(x)->key.kind == TM_KIND_PROCESS &&
		    same_owner(&tm_store_rec(x)->key.owner, o))
			return true;
	return false;
}

void tm_store_expire(struct tm_store *s, uint64_t now,
		     bool (*drain)(void *ctx, struct tm_record *rec),
		     void (*forget)(void *ctx, const struct tm_owner *o), void *ctx)
{
	struct tm_list *x = s->expiring.next, *next;

	/* the records whose time is up are the head of the list, up to now */
	for (; x != &s->expiring; x = next) {
		struct tm_record *rec = tm_store_rec_on(x, expiring);
		struct tm_owner o = rec->key.owner;

		next = x->next;
		if (now < rec->expire_ns)
			break;
		if (drain(ctx, rec))
			continue; /* not done yet: looked at again next frame */
		tm_htab_remove(&s->records, &rec->node);
		s->count--;
		s->processes -= rec->key.kind == TM_KIND_PROCESS;
		record_free(s, rec);
		if (!tm_store_owner_has_records(s, &o))
			forget(ctx, &o);
	}
}

/* ---- interfaces ---- */

struct tm_if_total *tm_store_if_total(struct tm_store *s, __u32 netns, __u32 ifindex)
{
	struct tm_if_total *t = s->if_totals.data;

	for (size_t i = 0; i < s->if_totals.len; i++)
		if (t[i].iface.netns == netns && t[i].iface.ifindex == ifindex)
			return &t[i];
	t = tm_vec_push(&s->if_totals, sizeof(*t));
	if (t)
		t->iface = (struct tm_iface_key){ .netns = netns, .ifindex = ifindex };
	return t;
}

static struct tm_if_name *if_name_find(const struct tm_store *s, uint64_t netns, int ifindex)
{
	struct tm_if_name *n = s->if_names.data;

	for (size_t i = 0; i < s->if_names.len; i++)
		if (n[i].netns == netns && n[i].ifindex == ifindex)
			return &n[i];
	return NULL;
}

void tm_store_if_name_set(struct tm_store *s, uint64_t netns, int ifindex, const char *name)
{
	struct tm_if_name *n = if_name_find(s, netns, ifindex);
	char clean[sizeof(n->name)];

	/* compared as exported: a name that is not UTF-8 is not new every frame
	 * (a new name re-encodes every record) */
	snprintf(clean, sizeof(clean), "%s", name);
	tm_utf8_sanitize(clean, strlen(clean));
	if (n && !strcmp(n->name, clean))
		return;
	if (!n)
		n = tm_vec_push(&s->if_names, sizeof(*n));
	if (!n)
		return;
	n->netns = netns;
	n->ifindex = ifindex;
	memcpy(n->name, clean, sizeof(n->name)); /* a reused ifindex takes the new name */
	s->names_gen++;
}

const char *tm_store_if_name(const struct tm_store *s, uint64_t netns, int ifindex)
{
	const struct tm_if_name *n = if_name_find(s, netns, ifindex);

	return n ? n->name : NULL;
}
