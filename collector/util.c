// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Clocks, a growable array, a hash table and strict UTF-8 (see util.h). */
#define _GNU_SOURCE /* reallocarray */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "util.h"

uint64_t tm_now_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * TM_NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

int tm_array_reserve(void *pdata, size_t *cap, size_t elem, size_t need, size_t first)
{
	size_t n = *cap ? *cap : (first ? first : 1);
	void *data;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	memcpy(&data, pdata, sizeof(data));
	data = reallocarray(data, n, elem);
	if (!data)
		return -ENOMEM;
	memcpy(pdata, &data, sizeof(data));
	*cap = n;
	return 0;
}

void *tm_vec_push(struct tm_vec *v, size_t elem)
{
	char *p;

	if (tm_array_reserve(&v->data, &v->cap, elem, v->len + 1, 8)) {
		errno = ENOMEM;
		return NULL;
	}
	p = (char *)v->data + v->len++ * elem;
	memset(p, 0, elem);
	return p;
}

void tm_vec_free(struct tm_vec *v)
{
	free(v->data);
	memset(v, 0, sizeof(*v));
}

/* ---- hash table ---- */

int tm_htab_init(struct tm_htab *t, size_t n_buckets)
{
	t->b = calloc(n_buckets, sizeof(*t->b));
	t->n_b = n_buckets;
	t->count = 0;
	return t->b ? 0 : -ENOMEM;
}

void tm_htab_free(struct tm_htab *t)
{
	free(t->b);
	memset(t, 0, sizeof(*t));
}

static void htab_grow(struct tm_htab *t)
{
	size_t n = t->n_b * 2;
	struct tm_hnode **b = calloc(n, sizeof(*b));

	if (!b)
		return;
	for (size_t i = 0; i < t->n_b; i++) {
		struct tm_hnode *x, *next;

		for (x = t->b[i]; x; x = next) {
			next = x->next;
			x->next = b[x->hash & (n - 1)];
			b[x->hash & (n - 1)] = x;
		}
	}
	free(t->b);
	t->b = b;
	t->n_b = n;
}

void tm_htab_insert(struct tm_htab *t, struct tm_hnode *x)
{
	struct tm_hnode **head;

	if (t->count >= t->n_b)
		htab_grow(t);
	head = &t->b[x->hash & (t->n_b - 1)];
	x->next = *head;
	*head = x;
	t->count++;
}

struct tm_hnode *tm_htab_find(const struct tm_htab *t, uint64_t hash,
			      bool (*is)(const struct tm_hnode *x, const void *key), const void *key)
{
	for (struct tm_hnode *x = tm_htab_chain(t, hash); x; x = x->next)
		if (x->hash == hash && is(x, key))
			return x;
	return NULL;
}

void tm_htab_remove(struct tm_htab *t, struct tm_hnode *x)
{
	struct tm_hnode **pp = &t->b[x->hash & (t->n_b - 1)];

	while (*pp && *pp != x)
		pp = &(*pp)->next;
	if (!*pp)
		return;
	*pp = x->next;
	t->count--;
}

/* ---- UTF-8 ---- */

/*
 * Sequence length announced by lead byte b, with the range its second byte
 * must fall in: the narrowed ranges after E0, ED, F0 and F4 exclude overlong
 * forms, surrogates and code points above U+10FFFF. 0 for a byte that
 * cannot start a sequence.
 */
static int utf8_lead(uint8_t b, uint8_t *lo, uint8_t *hi)
{
	*lo = 0x80;
	*hi = 0xbf;
	if (b < 0x80)
		return 1;
	if (b < 0xc2)
		return 0;
	if (b < 0xe0)
		return 2;
	if (b < 0xf0) {
		*lo = b == 0xe0 ? 0xa0 : 0x80;
		*hi = b == 0xed ? 0x9f : 0xbf;
		return 3;
	}
	if (b < 0xf5) {
		*lo = b == 0xf0 ? 0x90 : 0x80;
		*hi = b == 0xf4 ? 0x8f : 0xbf;
		return 4;
	}
	return 0;
}

