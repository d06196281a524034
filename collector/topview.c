// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* What taskmeter top shows, as lines of text for a width (see topview.h). */
#define _GNU_SOURCE /* strcasestr */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "render.h"
#include "topview.h"
#include "util.h"

/* argv joined: enough bytes for TM_TOP_MAX_COLS columns of anything. */
#define CMD_MAX (4 * TM_TOP_MAX_COLS + 1)
#define NUM_LEN 32
#define COMM_MIN 7  /* "(total)" */
#define COMM_WANT 16
#define USER_WANT 12
#define NAME_MIN 10
#define CMD_MIN 8

static const int bucket_kinds[] = {
	TASKMETER__RECORD_KIND__FORWARDED, TASKMETER__RECORD_KIND__LOCAL_NO_OWNER,
	TASKMETER__RECORD_KIND__NON_IP,    TASKMETER__RECORD_KIND__MALFORMED,
	TASKMETER__RECORD_KIND__OVERFLOW,  TASKMETER__RECORD_KIND__UNATTRIBUTED,
};

static const char *const group_names[] = {
	"process", "service", "container", "cgroup", "user",
};

static const char *const group_labels[] = {
	"COMM", "SERVICE", "CONTAINER", "CGROUP", "USER",
};

/* One more bucket or grouping without its entry here would read as 0 / NULL. */
_Static_assert(TM_ARRAY_SIZE(bucket_kinds) == TM_TOP_BUCKETS, "a record kind per bucket");
_Static_assert(TM_ARRAY_SIZE(group_names) == TM_GROUP_MAX &&
	       TM_ARRAY_SIZE(group_labels) == TM_GROUP_MAX, "a name and label per grouping");

void tm_top_init(struct tm_top *t)
{
	memset(t, 0, sizeof(*t));
	t->view.sort_dir = TM_TOP_BOTH;
}

void tm_top_free(struct tm_top *t)
{
	free(t->rows);
	free(t->ifs);
	memset(t, 0, sizeof(*t));
}

/* ---- Values ------------------------------------------------------------ */

static uint64_t counter(const Taskmeter__Counters *c, bool payload)
{
	if (!c)
		return 0;
	if (payload)
		return c->has_payload_bytes ? c->payload_bytes : 0;
	return c->has_bytes ? c->bytes : 0;
}

static bool is_process(const Taskmeter__ProcessRecord *r)
{
	return !r->has_kind || r->kind == TASKMETER__RECORD_KIND__PROCESS;
}

static const char *row_name(const struct tm_top_row *row)
{
	return row->name ? row->name : row->buf;
}

/* The user's name, else the uid in buf, else "?". */
static const char *user_of(const struct tm_top *t, const Taskmeter__ProcessRecord *r, char *buf,
			   size_t len)
{
	const char *name;

	if (!r->has_uid)
		return "?";
	name = t->user_name ? t->user_name(r->uid, t->user_ctx) : NULL;
	if (name)
		return name;
	snprintf(buf, len, "%" PRIu32, r->uid);
	return buf;
}

/* argv joined by spaces, raw (made terminal-safe when drawn). */
static void join_argv(const Taskmeter__ProcessRecord *r, char *buf, size_t len)
{
	size_t at = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < r->n_argv && at + 1 < len; i++)
		at += snprintf(buf + at, len - at, "%s%s", i ? " " : "", r->argv[i]);
	if (at + 1 < len && r->has_argv_truncated && r->argv_truncated)
		snprintf(buf + at, len - at, " ...");
}

/* ---- Rows ---------------------------------------------------------------- */

static bool contains(const char *hay, const char *needle)
{
	return hay && strcasestr(hay, needle);
}

static bool matches(const struct tm_top *t, const Taskmeter__ProcessRecord *r)
{
	static char cmd[CMD_MAX];
	const char *f = t->view.filter;
	char pid[16], uid[16];

	if (!f[0])
		return true;
	snprintf(pid, sizeof(pid), "%" PRIu32, r->pid);
	if (contains(pid, f) || contains(r->comm, f) || contains(r->service, f) ||
	    contains(r->container_id, f) || contains(r->pod_uid, f) ||
	    contains(r->cgroup_path, f) || contains(user_of(t, r, uid, sizeof(uid)), f))
		return true;
	join_argv(r, cmd, sizeof(cmd));
	return contains(cmd, f);
}

static void container_name(const Taskmeter__ProcessRecord *r, struct tm_top_row *row)
{
	const char *rt = r->container_runtime ? r->container_runtime : "container";

	row->name = NULL;
	if (r->container_id)
		snprintf(row->buf, sizeof(row->buf), "%s:%.12s", rt, r->container_id);
	else if (r->pod_uid)
		snprintf(row->buf, sizeof(row->buf), "pod:%s", r->pod_uid);
	else
		row->name = "(no container)";
}

static void group_name(const struct tm_top *t, const Taskmeter__ProcessRecord *r,
		       struct tm_top_row *row)
{
	switch (t->view.group) {
	case TM_GROUP_SERVICE:
		row->name = r->service ? r->service : "(no service)";
		break;
	case TM_GROUP_CONTAINER:
		container_name(r, row);
		break;
	case TM_GROUP_CGROUP:
		row->name = r->cgroup_path ? r->cgroup_path : "(unknown cgroup)";
		break;
	case TM_GROUP_USER:
		row->name = user_of(t, r, row->buf, sizeof(row->buf));
		if (row->name == row->buf)
			row->name = NULL;  /* rows move while sorting: name by reference */
		break;
	default:
		row->name = r->comm ? r->comm : "?";
		break;
	}
}

static void row_from(const struct tm_top *t, const Taskmeter__ProcessRecord *r,
		     struct tm_top_row *row)
{
	bool pl = t->view.payload;

	memset(row, 0, sizeof(*row));
	row->rec = r;
	row->procs = 1;
	row->exited = r->has_exited && r->exited;
	row->delta[0] = counter(r->rx_delta, pl);
	row->delta[1] = counter(r->tx_delta, pl);
	row->total[0] = counter(r->rx_total, pl);
	row->total[1] = counter(r->tx_total, pl);
	group_name(t, r, row);
}

