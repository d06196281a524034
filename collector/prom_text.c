// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Exposition writer of taskmeter prom. Metric names follow Prometheus'
 * conventions (base unit in the name, _total on counters) and OpenTelemetry's
 * process.network.io (network.io.direction = transmit | receive).
 *
 * The two formats differ in little here: OpenMetrics names a counter family
 * without its _total suffix, has UNIT lines, escapes '"' in HELP and ends
 * with "# EOF".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "prom_text.h"
#include "render.h"
#include "util.h"

struct family {
	const char *name;  /* without _total */
	const char *unit;  /* OpenMetrics UNIT, or NULL */
	bool counter;
	const char *help;
};

enum field { F_BYTES, F_PACKETS, F_PAYLOAD };

struct series_family {
	struct family f;
	enum tm_ps_group group;
	enum field field;
};

static const struct series_family series_families[] = {
	{ { "taskmeter_process_network_io_bytes", "bytes", true,
	    "IP bytes (headers and payload) sent or received by processes, at the socket layer" },
	  TM_PS_SOCKET, F_BYTES },
	{ { "taskmeter_process_network_packets", NULL, true,
	    "Packets sent or received by processes, at the socket layer (GSO/GRO as segments)" },
	  TM_PS_SOCKET, F_PACKETS },
	{ { "taskmeter_process_network_payload_bytes", "bytes", true,
	    "L4 payload bytes (TCP/UDP data, ICMP body) sent or received by processes" },
	  TM_PS_SOCKET, F_PAYLOAD },
	{ { "taskmeter_process_network_dropped_bytes", "bytes", true,
	    "IP bytes received for processes and dropped before their socket got them" },
	  TM_PS_DROP, F_BYTES },
	{ { "taskmeter_process_network_dropped_packets", NULL, true,
	    "Packets received for processes and dropped before their socket got them" },
	  TM_PS_DROP, F_PACKETS },
	{ { "taskmeter_interface_io_bytes", "bytes", true,
	    "Bytes at the interface layer (as the device counts them), by owner: a process or a bucket" },
	  TM_PS_IFACE, F_BYTES },
	{ { "taskmeter_interface_packets", NULL, true,
	    "Frames at the interface layer, by owner: a process or a bucket" },
	  TM_PS_IFACE, F_PACKETS },
	{ { "taskmeter_interface_kernel_io_bytes", "bytes", true,
	    "The interface's own byte counter (rtnetlink IFLA_STATS64)" },
	  TM_PS_KERNEL, F_BYTES },
	{ { "taskmeter_interface_kernel_packets", NULL, true,
	    "The interface's own packet counter (rtnetlink IFLA_STATS64)" },
	  TM_PS_KERNEL, F_PACKETS },
};

#define N_SERIES_FAMILIES (sizeof(series_families) / sizeof(series_families[0]))

static const struct family collector_counters[TM_PT_COLLECTOR_COUNTERS] = {
	[TM_PT_TASK_WORK_SCHEDULED] = { "taskmeter_collector_task_work_scheduled", NULL, true,
					"task_work metadata callbacks scheduled" },
	[TM_PT_TASK_WORK_FAILED] = { "taskmeter_collector_task_work_failed", NULL, true,
				     "task_work schedules that failed (metadata fell back to /proc)" },
	[TM_PT_TASK_WORK_CALLBACKS] = { "taskmeter_collector_task_work_callbacks", NULL, true,
					"task_work callbacks that ran and read metadata" },
	[TM_PT_RINGBUF_DROPS] = { "taskmeter_collector_ringbuf_drops", NULL, true,
				  "Events lost because the ring buffer was full" },
	/* promtool's lint rejects "counter" inside a name: hence not the
	 * CollectorStats field names here. */
	[TM_PT_COUNTER_MAP_FULL] = { "taskmeter_collector_overflow_packets", NULL, true,
				     "Packets counted in the overflow record because a counter map was full" },
	[TM_PT_META_MAP_FULL] = { "taskmeter_collector_meta_map_full", NULL, true,
				  "Owners whose metadata slot could not be created" },
	[TM_PT_MALFORMED_PACKETS] = { "taskmeter_collector_malformed_packets", NULL, true,
				      "Packets whose headers could not be parsed" },
	[TM_PT_PROCFS_READS] = { "taskmeter_collector_procfs_reads", NULL, true,
				 "Process metadata read from /proc by the collector" },
	[TM_PT_PROCFS_FAILURES] = { "taskmeter_collector_procfs_failures", NULL, true,
				    "/proc reads that found the process gone" },
	[TM_PT_FRAMES_DROPPED] = { "taskmeter_collector_frames_dropped", NULL, true,
				   "Frames the collector dropped for slow subscribers, all subscribers" },
};

