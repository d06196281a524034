/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The record store: one record per process identity (owner, exec_seq) or
 * traffic bucket, with its metadata and cumulative counters. Pure data: it
 * folds counter readings into totals and decides what expires; reading the
 * BPF maps (mapio.c), resolving metadata (meta.c) and encoding frames
 * (encode.c) happen elsewhere. No BPF, no protobuf, no system calls here.
 */
#ifndef TM_STORE_H
#define TM_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/types.h>

#include "meta.h"
#include "taskmeter.h"
#include "util.h"

/* What a record counts. The values are those of the proto's RecordKind
 * (checked where frames are encoded). */
enum tm_kind {
	TM_KIND_PROCESS = 1,        /* a local process (owner, exec_seq) */
	TM_KIND_UNATTRIBUTED = 2,   /* sockets without a known owner */
	TM_KIND_OVERFLOW = 3,       /* a counter map was full */
	TM_KIND_FORWARDED = 4,      /* interface-layer buckets, see enum tm_bucket */
	TM_KIND_LOCAL_NO_OWNER = 5,
	TM_KIND_NON_IP = 6,
	TM_KIND_MALFORMED = 7,
};

struct tm_rec_key {
	struct tm_owner owner;      /* zero for every kind but PROCESS */
	__u32 exec_seq;
	__u32 kind;                 /* enum tm_kind */
};

/* Socket-layer counters of a record: one slot per direction x L4 x family,
 * indexed by TM_OVERFLOW_IDX(). */
#define TM_SOCK_SLOTS TM_OVERFLOW_SLOTS

/* One counter as the store follows it. */
struct tm_slot {
	struct tm_counter_val total;    /* cumulative */
	struct tm_counter_val reported; /* total as of the previous frame */
};

/* Interface-layer and drop counters of a record: the class (owner,
 * exec_seq and bucket zero: the record holds those) and its counter. */
struct tm_ifslot {
	struct tm_class key;
	struct tm_slot s;
};

/*
 * The members a frame touches for a record that moved (folding its counts,
 * packing it, appending its bytes) come first, the first line of the
 * record: at 100,000 records, a frame's cost is mostly the cache and TLB
 * misses of reaching them (the TLB's are why records are on huge pages:
 * tm_store.rec_mem). Its metadata, read when it is packed anew, last.
 */
struct tm_record {
	bool exited;
	bool has_exit_code;             /* false when the exit was inferred */
	bool changed;                   /* counters, metadata or state moved since
					 * the last encoding (cleared by encode.c) */
	bool meta_changed;              /* metadata or state (ids, exit) did: what
					 * encode.c packs apart from the counters */
	uint16_t sock_used;             /* bitmap of sock[] slots with counters */
	uint32_t n_ifs;
	void *enc;                      /* encode.c's cache of this record */
	/* The lists of tm_store it is on: what the next frame has to do with
	 * it, so that a frame's work follows what changed, not the store. */
	struct tm_list dirty;           /* its encoding is to be looked at */
	size_t reported;                /* its index in tm_store.reported + 1 once
					 * it has traffic (0: none yet) */
	struct tm_ifslot *ifs;
	struct tm_hnode node;           /* in tm_store.records */
	struct tm_rec_key key;
	size_t cap_ifs;
	int32_t exit_code;
	uint64_t expire_ns;             /* CLOCK_MONOTONIC; 0 = live */
	uint64_t first_frame;           /* tm_store.frames when first seen */
	struct tm_list expiring;        /* exited: by expire_ns */
	struct tm_list unresolved;      /* a process whose metadata may still come */
	struct tm_vec bpf_slots;        /* __u32: mapio.c's slots counting for it */
	struct tm_slot sock[TM_SOCK_SLOTS];
	struct tm_meta meta;
};

/* Records are 64-byte aligned (tm_slab). */
_Static_assert(offsetof(struct tm_record, ifs) + sizeof(void *) <= 64,
	       "what a frame touches of a record, but its counters, is its first line");

/* One more direction, protocol or family would overflow the bitmap. */
_Static_assert(TM_SOCK_SLOTS <= 8 * sizeof(((struct tm_record *)0)->sock_used),
	       "tm_record.sock_used has a bit per socket-layer slot");

/* Cumulative interface-layer sums of one interface, kept apart from the
 * records: freeing an exited process's record must not lower them. */
struct tm_if_total {
	struct tm_iface_key iface;
	struct tm_counter_val dir[TM_DIR_MAX];
};

/* Every interface seen, by (netns, ifindex): records of a removed interface
 * keep being reported and must still say which it was. */
