// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Series bookkeeping of taskmeter prom (see prom_series.h). Three hash
 * tables: record identities (with the last totals of their entries), label
 * sets, and series. Every series also sits in its group's array, which is
 * what the exposition writer walks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "prom_series.h"

#define TABLE_MIN 64

/* What a record remembers of one of its entries. */
struct rentry {
	uint8_t group, dir, transport, type, layer;
	uint32_t ifindex;
	uint64_t netns;
	struct tm_ps_counters last;  /* total at the last frame */
	struct tm_ps_series *s;      /* where its growth went */
};

struct rstate {
	struct tm_hnode node;
	uint64_t id[3];
	uint64_t gen;                /* frame it was last seen in */
	bool outside;
	char *lkey;                  /* its label values at the last frame */
	size_t lkey_len;
	struct tm_ps_labelset *ls;   /* lkey's label set (maybe a folded one) */
	struct rentry *e;
	uint32_t n;
	size_t cap;
};

struct series_vec {
	struct tm_ps_series **v;
	size_t n, cap;
};

struct tm_ps {
	struct tm_ps_config cfg;
	struct tm_htab records, labelsets, series;
	struct series_vec groups[TM_PS_GROUPS];
	struct tm_ps_labelset *other;
	uint64_t gen, now_ns, counters_id;
	bool have_counters_id;
	struct tm_ps_stats st;
	char *scratch;               /* label key being built */
	size_t scratch_cap;
};

/* ---- hashing and tables --------------------------------------------------- */

static uint64_t mix(uint64_t h, uint64_t v)
{
	/* splitmix64's finalizer over h ^ v: cheap, and every input bit
	 * reaches the low bits the table indexes with */
	return tm_hash64(h ^ (v + 0x9e3779b97f4a7c15ull));
}

static uint64_t hash_bytes(uint64_t h, const char *s, size_t n)
{
	/* FNV-1a, then mixed */
	uint64_t f = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		f = (f ^ (uint8_t)s[i]) * 0x100000001b3ull;
	return mix(h, f);
}

/* ---- label sets ----------------------------------------------------------- */

static struct tm_ps_labelset *labelset_new(struct tm_ps *ps, const char *key, size_t len,
					   uint64_t hash)
{
	struct tm_ps_labelset *ls = calloc(1, sizeof(*ls));
	const char *p;

	if (!ls)
		return NULL;
	ls->key = malloc(len + 1);
	ls->values = calloc(ps->cfg.n_labels + 1, sizeof(*ls->values));
	if (!ls->key || !ls->values) {
		free(ls->key);
		free(ls->values);
		free(ls);
		return NULL;
	}
	memcpy(ls->key, key, len);
	ls->key[len] = '\0';
	ls->key_len = len;
	p = ls->key;
	for (unsigned int i = 0; i < ps->cfg.n_labels; i++, p += strlen(p) + 1)
		ls->values[i] = p;
	ls->node.hash = hash;
	return ls;
}

static void labelset_free(struct tm_ps_labelset *ls)
{
	free(ls->key);
	free(ls->values);
	free(ls);
}

static void labelset_unref(struct tm_ps *ps, struct tm_ps_labelset *ls)
{
	if (!ls || --ls->refs || ls->reserved)
		return;
	tm_htab_remove(&ps->labelsets, &ls->node);
	if (!ls->fold)
		ps->st.label_sets--;
	labelset_free(ls);
}

static struct tm_ps_labelset *labelset_find(struct tm_ps *ps, const char *key, size_t len,
					    uint64_t hash)
{
	for (struct tm_hnode *x = tm_htab_chain(&ps->labelsets, hash); x; x = x->next) {
		struct tm_ps_labelset *ls = (struct tm_ps_labelset *)x;

		if (x->hash == hash && ls->key_len == len && !memcmp(ls->key, key, len))
			return ls;
	}
	return NULL;
}

/* The label set of these values; past the cap a new one folds into
 * "other" (and is counted once, while records use it). */