static const struct family collector_gauges[TM_PT_COLLECTOR_GAUGES] = {
	[TM_PT_SUBSCRIBERS] = { "taskmeter_collector_subscribers", NULL, false,
				"Clients of the export socket" },
	[TM_PT_RECORDS_LIVE] = { "taskmeter_collector_records_live", NULL, false,
				 "Process records held by the collector" },
	[TM_PT_COUNTER_ENTRIES] = { "taskmeter_collector_traffic_map_entries", NULL, false,
				    "Entries in the BPF counter map at the last read" },
	[TM_PT_FRAME_BUILD_SECONDS] = { "taskmeter_collector_frame_build_seconds", "seconds", false,
					"Time the collector took to read its maps and build the last frame" },
};

static const char *const dir_names[] = { "receive", "transmit" };
static const char *const transport_names[] = { "tcp", "udp", "icmp", "other" };
static const char *const type_names[] = { "ipv4", "ipv6", "other" };
static const char *const layer_names[] = { "xdp", "tc" };
static const char *const owner_names[] = {
	"process", "forwarded", "local_no_owner", "non_ip", "malformed", "overflow",
	"unattributed",
};
/* A value of one of these enums without a name would print as NULL. */
_Static_assert(TM_ARRAY_SIZE(dir_names) == TM_PS_DIRS &&
	       TM_ARRAY_SIZE(transport_names) == TM_PS_TRANSPORTS &&
	       TM_ARRAY_SIZE(type_names) == TM_PS_TYPES && TM_ARRAY_SIZE(layer_names) == TM_PS_LAYERS &&
	       TM_ARRAY_SIZE(owner_names) == TM_PS_OWNERS, "a label value for every enum value");

struct ctx {
	struct tm_pt_buf *b;
	enum tm_pt_format fmt;
	const char *const *labels;
	unsigned int n_labels;
};

/* ---- buffer ---------------------------------------------------------------- */

static bool reserve(struct tm_pt_buf *b, size_t more)
{
	if (b->oom)
		return false;
	if (tm_array_reserve(&b->p, &b->cap, 1, b->len + more + 1, 64 * 1024)) {
		b->oom = true;
		return false;
	}
	return true;
}

