/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Small helpers every collector module uses: clocks, a growable array, a
 * chained hash table, a 64-bit hash mix, strict UTF-8. One copy each.
 */
#ifndef TM_UTIL_H
#define TM_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define TM_NSEC_PER_SEC 1000000000ull
#define TM_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
/* The struct of type whose member ptr points at. */
#define TM_CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* The clock in nanoseconds (CLOCK_MONOTONIC, CLOCK_REALTIME, ...). */
uint64_t tm_now_ns(clockid_t clock);

/*
 * Makes the array *pdata (a T ** passed as void *, of *cap elements of
 * size elem) hold at least need elements: its capacity doubles, starting
 * at first, and what it holds is kept. 0, or -ENOMEM with the array as it
 * was. Every growable array of the collector grows through this.
 */
int tm_array_reserve(void *pdata, size_t *cap, size_t elem, size_t need, size_t first);

/* A growable array of elements of one size. Zero-initialise to start. */
struct tm_vec {
	void *data;
	size_t len, cap;
};

/* Room for one more element of size elem at the end (zeroed); NULL with
 * errno = ENOMEM. */
void *tm_vec_push(struct tm_vec *v, size_t elem);
void tm_vec_free(struct tm_vec *v);

/*
 * A chained hash table of nodes embedded in the caller's structs. The
 * caller hashes (tm_hash64) and compares keys: a lookup walks
 * tm_htab_chain(t, hash) comparing node->hash first. It grows as it
 * fills; a grow that fails leaves longer chains, never a lost insert.
 */
struct tm_hnode {
	struct tm_hnode *next;
	uint64_t hash;
};

struct tm_htab {
	struct tm_hnode **b;
	size_t n_b;             /* buckets, a power of two */
	size_t count;
};

/* n_buckets: a power of two. 0 or -ENOMEM. */
int tm_htab_init(struct tm_htab *t, size_t n_buckets);
/* The buckets; the nodes are the caller's. */
void tm_htab_free(struct tm_htab *t);
/* x->hash set by the caller. */
void tm_htab_insert(struct tm_htab *t, struct tm_hnode *x);
void tm_htab_remove(struct tm_htab *t, struct tm_hnode *x);

static inline struct tm_hnode *tm_htab_chain(const struct tm_htab *t, uint64_t hash)
{
	return t->b[hash & (t->n_b - 1)];
}

/* The first node of that hash for which is(node, key) holds, or NULL. */
struct tm_hnode *tm_htab_find(const struct tm_htab *t, uint64_t hash,
			      bool (*is)(const struct tm_hnode *x, const void *key), const void *key);

/* Every node, in no order. Removing x while at it: take x->next first. */
#define tm_htab_each(t, x, i)                                \
	for (size_t i = 0; i < (t)->n_b; i++)                \
		for (struct tm_hnode *x = (t)->b[i]; x; x = x->next)

/*
 * A doubly linked list of nodes embedded in the caller's structs, around a
 * head of its own (tm_list_init; a head must not move once initialised).
 * A node is linked or not (zeroed, or after tm_list_del): the lists a
 * record is on say what the next frame has to do with it, in O(1).
 */
struct tm_list {
	struct tm_list *prev, *next;
};

static inline void tm_list_init(struct tm_list *head)
{
	head->prev = head->next = head;
}

static inline bool tm_list_linked(const struct tm_list *x)
{
	return x->next != NULL;
}

static inline bool tm_list_empty(const struct tm_list *head)
{
	return head->next == head;
}

/* x (not linked) after pos. */
static inline void tm_list_add_after(struct tm_list *pos, struct tm_list *x)
{
	x->prev = pos;
	x->next = pos->next;
	pos->next->prev = x;
	pos->next = x;
}

static inline void tm_list_add_tail(struct tm_list *head, struct tm_list *x)
{
	tm_list_add_after(head->prev, x);
}

/* Unlinks x if it is linked. */
static inline void tm_list_del(struct tm_list *x)
{
	if (!tm_list_linked(x))
		return;
	x->prev->next = x->next;
	x->next->prev = x->prev;
	x->prev = x->next = NULL;
}

/* Every node of head in order. Unlinking x while at it: take x->next first. */
#define tm_list_each(head, x) for (struct tm_list *x = (head)->next; x != (head); x = x->next)

/*
 * Objects of one size carved from chunks of TM_SLAB_CHUNK bytes, aligned
 * to their size and asked to be one huge page each: many objects reached
 * in no particular order (the records a frame folds and packs) cost a
 * cache miss each, and at 4 KiB a page a TLB miss too, dearer still on a
 * VM (a nested page walk). A chunk whose objects are all free is given
 * back. Zero-initialise, then tm_slab_init.
 */
#define TM_SLAB_CHUNK (2u << 20)

struct tm_slab {
	size_t size;                /* of an object: a multiple of 64 */
	struct tm_list partial;     /* chunks with room */
	size_t chunks;              /* chunks held */
	size_t made;                /* chunks made so far */
};

void tm_slab_init(struct tm_slab *sl, size_t size);
/* A zeroed object, 64-byte aligned; NULL with errno = ENOMEM. */
void *tm_slab_alloc(struct tm_slab *sl);
void tm_slab_free(struct tm_slab *sl, void *p);

/* A 64-bit mix (splitmix64's finaliser) for hash tables. */
static inline uint64_t tm_hash64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/*
 * Decodes the UTF-8 sequence at s (n > 0 bytes available), strictly as the
 * Unicode standard defines well-formed UTF-8 (table 3-7): no overlong
 * forms, no surrogates, nothing above U+10FFFF. Returns its length with *cp
 * set, or minus the length of the maximal invalid subpart: the bytes that
 * one U+FFFD replaces.
 */
int tm_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);

/* Replace every byte of s[0..n) that is not part of well-formed UTF-8 with
 * '?', in place (protobuf string fields must be valid UTF-8). NUL bytes are
 * kept: callers use them as separators. */
void tm_utf8_sanitize(char *s, size_t n);

/* Is s[0..n) well-formed UTF-8? */
bool tm_utf8_valid(const char *s, size_t n);

#endif /* TM_UTIL_H */
