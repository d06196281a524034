// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Frames -> prom_series. Everything protobuf about taskmeter prom is here,
 * so that the series logic stays testable with plain structs.
 */
#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "prom_adapt.h"
#include "render.h"
#include "util.h"

/* Record ids of the kernel's interface counters: above every RecordKind. */
#define ID_INTERFACE (0x100ull << 32)
#define USERS_BUCKETS 256
#define USERS_MAX 4096
/* A label value after cleaning: U+FFFD may stand for one byte. */
#define VALUE_BUF (TM_PA_VALUE_MAX + 4)
#define IFNAME_BUF 64

struct user {
	struct user *next;
	uint32_t uid;
	char name[];
};

/* A collector counter made monotonic: what the raw value last was and the
 * sum of its growth. */
struct mono {
	uint64_t last, sum;
	bool have;
};

struct tm_pa {
	const struct tm_config *cfg;
	struct tm_ps *ps;
	const char *names[TM_PROM_LABELS_MAX];
	/* scratch for one record */
	char values[TM_PROM_LABELS_MAX][VALUE_BUF];
	const char *labels[TM_PROM_LABELS_MAX];
	struct tm_ps_entry *entries;
	char (*ifnames)[IFNAME_BUF];
	size_t cap_entries, cap_ifnames;
	/* the frame being put together */
	bool in_frame, complete, frame_done;
	bool after_connect;       /* no whole frame seen since (re)connecting */
	bool at_boundary;         /* the last message ended a frame */
	bool check_restart;       /* first frame after a reconnect */
	uint64_t seq, last_seq, dropped, counters_id;
	bool have_counters_id;
	/* numbers */
	struct mono collector[TM_PT_COLLECTOR_COUNTERS];
	struct mono missed;
	struct tm_pt_stats st;
	unsigned int connects;
	struct user *users[USERS_BUCKETS];
	unsigned int n_users;
};

/* ---- label values ------------------------------------------------------------ */

void tm_pa_clean(char *dst, size_t cap, const char *src)
{
	const uint8_t *p = (const uint8_t *)src;
	size_t n = strlen(src), at = 0, max = cap - 1 < TM_PA_VALUE_MAX ? cap - 1 : TM_PA_VALUE_MAX;

	while (n) {
		uint32_t cp;
		int len = tm_utf8_decode(p, n, &cp);
		const char *out = (const char *)p;
		size_t out_len = len;

		if (len < 0) {
			out = "\xef\xbf\xbd";
			out_len = 3;
			len = -len;
		}
		if (at + out_len > max)
			break;
		memcpy(dst + at, out, out_len);
		at += out_len;
		p += len;
		n -= len;
	}
	dst[at] = '\0';
}

/* The passwd name of uid, looked up once; the number when there is none. */
static const char *user_name(struct tm_pa *pa, uint32_t uid, char *num, size_t len)
{
	struct user **b = &pa->users[uid % USERS_BUCKETS], *u;
	struct passwd pw, *res = NULL;
	char buf[4096];
	size_t n;

	for (u = *b; u; u = u->next)
		if (u->uid == uid)
			return u->name;
	snprintf(num, len, "%" PRIu32, uid);
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) || !res)
		res = NULL;
	/* Past the cap the lookup is repeated per record, but memory stays
	 * bounded however many uids a host runs. */
	if (pa->n_users >= USERS_MAX) {
		if (res)
			snprintf(num, len, "%s", res->pw_name);
		return num;
	}
	n = strlen(res ? res->pw_name : num);
	u = malloc(sizeof(*u) + n + 1);
	if (!u)
		return num;
	u->uid = uid;
	memcpy(u->name, res ? res->pw_name : num, n + 1);
	u->next = *b;
	*b = u;
	pa->n_users++;
	return u->name;
}

static const char *env_value(const Taskmeter__ProcessRecord *r, const char *name)
{
	for (size_t i = 0; i < r->n_env; i++)
		if (r->env[i]->name && r->env[i]->value && !strcmp(r->env[i]->name, name))
			return r->env[i]->value;
	return "";
}

static const char *exe_of(const Taskmeter__ProcessRecord *r)
{
	const char *slash;

	if (!r->n_argv || !r->argv[0])
		return "";
	slash = strrchr(r->argv[0], '/');
	return slash && slash[1] ? slash + 1 : r->argv[0];
}

