/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The collector's per-process records: one per (owner, exec_seq), holding the
 * metadata and cumulative counters, fed by ring buffer events and by reads of
 * the counter maps, and turned into one protobuf Frame per interval.
 */
#ifndef TM_RECORDS_H
#define TM_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/types.h>

#include "cgroups.h"
#include "config.h"
#include "taskmeter.h"
#include "taskmeter.pb-c.h"

#define TM_SLOTS TM_OVERFLOW_SLOTS /* direction x L4 x family */

struct tm_slot {
	struct tm_counter_val last;     /* map value at the previous read */
	struct tm_counter_val total;    /* cumulative */
	struct tm_counter_val reported; /* total in the previous frame */
};

struct tm_record {
	struct tm_record *next;         /* hash chain */
	struct tm_owner owner;
	uint32_t exec_seq;
	int kind;                       /* TASKMETER__RECORD_KIND__* */
	int source;                     /* TASKMETER__METADATA_SOURCE__* */
	char comm[TM_COMM_LEN];
	char *argv;                     /* NUL-separated, NUL-terminated, UTF-8 */
	size_t argv_len;
	char *env;                      /* allowlisted "NAME\0value\0" pairs only */
	size_t env_len;
	bool argv_truncated;
	bool has_ids;
	uint32_t uid, gid, ppid;
	uint64_t cgroup_id;
	uint64_t netns, mntns, pidns;   /* namespace inodes, 0 = unknown */
	char *cgroup_path;              /* NULL until resolved from cgroup_id */
	struct tm_container container;  /* parsed from cgroup_path */
	uint64_t first_frame;           /* frame seq when first seen */
	bool procfs_tried;
	bool exited;
	int32_t exit_code;
	uint64_t expire_ns;             /* CLOCK_MONOTONIC; 0 = live */
	uint16_t slots_used;            /* bitmap of slots with counters */
	struct tm_slot slots[TM_SLOTS];
};

struct tm_arena;

struct tm_records {
	struct tm_record **buckets;
	size_t n_buckets;
	size_t count;
	struct tm_record overflow;
	const struct tm_config *cfg;
	char cgroup2_mount[2048];
	int ncpus;
	uint64_t frame_seq;
	uint64_t procfs_reads;
	uint64_t procfs_failures;
	uint64_t counter_entries;       /* keys seen by the last read */
	struct tm_arena *arena;         /* frame scratch, reset every frame */
	struct tm_cgroups *cgroups;     /* cgroup id -> path cache */
	/* batch-read buffers for the counter map */
	void *batch_keys, *batch_vals;
	size_t batch_cap;
};

int tm_records_init(struct tm_records *r, const struct tm_config *c, int ncpus);
void tm_records_free(struct tm_records *r);

/* ring_buffer callback: TM_EV_META, TM_EV_OWNER, TM_EV_EXIT. */
int tm_records_on_event(void *ctx, void *data, size_t len);

/* Fold the counter and overflow maps into the records. */
int tm_records_read(struct tm_records *r, int counters_fd, int overflow_fd);

/* Fill f->records (memory owned by r until the next call). */
int tm_records_build(struct tm_records *r, Taskmeter__Frame *f);

/* Free exited records whose time is up, with their map entries. */
void tm_records_expire(struct tm_records *r, int counters_fd, int meta_fd, uint64_t now_ns);

#endif /* TM_RECORDS_H */