static void collect(struct tm_top *t)
{
	const Taskmeter__Frame *f = t->frame;

	t->n_rows = 0;
	t->exited_hidden = 0;
	for (size_t i = 0; f && i < f->n_records; i++) {
		const Taskmeter__ProcessRecord *r = f->records[i];

		if (!is_process(r))
			continue;
		if (r->has_exited && r->exited && !t->view.exited) {
			t->exited_hidden++;
			continue;
		}
		if (matches(t, r))
			row_from(t, r, &t->rows[t->n_rows++]);
	}
}

static int name_cmp(const void *pa, const void *pb)
{
	return strcmp(row_name(pa), row_name(pb));
}

static void row_add(struct tm_top_row *to, const struct tm_top_row *from)
{
	to->procs += from->procs;
	to->exited = to->exited && from->exited;
	for (int d = 0; d < 2; d++) {
		to->delta[d] += from->delta[d];
		to->total[d] += from->total[d];
	}
}

/* One row per distinct name, summed. */
static void merge_groups(struct tm_top *t)
{
	size_t k = 0;

	if (t->n_rows > 1)
		qsort(t->rows, t->n_rows, sizeof(*t->rows), name_cmp);
	for (size_t i = 0; i < t->n_rows; i++) {
		if (k && !strcmp(row_name(&t->rows[k - 1]), row_name(&t->rows[i]))) {
			row_add(&t->rows[k - 1], &t->rows[i]);
			continue;
		}
		if (k != i)
			t->rows[k] = t->rows[i];
		t->rows[k++].rec = NULL;
	}
	t->n_rows = k;
}

static uint64_t dir_sum(const uint64_t v[2], enum tm_top_dir d)
{
	return d == TM_TOP_RX ? v[0] : d == TM_TOP_TX ? v[1] : v[0] + v[1];
}

static int cmp_desc(uint64_t a, uint64_t b)
{
	return a < b ? 1 : a > b ? -1 : 0;
}

static int cmp_asc(uint64_t a, uint64_t b)
{
	return -cmp_desc(a, b);
}

static int row_cmp(const void *pa, const void *pb)
{
	const struct tm_top_row *a = pa, *b = pb;
	int c = cmp_desc(a->key[0], b->key[0]);

	if (!c)
		c = cmp_desc(a->key[1], b->key[1]);
	if (!c)
		c = strcmp(row_name(a), row_name(b));
	if (!c && a->rec && b->rec) {
		c = cmp_asc(a->rec->pid, b->rec->pid);
		if (!c)
			c = cmp_asc(a->rec->start_time_ns, b->rec->start_time_ns);
		if (!c)
			c = cmp_asc(a->rec->exec_seq, b->rec->exec_seq);
	}
	return c;
}

static void sort_rows(struct tm_top *t)
{
	const struct tm_top_view *v = &t->view;

	for (size_t i = 0; i < t->n_rows; i++) {
		struct tm_top_row *row = &t->rows[i];
		uint64_t rate = dir_sum(row->delta, v->sort_dir);
		uint64_t total = dir_sum(row->total, v->sort_dir);

		row->key[0] = v->cumulative ? total : rate;
		row->key[1] = v->cumulative ? rate : total;
	}
	if (t->n_rows > 1)
		qsort(t->rows, t->n_rows, sizeof(*t->rows), row_cmp);
}

static int bucket_index(int kind)
{
	for (int i = 0; i < TM_TOP_BUCKETS; i++)
		if (bucket_kinds[i] == kind)
			return i;
	return -1;
}

static int layer_class(const Taskmeter__Traffic *tr)
{
	if (!tr->has_layer || tr->layer == TASKMETER__LAYER__CGROUP_SKB)
		return TM_LAYER_SOCKET;
	return tr->layer == TASKMETER__LAYER__DROP ? TM_LAYER_DROP : TM_LAYER_IFACE;
}

static void add_bucket(struct tm_top *t, const Taskmeter__ProcessRecord *r, int b)
{
	for (size_t i = 0; i < r->n_traffic; i++) {
		const Taskmeter__Traffic *tr = r->traffic[i];
		struct tm_top_bucket *bk = &t->buckets[b][layer_class(tr)];
		int d = tr->direction == TASKMETER__DIRECTION__EGRESS;

		bk->present = true;
		bk->total[d] += counter(tr->total, t->view.payload);
		bk->delta[d] += counter(tr->delta, t->view.payload);
	}
}

static void build_buckets(struct tm_top *t)
{
	const Taskmeter__Frame *f = t->frame;

	memset(t->buckets, 0, sizeof(t->buckets));
	for (size_t i = 0; f && i < f->n_records; i++) {
		int b = is_process(f->records[i]) ? -1 : bucket_index(f->records[i]->kind);

		if (b >= 0)
			add_bucket(t, f->records[i], b);
	}
}

void tm_top_build(struct tm_top *t)
{
	collect(t);
	if (t->view.group != TM_GROUP_PROCESS)
		merge_groups(t);
	sort_rows(t);
	memset(&t->total, 0, sizeof(t->total));
	t->total.exited = true;
	for (size_t i = 0; i < t->n_rows; i++)
		row_add(&t->total, &t->rows[i]);
	t->total.name = "(total)";
	build_buckets(t);
}

/* ---- Interfaces ---------------------------------------------------------- */

static void pair(const Taskmeter__Counters *c, uint64_t out[2])
{
	out[0] = c && c->has_packets ? c->packets : 0;
	out[1] = c && c->has_bytes ? c->bytes : 0;
}

static const struct tm_top_if *find_if(const struct tm_top_if *v, size_t n,
				       const struct tm_top_if *x)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].netns == x->netns && v[i].ifindex == x->ifindex &&
		    !strcmp(v[i].name, x->name))
			return &v[i];
	return NULL;
}

static void copy_str(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "?");
}

static void if_from(struct tm_top_if *x, const Taskmeter__Interface *m)
{
	memset(x, 0, sizeof(*x));
	x->netns = m->netns;
	x->ifindex = m->ifindex;
	copy_str(x->name, sizeof(x->name), m->name);
	copy_str(x->xdp, sizeof(x->xdp), m->xdp_mode);
	copy_str(x->tc, sizeof(x->tc), m->tc_mode);
	pair(m->rx_records, x->cur[0]);
	pair(m->tx_records, x->cur[1]);
	pair(m->rx_kernel, x->cur[2]);
	pair(m->tx_kernel, x->cur[3]);
}