static const char *or_empty(const char *s)
{
	return s ? s : "";
}

/* The raw value of label l for process record r (num: room for numbers). */
static const char *raw_value(struct tm_pa *pa, const struct tm_prom_label *l,
			     const Taskmeter__ProcessRecord *r, char *num, size_t len)
{
	switch (l->src) {
	case TM_PROM_SERVICE: return or_empty(r->service);
	case TM_PROM_CONTAINER_ID: return or_empty(r->container_id);
	case TM_PROM_CONTAINER_RUNTIME: return or_empty(r->container_runtime);
	case TM_PROM_POD_UID: return or_empty(r->pod_uid);
	case TM_PROM_CGROUP: return or_empty(r->cgroup_path);
	case TM_PROM_COMM: return or_empty(r->comm);
	case TM_PROM_EXE: return exe_of(r);
	case TM_PROM_ENV: return env_value(r, l->name + 4);
	case TM_PROM_USER:
		return r->has_uid ? user_name(pa, r->uid, num, len) : "";
	case TM_PROM_UID:
	case TM_PROM_PID:
		if (l->src == TM_PROM_UID ? !r->has_uid : !r->has_pid)
			return "";
		snprintf(num, len, "%" PRIu32, l->src == TM_PROM_UID ? r->uid : r->pid);
		return num;
	}
	return "";
}

/* entry_of() maps L4Protocol to tm_ps_transport by subtracting one. */
_Static_assert((int)TM_PS_TCP + 1 == (int)TASKMETER__L4_PROTOCOL__TCP &&
	       (int)TM_PS_UDP + 1 == (int)TASKMETER__L4_PROTOCOL__UDP &&
	       (int)TM_PS_ICMP + 1 == (int)TASKMETER__L4_PROTOCOL__ICMP &&
	       (int)TM_PS_OTHER_L4 + 1 == (int)TASKMETER__L4_PROTOCOL__OTHER &&
	       TM_PS_TRANSPORTS == TM_PS_OTHER_L4 + 1, "tm_ps_transport = L4Protocol - 1");

static const char *const kind_values[] = {
	[TASKMETER__RECORD_KIND__UNATTRIBUTED] = "unattributed",
	[TASKMETER__RECORD_KIND__OVERFLOW] = "overflow",
	[TASKMETER__RECORD_KIND__FORWARDED] = "forwarded",
	[TASKMETER__RECORD_KIND__LOCAL_NO_OWNER] = "local_no_owner",
	[TASKMETER__RECORD_KIND__NON_IP] = "non_ip",
	[TASKMETER__RECORD_KIND__MALFORMED] = "malformed",
};

/* Sets pa->labels for r. Records that are not processes (unattributed
 * sockets, the overflow bucket) get their kind in every label: their
 * bytes are part of the total like any other. */
static void record_labels(struct tm_pa *pa, const Taskmeter__ProcessRecord *r)
{
	bool process = r->kind == TASKMETER__RECORD_KIND__PROCESS;
	const char *kind = "unattributed";
	char num[64];

	if (!process && (size_t)r->kind < sizeof(kind_values) / sizeof(kind_values[0]) &&
	    kind_values[r->kind])
		kind = kind_values[r->kind];
	for (unsigned int i = 0; i < pa->cfg->n_prom_labels; i++) {
		const char *v = process ? raw_value(pa, &pa->cfg->prom_labels[i], r, num, sizeof(num))
					: kind;

		/* Cleaned before the label set is looked up: two raw values
		 * that print alike must be one series, never two of one name. */
		tm_pa_clean(pa->values[i], VALUE_BUF, v);
		pa->labels[i] = pa->values[i];
	}
}

/* ---- entries ----------------------------------------------------------------- */

/* Room for n entries, and an interface name for each. */
static int reserve_entries(struct tm_pa *pa, size_t n)
{
	if (tm_array_reserve(&pa->entries, &pa->cap_entries, sizeof(*pa->entries), n, 16) ||
	    tm_array_reserve(&pa->ifnames, &pa->cap_ifnames, sizeof(*pa->ifnames), n, 16))
		return -ENOMEM;
	return 0;
}

