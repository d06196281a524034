/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Client-side rendering of frames: JSON lines, human units and text that is
 * safe to put on a terminal. Pure functions, kept apart from taskmeter.c so
 * the unit tests can reach them.
 */
#ifndef TM_RENDER_H
#define TM_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "taskmeter.pb-c.h"
#include "util.h" /* tm_utf8_decode */

/* Enough for "1023.9 KiB/s" and every other tm_human_* result. */
#define TM_HUMAN_LEN 16


/* Writes s as a JSON string; invalid UTF-8 becomes U+FFFD (see above). */
void tm_render_json_string(FILE *out, const char *s);

/*
 * Writes m as one compact JSON object: proto field names, enums by name,
 * only fields that are present; 64-bit integers as decimal strings and
 * 32-bit ones as numbers, as proto3's canonical JSON mapping does.
 */
void tm_render_json_message(FILE *out, const ProtobufCMessage *m);

/* As tm_render_json_message, but "records" is written even when empty. */
void tm_render_json_frame(FILE *out, const Taskmeter__Frame *f);

/* One record as one object, preceded by its frame's seq, timestamp_ns and
 * hostname (`taskmeter dump --json --records`). */
void tm_render_json_record_line(FILE *out, const Taskmeter__Frame *f, const Taskmeter__ProcessRecord *r);

/* "0 B", "1023 B", "1.0 KiB" ... "16.0 EiB". Returns buf. */
char *tm_render_human_bytes(uint64_t bytes, char *buf, size_t len);

/* bytes per interval_ns as "12.3 MiB/s"; "-" when the interval is 0. */
char *tm_render_human_rate(uint64_t bytes, uint64_t interval_ns, char *buf, size_t len);

/*
 * Copies at most max_cols characters of src to dst (size bytes, always NUL
 * terminated), replacing control characters and invalid UTF-8 with '?' so
 * that process-controlled strings cannot drive the terminal. Counts one
 * column per code point. Returns the columns written.
 */
size_t tm_render_term_text(char *dst, size_t size, const char *src, size_t max_cols);

/*
 * As tm_render_term_text, but counts columns as the terminal does (wcwidth: two
 * for East Asian wide characters), so that a line cut to N columns never
 * wraps. Characters of no width (combining marks, format characters such
 * as bidi overrides) become '?' too: a process name must not hide or
 * reorder what follows it. With ascii (the terminal is not UTF-8) every
 * non-ASCII character becomes '?'. Needs a UTF-8 LC_CTYPE unless ascii.
 * Returns the columns written.
 */
size_t tm_render_term_fit(char *dst, size_t size, const char *src, size_t max_cols, bool ascii);

/* As tm_render_term_fit, but keeps the last max_cols columns of src. */
size_t tm_render_term_tail(char *dst, size_t size, const char *src, size_t max_cols, bool ascii);

/* Columns tm_render_term_fit would give all of s. */
size_t tm_render_term_width(const char *s, bool ascii);

/* How people call the records of a bucket kind ("forwarded", "local
 * without owner", ...); NULL for PROCESS and kinds this client lacks. */
const char *tm_render_kind_label(int kind);

/* Sorts records by rx+tx delta bytes, then rx+tx total, both descending,
 * then by pid. */
void tm_render_sort_records(Taskmeter__ProcessRecord **recs, size_t n);

/* c->bytes, or 0 when c or its bytes are absent. */
uint64_t tm_render_counter_bytes(const Taskmeter__Counters *c);

#endif /* TM_RENDER_H */
