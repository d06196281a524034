/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The BPF counters into the record store. Every class of traffic has a slot
 * of the per-CPU array tm_counters (tm_classes says which); each interval
 * the slots in use are read and what they gained goes to their records.
 *
 * A slot's life: a hook takes it from tm_free for a new class; the collector
 * retires it when its record expires (class deleted, generation bumped: the
 * hooks stop using it and a socket that still sends gets a new slot), reads
 * it a last time one interval later, zeroes it and gives it back to tm_free.
 * Slots being retired are listed in a pinned map, so a collector that died
 * in between leaves none behind.
 */
#ifndef TM_MAPIO_H
#define TM_MAPIO_H

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

/* Bytes per frame an interface's own counter leaves out though XDP and TC
 * saw them (see tm_ifaces_l2_less): interface-layer bytes are counted the
 * way the device counts. */
typedef unsigned int (*tm_l2_less_fn)(void *ctx, uint64_t netns, int ifindex, int dir);

enum tm_slot_state { TM_SLOT_FREE = 0, TM_SLOT_LIVE, TM_SLOT_RETIRING };

struct tm_slotinfo {
	struct tm_class k;            /* what it counts */
	struct tm_counter_val last;   /* its value (summed over CPUs) at the last read */
	struct tm_record *rec;        /* NULL until its first count */
	uint8_t state;                /* enum tm_slot_state */
	uint64_t retired_read;        /* reads done when it was retired */
};

struct tm_mapio {
	int counters_fd, classes_fd, gen_fd, free_fd;
	int meta_fd, stats_fd;
	int retired_fd;                 /* interface sums of retired slots (pinned) */
	int retiring_fd;                /* slots retired, not yet freed (pinned) */
	int ncpus;
	uint32_t n_slots;               /* tm_counters' entries */
	uint32_t high;                  /* slots at or above are not in use */
	uint64_t reads;
	struct tm_slotinfo *slots;
	struct tm_vec retiring;         /* __u32: the slots retire() took (recycle
					 * looks at those, not at every slot) */
	void *keys, *vals, *cvals;      /* batch buffers */
	uint32_t batch;
	uint64_t classes;               /* classes in tm_classes */
	uint64_t made;                  /* TM_STAT_CLASSES_MADE when tm_classes was
					 * last read */
	bool classes_read;              /* it has been, since init */
	uint64_t recycled;              /* slots given back so far */
	tm_l2_less_fn l2_less;
	void *l2_less_ctx;
};

/* Key of the retired map: what retired interface-layer classes had counted
 * on an interface, so that its sums survive a collector restart. */
struct tm_retired_key {
	struct tm_iface_key iface;
	__u32 dir;                      /* enum tm_dir */
};

/* The map is pinned, and TM_ABI_HASH covers only include/ and bpf/: a
 * collector of another layout would misread the sums a previous one left. */
_Static_assert(sizeof(struct tm_retired_key) == 12, "the pinned retired map's key layout");

struct tm_bpf;

/* The maps of a loaded object; fresh: state just created, so fill tm_free
 * and the generations (else: free what a previous collector was retiring). */
int tm_mapio_init(struct tm_mapio *m, struct tm_bpf *b, int ncpus, bool fresh);
void tm_mapio_free(struct tm_mapio *m);

/* Fold what every slot gained into s; free the slots retired a read ago. */
int tm_mapio_read(struct tm_mapio *m, struct tm_store *s);

/* rec's time is up: retire its slots. True while it must stay: slots still
 * retiring, or counts since the last frame (to be reported). */
bool tm_mapio_drain(struct tm_mapio *m, struct tm_store *s, struct tm_record *rec);

/* Start the store's interface sums from the retired map (adopted state). */
int tm_mapio_load_retired(struct tm_mapio *m, struct tm_store *s);

/* The owner has no record left: free its metadata slot. */
void tm_mapio_forget(struct tm_mapio *m, const struct tm_owner *o);

/* tm_stats summed over CPUs. */
int tm_mapio_stats(struct tm_mapio *m, uint64_t out[TM_STAT_MAX]);

#endif /* TM_MAPIO_H */