static uint8_t owner_of(int kind)
{
	switch (kind) {
	case TASKMETER__RECORD_KIND__PROCESS: return TM_PS_PROCESS;
	case TASKMETER__RECORD_KIND__FORWARDED: return TM_PS_FORWARDED;
	case TASKMETER__RECORD_KIND__LOCAL_NO_OWNER: return TM_PS_LOCAL_NO_OWNER;
	case TASKMETER__RECORD_KIND__NON_IP: return TM_PS_NON_IP;
	case TASKMETER__RECORD_KIND__MALFORMED: return TM_PS_MALFORMED;
	case TASKMETER__RECORD_KIND__OVERFLOW: return TM_PS_OVERFLOW;
	default: return TM_PS_UNATTRIBUTED;
	}
}

static void counters_of(struct tm_ps_counters *c, const Taskmeter__Counters *t)
{
	c->bytes = t && t->has_bytes ? t->bytes : 0;
	c->packets = t && t->has_packets ? t->packets : 0;
	c->payload = t && t->has_payload_bytes ? t->payload_bytes : 0;
}

/* The interface label: its name as the frame gives it, else its index. */
static const char *ifname_of(char *buf, const char *name, uint32_t ifindex)
{
	char tmp[24];

	if (!name || !name[0]) {
		snprintf(tmp, sizeof(tmp), "ifindex%" PRIu32, ifindex);
		name = tmp;
	}
	tm_pa_clean(buf, IFNAME_BUF, name);
	return buf;
}

static void entry_of(struct tm_pa *pa, size_t i, const Taskmeter__Traffic *t)
{
	struct tm_ps_entry *e = &pa->entries[i];

	memset(e, 0, sizeof(*e));
	switch (t->layer) {
	case TASKMETER__LAYER__DROP: e->group = TM_PS_DROP; break;
	case TASKMETER__LAYER__XDP: e->group = TM_PS_IFACE; e->layer = TM_PS_XDP; break;
	case TASKMETER__LAYER__TC: e->group = TM_PS_IFACE; e->layer = TM_PS_TC; break;
	default: e->group = TM_PS_SOCKET; break;
	}
	e->dir = t->direction == TASKMETER__DIRECTION__EGRESS ? TM_PS_TRANSMIT : TM_PS_RECEIVE;
	e->transport = t->protocol >= TASKMETER__L4_PROTOCOL__TCP &&
				t->protocol <= TASKMETER__L4_PROTOCOL__OTHER
			       ? t->protocol - 1 : TM_PS_OTHER_L4;
	e->type = t->family == TASKMETER__IP_FAMILY__IPV4 ? TM_PS_IPV4
		  : t->family == TASKMETER__IP_FAMILY__IPV6 ? TM_PS_IPV6 : TM_PS_NOT_IP;
	e->ifindex = t->ifindex;
	e->netns = t->netns;
	if (e->group == TM_PS_IFACE)
		e->ifname = ifname_of(pa->ifnames[i], t->ifname, t->ifindex);
	counters_of(&e->total, t->total);
}

static int add_record(struct tm_pa *pa, const Taskmeter__ProcessRecord *r)
{
	struct tm_ps_record pr = { .labels = pa->labels, .owner = owner_of(r->kind) };
	int err = reserve_entries(pa, r->n_traffic);

	if (err)
		return err;
	pr.id[0] = (uint64_t)r->kind << 32;
	if (r->kind == TASKMETER__RECORD_KIND__PROCESS) {
		pr.id[0] |= r->exec_seq;
		pr.id[1] = r->pid;
		pr.id[2] = r->start_time_ns;
	}
	record_labels(pa, r);
	for (size_t i = 0; i < r->n_traffic; i++)
		entry_of(pa, i, r->traffic[i]);
	pr.entries = pa->entries;
	pr.n_entries = r->n_traffic;
	return tm_ps_add(pa->ps, &pr);
}