/* Rates from the kernel's counters between the previous frame and this one. */
static void if_history(struct tm_top_if *x, const struct tm_top_if *old)
{
	memcpy(x->base, old->base, sizeof(x->base));
	if (x->ts <= old->ts || x->cur[2][1] < old->cur[2][1] || x->cur[3][1] < old->cur[3][1])
		return;
	x->has_rate = true;
	for (int d = 0; d < 2; d++)
		x->rate[d] = (uint64_t)((double)(x->cur[2 + d][1] - old->cur[2 + d][1]) * 1e9 /
					(double)(x->ts - old->ts));
}

static int update_ifaces(struct tm_top *t, const Taskmeter__Frame *f)
{
	struct tm_top_if *ifs = calloc(f->n_interfaces + 1, sizeof(*ifs));
	const struct tm_top_if *old;

	if (!ifs)
		return -ENOMEM;
	for (size_t i = 0; i < f->n_interfaces; i++) {
		if_from(&ifs[i], f->interfaces[i]);
		ifs[i].ts = f->timestamp_ns;
		old = find_if(t->ifs, t->n_ifs, &ifs[i]);
		if (old)
			if_history(&ifs[i], old);
		else
			memcpy(ifs[i].base, ifs[i].cur, sizeof(ifs[i].base));
	}
	free(t->ifs);
	t->ifs = ifs;
	t->n_ifs = f->n_interfaces;
	return 0;
}

void tm_top_forget(struct tm_top *t)
{
	free(t->ifs);
	t->ifs = NULL;
	t->n_ifs = 0;
	t->base_ts = 0;
}

int tm_top_set_frame(struct tm_top *t, const Taskmeter__Frame *f)
{
	int err;

	if (tm_array_reserve(&t->rows, &t->cap_rows, sizeof(*t->rows), f->n_records, 16))
		return -ENOMEM;
	/* Counting started over: so do the records-vs-kernel windows. */
	if (f->has_counters_id && f->counters_id != t->counters_id && t->base_ts)
		tm_top_forget(t);
	t->counters_id = f->counters_id;
	err = update_ifaces(t, f);
	if (err)
		return err;
	if (!t->base_ts)
		t->base_ts = f->timestamp_ns ? f->timestamp_ns : 1;
	t->frame = f;
	tm_top_build(t);
	return 0;
}

/* ---- View changes ------------------------------------------------------- */

bool tm_top_key(struct tm_top *t, int key)
{
	struct tm_top_view *v = &t->view;

	switch (key) {
	case 'r': v->sort_dir = TM_TOP_RX; break;
	case 't': v->sort_dir = TM_TOP_TX; break;
	case 'b': v->sort_dir = TM_TOP_BOTH; break;
	case 'c': v->cumulative = !v->cumulative; break;
	case 'g': v->group = (v->group + 1) % TM_GROUP_MAX; break;
	case 'G': v->group = (v->group + TM_GROUP_MAX - 1) % TM_GROUP_MAX; break;
	case 'x': v->exited = !v->exited; break;
	case 'p': v->payload = !v->payload; break;
	case 'u': v->exact = !v->exact; break;
	case 'i': v->interfaces = !v->interfaces; break;
	default: return false;
	}
	tm_top_build(t);
	return true;
}

int tm_top_parse_sort(const char *arg, struct tm_top_view *v)
{
	static const struct {
		const char *name;
		enum tm_top_dir dir;
		bool cumulative;
	} keys[] = {
		{ "rx", TM_TOP_RX, false },     { "tx", TM_TOP_TX, false },
		{ "total", TM_TOP_BOTH, false }, { "cum-rx", TM_TOP_RX, true },
		{ "cum-tx", TM_TOP_TX, true },  { "cum", TM_TOP_BOTH, true },
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (!strcmp(arg, keys[i].name)) {
			v->sort_dir = keys[i].dir;
			v->cumulative = keys[i].cumulative;
			return 0;
		}
	}
	return -EINVAL;
}

int tm_top_parse_group(const char *arg, struct tm_top_view *v)
{
	for (int g = 0; g < TM_GROUP_MAX; g++) {
		if (!strcmp(arg, group_names[g])) {
			v->group = g;
			return 0;
		}
	}
	return -EINVAL;
}

/* ---- Lines ------------------------------------------------------------- */

struct line {
	char s[TM_TOP_LINE_MAX];
	size_t len, cols, max;
	bool ascii;
};

static void line_init(struct line *l, size_t max, bool ascii)
{
	l->s[0] = '\0';
	l->len = l->cols = 0;
	l->max = max;
	l->ascii = ascii;
}

static void line_spaces(struct line *l, size_t n)
{
	for (; n && l->cols < l->max; n--, l->cols++)
		l->s[l->len++] = ' ';
	l->s[l->len] = '\0';
}

/* Appends txt, terminal-safe, cut to width and to what is left of the line;
 * tail: keep its end. Returns the columns written. */
static size_t line_text_ex(struct line *l, const char *txt, size_t width, bool tail)
{
	size_t room = l->max - l->cols, c;
	char *at = l->s + l->len;

	if (width > room)
		width = room;
	if (tail && tm_render_term_width(txt, l->ascii) > width && width > 3) {
		c = tm_render_term_fit(at, sizeof(l->s) - l->len, "...", 3, true);
		c += tm_render_term_tail(at + 3, sizeof(l->s) - l->len - 3, txt, width - 3, l->ascii);
	} else {
		c = tm_render_term_fit(at, sizeof(l->s) - l->len, txt, width, l->ascii);
	}
	l->len += strlen(at);
	l->cols += c;
	return c;
}

static size_t line_text(struct line *l, const char *txt)
{
	return line_text_ex(l, txt, l->max, false);
}

static void emit_line(tm_top_emit emit, void *ctx, struct line *l, enum tm_top_line_kind kind)
{
	struct tm_top_line out = { .kind = kind, .text = l->s, .cols = l->cols };

	/* Trailing blanks would only make lines differ in width. */
	while (l->len && l->s[l->len - 1] == ' ') {
		l->s[--l->len] = '\0';
		out.cols--;
	}
	emit(ctx, &out);
}

