/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Reading and draining the BPF counter maps into the record store: batch
 * reads of the per-CPU maps every interval, and the last read and delete of
 * an expiring record's entries.
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

struct tm_mapio {
	int counters_fd, overflow_fd;   /* socket layer */
	int if_fd, if_overflow_fd;      /* interface layer */
	int meta_fd, stats_fd;
	int retired_fd;                 /* interface sums of deleted entries (pinned) */
	int ncpus;
	void *keys, *vals;              /* batch buffers */
	uint32_t batch;
	uint64_t counter_entries;       /* keys seen by the last read */
	uint64_t if_entries;
	tm_l2_less_fn l2_less;
	void *l2_less_ctx;
};

struct tm_bpf;

/* The maps of a loaded object. */
int tm_mapio_init(struct tm_mapio *m, struct tm_bpf *b, int ncpus);
void tm_mapio_free(struct tm_mapio *m);

/* Fold every counter of both layers into s. */
int tm_mapio_read(struct tm_mapio *m, struct tm_store *s);

/* Take rec's entries out of the counter maps, folding what they held. True
 * if counts arrived since the last frame (rec must be reported again). */
bool tm_mapio_drain(struct tm_mapio *m, struct tm_store *s, struct tm_record *rec);

/* Key of the retired map: what deleted interface-layer entries had counted
 * on an interface, so that its sums survive a collector restart. */
struct tm_retired_key {
	__u32 netns, ifindex, dir;
};

/* Start the store's interface sums from the retired map (adopted state). */
int tm_mapio_load_retired(struct tm_mapio *m, struct tm_store *s);

/* The owner has no record left: free its metadata slot. */
void tm_mapio_forget(struct tm_mapio *m, const struct tm_owner *o);

/* tm_stats summed over CPUs. */
int tm_mapio_stats(struct tm_mapio *m, uint64_t out[TM_STAT_MAX]);

#endif /* TM_MAPIO_H */