/* The kernel's counters of one interface, as a record of its own. */
static int add_interface(struct tm_pa *pa, const Taskmeter__Interface *in)
{
	struct tm_ps_record pr = { .outside_counters_id = true, .n_entries = 2 };
	int err = reserve_entries(pa, 2);

	if (err)
		return err;
	pr.entries = pa->entries; /* after reserve_entries() moved them */
	pr.id[0] = ID_INTERFACE;
	pr.id[1] = in->ifindex;
	pr.id[2] = in->netns;
	for (int d = 0; d < 2; d++) {
		struct tm_ps_entry *e = &pa->entries[d];

		memset(e, 0, sizeof(*e));
		e->group = TM_PS_KERNEL;
		e->dir = d ? TM_PS_TRANSMIT : TM_PS_RECEIVE;
		e->ifindex = in->ifindex;
		e->netns = in->netns;
		e->ifname = ifname_of(pa->ifnames[d], in->name, in->ifindex);
		counters_of(&e->total, d ? in->tx_kernel : in->rx_kernel);
	}
	return tm_ps_add(pa->ps, &pr);
}

/* ---- collector numbers ------------------------------------------------------- */

/* restarted: the raw counter is known to count from zero again. A value
 * below the last one means the same (a daemon restart we could not see). */
static void mono_update(struct mono *m, uint64_t raw, bool restarted)
{
	if (!m->have || restarted || raw < m->last)
		m->sum += raw;
	else
		m->sum += raw - m->last;
	m->last = raw;
	m->have = true;
}