/* ---- Columns ------------------------------------------------------------- */

enum {
	COL_RIGHT = 1,  /* right-aligned */
	COL_CUT = 2,    /* may be cut to fit (names); the rest are shown whole or not at all */
	COL_TAIL = 4,   /* cut from the left: the end says more (cgroup paths) */
	COL_FLEX = 8,   /* takes the width that is left */
};

struct col {
	const char *label;
	unsigned flags;
	int prio;          /* 0: not in this view; the lowest goes first */
	size_t min, want;  /* columns */
	size_t width;      /* 0: hidden */
};

static struct col col_make(const char *label, unsigned flags, int prio, size_t min)
{
	struct col c = { .label = label, .flags = flags, .prio = prio, .min = min };
	size_t w = tm_render_term_width(label, true);

	c.want = w;
	if (w > c.min)
		c.min = w;
	return c;
}

static void col_want(struct col *c, const char *txt, bool ascii)
{
	size_t w = tm_render_term_width(txt, ascii);

	if (w > c->want)
		c->want = w;
	if (!(c->flags & COL_CUT) && w > c->min)
		c->min = w;
}

static size_t cols_needed(const struct col *c, size_t n, const bool *shown)
{
	size_t used = 0, k = 0;

	for (size_t i = 0; i < n; i++) {
		if (shown[i]) {
			used += c[i].min;
			k++;
		}
	}
	return used + (k ? k - 1 : 0);
}

/* Hides the lowest-priority columns until the rest fit max, then widens
 * them toward what they want, by priority; the flex column gets the rest. */
static void fit_cols(struct col *c, size_t n, size_t max)
{
	bool shown[16], grown[16] = { 0 };
	size_t used, extra;

	for (size_t i = 0; i < n; i++)
		shown[i] = c[i].prio > 0;
	while ((used = cols_needed(c, n, shown)) > max) {
		size_t low = n;

		for (size_t i = 0; i < n; i++)
			if (shown[i] && (low == n || c[i].prio <= c[low].prio))
				low = i;
		if (low == n)
			break;
		shown[low] = false;
	}
	extra = used < max ? max - used : 0;
	for (size_t i = 0; i < n; i++)
		c[i].width = shown[i] ? c[i].min : 0;
	for (size_t round = 0; round < n; round++) {
		size_t best = n;

		for (size_t i = 0; i < n; i++)
			if (shown[i] && !grown[i] && !(c[i].flags & COL_FLEX) &&
			    (best == n || c[i].prio > c[best].prio))
				best = i;
		if (best == n)
			break;
		grown[best] = true;
		if (c[best].want > c[best].width) {
			size_t add = c[best].want - c[best].width;

			add = add < extra ? add : extra;
			c[best].width += add;
			extra -= add;
		}
	}
	for (size_t i = 0; i < n; i++)
		if (shown[i] && (c[i].flags & COL_FLEX))
			c[i].width += extra, extra = 0;
}

/* One cell: padded to its column, one blank before every cell but the
 * first shown. */
static void put_cell(struct line *l, const struct col *c, const char *txt, bool *first)
{
	size_t w;

	if (!c->width)
		return;
	if (!*first)
		line_spaces(l, 1);
	*first = false;
	w = tm_render_term_width(txt, l->ascii);
	if ((c->flags & COL_RIGHT) && w < c->width)
		line_spaces(l, c->width - w);
	w = line_text_ex(l, txt, c->width, c->flags & COL_TAIL);
	if (!(c->flags & COL_RIGHT))
		line_spaces(l, c->width - w);
}

/* ---- The table ------------------------------------------------------------ */

enum {
	C_PID, C_STATE, C_USER, C_PROCS, C_NAME, C_RX_RATE, C_TX_RATE, C_RX_TOT, C_TX_TOT,
	C_CMD, C_MAX
};

/* Left to right. A group's name goes last, where it takes the room left. */
static const int proc_order[C_MAX] = {
	C_PID, C_STATE, C_USER, C_PROCS, C_NAME, C_RX_RATE, C_TX_RATE, C_RX_TOT, C_TX_TOT, C_CMD,
};
static const int group_order[C_MAX] = {
	C_PID, C_STATE, C_USER, C_PROCS, C_RX_RATE, C_TX_RATE, C_RX_TOT, C_TX_TOT, C_NAME, C_CMD,
};

static const int *col_order(const struct tm_top_view *v)
{
	return v->group == TM_GROUP_PROCESS ? proc_order : group_order;
}

struct cells {
	char pid[16], procs[16], user_buf[16], num[4][NUM_LEN];
	const char *state, *user, *name;
	char cmd[CMD_MAX];
};

static void fmt_bytes(const struct tm_top *t, uint64_t v, char *buf, size_t len)
{
	if (t->view.exact)
		snprintf(buf, len, "%" PRIu64, v);
	else
		tm_render_human_bytes(v, buf, len);
}

static void fmt_rate(const struct tm_top *t, uint64_t delta, char *buf, size_t len)
{
	uint64_t ns = t->frame ? t->frame->interval_ns : 0;

	if (!ns)
		snprintf(buf, len, "-");
	else
		fmt_bytes(t, (uint64_t)((double)delta * 1e9 / (double)ns + 0.5), buf, len);
}

static void row_cells(const struct tm_top *t, const struct tm_top_row *row, struct cells *c)
{
	const Taskmeter__ProcessRecord *r = row->rec;

	fmt_rate(t, row->delta[0], c->num[0], NUM_LEN);
	fmt_rate(t, row->delta[1], c->num[1], NUM_LEN);
	fmt_bytes(t, row->total[0], c->num[2], NUM_LEN);
	fmt_bytes(t, row->total[1], c->num[3], NUM_LEN);
	snprintf(c->procs, sizeof(c->procs), "%" PRIu32, row->procs);
	c->name = row_name(row);
	c->state = row->exited ? "x" : "";
	c->pid[0] = c->cmd[0] = '\0';
	c->user = "";
	if (!r)
		return;
	snprintf(c->pid, sizeof(c->pid), "%" PRIu32, r->pid);
	c->user = user_of(t, r, c->user_buf, sizeof(c->user_buf));
	join_argv(r, c->cmd, sizeof(c->cmd));
	if (!c->cmd[0])
		snprintf(c->cmd, sizeof(c->cmd), "-");
}