struct tm_if_name {
	uint64_t netns;
	int ifindex;
	char name[16];
};

/* The record of a node of one of its lists (member: which). */
#define tm_store_rec_on(x, member) TM_CONTAINER_OF(x, struct tm_record, member)

/* The record of a node of tm_store.records (NULL for NULL). */
static inline struct tm_record *tm_store_rec(struct tm_hnode *x)
{
	return x ? TM_CONTAINER_OF(x, struct tm_record, node) : NULL;
}

struct tm_store {
	struct tm_htab records;         /* struct tm_record by key: owner, kind */
	struct tm_slab rec_mem;         /* where the records are (huge pages) */
	size_t count;                   /* every record */
	size_t processes;               /* TM_KIND_PROCESS records */
	uint64_t frames;                /* frames built so far (encode.c counts) */
	struct tm_vec if_totals;        /* struct tm_if_total */
	struct tm_vec if_names;         /* struct tm_if_name */
	uint64_t names_gen;             /* bumped when a name changes */
	struct tm_list dirty;           /* records marked changed (tm_store_changed),
					 * and those encode.c looks at again */
	struct tm_vec reported;         /* struct tm_record *: those with traffic, the
					 * frame's (an array: walked without chasing
					 * pointers, every frame) */
	struct tm_list expiring;        /* exited records, soonest deadline first */
	struct tm_list unresolved;      /* process records meta.c is not done with */
	void (*free_enc)(void *enc);    /* encode.c's cache destructor */
};

int tm_store_init(struct tm_store *s);
void tm_store_free(struct tm_store *s);

struct tm_record *tm_store_find(struct tm_store *s, const struct tm_rec_key *k);
/* Find or create; NULL with errno = ENOMEM. */
struct tm_record *tm_store_get(struct tm_store *s, const struct tm_rec_key *k);
/* The record of a process identity (kind PROCESS). */
struct tm_record *tm_store_process(struct tm_store *s, const struct tm_owner *o,
				   __u32 exec_seq);

/* Metadata or state of rec moved (tm_store_add() marks counters that
 * did): the next frame packs it. */
void tm_store_changed(struct tm_store *s, struct tm_record *rec);

/* The record counting class k (kind: enum tm_kind; for TM_KIND_PROCESS the
 * class's owner and exec_seq name it), created if need be; NULL, ENOMEM. */
struct tm_record *tm_store_record_of(struct tm_store *s, __u32 kind, const struct tm_class *k);

/* d was added to class k's counter: add it to rec's totals (and, for the
 * interface layers, to the interface's sums). */
void tm_store_add(struct tm_store *s, struct tm_record *rec, const struct tm_class *k,
		  const struct tm_counter_val *d);

/* The owner exited: every record of it (all exec generations) is final
 * and expires ttl_ns after now. has_code false: exit inferred, code unknown. */
void tm_store_exit(struct tm_store *s, const struct tm_owner *o, bool has_code, int32_t code,
		   uint64_t now, uint64_t ttl_ns);
/* Does any record of this owner remain? */
bool tm_store_owner_has_records(struct tm_store *s, const struct tm_owner *o);

/*
 * Records whose time is up (the head of s->expiring): drain(ctx, rec) retires what still counts for
 * them in the maps and says whether they must stay (their counters still
 * draining, or counts that arrived since the last frame: reported once
 * more); the others are freed and, when an owner has no record left,
 * forget(ctx, owner) is called.
 */
void tm_store_expire(struct tm_store *s, uint64_t now,
		     bool (*drain)(void *ctx, struct tm_record *rec),
		     void (*forget)(void *ctx, const struct tm_owner *o), void *ctx);

/* Iteration: every record, in no particular order. */
#define tm_store_each(s, rec, i)                                                  \
	for (size_t i = 0; i < (s)->records.n_b; i++)                             \
		for (struct tm_record *rec = tm_store_rec((s)->records.b[i]); rec; \
		     rec = tm_store_rec(rec->node.next))

/* Interface sums and names. */
struct tm_if_total *tm_store_if_total(struct tm_store *s, __u32 netns, __u32 ifindex);
void tm_store_if_name_set(struct tm_store *s, uint64_t netns, int ifindex, const char *name);
const char *tm_store_if_name(const struct tm_store *s, uint64_t netns, int ifindex);

/* a += b, d = a - b, over every counter field. */
void tm_store_val_add(struct tm_counter_val *a, const struct tm_counter_val *b);
void tm_store_val_sub(struct tm_counter_val *d, const struct tm_counter_val *a,
		const struct tm_counter_val *b);

#endif /* TM_STORE_H */
