/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * taskmeter prom's adapter from decoded frames to prom_series: it puts the
 * messages of a frame together (Frame.more_parts), decides when a frame is
 * complete enough to drop the records absent from it, turns records into
 * label values and entries, and keeps the collector's counters monotonic.
 */
#ifndef TM_PROM_ADAPT_H
#define TM_PROM_ADAPT_H

#include <stdint.h>

#include "config.h"
#include "prom_series.h"
#include "prom_text.h"
#include "taskmeter.pb-c.h"

/* Longest label value kept, in bytes; longer ones are cut at a character. */
#define TM_PA_VALUE_MAX 256

struct tm_pa;

/* cfg must outlive the adapter. NULL with errno set on failure. */
struct tm_pa *tm_pa_new(const struct tm_config *cfg);
void tm_pa_free(struct tm_pa *pa);

/* The stream was (re)connected / lost. A frame cut by a disconnect is
 * incomplete; the first frame after a connect is never trusted to be
 * whole (its first messages may have gone out before we connected). */
void tm_pa_connected(struct tm_pa *pa);
void tm_pa_disconnected(struct tm_pa *pa);

/* One message of the stream; now_ns is CLOCK_MONOTONIC. Returns 0, or
 * -ENOMEM (the growth not added is added by a later frame). */
int tm_pa_message(struct tm_pa *pa, const Taskmeter__Frame *f, uint64_t now_ns);

/* True once the last message of a frame was taken since the last call. */
bool tm_pa_frame_done(struct tm_pa *pa);

const struct tm_ps *tm_pa_series(const struct tm_pa *pa);
/* Names of the aggregation labels, in prom_series' order. */
const char *const *tm_pa_label_names(const struct tm_pa *pa);
unsigned int tm_pa_n_labels(const struct tm_pa *pa);
/* The collector's and exporter's numbers (render_seconds left to the caller). */
void tm_pa_stats(const struct tm_pa *pa, struct tm_pt_stats *st);

/* Copies src to dst (cap bytes) as valid UTF-8, each invalid subpart one
 * U+FFFD, cut at a character boundary to at most TM_PA_VALUE_MAX bytes. */
void tm_pa_clean(char *dst, size_t cap, const char *src);

#endif /* TM_PROM_ADAPT_H */