/* The total row's cells: the process view has no column for its count. */
static void total_cells(const struct tm_top *t, struct cells *c)
{
	row_cells(t, &t->total, c);
	c->state = "";
	if (t->view.group == TM_GROUP_PROCESS)
		snprintf(c->cmd, sizeof(c->cmd), "%zu process%s", t->n_rows,
			 t->n_rows == 1 ? "" : "es");
}

static const char *cell_text(const struct cells *c, int id)
{
	switch (id) {
	case C_PID: return c->pid;
	case C_STATE: return c->state;
	case C_USER: return c->user;
	case C_PROCS: return c->procs;
	case C_NAME: return c->name;
	case C_CMD: return c->cmd;
	default: return c->num[id - C_RX_RATE];
	}
}

/* Priorities: the name, then the sort column, the other numbers of its
 * kind (rates or totals), the rest. */
static int num_prio(const struct tm_top_view *v, int id)
{
	bool total = id >= C_RX_TOT;
	int dir = (id - C_RX_RATE) % 2;
	bool sorted = total == v->cumulative &&
		      (v->sort_dir == TM_TOP_BOTH || (int)v->sort_dir == dir);

	return sorted ? 95 : total == v->cumulative ? 85 : 75;
}

static void table_cols(const struct tm_top *t, struct col *c)
{
	const struct tm_top_view *v = &t->view;
	bool proc = v->group == TM_GROUP_PROCESS;
	static const char *const ip[4] = { "RX IP/s", "TX IP/s", "RX IP", "TX IP" };
	static const char *const pl[4] = { "RX PAY/s", "TX PAY/s", "RX PAY", "TX PAY" };

	c[C_PID] = col_make("PID", COL_RIGHT, proc ? 60 : 0, 3);
	c[C_STATE] = col_make("S", 0, proc && v->exited ? 55 : 0, 1);
	c[C_USER] = col_make("USER", COL_CUT, proc ? 30 : 0, 4);
	c[C_PROCS] = col_make("PROCS", COL_RIGHT, proc ? 0 : 60, 5);
	c[C_NAME] = col_make(group_labels[v->group],
			     COL_CUT | (proc ? 0 : COL_FLEX) |
				     (v->group == TM_GROUP_CGROUP ? COL_TAIL : 0),
			     100, proc ? COMM_MIN : NAME_MIN);
	for (int i = 0; i < 4; i++)
		c[C_RX_RATE + i] = col_make(v->payload ? pl[i] : ip[i], COL_RIGHT,
					    num_prio(v, C_RX_RATE + i), 0);
	c[C_CMD] = col_make("CMDLINE", COL_CUT | COL_FLEX, proc ? 40 : 0, CMD_MIN);
}

static void want_cells(struct tm_top *t, struct col *c, const struct cells *cl)
{
	for (int id = 0; id < C_MAX; id++)
		if (id != C_CMD)
			col_want(&c[id], cell_text(cl, id), t->view.ascii);
}

/* Widths from the rows that will be shown, then fitted to cols. */
static void measure_table(struct tm_top *t, struct col *c, size_t first, size_t n, size_t cols)
{
	static struct cells cl;

	table_cols(t, c);
	total_cells(t, &cl);
	want_cells(t, c, &cl);
	for (size_t i = first; i < first + n; i++) {
		row_cells(t, &t->rows[i], &cl);
		want_cells(t, c, &cl);
	}
	if (c[C_NAME].want > COMM_WANT && t->view.group == TM_GROUP_PROCESS)
		c[C_NAME].want = COMM_WANT;
	if (c[C_USER].want > USER_WANT)
		c[C_USER].want = USER_WANT;
	fit_cols(c, C_MAX, cols);
}

static int sorted_col(const struct tm_top_view *v)
{
	int id = v->cumulative ? C_RX_TOT : C_RX_RATE;

	return v->sort_dir == TM_TOP_TX ? id + 1 : id;
}

static void emit_header(struct tm_top *t, const struct col *c, struct line *l,
			tm_top_emit emit, void *ctx)
{
	struct tm_top_line out = { .kind = TM_LINE_HEADER };
	int hl = sorted_col(&t->view);
	bool first = true;

	line_init(l, l->max, t->view.ascii);
	for (int i = 0; i < C_MAX; i++) {
		int id = col_order(&t->view)[i];
		size_t off = l->len, col = l->cols;

		put_cell(l, &c[id], c[id].label, &first);
		/* Sorting by both directions marks the RX column. */
		if (id == hl && c[id].width) {
			out.hl_off = off + (off > 0);
			out.hl_col = col + (col > 0);
			out.hl_len = l->len - out.hl_off;
		}
	}
	while (l->len && l->s[l->len - 1] == ' ') {
		l->s[--l->len] = '\0';
		l->cols--;
	}
	if (out.hl_off + out.hl_len > l->len)
		out.hl_len = l->len > out.hl_off ? l->len - out.hl_off : 0;
	out.text = l->s;
	out.cols = l->cols;
	emit(ctx, &out);
}

static void emit_row(struct tm_top *t, const struct col *c, const struct cells *cl,
		     struct line *l, enum tm_top_line_kind kind, tm_top_emit emit, void *ctx)
{
	bool first = true;

	line_init(l, l->max, t->view.ascii);
	for (int i = 0; i < C_MAX; i++)
		put_cell(l, &c[col_order(&t->view)[i]], cell_text(cl, col_order(&t->view)[i]),
			 &first);
	emit_line(emit, ctx, l, kind);
}

/* ---- Title and status ------------------------------------------------------ */

static void format_time(uint64_t ns, const char *fmt, char *buf, size_t len)
{
	time_t s = (time_t)(ns / 1000000000ull);
	struct tm tm;

	if (!ns || !localtime_r(&s, &tm) || !strftime(buf, len, fmt, &tm))
		snprintf(buf, len, "-");
}

