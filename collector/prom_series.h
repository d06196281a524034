/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The series of taskmeter prom: cumulative per-record totals from the frame
 * stream turned into Prometheus counters that never go backwards while the
 * exporter runs, over label sets the user chose, with a cap.
 *
 * Pure bookkeeping, no protobuf and no I/O: the adapter (prom_adapt.c)
 * feeds it one neutral tm_ps_record per ProcessRecord (and one per
 * interface for the kernel's counters), the exposition writer reads the
 * series back.
 *
 * How totals become series: for every record identity and traffic entry the
 * last total seen is kept, and only the growth since then is added to the
 * entry's series. A record absent from a complete frame is gone: its state
 * is dropped, what it added stays in its series. A new counters_id means the
 * totals restarted from zero: every record's state is dropped, so each total
 * counts as new. A total lower than the last one seen adds nothing and
 * becomes the new base.
 */
#ifndef TM_PROM_SERIES_H
#define TM_PROM_SERIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* Which families a series feeds. */
enum tm_ps_group {
	TM_PS_SOCKET,  /* socket layer, per label set x dir x transport x type */
	TM_PS_DROP,    /* dropped before the socket, same labels */
	TM_PS_IFACE,   /* interface layer, per interface x dir x layer x owner */
	TM_PS_KERNEL,  /* the interface's own counters, per interface x dir */
	TM_PS_GROUPS,
};

enum tm_ps_dir { TM_PS_RECEIVE, TM_PS_TRANSMIT, TM_PS_DIRS };
enum tm_ps_transport { TM_PS_TCP, TM_PS_UDP, TM_PS_ICMP, TM_PS_OTHER_L4, TM_PS_TRANSPORTS };
enum tm_ps_type { TM_PS_IPV4, TM_PS_IPV6, TM_PS_NOT_IP, TM_PS_TYPES };
enum tm_ps_layer { TM_PS_XDP, TM_PS_TC, TM_PS_LAYERS };
/* Who the interface-layer bytes belong to: a process or a bucket. */
enum tm_ps_owner {
	TM_PS_PROCESS,
	TM_PS_FORWARDED,
	TM_PS_LOCAL_NO_OWNER,
	TM_PS_NON_IP,
	TM_PS_MALFORMED,
	TM_PS_OVERFLOW,
	TM_PS_UNATTRIBUTED,
	TM_PS_OWNERS,
};

struct tm_ps_counters {
	uint64_t bytes, packets, payload;
};

/* One cumulative counter source of a record (a Traffic entry, or one
 * direction of an interface's kernel counters). Every field but total and
 * ifname identifies it within its record. */
struct tm_ps_entry {
	enum tm_ps_group group;
	uint8_t dir, transport, type, layer;
	uint32_t ifindex;
	uint64_t netns;
	const char *ifname;         /* IFACE, KERNEL: the interface label */
	struct tm_ps_counters total;
};

struct tm_ps_record {
	uint64_t id[3];             /* identity, e.g. (kind | exec_seq, pid, start) */
	/* Totals that do not live in the daemon's counter state (the kernel's
	 * interface counters): kept across a counters_id change. */
	bool outside_counters_id;
	const char *const *labels;  /* n_labels values for SOCKET and DROP entries */
	uint8_t owner;              /* enum tm_ps_owner, for IFACE entries */
	const struct tm_ps_entry *entries;
	size_t n_entries;
};

struct tm_ps_labelset;

struct tm_ps_series {
	struct tm_hnode node;         /* first: the tables hold these */
	enum tm_ps_group group;
	const struct tm_ps_labelset *ls; /* SOCKET, DROP */
	uint8_t dir, transport, type, layer, owner;
	uint64_t netns;                  /* IFACE, KERNEL */
	char *ifname;
	struct tm_ps_counters v;
	uint64_t grew_ns;                /* last growth, or creation */
	uint32_t refs;                   /* record entries feeding it */
	size_t index;                    /* in its group's array */
};

/* A distinct combination of aggregation label values. */
struct tm_ps_labelset {
	struct tm_hnode node;            /* first, as in every table entry */
	char *key;                       /* the values, each NUL-terminated */
	size_t key_len;
	const char **values;             /* into key */
	/* Past the cap: this label set's traffic goes to fold (the "other"
	 * label set); it is kept only to count it once while it is in use. */
	struct tm_ps_labelset *fold;
	uint32_t refs;                   /* series and records using it */
	bool reserved;                   /* "other": outside the cap, never freed */
};

struct tm_ps_config {
	unsigned int n_labels;
	unsigned int max_label_sets;     /* prom_max_series */
	uint64_t idle_ns;                /* prom_series_idle; 0 = never */
};

struct tm_ps_stats {
	uint64_t label_sets;             /* live, under the cap */
	uint64_t folded;                 /* label sets sent to "other", cumulative */
	uint64_t counters_resets;        /* counters_id changes seen */
	uint64_t records;                /* record identities tracked */
};

struct tm_ps;

/* NULL with errno set on failure. */
struct tm_ps *tm_ps_new(const struct tm_ps_config *c);
void tm_ps_free(struct tm_ps *ps);

/* Starts a frame: now_ns times the series' growth (for idle removal). */
void tm_ps_frame_begin(struct tm_ps *ps, uint64_t counters_id, uint64_t now_ns);

/*
 * Adds one record of the current frame (a record appears once per frame).
 * Returns 0 or -ENOMEM; after -ENOMEM the growth not yet added stays pending
 * in the record's totals and is added by a later frame.
 */
int tm_ps_add(struct tm_ps *ps, const struct tm_ps_record *r);

/*
 * Ends the frame. complete: every message of it was seen, so records not in
 * it are gone and their state is dropped. Then series idle for idle_ns with
 * nothing feeding them are removed.
 */
void tm_ps_frame_end(struct tm_ps *ps, bool complete);

size_t tm_ps_count(const struct tm_ps *ps, enum tm_ps_group g);
const struct tm_ps_series *tm_ps_get(const struct tm_ps *ps, enum tm_ps_group g, size_t i);
void tm_ps_stats(const struct tm_ps *ps, struct tm_ps_stats *st);

/* The value of aggregation labels in "other" (and their reserved fellows). */
#define TM_PS_OTHER "other"

#endif /* TM_PROM_SERIES_H */
