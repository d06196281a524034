/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Open, configure, load and attach the BPF programs, with their maps and
 * links pinned in the instance's state directory (pin.h): a collector that
 * finds compatible state adopts it — the maps' counts and the attachments
 * carry over, the links are switched to its programs in place — and one
 * that does not starts clean. Tears down only what is ours.
 */
#ifndef TM_BPFLOAD_H
#define TM_BPFLOAD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "pin.h"

struct taskmeter_bpf;
struct bpf_link;

/* The stamp of a state directory: which build made its maps, with which
 * sizes and settings, and the counting it holds (Frame.counters_id). */
struct tm_state {
	uint64_t magic;
	uint64_t abi;            /* TM_ABI_HASH of the build that created the maps */
	uint64_t counters_id;
	uint64_t created_ns;     /* CLOCK_REALTIME */
	uint64_t settings;       /* hash of the load-time settings (rodata) */
};

/* Why a collector started clean (for the log and the tests). */
enum tm_start {
	TM_START_FRESH = 0,      /* no state */
	TM_START_ADOPTED,        /* adopted the pinned state */
	TM_START_INCOMPATIBLE,   /* state of another build or sizes: removed */
};

#define TM_HOOKS_MAX 16

struct tm_bpf {
	struct taskmeter_bpf *skel;
	struct tm_pin pin;
	struct bpf_link *links[TM_HOOKS_MAX];
	int n_links;
	int cgroup_fd;
	bool task_work;        /* metadata via task_work callbacks */
	const char *kfunc;     /* the task_work kfunc this kernel has, or NULL */
	char cgroup_path[4096];
	enum tm_start start;
	struct tm_state state;   /* of the state directory (after adoption: the old one's) */
	uint64_t settings;       /* hash of our load-time settings */
	int state_fd;          /* the pinned stamp (an array map of one) */
	int retired_fd;        /* interface sums of retired classes */
	int retiring_fd;       /* slots retired, not yet freed */
};

/* Name of the task_work kfunc in the running kernel's BTF, or NULL. */
const char *tm_bpf_detect_kfunc(void);

/* Open the configured cgroup (before anything is loaded: a wrong path is a
 * configuration error). */
int tm_bpf_open_cgroup(struct tm_bpf *b, const struct tm_config *c);

/* Lock the instance's state directory and decide: adopt or start clean.
 * -EBUSY: another collector runs this instance. */
int tm_bpf_open_state(struct tm_bpf *b, const struct tm_config *c);

/* Open the skeleton, apply the config (map sizes, settings), load, with
 * the maps pinned (reused when adopting). */
int tm_bpf_load(struct tm_bpf *b, const struct tm_config *c);

/* Attach (or adopt) the cgroup hooks and tracepoints; links pinned. */
int tm_bpf_attach(struct tm_bpf *b, const struct tm_config *c);

/* Owners of the TCP/UDP sockets that existed before we attached, from
 * sock_diag and /proc/<pid>/fd. Call after tm_bpf_attach(): a socket
 * created in between is stamped by the hooks or found by the scan. */
int tm_bpf_seed_sockets(struct tm_bpf *b);

/* keep: leave everything pinned and attached (the next collector adopts
 * it); else detach and unpin it all. */
void tm_bpf_destroy(struct tm_bpf *b, bool keep);

/* Detach and remove the pinned state of an instance no collector runs. */
int tm_bpf_remove_state(const struct tm_config *c);

#endif /* TM_BPFLOAD_H */
