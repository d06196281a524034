/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The record store as protobuf Frames (proto/taskmeter.proto). Each record
 * is packed once and its bytes are kept until it changes, so the cost of a
 * frame follows what changed, not how many processes there are. A frame
 * larger than part_max is sent as several messages (Frame.more_parts).
 */
#ifndef TM_ENCODE_H
#define TM_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "export.h"
#include "store.h"
#include "taskmeter.pb-c.h"
#include "util.h"

/* An interface as the frame shows it (filled by the daemon each frame). */
struct tm_if_view {
	uint64_t netns;
	int ifindex;
	char name[16];
	char xdp[8], tc[8];
	struct tm_counter_val kernel[TM_DIR_MAX]; /* packets, bytes */
};

struct tm_arena;

struct tm_encoder {
	struct tm_arena *arena;     /* scratch for one record's message */
	size_t part_max;            /* bytes of records per message */
	struct tm_vec parts;        /* struct tm_buf *: the last frame's messages */
	size_t records;             /* records in the last frame */
	uint64_t encoded;           /* records packed by the last frame */
	uint64_t names_gen;         /* tm_store.names_gen the records show */
};

int tm_encoder_init(struct tm_encoder *e, struct tm_store *s, size_t part_max);
void tm_encoder_free(struct tm_encoder *e);

/* Pack every record of s with traffic that changed since the last frame
 * (the others keep their bytes); counts them in e->encoded. The records
 * looked at are those of s->dirty, not every record of s. */
int tm_encode_records(struct tm_encoder *e, struct tm_store *s);

/*
 * Assemble the frame from the records tm_encode_records() packed: hdr's
 * fields (seq, timestamp, stats, ...; no records or interfaces) and views.
 * On success e->parts holds its messages (references owned by e until the
 * next call).
 */
int tm_encode_frame(struct tm_encoder *e, struct tm_store *s, const Taskmeter__Frame *hdr,
		    const struct tm_if_view *views, size_t n_views);

#endif /* TM_ENCODE_H */
