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

/* Interface-layer counters of one record: one per interface x direction x
 * protocol x family x layer. */
struct tm_ifslot {
	uint32_t netns, ifindex;
	uint8_t dir, l4, family, layer;
	struct tm_slot s;
};

/* Cumulative interface-layer sums of one interface, kept apart from the
 * records so that freeing an exited process's record does not lower them. */
struct tm_if_total {
	uint32_t netns, ifindex;
	struct tm_counter_val dir[TM_DIR_MAX];
};

/* An interface as the frame shows it (filled by the daemon each frame). */
struct tm_if_view {
	uint64_t netns;
	int ifindex;
	char name[16];
	char xdp[8], tc[8];
	struct tm_counter_val kernel[TM_DIR_MAX]; /* packets, bytes */
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
	/* the same, indexed once for every frame to point at */
	char **argvp;
	size_t n_argv;
	Taskmeter__EnvVar *envv;
	Taskmeter__EnvVar **envp;
	size_t n_env;
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
	struct tm_ifslot *ifs;          /* interface layer */
	uint32_t n_ifs, cap_ifs;
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
	/* batch-read buffers for the counter maps */
	void *batch_keys, *batch_vals;
	size_t batch_cap;
	uint64_t if_entries;            /* keys in the interface-layer map */
	struct tm_if_total *if_totals;
	size_t n_if_totals, cap_if_totals;
	const struct tm_if_view *views; /* this frame's interfaces */
	size_t n_views;
	/* bytes per frame an interface's counter leaves out (see
	 * tm_ifaces_l2_less): interface-layer bytes are counted the same way */
	unsigned int (*l2_less)(void *ctx, uint64_t netns, int ifindex, int dir);
	void *l2_less_ctx;
	struct tm_if_view *names;       /* every interface seen: names outlive links */
	size_t n_names, cap_names;
};

int tm_records_init(struct tm_records *r, const struct tm_config *c, int ncpus);
void tm_records_free(struct tm_records *r);

/* ring_buffer callback: TM_EV_META, TM_EV_OWNER, TM_EV_EXIT. */
int tm_records_on_event(void *ctx, void *data, size_t len);

/* Fold the counter and overflow maps into the records. */
int tm_records_read(struct tm_records *r, int counters_fd, int overflow_fd);
/* The same for the interface layer (tm_if_counters, tm_if_overflow). */
int tm_records_read_if(struct tm_records *r, int if_fd, int if_overflow_fd);

/* Fill f->records and, from views, f->interfaces (memory owned by r until
 * the next call). */
int tm_records_build(struct tm_records *r, Taskmeter__Frame *f, const struct tm_if_view *views,
		     size_t n_views);

/* Free exited records whose time is up, with their map entries. */
void tm_records_expire(struct tm_records *r, int counters_fd, int if_fd, int meta_fd,
		       uint64_t now_ns);

#endif /* TM_RECORDS_H */