static struct tm_ps_labelset *labelset_get(struct tm_ps *ps, const char *key, size_t len)
{
	uint64_t hash = hash_bytes(0, key, len);
	struct tm_ps_labelset *ls = labelset_find(ps, key, len, hash);

	if (ls)
		return ls;
	ls = labelset_new(ps, key, len, hash);
	if (!ls)
		return NULL;
	if (ps->st.label_sets >= ps->cfg.max_label_sets) {
		ls->fold = ps->other;
		ps->st.folded++;
	} else {
		ps->st.label_sets++;
	}
	tm_htab_insert(&ps->labelsets, &ls->node);
	return ls;
}

/* Joins the record's label values into ps->scratch; returns its length or
 * -ENOMEM. */
static ssize_t label_key(struct tm_ps *ps, const char *const *labels)
{
	size_t len = 0;

	for (unsigned int i = 0; i < ps->cfg.n_labels; i++) {
		const char *v = labels && labels[i] ? labels[i] : "";
		size_t n = strlen(v) + 1;

		if (tm_array_reserve(&ps->scratch, &ps->scratch_cap, 1, len + n, 256))
			return -ENOMEM;
		memcpy(ps->scratch + len, v, n);
		len += n;
	}
	return len;
}

/* Points rs at the label set of labels (unchanged since the last frame in
 * the common case: one memcmp). */
static int record_labels(struct tm_ps *ps, struct rstate *rs, const char *const *labels)
{
	ssize_t len = label_key(ps, labels);
	struct tm_ps_labelset *ls;
	char *copy;

	if (len < 0)
		return len;
	if (rs->ls && rs->lkey_len == (size_t)len && !memcmp(rs->lkey, ps->scratch, len))
		return 0;
	copy = malloc(len + 1);
	ls = copy ? labelset_get(ps, ps->scratch, len) : NULL;
	if (!ls) {
		free(copy);
		return -ENOMEM;
	}
	memcpy(copy, ps->scratch, len);
	ls->refs++;
	labelset_unref(ps, rs->ls);
	free(rs->lkey);
	rs->ls = ls;
	rs->lkey = copy;
	rs->lkey_len = len;
	return 0;
}

/* ---- series --------------------------------------------------------------- */

/* What names a series: its group's labels. */
struct skey {
	enum tm_ps_group group;
	const struct tm_ps_labelset *ls;
	uint8_t dir, transport, type, layer, owner;
	uint64_t netns;
	const char *ifname;
};

static void skey_of(struct skey *k, const struct tm_ps_entry *e, const struct tm_ps_labelset *ls,
		    uint8_t owner)
{
	memset(k, 0, sizeof(*k));
	k->group = e->group;
	k->dir = e->dir;
	switch (e->group) {
	case TM_PS_SOCKET:
	case TM_PS_DROP:
		k->ls = ls;
		k->transport = e->transport;
		k->type = e->type;
		break;
	case TM_PS_IFACE:
		k->layer = e->layer;
		k->owner = owner;
		/* fall through */
	default:
		k->netns = e->netns;
		k->ifname = e->ifname ? e->ifname : "";
		break;
	}
}

/* skey_hash() packs these into 8 bits each, rentry into uint8_t. */
_Static_assert(TM_PS_GROUPS <= 256 && TM_PS_DIRS <= 256 && TM_PS_TRANSPORTS <= 256 &&
	       TM_PS_TYPES <= 256 && TM_PS_LAYERS <= 256 && TM_PS_OWNERS <= 256,
	       "series key fields fit 8 bits");

static uint64_t skey_hash(const struct skey *k)
{
	uint64_t h = mix(k->group, (uintptr_t)k->ls);

	h = mix(h, (uint64_t)k->dir | (uint64_t)k->transport << 8 | (uint64_t)k->type << 16 |
			   (uint64_t)k->layer << 24 | (uint64_t)k->owner << 32);
	h = mix(h, k->netns);
	return k->ifname ? hash_bytes(h, k->ifname, strlen(k->ifname)) : h;
}