int tm_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp)
{
	uint8_t lo, hi;
	uint32_t c;
	int len;

	if (!n)
		return 0;
	len = utf8_lead(s[0], &lo, &hi);
	if (!len)
		return -1;
	c = len == 1 ? s[0] : s[0] & (0x7f >> len);
	for (int i = 1; i < len; i++) {
		if ((size_t)i == n || s[i] < lo || s[i] > hi)
			return -i;
		c = c << 6 | (s[i] & 0x3f);
		lo = 0x80;
		hi = 0xbf;
	}
	*cp = c;
	return len;
}

void tm_utf8_sanitize(char *s, size_t n)
{
	uint32_t cp;

	for (size_t i = 0; i < n;) {
		int len = tm_utf8_decode((const uint8_t *)s + i, n - i, &cp);

		if (len > 0) {
			i += (size_t)len;
			continue;
		}
		memset(s + i, '?', (size_t)-len);
		i += (size_t)-len;
	}
}

bool tm_utf8_valid(const char *s, size_t n)
{
	uint32_t cp;

	for (size_t i = 0; i < n;) {
		int len = tm_utf8_decode((const uint8_t *)s + i, n - i, &cp);

		if (len <= 0)
			return false;
		i += (size_t)len;
	}
	return true;
}

/* ---- tm_slab ---- */

/* A chunk's head, at its start; its objects follow, free ones linked
 * through their first word. */
struct tm_slab_chunk {
	struct tm_list node;        /* in tm_slab.partial while it has room */
	void *free;
	size_t live, carved;        /* objects handed out; objects cut so far */
	size_t colour;              /* its objects start colour lines later */
};

#define TM_SLAB_HEAD 64 /* the head's room: objects stay 64-byte aligned */
_Static_assert(sizeof(struct tm_slab_chunk) <= TM_SLAB_HEAD, "a chunk's head fits its room");

void tm_slab_init(struct tm_slab *sl, size_t size)
{
	sl->size = (size + 63) & ~(size_t)63;
	sl->chunks = sl->made = 0;
	tm_list_init(&sl->partial);
}

/*
 * Objects per chunk, leaving room for 16 colours: chunks are aligned to
 * their size, so without an offset of their own the n-th object of every
 * chunk would sit in the same cache sets (the slab allocator's colouring).
 */
#define TM_SLAB_COLOURS 16

static size_t slab_per_chunk(const struct tm_slab *sl)
{
	return (TM_SLAB_CHUNK - TM_SLAB_HEAD - (TM_SLAB_COLOURS - 1) * 64) / sl->size;
}

static struct tm_slab_chunk *slab_grow(struct tm_slab *sl)
{
	struct tm_slab_chunk *c = aligned_alloc(TM_SLAB_CHUNK, TM_SLAB_CHUNK);

	if (!c)
		return NULL;
	/* a hint: without transparent huge pages it is 4 KiB pages as before */
	madvise(c, TM_SLAB_CHUNK, MADV_HUGEPAGE);
	memset(c, 0, sizeof(*c));
	c->colour = sl->made++ % TM_SLAB_COLOURS;
	tm_list_add_tail(&sl->partial, &c->node);
	sl->chunks++;
	return c;
}

void *tm_slab_alloc(struct tm_slab *sl)
{
	struct tm_slab_chunk *c;
	void *p;

	if (!slab_per_chunk(sl)) {
		errno = ENOMEM;
		return NULL;
	}
	c = tm_list_empty(&sl->partial) ? slab_grow(sl)
					: TM_CONTAINER_OF(sl->partial.next, struct tm_slab_chunk, node);
	if (!c) {
		errno = ENOMEM;
		return NULL;
	}
	if (c->free) {
		p = c->free;
		c->free = *(void **)p;
	} else {
		p = (char *)c + TM_SLAB_HEAD + c->colour * 64 + c->carved++ * sl->size;
	}
	if (++c->live == slab_per_chunk(sl))
		tm_list_del(&c->node); /* full */
	memset(p, 0, sl->size);
	return p;
}

void tm_slab_free(struct tm_slab *sl, void *p)
{
	struct tm_slab_chunk *c = (void *)((uintptr_t)p & ~(uintptr_t)(TM_SLAB_CHUNK - 1));

	if (!p)
		return;
	if (!tm_list_linked(&c->node))
		tm_list_add_tail(&sl->partial, &c->node);
	*(void **)p = c->free;
	c->free = p;
	if (--c->live)
		return;
	tm_list_del(&c->node);
	free(c);
	sl->chunks--;
}