static void put(struct tm_pt_buf *b, const char *s, size_t n)
{
	if (!reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void put_str(struct tm_pt_buf *b, const char *s)
{
	put(b, s, strlen(s));
}

static void __attribute__((format(printf, 2, 3))) put_fmt(struct tm_pt_buf *b, const char *fmt, ...)
{
	char tmp[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		put(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

void tm_pt_buf_free(struct tm_pt_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* ---- escaping -------------------------------------------------------------- */

/* Bytes at the start of s that go out as they are: plain ASCII. */
static size_t plain_run(const uint8_t *s, size_t n)
{
	size_t i = 0;

	while (i < n && s[i] < 0x80 && s[i] != '\\' && s[i] != '"' && s[i] != '\n')
		i++;
	return i;
}

void tm_pt_label_value(struct tm_pt_buf *out, const char *s)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t n = strlen(s);

	while (n) {
		size_t run = plain_run(p, n);
		uint32_t cp;
		int len;

		/* the common case in one copy: a render writes every value */
		if (run) {
			put(out, (const char *)p, run);
			p += run;
			n -= run;
			continue;
		}
		len = tm_utf8_decode(p, n, &cp);

		if (len < 0) {
			put(out, "\xef\xbf\xbd", 3); /* U+FFFD */
			len = -len;
		} else if (*p == '\\') {
			put(out, "\\\\", 2);
		} else if (*p == '"') {
			put(out, "\\\"", 2);
		} else if (*p == '\n') {
			put(out, "\\n", 2);
		} else {
			put(out, (const char *)p, len);
		}
		p += len;
		n -= len;
	}
}

static void help_text(struct ctx *c, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			put_str(c->b, "\\\\");
		else if (*s == '\n')
			put_str(c->b, "\\n");
		else if (*s == '"' && c->fmt == TM_PT_OPENMETRICS)
			put_str(c->b, "\\\"");
		else
			put(c->b, s, 1);
	}
}

/* ---- families and samples ---------------------------------------------------- */

static void family_name(struct ctx *c, const struct family *f)
{
	put_str(c->b, f->name);
	if (f->counter && c->fmt == TM_PT_TEXT)
		put_str(c->b, "_total");
}

static void family_header(struct ctx *c, const struct family *f)
{
	put_str(c->b, "# HELP ");
	family_name(c, f);
	put(c->b, " ", 1);
	help_text(c, f->help);
	put_str(c->b, "\n# TYPE ");
	family_name(c, f);
	put_str(c->b, f->counter ? " counter\n" : " gauge\n");
	if (c->fmt == TM_PT_OPENMETRICS && f->unit) {
		put_str(c->b, "# UNIT ");
		family_name(c, f);
		put_fmt(c->b, " %s\n", f->unit);
	}
}

static void sample_name(struct ctx *c, const struct family *f)
{
	put_str(c->b, f->name);
	if (f->counter)
		put_str(c->b, "_total");
}

/* Writes `name="value"`, after a comma unless it is the first label. */
static void label(struct ctx *c, bool *first, const char *name, const char *value)
{
	put(c->b, *first ? "{" : ",", 1);
	*first = false;
	put_str(c->b, name);
	put_str(c->b, "=\"");
	tm_pt_label_value(c->b, value);
	put(c->b, "\"", 1);
}

static const char *name_of(const char *const *names, unsigned int n, unsigned int i)
{
	return i < n ? names[i] : "other";
}

static void series_labels(struct ctx *c, const struct tm_ps_series *s, bool *first)
{
	char netns[24];

	if (s->group == TM_PS_SOCKET || s->group == TM_PS_DROP) {
		/* An empty value is an absent label to Prometheus: leave it out. */
		for (unsigned int i = 0; i < c->n_labels; i++)
			if (s->ls->values[i][0])
				label(c, first, c->labels[i], s->ls->values[i]);
		label(c, first, "network_io_direction", name_of(dir_names, TM_PS_DIRS, s->dir));
		label(c, first, "network_transport",
		      name_of(transport_names, TM_PS_TRANSPORTS, s->transport));
		label(c, first, "network_type", name_of(type_names, TM_PS_TYPES, s->type));
		return;
	}
	snprintf(netns, sizeof(netns), "%" PRIu64, s->netns);
	label(c, first, "interface", s->ifname ? s->ifname : "");
	label(c, first, "netns", netns);
	label(c, first, "network_io_direction", name_of(dir_names, TM_PS_DIRS, s->dir));
	if (s->group == TM_PS_IFACE) {
		label(c, first, "layer", name_of(layer_names, TM_PS_LAYERS, s->layer));
		label(c, first, "owner", name_of(owner_names, TM_PS_OWNERS, s->owner));
	}
}

static uint64_t field_of(const struct tm_ps_series *s, enum field f)
{
	return f == F_BYTES ? s->v.bytes : f == F_PACKETS ? s->v.packets : s->v.payload;
}

static void series_family(struct ctx *c, const struct tm_ps *ps, const struct series_family *sf)
{
	size_t n = tm_ps_count(ps, sf->group);

	family_header(c, &sf->f);
	for (size_t i = 0; i < n && !c->b->oom; i++) {
		const struct tm_ps_series *s = tm_ps_get(ps, sf->group, i);
		bool first = true;

		sample_name(c, &sf->f);
		series_labels(c, s, &first);
		put_fmt(c->b, "%s %" PRIu64 "\n", first ? "" : "}", field_of(s, sf->field));
	}
}

static void one_u64(struct ctx *c, const struct family *f, uint64_t v)
{
	family_header(c, f);
	sample_name(c, f);
	put_fmt(c->b, " %" PRIu64 "\n", v);
}

/* fmt: "%.9g" for durations and sizes, "%.3f" for Unix times */
static void one_double(struct ctx *c, const struct family *f, const char *fmt, double v)
{
	char num[64];

	family_header(c, f);
	sample_name(c, f);
	snprintf(num, sizeof(num), fmt, v);
	put_fmt(c->b, " %s\n", num);
}

static void collector(struct ctx *c, const struct tm_pt_stats *st)
{
	if (!st->have_collector)
		return;
	for (int i = 0; i < TM_PT_COLLECTOR_COUNTERS; i++)
		one_u64(c, &collector_counters[i], st->collector[i]);
	for (int i = 0; i < TM_PT_COLLECTOR_GAUGES; i++)
		one_double(c, &collector_gauges[i], "%.9g", st->gauge[i]);
}

static void exporter_series(struct ctx *c, const struct tm_ps *ps)
{
	static const struct family f = { "taskmeter_exporter_series", NULL, false,
					 "Series the exporter holds, per metric family" };
	char name[96];

	family_header(c, &f);
	for (size_t i = 0; i < N_SERIES_FAMILIES; i++) {
		bool first = true;

		snprintf(name, sizeof(name), "%s_total", series_families[i].f.name);
		sample_name(c, &f);
		label(c, &first, "family", name);
		put_fmt(c->b, "} %zu\n", tm_ps_count(ps, series_families[i].group));
	}
}

static const struct family exporter_families[] = {
	{ "taskmeter_exporter_label_sets", NULL, false,
	  "Label sets with series of their own (at most prom_max_series)" },
	{ "taskmeter_exporter_label_sets_max", NULL, false, "prom_max_series" },
	{ "taskmeter_exporter_label_sets_folded", NULL, true,
	  "Label sets whose traffic went to the other series because prom_max_series were in use" },
	{ "taskmeter_exporter_frames_read", NULL, true, "Frames read from the export socket" },
	{ "taskmeter_exporter_frames_missed", NULL, true,
	  "Frames the collector dropped for this exporter (it read too slowly)" },
	{ "taskmeter_exporter_stream_connected", NULL, false,
	  "1 while the exporter is connected to the export socket" },
	{ "taskmeter_exporter_reconnects", NULL, true,
	  "Connections to the export socket after the first" },
	{ "taskmeter_exporter_counting_restarts", NULL, true,
	  "Frames whose counters_id changed: the collector restarted counting from zero" },
};

static const struct family last_frame = {
	"taskmeter_exporter_last_frame_timestamp_seconds", "seconds", false,
	"When the collector read the counters of the last frame (Unix time)"
};
static const struct family render_time = {
	"taskmeter_exporter_render_seconds", "seconds", false,
	"Time the previous /metrics exposition took to render"
};

static void exporter(struct ctx *c, const struct tm_ps *ps, const struct tm_pt_stats *st)
{
	struct tm_ps_stats ps_st;
	uint64_t v[sizeof(exporter_families) / sizeof(exporter_families[0])];

	tm_ps_stats(ps, &ps_st);
	/* in exporter_families' order */
	v[0] = ps_st.label_sets;
	v[1] = st->max_label_sets;
	v[2] = ps_st.folded;
	v[3] = st->frames_read;
	v[4] = st->frames_missed;
	v[5] = st->connected;
	v[6] = st->reconnects;
	v[7] = st->counters_resets;
	exporter_series(c, ps);
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		one_u64(c, &exporter_families[i], v[i]);
	if (st->frames_read)
		one_double(c, &last_frame, "%.3f", st->last_frame_seconds);
	one_double(c, &render_time, "%.9g", st->render_seconds);
}

int tm_pt_render(struct tm_pt_buf *out, enum tm_pt_format fmt, const struct tm_ps *ps,
		 const char *const *labels, unsigned int n_labels, const struct tm_pt_stats *st)
{
	struct ctx c = { .b = out, .fmt = fmt, .labels = labels, .n_labels = n_labels };

	for (size_t i = 0; i < N_SERIES_FAMILIES; i++)
		series_family(&c, ps, &series_families[i]);
	collector(&c, st);
	exporter(&c, ps, st);
	if (fmt == TM_PT_OPENMETRICS)
		put_str(out, "# EOF\n");
	return out->oom ? -ENOMEM : 0;
}

/* ---- content negotiation ------------------------------------------------------ */

/* One media range of an Accept header: its type, q and version. */
static void media_range(char *s, char **type, double *q, const char **version)
{
	char *save = NULL, *p;

	*q = 1;
	*version = NULL;
	*type = strtok_r(s, ";", &save);
	for (p = *type ? strtok_r(NULL, ";", &save) : NULL; p; p = strtok_r(NULL, ";", &save)) {
		p += strspn(p, " \t");
		if (!strncasecmp(p, "q=", 2))
			*q = strtod(p + 2, NULL);
		else if (!strncasecmp(p, "version=", 8))
			*version = p + 8;
	}
	if (*type) {
		char *end;

		*type += strspn(*type, " \t");
		end = *type + strcspn(*type, " \t");
		*end = '\0';
	}
}

static bool version_is(const char *v, const char *a, const char *b)
{
	size_t n = v ? strcspn(v, " \t") : 0;

	return !v || (n == strlen(a) && !strncmp(v, a, n)) || (b && n == strlen(b) && !strncmp(v, b, n));
}

enum tm_pt_format tm_pt_negotiate(const char *accept)
{
	char *copy = accept ? strdup(accept) : NULL, *save = NULL, *r;
	double om = 0, text = 0;

	for (r = copy ? strtok_r(copy, ",", &save) : NULL; r; r = strtok_r(NULL, ",", &save)) {
		const char *version;
		char *type;
		double q;

		media_range(r, &type, &q, &version);
		if (!type)
			continue;
		/* We write OpenMetrics 1.0.0, which readers of 0.0.1 take too. */
		if (!strcasecmp(type, "application/openmetrics-text") &&
		    version_is(version, "1.0.0", "0.0.1"))
			om = q > om ? q : om;
		else if ((!strcasecmp(type, "text/plain") && version_is(version, "0.0.4", NULL)) ||
			 !strcasecmp(type, "text/*") || !strcasecmp(type, "*/*"))
			text = q > text ? q : text;
	}
	free(copy);
	return om > 0 && om >= text ? TM_PT_OPENMETRICS : TM_PT_TEXT;
}