static bool series_is(const struct tm_ps_series *s, const struct skey *k)
{
	return s->group == k->group && s->ls == k->ls && s->dir == k->dir &&
	       s->transport == k->transport && s->type == k->type && s->layer == k->layer &&
	       s->owner == k->owner && s->netns == k->netns &&
	       (s->ifname ? k->ifname && !strcmp(s->ifname, k->ifname) : !k->ifname);
}

static int vec_push(struct series_vec *v, struct tm_ps_series *s)
{
	if (tm_array_reserve(&v->v, &v->cap, sizeof(*v->v), v->n + 1, 64))
		return -ENOMEM;
	s->index = v->n;
	v->v[v->n++] = s;
	return 0;
}

static struct tm_ps_series *series_new(struct tm_ps *ps, const struct skey *k, uint64_t hash)
{
	struct tm_ps_series *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->ifname = k->ifname ? strdup(k->ifname) : NULL;
	if ((k->ifname && !s->ifname) || vec_push(&ps->groups[k->group], s)) {
		free(s->ifname);
		free(s);
		return NULL;
	}
	s->node.hash = hash;
	s->group = k->group;
	s->ls = k->ls;
	s->dir = k->dir;
	s->transport = k->transport;
	s->type = k->type;
	s->layer = k->layer;
	s->owner = k->owner;
	s->netns = k->netns;
	s->grew_ns = ps->now_ns;
	if (k->ls)
		((struct tm_ps_labelset *)k->ls)->refs++;
	tm_htab_insert(&ps->series, &s->node);
	return s;
}

static struct tm_ps_series *series_get(struct tm_ps *ps, const struct skey *k)
{
	uint64_t hash = skey_hash(k);

	for (struct tm_hnode *x = tm_htab_chain(&ps->series, hash); x; x = x->next)
		if (x->hash == hash && series_is((struct tm_ps_series *)x, k))
			return (struct tm_ps_series *)x;
	return series_new(ps, k, hash);
}

static void series_remove(struct tm_ps *ps, struct tm_ps_series *s)
{
	struct series_vec *v = &ps->groups[s->group];

	v->v[s->index] = v->v[--v->n];
	v->v[s->index]->index = s->index;
	tm_htab_remove(&ps->series, &s->node);
	labelset_unref(ps, (struct tm_ps_labelset *)s->ls);
	free(s->ifname);
	free(s);
}

/* ---- records -------------------------------------------------------------- */

static uint64_t id_hash(const uint64_t id[3])
{
	return mix(mix(mix(0, id[0]), id[1]), id[2]);
}

static struct rstate *record_get(struct tm_ps *ps, const struct tm_ps_record *r)
{
	uint64_t hash = id_hash(r->id);
	struct rstate *rs;

	for (struct tm_hnode *x = tm_htab_chain(&ps->records, hash); x; x = x->next) {
		rs = (struct rstate *)x;
		if (x->hash == hash && !memcmp(rs->id, r->id, sizeof(rs->id)))
			return rs;
	}
	rs = calloc(1, sizeof(*rs));
	if (!rs)
		return NULL;
	memcpy(rs->id, r->id, sizeof(rs->id));
	rs->node.hash = hash;
	rs->outside = r->outside_counters_id;
	tm_htab_insert(&ps->records, &rs->node);
	ps->st.records++;
	return rs;
}

static void record_drop(struct tm_ps *ps, struct rstate *rs)
{
	tm_htab_remove(&ps->records, &rs->node);
	ps->st.records--;
	for (uint32_t i = 0; i < rs->n; i++)
		if (rs->e[i].s)
			rs->e[i].s->refs--;
	labelset_unref(ps, rs->ls);
	free(rs->lkey);
	free(rs->e);
	free(rs);
}

static bool rentry_is(const struct rentry *x, const struct tm_ps_entry *e)
{
	return x->group == e->group && x->dir == e->dir && x->transport == e->transport &&
	       x->type == e->type && x->layer == e->layer && x->ifindex == e->ifindex &&
	       x->netns == e->netns;
}