static void emit_title(struct tm_top *t, const struct tm_top_screen *s, struct line *l,
		       tm_top_emit emit, void *ctx)
{
	const Taskmeter__Frame *f = t->frame;
	char buf[256], when[32];

	line_init(l, s->cols, t->view.ascii);
	if (s->alert) {
		line_text(l, s->alert);
		line_text(l, " | ");
	}
	if (!f) {
		line_text(l, "taskmeter top: waiting for the first frame");
		emit_line(emit, ctx, l, s->alert ? TM_LINE_ALERT : TM_LINE_TITLE);
		return;
	}
	format_time(f->timestamp_ns, "%Y-%m-%d %H:%M:%S", when, sizeof(when));
	line_text(l, "taskmeter ");
	line_text_ex(l, f->hostname ? f->hostname : "?", 64, false);
	snprintf(buf, sizeof(buf), "  %s  seq %" PRIu64 "  %s", when, f->seq,
		 f->metadata_mode == TASKMETER__METADATA_MODE__MODE_PROCFS ? "procfs" : "task_work");
	line_text(l, buf);
	if (f->frames_dropped) {
		snprintf(buf, sizeof(buf), "  missed %" PRIu64 " frames", f->frames_dropped);
		line_text(l, buf);
	}
	emit_line(emit, ctx, l, s->alert ? TM_LINE_ALERT : TM_LINE_TITLE);
}

static const char *sort_name(const struct tm_top_view *v)
{
	static const char *const names[2][3] = {
		{ "rx rate", "tx rate", "rx+tx rate" },
		{ "rx total", "tx total", "rx+tx total" },
	};

	return names[v->cumulative][v->sort_dir];
}

static void emit_status(struct tm_top *t, const struct tm_top_screen *s, size_t shown,
			struct line *l, tm_top_emit emit, void *ctx)
{
	const struct tm_top_view *v = &t->view;
	char buf[128];

	line_init(l, s->cols, v->ascii);
	snprintf(buf, sizeof(buf), "sort %s  group %s  %s bytes", sort_name(v),
		 group_names[v->group], v->payload ? "payload" : "IP");
	line_text(l, buf);
	if (v->filter[0]) {
		line_text(l, "  filter \"");
		line_text(l, v->filter);
		line_text(l, "\"");
	}
	if (v->exited)
		snprintf(buf, sizeof(buf), "  exited shown");
	else
		snprintf(buf, sizeof(buf), "  %zu exited hidden", t->exited_hidden);
	line_text(l, buf);
	if (s->rows && shown < t->n_rows)
		snprintf(buf, sizeof(buf), "  rows %zu-%zu of %zu", s->scroll + 1, s->scroll + shown,
			 t->n_rows);
	else
		snprintf(buf, sizeof(buf), "  %zu row%s", t->n_rows, t->n_rows == 1 ? "" : "s");
	line_text(l, buf);
	emit_line(emit, ctx, l, TM_LINE_STATUS);
}

/* ---- The interfaces panel ------------------------------------------------- */

enum { I_NAME, I_NETNS, I_MODE, I_RX_RATE, I_TX_RATE, I_RX_REC, I_RX_KERN, I_TX_REC,
       I_TX_KERN, I_DIFF, I_MAX };

struct if_cells {
	char netns[24], mode[40], num[6][NUM_LEN], diff[80];
	const char *name;
	bool mismatch;
};

static int64_t if_diff(const struct tm_top_if *x, int d, int what)
{
	return (int64_t)((x->cur[d][what] - x->base[d][what]) -
			 (x->cur[2 + d][what] - x->base[2 + d][what]));
}

static void if_diff_text(const struct tm_top_if *x, struct if_cells *c)
{
	static const char *const dir[2] = { "rx", "tx" };
	size_t at = 0;

	c->mismatch = false;
	c->diff[0] = '\0';
	for (int d = 0; d < 2; d++) {
		int64_t db = if_diff(x, d, 1), dp = if_diff(x, d, 0);

		if (!db && !dp)
			continue;
		c->mismatch = true;
		at += snprintf(c->diff + at, sizeof(c->diff) - at, "%s%s%+" PRId64 "B%+" PRId64 "p",
			       at ? " " : "", dir[d], db, dp);
	}
	if (!c->mismatch)
		snprintf(c->diff, sizeof(c->diff), "ok");
}

static void if_cells(const struct tm_top *t, const struct tm_top_if *x, struct if_cells *c)
{
	c->name = x->name;
	snprintf(c->netns, sizeof(c->netns), "%" PRIu64, x->netns);
	snprintf(c->mode, sizeof(c->mode), "%s/%s", x->xdp, x->tc);
	for (int d = 0; d < 2; d++) {
		if (x->has_rate)
			fmt_bytes(t, x->rate[d], c->num[d], NUM_LEN);
		else
			snprintf(c->num[d], NUM_LEN, "-");
		fmt_bytes(t, x->cur[d][1] - x->base[d][1], c->num[2 + 2 * d], NUM_LEN);
		fmt_bytes(t, x->cur[2 + d][1] - x->base[2 + d][1], c->num[3 + 2 * d], NUM_LEN);
	}
	if_diff_text(x, c);
}

static const char *if_cell_text(const struct if_cells *c, int id)
{
	switch (id) {
	case I_NAME: return c->name;
	case I_NETNS: return c->netns;
	case I_MODE: return c->mode;
	case I_DIFF: return c->diff;
	default: return c->num[id - I_RX_RATE];
	}
}

static void if_cols(const struct tm_top *t, struct col *c, size_t cols)
{
	static const char *const labels[I_MAX] = {
		"IFACE", "NETNS", "XDP/TC", "RX L2/s", "TX L2/s", "RX REC", "RX KERNEL",
		"TX REC", "TX KERNEL", "REC-KERNEL",
	};
	static const int prio[I_MAX] = { 100, 20, 30, 80, 80, 70, 70, 70, 70, 90 };
	struct if_cells cl;

	for (int i = 0; i < I_MAX; i++)
		c[i] = col_make(labels[i], i == I_NAME ? COL_CUT : i == I_MODE || i == I_DIFF ? 0
								    : COL_RIGHT,
				prio[i], 0);
	c[I_NAME].min = 6;  /* names are cut to no fewer columns */
	for (size_t k = 0; k < t->n_ifs; k++) {
		if_cells(t, &t->ifs[k], &cl);
		for (int i = 0; i < I_MAX; i++)
			col_want(&c[i], if_cell_text(&cl, i), t->view.ascii);
	}
	fit_cols(c, I_MAX, cols);
}