#define STAT(field, in_daemon) \
	{ offsetof(Taskmeter__CollectorStats, has_##field), \
	  offsetof(Taskmeter__CollectorStats, field), in_daemon }

/* in_daemon: kept in the daemon's memory, so it restarts with the daemon;
 * the others live in BPF maps, which restart with counters_id. */
static const struct {
	size_t has, off;
	bool in_daemon;
} stat_fields[TM_PT_COLLECTOR_COUNTERS] = {
	[TM_PT_TASK_WORK_SCHEDULED] = STAT(task_work_scheduled, false),
	[TM_PT_TASK_WORK_FAILED] = STAT(task_work_failed, false),
	[TM_PT_TASK_WORK_CALLBACKS] = STAT(task_work_callbacks, false),
	[TM_PT_RINGBUF_DROPS] = STAT(ringbuf_drops, false),
	[TM_PT_COUNTER_MAP_FULL] = STAT(counter_map_full, false),
	[TM_PT_META_MAP_FULL] = STAT(meta_map_full, false),
	[TM_PT_MALFORMED_PACKETS] = STAT(malformed_packets, false),
	[TM_PT_PROCFS_READS] = STAT(procfs_reads, true),
	[TM_PT_PROCFS_FAILURES] = STAT(procfs_failures, true),
	[TM_PT_FRAMES_DROPPED] = STAT(frames_dropped, true),
};

static void take_stats(struct tm_pa *pa, const Taskmeter__CollectorStats *s, bool new_counters,
		       bool new_daemon)
{
	const char *base = (const char *)s;

	for (int i = 0; i < TM_PT_COLLECTOR_COUNTERS; i++) {
		if (!*(const protobuf_c_boolean *)(base + stat_fields[i].has))
			continue;
		mono_update(&pa->collector[i], *(const uint64_t *)(base + stat_fields[i].off),
			    stat_fields[i].in_daemon ? new_daemon : new_counters);
		pa->st.collector[i] = pa->collector[i].sum;
	}
	pa->st.gauge[TM_PT_SUBSCRIBERS] = s->subscribers;
	pa->st.gauge[TM_PT_RECORDS_LIVE] = s->records_live;
	pa->st.gauge[TM_PT_COUNTER_ENTRIES] = s->counter_entries;
	pa->st.gauge[TM_PT_FRAME_BUILD_SECONDS] = s->frame_build_ns / 1e9;
	pa->st.have_collector = true;
}

/* ---- frames ------------------------------------------------------------------- */

static uint64_t counters_id_of(const Taskmeter__Frame *f)
{
	return f->has_counters_id ? f->counters_id : 0;
}

/* First message of a frame. It is whole only if it starts right after the
 * end of the previous one, with nothing dropped in between. */
static void frame_begin(struct tm_pa *pa, const Taskmeter__Frame *f, uint64_t now_ns)
{
	if (pa->in_frame) /* the rest of the previous frame never came */
		tm_ps_frame_end(pa->ps, false);
	pa->in_frame = true;
	pa->seq = f->seq;
	pa->complete = !pa->after_connect && pa->at_boundary && f->frames_dropped == pa->dropped;
	tm_ps_frame_begin(pa->ps, counters_id_of(f), now_ns);
}

/* Last message of a frame: interfaces and stats come in it. */
static int frame_end(struct tm_pa *pa, const Taskmeter__Frame *f)
{
	bool new_counters = pa->have_counters_id && counters_id_of(f) != pa->counters_id;
	bool new_daemon = new_counters || (pa->check_restart && f->seq <= pa->last_seq);
	int err = 0;

	for (size_t i = 0; i < f->n_interfaces && !err; i++)
		err = add_interface(pa, f->interfaces[i]);
	if (f->stats)
		take_stats(pa, f->stats, new_counters, new_daemon);
	tm_ps_frame_end(pa->ps, pa->complete);
	pa->counters_id = counters_id_of(f);
	pa->have_counters_id = true;
	pa->in_frame = false;
	pa->after_connect = pa->check_restart = false;
	pa->last_seq = f->seq;
	pa->frame_done = true;
	pa->st.frames_read++;
	pa->st.last_frame_seconds = f->timestamp_ns / 1e9;
	return err;
}

int tm_pa_message(struct tm_pa *pa, const Taskmeter__Frame *f, uint64_t now_ns)
{
	int err = 0;

	if (!pa->in_frame || f->seq != pa->seq)
		frame_begin(pa, f, now_ns);
	else if (f->frames_dropped != pa->dropped)
		pa->complete = false; /* a part of this frame was dropped */
	for (size_t i = 0; i < f->n_records && !err; i++)
		err = add_record(pa, f->records[i]);
	mono_update(&pa->missed, f->frames_dropped, false);
	pa->st.frames_missed = pa->missed.sum;
	pa->dropped = f->frames_dropped;
	pa->at_boundary = !f->more_parts;
	if (!f->more_parts) {
		int e = frame_end(pa, f);

		err = err ? err : e;
	}
	return err;
}

void tm_pa_connected(struct tm_pa *pa)
{
	pa->st.connected = true;
	pa->st.reconnects += pa->connects++ > 0;
	pa->after_connect = true;
	pa->check_restart = pa->connects > 1;
	/* frames_dropped counts per connection */
	pa->dropped = 0;
	pa->missed.have = false;
}

void tm_pa_disconnected(struct tm_pa *pa)
{
	if (pa->in_frame)
		tm_ps_frame_end(pa->ps, false);
	pa->in_frame = false;
	pa->st.connected = false;
}

bool tm_pa_frame_done(struct tm_pa *pa)
{
	bool done = pa->frame_done;

	pa->frame_done = false;
	return done;
}

/* ---- set-up and access ----------------------------------------------------------- */

struct tm_pa *tm_pa_new(const struct tm_config *cfg)
{
	struct tm_ps_config pc = { .n_labels = cfg->n_prom_labels,
				   .max_label_sets = cfg->prom_max_series,
				   .idle_ns = (uint64_t)cfg->prom_series_idle_s * 1000000000ull };
	struct tm_pa *pa = calloc(1, sizeof(*pa));

	if (!pa)
		return NULL;
	pa->cfg = cfg;
	pa->ps = tm_ps_new(&pc);
	if (!pa->ps) {
		free(pa);
		return NULL;
	}
	for (unsigned int i = 0; i < cfg->n_prom_labels; i++)
		pa->names[i] = cfg->prom_labels[i].name;
	pa->st.max_label_sets = cfg->prom_max_series;
	return pa;
}

void tm_pa_free(struct tm_pa *pa)
{
	if (!pa)
		return;
	for (int i = 0; i < USERS_BUCKETS; i++)
		while (pa->users[i]) {
			struct user *u = pa->users[i];

			pa->users[i] = u->next;
			free(u);
		}
	tm_ps_free(pa->ps);
	free(pa->entries);
	free(pa->ifnames);
	free(pa);
}

const struct tm_ps *tm_pa_series(const struct tm_pa *pa)
{
	return pa->ps;
}

const char *const *tm_pa_label_names(const struct tm_pa *pa)
{
	return pa->names;
}

unsigned int tm_pa_n_labels(const struct tm_pa *pa)
{
	return pa->cfg->n_prom_labels;
}

void tm_pa_stats(const struct tm_pa *pa, struct tm_pt_stats *st)
{
	struct tm_ps_stats ps;

	*st = pa->st;
	tm_ps_stats(pa->ps, &ps);
	st->counters_resets = ps.counters_resets;
}