/* A new entry starts from zero: its whole total is growth. */
static struct rentry *rentry_get(struct rstate *rs, const struct tm_ps_entry *e)
{
	struct rentry *x;

	for (uint32_t i = 0; i < rs->n; i++)
		if (rentry_is(&rs->e[i], e))
			return &rs->e[i];
	if (tm_array_reserve(&rs->e, &rs->cap, sizeof(*rs->e), rs->n + 1, 4))
		return NULL;
	x = &rs->e[rs->n++];
	memset(x, 0, sizeof(*x));
	x->group = e->group;
	x->dir = e->dir;
	x->transport = e->transport;
	x->type = e->type;
	x->layer = e->layer;
	x->ifindex = e->ifindex;
	x->netns = e->netns;
	return x;
}

static bool counters_below(const struct tm_ps_counters *a, const struct tm_ps_counters *b)
{
	return a->bytes < b->bytes || a->packets < b->packets || a->payload < b->payload;
}

/* Adds what e grew by since the last frame to its series; ls is the label
 * set its growth goes to (SOCKET and DROP). */
static int add_entry(struct tm_ps *ps, struct rstate *rs, const struct tm_ps_record *r,
		     const struct tm_ps_entry *e, const struct tm_ps_labelset *ls)
{
	const struct tm_ps_counters *t = &e->total;
	struct rentry *x = rentry_get(rs, e);
	struct tm_ps_series *s;
	struct skey k;

	if (!x)
		return -ENOMEM;
	skey_of(&k, e, ls, r->owner);
	s = x->s && series_is(x->s, &k) ? x->s : series_get(ps, &k);
	if (!s)
		return -ENOMEM;
	if (s != x->s) {
		s->refs++;
		if (x->s)
			x->s->refs--;
		x->s = s;
	}
	/* Lower than before: the daemon's count restarted without telling
	 * (or we cannot know from where): no growth, a new base. */
	if (!counters_below(t, &x->last)) {
		if (t->bytes != x->last.bytes || t->packets != x->last.packets ||
		    t->payload != x->last.payload)
			s->grew_ns = ps->now_ns;
		s->v.bytes += t->bytes - x->last.bytes;
		s->v.packets += t->packets - x->last.packets;
		s->v.payload += t->payload - x->last.payload;
	}
	x->last = *t;
	return 0;
}

static bool has_labelled(const struct tm_ps_record *r)
{
	for (size_t i = 0; i < r->n_entries; i++)
		if (r->entries[i].group == TM_PS_SOCKET || r->entries[i].group == TM_PS_DROP)
			return true;
	return false;
}

int tm_ps_add(struct tm_ps *ps, const struct tm_ps_record *r)
{
	struct rstate *rs = record_get(ps, r);
	const struct tm_ps_labelset *ls = NULL;
	int err;

	if (!rs)
		return -ENOMEM;
	rs->gen = ps->gen;
	/* Only records with per-process traffic take a label set: interface
	 * buckets must not use up places under the cap. */
	if (has_labelled(r)) {
		err = record_labels(ps, rs, r->labels);
		if (err)
			return err;
		ls = rs->ls->fold ? rs->ls->fold : rs->ls;
	}
	for (size_t i = 0; i < r->n_entries; i++) {
		err = add_entry(ps, rs, r, &r->entries[i], ls);
		if (err)
			return err;
	}
	return 0;
}

/* ---- frames --------------------------------------------------------------- */

/* Drops the records for which keep() says no. */
static void records_sweep(struct tm_ps *ps, bool (*keep)(const struct tm_ps *, const struct rstate *))
{
	for (size_t i = 0; i < ps->records.n_b; i++) {
		struct tm_hnode *x = ps->records.b[i], *next;

		for (; x; x = next) {
			next = x->next;
			if (!keep(ps, (struct rstate *)x))
				record_drop(ps, (struct rstate *)x);
		}
	}
}

static bool outside_counters(const struct tm_ps *ps, const struct rstate *rs)
{
	(void)ps;
	return rs->outside;
}