enum { B_NAME, B_LAYER, B_RX_RATE, B_TX_RATE, B_RX_TOT, B_TX_TOT, B_MAX };

static void bucket_cells(const struct tm_top *t, const struct tm_top_bucket *b,
			 char num[4][NUM_LEN])
{
	fmt_rate(t, b->delta[0], num[0], NUM_LEN);
	fmt_rate(t, b->delta[1], num[1], NUM_LEN);
	fmt_bytes(t, b->total[0], num[2], NUM_LEN);
	fmt_bytes(t, b->total[1], num[3], NUM_LEN);
}

static const char *const layer_names[TM_LAYER_MAX] = { "socket", "iface", "drop" };

/* Every bucket gets a line per layer it has traffic at, or one of zeros. */
static void for_each_bucket(const struct tm_top *t,
			    void (*fn)(const struct tm_top *, const char *, const char *,
				       const struct tm_top_bucket *, void *),
			    void *arg)
{
	static const struct tm_top_bucket none;

	for (int b = 0; b < TM_TOP_BUCKETS; b++) {
		const char *name = tm_render_kind_label(bucket_kinds[b]);
		bool any = false;

		for (int k = 0; k < TM_LAYER_MAX; k++) {
			if (!t->buckets[b][k].present)
				continue;
			fn(t, name, layer_names[k], &t->buckets[b][k], arg);
			any = true;
		}
		if (!any)
			fn(t, name, "-", &none, arg);
	}
}

static void bucket_measure(const struct tm_top *t, const char *name, const char *layer,
			   const struct tm_top_bucket *b, void *arg)
{
	struct col *c = arg;
	char num[4][NUM_LEN];

	bucket_cells(t, b, num);
	col_want(&c[B_NAME], name, true);
	col_want(&c[B_LAYER], layer, true);
	for (int i = 0; i < 4; i++)
		col_want(&c[B_RX_RATE + i], num[i], true);
}

static void bucket_cols(const struct tm_top *t, struct col *c, size_t cols)
{
	static const char *const ip[B_MAX] = { "BUCKET", "LAYER", "RX B/s", "TX B/s", "RX B",
					       "TX B" };
	static const char *const pl[B_MAX] = { "BUCKET", "LAYER", "RX PAY/s", "TX PAY/s",
					       "RX PAY", "TX PAY" };
	static const int prio[B_MAX] = { 100, 60, 80, 80, 90, 90 };

	for (int i = 0; i < B_MAX; i++)
		c[i] = col_make(t->view.payload ? pl[i] : ip[i], i >= B_RX_RATE ? COL_RIGHT : 0,
				prio[i], 0);
	for_each_bucket(t, bucket_measure, c);
	fit_cols(c, B_MAX, cols);
}

struct panel_out {
	struct line *l;
	const struct col *c;
	tm_top_emit emit;
	void *ctx;
	size_t left;  /* lines the panel may still use */
};

static void panel_emit(struct panel_out *o, enum tm_top_line_kind kind)
{
	if (!o->left) {
		o->l->s[0] = '\0';
		return;
	}
	o->left--;
	emit_line(o->emit, o->ctx, o->l, kind);
}

static void bucket_line(const struct tm_top *t, const char *name, const char *layer,
			const struct tm_top_bucket *b, void *arg)
{
	struct panel_out *o = arg;
	char num[4][NUM_LEN];
	bool first = true;

	bucket_cells(t, b, num);
	line_init(o->l, o->l->max, t->view.ascii);
	put_cell(o->l, &o->c[B_NAME], name, &first);
	put_cell(o->l, &o->c[B_LAYER], layer, &first);
	for (int i = 0; i < 4; i++)
		put_cell(o->l, &o->c[B_RX_RATE + i], num[i], &first);
	panel_emit(o, TM_LINE_PANEL_ROW);
}

static void header_line(struct line *l, const struct col *c, size_t n, bool ascii)
{
	bool first = true;

	line_init(l, l->max, ascii);
	for (size_t i = 0; i < n; i++)
		put_cell(l, &c[i], c[i].label, &first);
}

static void panel_ifaces(struct tm_top *t, struct panel_out *o)
{
	struct col c[I_MAX];
	struct if_cells cl;
	bool first;

	if_cols(t, c, o->l->max);
	header_line(o->l, c, I_MAX, t->view.ascii);
	panel_emit(o, TM_LINE_PANEL_HEADER);
	for (size_t k = 0; k < t->n_ifs; k++) {
		if_cells(t, &t->ifs[k], &cl);
		first = true;
		line_init(o->l, o->l->max, t->view.ascii);
		for (int i = 0; i < I_MAX; i++)
			put_cell(o->l, &c[i], if_cell_text(&cl, i), &first);
		panel_emit(o, cl.mismatch ? TM_LINE_PANEL_MISMATCH : TM_LINE_PANEL_ROW);
	}
	if (!t->n_ifs) {
		line_init(o->l, o->l->max, t->view.ascii);
		line_text(o->l, "  (no interfaces attached)");
		panel_emit(o, TM_LINE_PANEL_ROW);
	}
}

static size_t panel_lines(const struct tm_top *t)
{
	size_t n = 3 + (t->n_ifs ? t->n_ifs : 1);

	for (int b = 0; b < TM_TOP_BUCKETS; b++) {
		size_t k = 0;

		for (int l = 0; l < TM_LAYER_MAX; l++)
			k += t->buckets[b][l].present;
		n += k ? k : 1;
	}
	return n;
}

static void emit_panel(struct tm_top *t, struct line *l, size_t max_lines, tm_top_emit emit,
		       void *ctx)
{
	struct panel_out o = { .l = l, .emit = emit, .ctx = ctx, .left = max_lines };
	struct col c[B_MAX];
	char when[32], buf[160];

	format_time(t->base_ts, "%H:%M:%S", when, sizeof(when));
	line_init(l, l->max, t->view.ascii);
	snprintf(buf, sizeof(buf),
		 "interfaces since %s: records (REC) vs kernel counters, L2 bytes", when);
	line_text(l, buf);
	panel_emit(&o, TM_LINE_PANEL_TITLE);
	panel_ifaces(t, &o);
	bucket_cols(t, c, l->max);
	o.c = c;
	header_line(l, c, B_MAX, t->view.ascii);
	panel_emit(&o, TM_LINE_PANEL_HEADER);
	for_each_bucket(t, bucket_line, &o);
}

