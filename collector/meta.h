/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Process metadata: what a record says about its process, and where it
 * comes from — task_work events from the ring buffer, or /proc when those
 * are missing — resolved before a frame is built, never while encoding it.
 * Every string that leaves here is well-formed UTF-8, and the environment
 * holds only allowlisted variables.
 */
#ifndef TM_META_H
#define TM_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/types.h>

#include "cgroups.h"
#include "config.h"
#include "taskmeter.h"

/* Values of the proto's MetadataSource (checked where frames are encoded). */
enum tm_meta_source {
	TM_SOURCE_NONE = 0,
	TM_SOURCE_TASK_WORK = 1,
	TM_SOURCE_PROCFS = 2,
	TM_SOURCE_IN_PROCESS = 3,
	TM_SOURCE_AT_EXIT = 4,
};

struct tm_meta {
	enum tm_meta_source source;
	char comm[TM_COMM_LEN];
	char *argv;               /* NUL-separated, each argument NUL-terminated */
	size_t argv_len;
	bool argv_truncated;
	char *env;                /* allowlisted "NAME\0value\0" pairs only */
	size_t env_len;
	bool has_ids;
	struct tm_task_ids ids;   /* uid, gid, ppid, cgroup and namespace ids */
	char *cgroup_path;        /* NULL until resolved from ids.cgroup_id */
	struct tm_container container; /* parsed from cgroup_path */
	bool procfs_tried;
};

void tm_meta_clear(struct tm_meta *m);
/* Replace argv with buf[0..len) (NUL-separated); invalid UTF-8 becomes '?'. */
int tm_meta_set_argv(struct tm_meta *m, const char *buf, size_t len, bool truncated);
/* Keep the allowlisted NAME=value entries of buf[0..len); nothing else. */
int tm_meta_set_env(struct tm_meta *m, const struct tm_config *c, const char *buf, size_t len);
void tm_meta_set_comm(struct tm_meta *m, const char *comm);

struct tm_store;

/* Turns ring-buffer events and /proc into record metadata. */
struct tm_resolver {
	const struct tm_config *cfg;
	struct tm_store *store;
	struct tm_cgroups *cgroups;   /* NULL without a cgroup2 mount */
	char cgroup2_mount[2048];
	uint64_t procfs_reads;
	uint64_t procfs_failures;
	uint64_t exits_inferred;      /* owners found gone without an exit event */
	size_t scan_cursor;           /* where the liveness check goes on */
};

int tm_resolver_init(struct tm_resolver *r, const struct tm_config *c, struct tm_store *s);
void tm_resolver_free(struct tm_resolver *r);

/* ring_buffer callback: TM_EV_META, TM_EV_OWNER, TM_EV_EXIT. */
int tm_resolver_on_event(void *ctx, void *data, size_t len);

/* Before a frame: /proc for records still without metadata a frame after
 * they appeared (their event was lost, or no metadata slot was free), and
 * cgroup paths. */
void tm_resolver_run(struct tm_resolver *r);

/*
 * Before the last frame (the collector stops): a cgroup path not yet known
 * is looked up whatever the walk rate limit says (a later frame would have
 * found it). A record first seen in the last interval still waits for the
 * /proc fallback as in any frame (its metadata event may be on the way).
 */
void tm_resolver_last_frame(struct tm_resolver *r);

/*
 * Owners whose process is gone though no exit event said so (the event was
 * lost, or came while no collector ran): checks up to max live records a
 * call against /proc and marks the dead ones exited, at most 64 a call.
 * Every record is checked within (records / max) calls, more when more
 * than 64 are gone at once. drain_events(ctx) reads the ring
 * buffer first when some are gone: their exit events may be in it.
 */
void tm_resolver_reap(struct tm_resolver *r, size_t max, uint64_t now,
		      void (*drain_events)(void *ctx), void *ctx);

#endif /* TM_META_H */