static bool seen_this_frame(const struct tm_ps *ps, const struct rstate *rs)
{
	return rs->gen == ps->gen;
}

static bool keep_none(const struct tm_ps *ps, const struct rstate *rs)
{
	(void)ps;
	(void)rs;
	return false;
}

void tm_ps_frame_begin(struct tm_ps *ps, uint64_t counters_id, uint64_t now_ns)
{
	ps->gen++;
	ps->now_ns = now_ns;
	/* Counting restarted from zero: every total is new, so no record may
	 * keep a base to subtract. The series keep what they have. */
	if (ps->have_counters_id && counters_id != ps->counters_id) {
		records_sweep(ps, outside_counters);
		ps->st.counters_resets++;
	}
	ps->counters_id = counters_id;
	ps->have_counters_id = true;
}

static void idle_sweep(struct tm_ps *ps)
{
	for (int g = 0; g < TM_PS_GROUPS; g++) {
		struct series_vec *v = &ps->groups[g];

		/* backwards: removal moves the last series into the hole */
		for (size_t i = v->n; i-- > 0;) {
			struct tm_ps_series *s = v->v[i];

			if (!s->refs && ps->now_ns - s->grew_ns >= ps->cfg.idle_ns)
				series_remove(ps, s);
		}
	}
}

void tm_ps_frame_end(struct tm_ps *ps, bool complete)
{
	if (complete)
		records_sweep(ps, seen_this_frame);
	if (ps->cfg.idle_ns)
		idle_sweep(ps);
}

/* ---- set-up and access ------------------------------------------------------ */

static struct tm_ps_labelset *other_new(struct tm_ps *ps)
{
	size_t len = ps->cfg.n_labels * sizeof(TM_PS_OTHER);
	char *key = malloc(len + 1);
	struct tm_ps_labelset *ls;

	if (!key)
		return NULL;
	for (unsigned int i = 0; i < ps->cfg.n_labels; i++)
		memcpy(key + i * sizeof(TM_PS_OTHER), TM_PS_OTHER, sizeof(TM_PS_OTHER));
	ls = labelset_new(ps, key, len, hash_bytes(0, key, len));
	free(key);
	if (!ls)
		return NULL;
	/* In the table: a record whose values all read "other" shares it
	 * rather than making a second series of the same name. */
	ls->reserved = true;
	tm_htab_insert(&ps->labelsets, &ls->node);
	return ls;
}

struct tm_ps *tm_ps_new(const struct tm_ps_config *c)
{
	struct tm_ps *ps = calloc(1, sizeof(*ps));

	if (!ps)
		return NULL;
	ps->cfg = *c;
	if (tm_htab_init(&ps->records, TABLE_MIN) || tm_htab_init(&ps->labelsets, TABLE_MIN) ||
	    tm_htab_init(&ps->series, TABLE_MIN) ||
	    !(ps->other = other_new(ps))) {
		tm_ps_free(ps);
		errno = ENOMEM;
		return NULL;
	}
	return ps;
}

void tm_ps_free(struct tm_ps *ps)
{
	if (!ps)
		return;
	if (ps->records.b)
		records_sweep(ps, keep_none);
	for (int g = 0; g < TM_PS_GROUPS; g++) {
		while (ps->groups[g].n)
			series_remove(ps, ps->groups[g].v[ps->groups[g].n - 1]);
		free(ps->groups[g].v);
	}
	if (ps->other)
		labelset_free(ps->other);
	tm_htab_free(&ps->records);
	tm_htab_free(&ps->labelsets);
	tm_htab_free(&ps->series);
	free(ps->scratch);
	free(ps);
}

size_t tm_ps_count(const struct tm_ps *ps, enum tm_ps_group g)
{
	return ps->groups[g].n;
}

const struct tm_ps_series *tm_ps_get(const struct tm_ps *ps, enum tm_ps_group g, size_t i)
{
	return ps->groups[g].v[i];
}

void tm_ps_stats(const struct tm_ps *ps, struct tm_ps_stats *st)
{
	*st = ps->st;
}