/* ---- The screen ------------------------------------------------------------ */

static const char keys_line[] =
	"h help  q quit  r/t/b sort rx/tx/both  c rate/total  g group  / filter  "
	"x exited  p payload/IP  u units  i interfaces  arrows scroll";

/* Table rows that fit: what the fixed lines and the panel leave. */
static size_t table_room(const struct tm_top *t, const struct tm_top_screen *s,
			 size_t *panel)
{
	size_t fixed = 5, room, want;

	*panel = t->view.interfaces ? panel_lines(t) : 0;
	if (!s->rows)
		return t->n_rows;
	room = s->rows > fixed ? s->rows - fixed : 0;
	/* The panel gets what it needs but leaves the table 3 rows. */
	want = room > 3 ? room - 3 : 0;
	if (*panel > want)
		*panel = want;
	return room - *panel;
}

static void emit_keys(const struct tm_top_screen *s, struct line *l, bool ascii,
		      tm_top_emit emit, void *ctx)
{
	line_init(l, s->cols, ascii);
	if (s->prompt) {
		line_text(l, "filter: ");
		line_text(l, s->prompt);
		emit(ctx, &(struct tm_top_line){ .kind = TM_LINE_PROMPT, .text = l->s,
						 .cols = l->cols });
		return;
	}
	line_text(l, keys_line);
	emit_line(emit, ctx, l, TM_LINE_KEYS);
}

/* Clamps the scroll offset; returns the rows to show. */
static size_t clamp_scroll(const struct tm_top *t, struct tm_top_screen *s, size_t room)
{
	size_t shown = t->n_rows < room ? t->n_rows : room;

	if (s->scroll + shown > t->n_rows)
		s->scroll = t->n_rows - shown;
	return shown;
}

/* Drops what does not fit the screen's rows. */
struct limit {
	tm_top_emit emit;
	void *ctx;
	size_t left;  /* SIZE_MAX in batch mode */
};

static void limited(void *ctx, const struct tm_top_line *line)
{
	struct limit *lim = ctx;

	if (!lim->left)
		return;
	lim->left--;
	lim->emit(lim->ctx, line);
}

void tm_top_render(struct tm_top *t, struct tm_top_screen *s, tm_top_emit emit, void *ctx)
{
	struct limit lim = { emit, ctx, s->rows ? s->rows : SIZE_MAX };
	static struct line l;
	static struct cells cl;
	struct col c[C_MAX];
	size_t panel, room, shown, used;

	s->cols = s->cols < TM_TOP_MIN_COLS ? TM_TOP_MIN_COLS
		  : s->cols > TM_TOP_MAX_COLS ? TM_TOP_MAX_COLS : s->cols;
	room = table_room(t, s, &panel);
	shown = clamp_scroll(t, s, room);
	emit_title(t, s, &l, limited, &lim);
	emit_status(t, s, shown, &l, limited, &lim);
	l.max = s->cols;
	measure_table(t, c, s->scroll, shown, s->cols);
	emit_header(t, c, &l, limited, &lim);
	total_cells(t, &cl);
	emit_row(t, c, &cl, &l, TM_LINE_TOTAL, limited, &lim);
	for (size_t i = s->scroll; i < s->scroll + shown; i++) {
		row_cells(t, &t->rows[i], &cl);
		emit_row(t, c, &cl, &l, t->rows[i].exited ? TM_LINE_ROW_EXITED : TM_LINE_ROW,
			 limited, &lim);
	}
	if (panel)
		emit_panel(t, &l, panel, limited, &lim);
	if (!s->rows)
		return;
	/* Blank lines keep the key line at the bottom. */
	used = 4 + shown + panel;
	for (line_init(&l, s->cols, true); used + 1 < s->rows; used++)
		emit_line(limited, &lim, &l, TM_LINE_TEXT);
	emit_keys(s, &l, t->view.ascii, limited, &lim);
}

/* ---- Help ----------------------------------------------------------------- */

void tm_top_help(const struct tm_top *t, size_t cols, tm_top_emit emit, void *ctx)
{
	static const char *const text[] = {
		"taskmeter top: keys",
		"",
		"  q Q Ctrl-C   quit",
		"  r t b        sort by received, sent, or both (rx+tx)",
		"  c            sort by rates or by cumulative totals",
		"  g G          group by process, service, container, cgroup, user",
		"               (next, previous)",
		"  /            filter: type a substring of pid, comm, command line,",
		"               user, service, container or cgroup; Enter applies,",
		"               Esc cancels, an empty filter shows everything",
		"  x            show or hide processes that exited",
		"  p            IP bytes (headers and payload) or L4 payload bytes",
		"  u            human units (KiB, MiB, ...) or exact byte counts",
		"  i            interfaces panel: rates, records vs kernel counters,",
		"               the buckets of traffic no process owns",
		"  arrows PgUp PgDn Home End   scroll",
		"  h ?          this help; any key returns",
		"",
		"Rates are the last frame's delta over its interval; totals are",
		"cumulative since the collector began counting each process. REC-KERNEL",
		"is what the records gained minus what the kernel counted, per",
		"interface since top connected: \"ok\" when they agree.",
	};
	static struct line l;
	char buf[160];

	for (size_t i = 0; i < sizeof(text) / sizeof(text[0]); i++) {
		line_init(&l, cols, true);
		line_text(&l, text[i]);
		emit_line(emit, ctx, &l, i ? TM_LINE_TEXT : TM_LINE_TITLE);
	}
	line_init(&l, cols, true);
	snprintf(buf, sizeof(buf), "Now: sort %s, group %s, %s bytes, %s units, exited %s.",
		 sort_name(&t->view), group_names[t->view.group],
		 t->view.payload ? "payload" : "IP", t->view.exact ? "exact" : "human",
		 t->view.exited ? "shown" : "hidden");
	line_text(&l, buf);
	emit_line(emit, ctx, &l, TM_LINE_TEXT);
}
