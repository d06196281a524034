/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Exposition of taskmeter prom: the series of prom_series.h and the
 * collector's and exporter's own numbers as Prometheus text format 0.0.4 or
 * OpenMetrics 1.0, and the Accept header negotiation between the two.
 */
#ifndef TM_PROM_TEXT_H
#define TM_PROM_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "prom_series.h"

enum tm_pt_format { TM_PT_TEXT, TM_PT_OPENMETRICS };

#define TM_PT_CONTENT_TYPE_TEXT "text/plain; version=0.0.4; charset=utf-8"
#define TM_PT_CONTENT_TYPE_OPENMETRICS "application/openmetrics-text; version=1.0.0; charset=utf-8"

/* CollectorStats counters, made monotonic across daemon restarts. */
enum tm_pt_collector_counter {
	TM_PT_TASK_WORK_SCHEDULED,
	TM_PT_TASK_WORK_FAILED,
	TM_PT_TASK_WORK_CALLBACKS,
	TM_PT_RINGBUF_DROPS,
	TM_PT_COUNTER_MAP_FULL,
	TM_PT_META_MAP_FULL,
	TM_PT_MALFORMED_PACKETS,
	TM_PT_PROCFS_READS,
	TM_PT_PROCFS_FAILURES,
	TM_PT_FRAMES_DROPPED,
	TM_PT_COLLECTOR_COUNTERS,
};

/* CollectorStats gauges, as the last frame had them. */
enum tm_pt_collector_gauge {
	TM_PT_SUBSCRIBERS,
	TM_PT_RECORDS_LIVE,
	TM_PT_COUNTER_ENTRIES,
	TM_PT_FRAME_BUILD_SECONDS,
	TM_PT_COLLECTOR_GAUGES,
};

struct tm_pt_stats {
	uint64_t collector[TM_PT_COLLECTOR_COUNTERS];
	double gauge[TM_PT_COLLECTOR_GAUGES];
	bool have_collector;          /* a frame with stats has been seen */
	/* the exporter's own */
	uint64_t frames_read;
	uint64_t frames_missed;       /* Frame.frames_dropped, over all connections */
	uint64_t reconnects;
	uint64_t counters_resets;     /* counters_id changes */
	bool connected;
	double last_frame_seconds;    /* Frame.timestamp_ns of the last frame */
	double render_seconds;        /* the previous /metrics render */
	unsigned int max_label_sets;
};

/* Where the exposition goes: grows as needed; oom set if it could not. */
struct tm_pt_buf {
	char *p;
	size_t len, cap;
	bool oom;
};

/*
 * Renders everything into out (appended). labels: names of the aggregation
 * labels, n_labels of them, in prom_series' order. Returns 0 or -ENOMEM.
 */
int tm_pt_render(struct tm_pt_buf *out, enum tm_pt_format fmt, const struct tm_ps *ps,
		 const char *const *labels, unsigned int n_labels, const struct tm_pt_stats *st);

/* OpenMetrics when the Accept header prefers it (q-values), else text. */
enum tm_pt_format tm_pt_negotiate(const char *accept);

/* Appends s as a label value: \\, \" and \n escaped, invalid UTF-8 as
 * U+FFFD. */
void tm_pt_label_value(struct tm_pt_buf *out, const char *s);

void tm_pt_buf_free(struct tm_pt_buf *b);

#endif /* TM_PROM_TEXT_H */
