// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* What `taskmeter top` shows (topview.c) for hand-made frames: grouping,
 * sorting, filtering, exited processes, IP vs payload bytes, the
 * interfaces panel, and lines that fit every width whatever the names. */
#define _GNU_SOURCE /* wcwidth */
#include <errno.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <wctype.h>

#include "topview.h"
#include "tm_test.h"

#define FX_MAX 64
#define LINES_MAX 4096

/* A frame of process records: IP bytes, payload is IP bytes - 100. */
struct fx {
	Taskmeter__Frame f;
	Taskmeter__ProcessRecord r[FX_MAX], *rp[FX_MAX];
	Taskmeter__Counters c[FX_MAX][4];
	Taskmeter__Traffic tr[FX_MAX][2], *trp[FX_MAX][2];
	char *argv[FX_MAX][3];
	Taskmeter__Interface ifs[2], *ifp[2];
	Taskmeter__Counters ic[2][4];
};

static void counters(Taskmeter__Counters *c, uint64_t bytes)
{
	taskmeter__counters__init(c);
	c->has_bytes = c->has_payload_bytes = c->has_packets = true;
	c->bytes = bytes;
	c->payload_bytes = bytes >= 100 ? bytes - 100 : 0;
	c->packets = bytes / 100;
}

static void fx_init(struct fx *x)
{
	memset(x, 0, sizeof(*x));
	taskmeter__frame__init(&x->f);
	x->f.has_seq = x->f.has_interval_ns = x->f.has_timestamp_ns = true;
	x->f.seq = 7;
	x->f.interval_ns = 1000000000ull;  /* rates = deltas */
	x->f.timestamp_ns = 1700000000ull * 1000000000ull;
	x->f.hostname = "host";
	x->f.records = x->rp;
}

/* rx/tx totals and deltas in IP bytes. */
static Taskmeter__ProcessRecord *fx_proc(struct fx *x, uint32_t pid, const char *comm,
					 uint64_t rxt, uint64_t txt, uint64_t rxd, uint64_t txd)
{
	size_t i = x->f.n_records++;
	Taskmeter__ProcessRecord *r = &x->r[i];

	taskmeter__process_record__init(r);
	r->has_kind = r->has_pid = r->has_uid = r->has_exited = true;
	r->kind = TASKMETER__RECORD_KIND__PROCESS;
	r->pid = pid;
	r->comm = (char *)comm;
	counters(&x->c[i][0], rxt);
	counters(&x->c[i][1], txt);
	counters(&x->c[i][2], rxd);
	counters(&x->c[i][3], txd);
	r->rx_total = &x->c[i][0];
	r->tx_total = &x->c[i][1];
	r->rx_delta = &x->c[i][2];
	r->tx_delta = &x->c[i][3];
	x->argv[i][0] = (char *)comm;
	x->argv[i][1] = "--flag";
	r->argv = x->argv[i];
	r->n_argv = 2;
	x->rp[i] = r;
	return r;
}

/* A bucket record with one traffic entry per direction at layer. */
static void fx_bucket(struct fx *x, int kind, int layer, uint64_t rx, uint64_t tx)
{
	size_t i = x->f.n_records++;
	Taskmeter__ProcessRecord *r = &x->r[i];

	taskmeter__process_record__init(r);
	r->has_kind = true;
	r->kind = kind;
	for (int d = 0; d < 2; d++) {
		Taskmeter__Traffic *t = &x->tr[i][d];

		taskmeter__traffic__init(t);
		t->has_direction = t->has_layer = true;
		t->direction = d ? TASKMETER__DIRECTION__EGRESS : TASKMETER__DIRECTION__INGRESS;
		t->layer = layer;
		counters(&x->c[i][d], d ? tx : rx);
		counters(&x->c[i][2 + d], 0);
		t->total = &x->c[i][d];
		t->delta = &x->c[i][2 + d];
		x->trp[i][d] = t;
	}
	r->traffic = x->trp[i];
	r->n_traffic = 2;
	x->rp[i] = r;
}

static void fx_iface(struct fx *x, const char *name, uint64_t rec_rx, uint64_t ker_rx)
{
	size_t i = x->f.n_interfaces++;
	Taskmeter__Interface *m = &x->ifs[i];

	taskmeter__interface__init(m);
	m->has_netns = m->has_ifindex = true;
	m->netns = 4026531840u;
	m->ifindex = (uint32_t)i + 2;
	m->name = (char *)name;
	m->xdp_mode = "off";
	m->tc_mode = "tcx";
	counters(&x->ic[i][0], rec_rx);
	counters(&x->ic[i][1], 0);
	counters(&x->ic[i][2], ker_rx);
	counters(&x->ic[i][3], 0);
	m->rx_records = &x->ic[i][0];
	m->tx_records = &x->ic[i][1];
	m->rx_kernel = &x->ic[i][2];
	m->tx_kernel = &x->ic[i][3];
	x->ifp[i] = m;
	x->f.interfaces = x->ifp;
}

/* ---- Captured lines ------------------------------------------------------ */

struct screen {
	char *text[LINES_MAX];
	enum tm_top_line_kind kind[LINES_MAX];
	size_t cols[LINES_MAX], hl_col[LINES_MAX], hl_len[LINES_MAX];
	size_t n;
};

static void capture(void *ctx, const struct tm_top_line *l)
{
	struct screen *s = ctx;

	if (s->n == LINES_MAX)
		return;
	s->text[s->n] = strdup(l->text);
	s->kind[s->n] = l->kind;
	s->cols[s->n] = l->cols;
	s->hl_col[s->n] = l->hl_col;
	s->hl_len[s->n] = l->hl_len;
	s->n++;
}

static void screen_free(struct screen *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->text[i]);
	s->n = 0;
}

static void render(struct tm_top *t, size_t cols, size_t rows, struct screen *out)
{
	struct tm_top_screen s = { .cols = cols, .rows = rows };

	screen_free(out);
	tm_top_render(t, &s, capture, out);
	/* TM_TEST_SHOW=1 prints what the tests see. */
	for (size_t i = 0; getenv("TM_TEST_SHOW") && i < out->n; i++)
		fprintf(stderr, "  |%s|\n", out->text[i]);
}

/* The first line of that kind whose text contains needle, or NULL. */
static const char *find(const struct screen *s, enum tm_top_line_kind kind, const char *needle)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->kind[i] == kind && strstr(s->text[i], needle))
			return s->text[i];
	return NULL;
}

static size_t count(const struct screen *s, enum tm_top_line_kind kind)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n; i++)
		n += s->kind[i] == kind;
	return n;
}

/* Rows in order: each row's first word after the numbers is checked by
 * the caller through this: the i-th row line. */
static const char *row(const struct screen *s, size_t i)
{
	for (size_t k = 0; k < s->n; k++)
		if ((s->kind[k] == TM_LINE_ROW || s->kind[k] == TM_LINE_ROW_EXITED) && !i--)
			return s->text[k];
	return "";
}

static bool utf8(void)
{
	return setlocale(LC_CTYPE, "C.UTF-8") != NULL;
}

static const char *user(uint32_t uid, void *ctx)
{
	(void)ctx;
	return uid == 0 ? "root" : uid == 1000 ? "alice" : NULL;
}

static void top_with(struct tm_top *t, struct fx *x)
{
	tm_top_init(t);
	t->user_name = user;
	t->view.exact = true;
	tm_top_set_frame(t, &x->f);
}

/* ---- Grouping ------------------------------------------------------------ */

TM_TEST(top_group_by_service_user_container_cgroup)
{
	struct screen s = { .n = 0 };
	struct tm_top t;
	struct fx x;
	Taskmeter__ProcessRecord *a, *b, *c;

	ASSERT_TRUE(utf8());
	fx_init(&x);
	a = fx_proc(&x, 10, "nginx", 1000, 100, 10, 1);
	b = fx_proc(&x, 11, "nginx", 2000, 200, 20, 2);
	c = fx_proc(&x, 12, "curl", 500, 50, 5, 5);
	fx_proc(&x, 13, "bash", 7, 3, 0, 0);
	a->service = b->service = "web.service";
	c->service = "cron.service";
	a->cgroup_path = b->cgroup_path = "/system.slice/web.service";
	c->uid = 1000;
	a->container_id = b->container_id =
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	a->container_runtime = b->container_runtime = "docker";
	top_with(&t, &x);

	ASSERT_TRUE(tm_top_parse_group("service", &t.view) == 0);
	tm_top_build(&t);
	ASSERT_EQ(t.n_rows, 3);
	/* Sorted by rx+tx rate: web (33), cron (10), none (0). */
	ASSERT_STREQ(t.rows[0].name, "web.service");
	ASSERT_EQ(t.rows[0].procs, 2);
	ASSERT_EQ(t.rows[0].total[0], 3000);
	ASSERT_EQ(t.rows[0].total[1], 300);
	ASSERT_STREQ(t.rows[1].name, "cron.service");
	ASSERT_STREQ(t.rows[2].name, "(no service)");
	ASSERT_EQ(t.total.procs, 4);
	ASSERT_EQ(t.total.total[0], 3507);
	render(&t, 80, 0, &s);
	ASSERT_TRUE(find(&s, TM_LINE_HEADER, "SERVICE"));
	ASSERT_TRUE(find(&s, TM_LINE_HEADER, "PROCS RX IP/s TX IP/s RX IP TX IP SERVICE"));
	ASSERT_TRUE(find(&s, TM_LINE_ROW, "    2      30       3  3000   300 web.service"));
	ASSERT_TRUE(find(&s, TM_LINE_TOTAL, "    4      35       8  3507   353 (total)"));

	tm_top_parse_group("user", &t.view);
	tm_top_build(&t);
	ASSERT_EQ(t.n_rows, 2);
	ASSERT_STREQ(t.rows[0].name, "root");
	ASSERT_EQ(t.rows[0].procs, 3);
	ASSERT_STREQ(t.rows[1].buf[0] ? t.rows[1].buf : t.rows[1].name, "alice");

	tm_top_parse_group("container", &t.view);
	tm_top_build(&t);
	ASSERT_EQ(t.n_rows, 2);
	ASSERT_STREQ(t.rows[0].buf, "docker:0123456789ab");
	ASSERT_EQ(t.rows[0].total[0], 3000);
	ASSERT_STREQ(t.rows[1].name, "(no container)");

	tm_top_parse_group("cgroup", &t.view);
	tm_top_build(&t);
	ASSERT_EQ(t.n_rows, 2);
	ASSERT_STREQ(t.rows[0].name, "/system.slice/web.service");
	/* Narrow: a cgroup path keeps its end. */
	render(&t, 40, 0, &s);
	ASSERT_TRUE(find(&s, TM_LINE_ROW, "...b.service"));

	/* g cycles: cgroup -> user -> process. */
	ASSERT_TRUE(tm_top_key(&t, 'g') && t.view.group == TM_GROUP_USER);
	ASSERT_TRUE(tm_top_key(&t, 'g') && t.view.group == TM_GROUP_PROCESS);
	ASSERT_EQ(t.n_rows, 4);
	ASSERT_TRUE(tm_top_key(&t, 'G') && t.view.group == TM_GROUP_USER);
	ASSERT_TRUE(tm_top_parse_group("pod", &t.view) == -EINVAL);
	screen_free(&s);
	tm_top_free(&t);
	return true;
}

/* ---- Sorting ------------------------------------------------------------- */

static bool order_is(const struct tm_top *t, const uint32_t *pids, size_t n)
{
	ASSERT_EQ(t->n_rows, n);
	for (size_t i = 0; i < n; i++)
		ASSERT_EQ(t->rows[i].rec->pid, pids[i]);
	return true;
}

TM_TEST(top_sort_keys)
{
	static const uint32_t both[] = { 2, 1, 3, 4 }, rx[] = { 1, 2, 4, 3 };
	static const uint32_t tx[] = { 2, 3, 4, 1 }, cum[] = { 4, 3, 1, 2 };
	static const uint32_t cum_tx[] = { 3, 4, 2, 1 };
	struct screen s = { .n = 0 };
	struct tm_top t;
	struct fx x;

	ASSERT_TRUE(utf8());
	fx_init(&x);
	fx_proc(&x, 1, "a", 100, 10, 50, 0);
	fx_proc(&x, 2, "b", 10, 20, 10, 45);
	fx_proc(&x, 3, "c", 1000, 900, 0, 30);
	fx_proc(&x, 4, "d", 5000, 600, 0, 0);
	top_with(&t, &x);
	ASSERT_TRUE(order_is(&t, both, 4));   /* default: rx+tx rate */
	tm_top_key(&t, 'r');
	ASSERT_TRUE(order_is(&t, rx, 4));     /* a tie (3, 4 at 0) goes by total */
	tm_top_key(&t, 't');
	ASSERT_TRUE(order_is(&t, tx, 4));
	tm_top_key(&t, 'b');
	tm_top_key(&t, 'c');
	ASSERT_TRUE(order_is(&t, cum, 4));
	tm_top_key(&t, 't');
	ASSERT_TRUE(order_is(&t, cum_tx, 4));
	/* The sorted column is marked in the header. */
	render(&t, 120, 0, &s);
	for (size_t i = 0; i < s.n; i++)
		if (s.kind[i] == TM_LINE_HEADER)
			ASSERT_TRUE(!strncmp(s.text[i] + s.hl_col[i], "TX IP", 5) &&
				    s.hl_len[i] == 5);
	ASSERT_TRUE(find(&s, TM_LINE_STATUS, "sort tx total"));
	ASSERT_TRUE(tm_top_parse_sort("cum-rx", &t.view) == 0 && t.view.cumulative &&
		    t.view.sort_dir == TM_TOP_RX);
	ASSERT_TRUE(tm_top_parse_sort("bytes", &t.view) == -EINVAL);
	/* Equal everything: by name, then pid. */
	fx_init(&x);
	fx_proc(&x, 9, "b", 1, 1, 1, 1);
	fx_proc(&x, 8, "b", 1, 1, 1, 1);
	fx_proc(&x, 7, "a", 1, 1, 1, 1);
	tm_top_set_frame(&t, &x.f);
	ASSERT_TRUE(order_is(&t, (const uint32_t[]){ 7, 8, 9 }, 3));
	screen_free(&s);
	tm_top_free(&t);
	return true;
}

/* ---- Filter, exited, bytes ------------------------------------------------ */

TM_TEST(top_filter_substring)
{
	struct tm_top t;
	struct fx x;
	Taskmeter__ProcessRecord *r;

	ASSERT_TRUE(utf8());
	fx_init(&x);
	fx_proc(&x, 4321, "alpha", 1, 1, 1, 1);
	r = fx_proc(&x, 99, "bravo", 1, 1, 1, 1);
	r->service = "billing.service";
	r->argv[1] = "--port=8443";
	fx_proc(&x, 100, "charlie", 1, 1, 1, 1)->uid = 1000;
	top_with(&t, &x);
	ASSERT_EQ(t.n_rows, 3);
	static const struct {
		const char *filter;
		size_t rows;
	} cases[] = {
		{ "alpha", 1 }, { "ALPHA", 1 }, { "432", 1 }, { "8443", 1 }, { "billing", 1 },
		{ "alice", 1 }, { "bravo --port", 1 }, { "a", 3 }, { "nothing", 0 }, { "", 3 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		strcpy(t.view.filter, cases[i].filter);
		tm_top_build(&t);
		if (t.n_rows != cases[i].rows)
			fprintf(stderr, "  filter \"%s\"\n", cases[i].filter);
		ASSERT_EQ(t.n_rows, cases[i].rows);
	}
	tm_top_free(&t);
	return true;
}

TM_TEST(top_exited_hidden_by_default)
{
	struct screen s = { .n = 0 };
	struct tm_top t;
	struct fx x;

	ASSERT_TRUE(utf8());
	fx_init(&x);
	fx_proc(&x, 1, "live", 10, 10, 0, 0);
	fx_proc(&x, 2, "gone", 5000, 5000, 0, 0)->exited = true;
	top_with(&t, &x);
	ASSERT_EQ(t.n_rows, 1);
	ASSERT_EQ(t.exited_hidden, 1);
	ASSERT_EQ(t.total.total[0], 10);
	render(&t, 80, 0, &s);
	ASSERT_TRUE(find(&s, TM_LINE_STATUS, "1 exited hidden"));
	ASSERT_TRUE(!find(&s, TM_LINE_ROW, "gone"));
	ASSERT_TRUE(tm_top_key(&t, 'x'));
	ASSERT_EQ(t.n_rows, 2);
	ASSERT_EQ(t.total.total[0], 5010);
	render(&t, 80, 0, &s);
	/* A state column marks it; its line is of its own kind (dimmed). */
	ASSERT_TRUE(find(&s, TM_LINE_ROW_EXITED, " x ") && find(&s, TM_LINE_ROW_EXITED, "gone"));
	ASSERT_TRUE(find(&s, TM_LINE_HEADER, " S "));
	ASSERT_TRUE(find(&s, TM_LINE_STATUS, "exited shown"));
	screen_free(&s);
	tm_top_free(&t);
	return true;
}

TM_TEST(top_payload_or_ip_bytes)
{
	struct screen s = { .n = 0 };
	struct tm_top t;
	struct fx x;

	ASSERT_TRUE(utf8());
	fx_init(&x);
	fx_proc(&x, 1, "p", 123456, 2000, 1100, 600);
	top_with(&t, &x);
	render(&t, 120, 0, &s);
	ASSERT_TRUE(find(&s, TM_LINE_HEADER, "RX IP/s") && find(&s, TM_LINE_HEADER, "TX IP"));
	ASSERT_TRUE(find(&s, TM_LINE_ROW, "  1 root p          1100     600 123456  2000 p --flag"));
	ASSERT_TRUE(find(&s, TM_LINE_STATUS, "IP bytes"));
	tm_top_key(&t, 'p');
	render(&t, 120, 0, &s);
	ASSERT_TRUE(find(&s, TM_LINE_HEADER, "RX PAY/s") && find(&s, TM_LINE_HEADER, "TX PAY"));
	ASSERT_TRUE(!find(&s, TM_LINE_HEADER, " IP"));
	ASSERT_TRUE(find(&s, TM_LINE_ROW, "  1 root p           1000      500 123356   1900 p --flag"));
	ASSERT_TRUE(find(&s, TM_LINE_STATUS, "payload bytes"));
	/* Human units. */
	tm_top_key(&t, 'u');
	render(&t, 120, 0, &s);
	ASSERT_TRUE(find(&s, TM_LINE_ROW, "120.5 KiB"));
	screen_free(&s);
	tm_top_free(&t);
	return true;
}

/* One golden screen: exactly what 80 columns look like. */
TM_TEST(top_golden_80x12)
{
	static const char *const want[] = {
		"sort rx+tx total  group process  IP bytes  1 exited hidden  rows 1-7 of 9",
			"PID USER  COMM    RX IP/s TX IP/s  RX IP  TX IP CMDLINE",
		"          (total)   45000    4500 463500 238500 9 processes",
		" 18 root  p8         5000     500  91500  46500 p8 --flag",
		" 17 alice p7         5000     500  81500  41500 p7 --flag",
		" 16 ?     p6         5000     500  71500  36500 p6 --flag",
		" 15 root  p5         5000     500  61500  31500 p5 --flag",
		" 14 root  p4         5000     500  51500  26500 p4 --flag",
		" 13 root  p3         5000     500  41500  21500 p3 --flag",
		" 12 root  p2         5000     500  31500  16500 p2 --flag",
	};
	static const char *names[] = { "p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8" };
	struct screen s = { .n = 0 };
	struct tm_top t;
	struct fx x;

	ASSERT_TRUE(utf8());
	fx_init(&x);
	for (uint32_t i = 0; i < 9; i++) {
		Taskmeter__ProcessRecord *r =
			fx_proc(&x, 10 + i, names[i], 10000 * (i + 1) + 1500, 5000 * (i + 1) + 1500,
				5000, 500);

		r->uid = i == 7 ? 1000 : i == 6 ? 5555 : 0;
		r->has_uid = i != 6;
	}
	fx_proc(&x, 30, "dead", 1, 1, 1, 1)->exited = true;
	top_with(&t, &x);
	tm_top_key(&t, 'c');
	render(&t, 80, 12, &s);
	ASSERT_EQ(s.n, 12);
	ASSERT_TRUE(!strncmp(s.text[0], "taskmeter host  ", 16));
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		if (strcmp(s.text[i + 1], want[i]))
			fprintf(stderr, "  line %zu:\n  got  \"%s\"\n  want \"%s\"\n", i + 1,
				s.text[i + 1], want[i]);
		ASSERT_STREQ(s.text[i + 1], want[i]);
	}
	ASSERT_EQ(s.kind[11], TM_LINE_KEYS);
	screen_free(&s);
	tm_top_free(&t);
	return true;
}

/* ---- Screen rows and scrolling -------------------------------------------- */

TM_TEST(top_header_stays_with_more_rows_than_lines)
{
	static char names[50][8];
	struct tm_top_screen sc = { .cols = 80, .rows = 24 };
	struct screen s = { .n = 0 };
	struct tm_top t;
	struct fx x;

	ASSERT_TRUE(utf8());
	fx_init(&x);
	for (uint32_t i = 0; i < 50; i++) {
		snprintf(names[i], sizeof(names[i]), "n%02u", i);
		fx_proc(&x, 100 + i, names[i], i, i, i, i);
	}
	top_with(&t, &x);
	tm_top_render(&t, &sc, capture, &s);
	ASSERT_EQ(s.n, 24);
	ASSERT_EQ(s.kind[0], TM_LINE_TITLE);
	ASSERT_EQ(s.kind[2], TM_LINE_HEADER);
	ASSERT_EQ(s.kind[3], TM_LINE_TOTAL);
	ASSERT_EQ(s.kind[23], TM_LINE_KEYS);
	ASSERT_EQ(count(&s, TM_LINE_ROW), 19);
	ASSERT_TRUE(strstr(row(&s, 0), "n49"));  /* the top talker first */
	ASSERT_TRUE(find(&s, TM_LINE_STATUS, "rows 1-19 of 50"));
	/* Scrolled past the end: clamped to the last page. */
	sc.scroll = 1000;
	screen_free(&s);
	tm_top_render(&t, &sc, capture, &s);
	ASSERT_EQ(sc.scroll, 31);
	ASSERT_TRUE(strstr(row(&s, 18), "n00"));
	ASSERT_EQ(s.kind[2], TM_LINE_HEADER);
	/* The panel takes room, never the header or the key line. */
	tm_top_key(&t, 'i');
	sc.scroll = 0;
	screen_free(&s);
	tm_top_render(&t, &sc, capture, &s);
	ASSERT_EQ(s.n, 24);
	ASSERT_EQ(s.kind[2], TM_LINE_HEADER);
	ASSERT_EQ(s.kind[23], TM_LINE_KEYS);
	ASSERT_TRUE(count(&s, TM_LINE_ROW) >= 3);
	/* Tiny screens get the first lines only. */
	sc.rows = 3;
	screen_free(&s);
	tm_top_render(&t, &sc, capture, &s);
	ASSERT_EQ(s.n, 3);
	screen_free(&s);
	tm_top_free(&t);
	return true;
}

/* ---- Interfaces and buckets -------------------------------------------------- */

TM_TEST(top_interfaces_records_vs_kernel)
{
	struct screen s = { .n = 0 };
	struct tm_top t;
	struct fx x;

	ASSERT_TRUE(utf8());
	fx_init(&x);
	fx_iface(&x, "eth0", 1000, 50000);
	fx_iface(&x, "eth1", 0, 0);
	top_with(&t, &x);
	t.view.interfaces = true;
	render(&t, 120, 0, &s);
	/* First frame: the baseline, no rate yet. */
	ASSERT_TRUE(find(&s, TM_LINE_PANEL_ROW, "eth0"));
	ASSERT_TRUE(find(&s, TM_LINE_PANEL_HEADER, "REC-KERNEL"));
	/* A second, two seconds later: 2000 B more in both counts on eth0,
	 * eth1's records are 300 B and 3 packets short of the kernel's. */
	x.f.timestamp_ns += 2000000000ull;
	counters(&x.ic[0][0], 3000);
	counters(&x.ic[0][2], 52000);
	counters(&x.ic[1][0], 100);
	counters(&x.ic[1][2], 400);
	tm_top_set_frame(&t, &x.f);
	render(&t, 120, 0, &s);
	ASSERT_TRUE(find(&s, TM_LINE_PANEL_ROW, "eth0") && find(&s, TM_LINE_PANEL_ROW, " ok"));
	/* 2000 B in 2 s; records 2000 = kernel 2000. */
	ASSERT_TRUE(find(&s, TM_LINE_PANEL_ROW, " 1000 "));
	ASSERT_TRUE(find(&s, TM_LINE_PANEL_ROW, " 2000      2000 "));
	ASSERT_TRUE(find(&s, TM_LINE_PANEL_MISMATCH, "eth1"));
	ASSERT_TRUE(find(&s, TM_LINE_PANEL_MISMATCH, "rx-300B-3p"));
	/* A new counters_id: counting started over, so does the window. */
	x.f.has_counters_id = true;
	x.f.counters_id = 42;
	tm_top_set_frame(&t, &x.f);
	render(&t, 120, 0, &s);
	ASSERT_TRUE(!find(&s, TM_LINE_PANEL_MISMATCH, "eth1"));
	screen_free(&s);
	tm_top_free(&t);
	return true;
}

TM_TEST(top_buckets_by_name)
{
	static const char *const names[] = { "forwarded", "local without owner", "non-IP",
					     "malformed", "overflow", "unattributed" };
	struct screen s = { .n = 0 };
	struct tm_top t;
	struct fx x;

	ASSERT_TRUE(utf8());
	fx_init(&x);
	fx_bucket(&x, TASKMETER__RECORD_KIND__FORWARDED, TASKMETER__LAYER__TC, 7000, 6900);
	fx_bucket(&x, TASKMETER__RECORD_KIND__NON_IP, TASKMETER__LAYER__XDP, 84, 42);
	fx_bucket(&x, TASKMETER__RECORD_KIND__UNATTRIBUTED, TASKMETER__LAYER__CGROUP_SKB, 300, 0);
	top_with(&t, &x);
	/* Buckets are no process rows. */
	ASSERT_EQ(t.n_rows, 0);
	t.view.interfaces = true;
	render(&t, 100, 0, &s);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		ASSERT_TRUE(find(&s, TM_LINE_PANEL_ROW, names[i]));
	ASSERT_TRUE(find(&s, TM_LINE_PANEL_ROW, "forwarded           iface       0      0 7000 6900"));
	ASSERT_TRUE(find(&s, TM_LINE_PANEL_ROW, "unattributed        socket"));
	ASSERT_TRUE(find(&s, TM_LINE_PANEL_ROW, "malformed           -"));
	ASSERT_TRUE(find(&s, TM_LINE_PANEL_HEADER, "RX B"));
	tm_top_key(&t, 'p');
	render(&t, 100, 0, &s);
	ASSERT_TRUE(find(&s, TM_LINE_PANEL_ROW, "forwarded           iface         0        0   6900   6800"));
	ASSERT_TRUE(find(&s, TM_LINE_PANEL_HEADER, "RX PAY"));
	screen_free(&s);
	tm_top_free(&t);
	return true;
}

/* ---- Every line fits, whatever the names ---------------------------------- */

/* Width as an independent reader sees it: every character printable, of
 * positive width, no control byte anywhere. */
static bool check_line(const char *text, size_t cols, size_t *width)
{
	wchar_t wbuf[TM_TOP_LINE_MAX];
	size_t n = mbstowcs(wbuf, text, TM_TOP_LINE_MAX);

	*width = 0;
	ASSERT_TRUE(n != (size_t)-1);
	for (size_t i = 0; i < n; i++) {
		int w = wcwidth(wbuf[i]);

		if (!iswprint((wint_t)wbuf[i]) || w <= 0)
			fprintf(stderr, "  U+%04X in \"%s\"\n", (unsigned)wbuf[i], text);
		ASSERT_TRUE(iswprint((wint_t)wbuf[i]) && w > 0);
		*width += (size_t)w;
	}
	if (*width > cols)
		fprintf(stderr, "  %zu > %zu columns: \"%s\"\n", *width, cols, text);
	ASSERT_TRUE(*width <= cols);
	return true;
}

static void hostile(struct fx *x)
{
	static char long_arg[3000];
	static char *argv[] = { "/bin/\x1b]0;pwned\x07", "\x1b[2J\x1b[H", long_arg,
				"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xf0\x9f\x98\x80" };
	Taskmeter__ProcessRecord *r;

	memset(long_arg, 'A', sizeof(long_arg) - 1);
	for (size_t i = 0; i < 200; i++)
		long_arg[i * 13 % 2990] = (char)(0x80 + i % 64);  /* stray bytes */
	r = fx_proc(x, 4194304, "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x83\x86\xe3\x82\xb9", 1, 2,
		    3, 4);
	r->argv = argv;
	r->n_argv = 4;
	r->service = "\xe2\x80\xaehidden\xcc\x81.service";
	r->cgroup_path = "/\xe6\x97\xa5/very/long/path/with/many/parts/to/cut/to/size.scope";
	fx_proc(x, 2, "\x1b[31mred\x9b", 18446744073709551615ull, 18446744073709551615ull,
		18446744073709551615ull, 1)->exited = true;
	r = fx_proc(x, 3, "e\xcc\x81\xcc\x81\xcc\x81", 0, 0, 0, 0);
	r->container_id = "\xff\xfe\xfd";
	r->container_runtime = "\x1b[0m";
	fx_proc(x, 4, "", 5, 5, 5, 5)->comm = NULL;
	fx_bucket(x, TASKMETER__RECORD_KIND__MALFORMED, TASKMETER__LAYER__XDP, 1ull << 62, 3);
	fx_iface(x, "\x1b[7m\xe6\x97\xa5\xe6\x9c\xac-very-long-interface", 5, 9);
}

TM_TEST(top_lines_fit_every_width)
{
	struct screen s = { .n = 0 };
	struct tm_top t;
	struct fx x;
	size_t w, lines = 0;

	ASSERT_TRUE(utf8());
	fx_init(&x);
	hostile(&x);
	top_with(&t, &x);
	t.view.interfaces = t.view.exited = true;
	for (size_t cols = 40; cols <= 300; cols++) {
		for (int v = 0; v < 2 * 2 * TM_GROUP_MAX; v++) {
			t.view.group = v % TM_GROUP_MAX;
			t.view.exact = v / TM_GROUP_MAX % 2;
			t.view.ascii = v / TM_GROUP_MAX / 2;
			tm_top_build(&t);
			render(&t, cols, cols % 3 ? 0 : 24, &s);
			for (size_t i = 0; i < s.n; i++, lines++) {
				ASSERT_TRUE(check_line(s.text[i], cols, &w));
				ASSERT_EQ(w, s.cols[i]);
				if (t.view.ascii)
					for (const char *p = s.text[i]; *p; p++)
						ASSERT_TRUE((unsigned char)*p < 0x80);
			}
		}
	}
	ASSERT_TRUE(lines > 10000);
	/* Numbers are never cut: at 40 columns a total is whole or absent. */
	t.view = (struct tm_top_view){ .exact = true, .exited = true, .cumulative = true };
	tm_top_build(&t);
	render(&t, 40, 0, &s);
	ASSERT_TRUE(find(&s, TM_LINE_ROW_EXITED, "18446744073709551615"));
	screen_free(&s);
	tm_top_free(&t);
	return true;
}

TM_TEST(top_help_fits)
{
	struct screen s = { .n = 0 };
	struct tm_top t;
	size_t w;

	ASSERT_TRUE(utf8());
	tm_top_init(&t);
	for (size_t cols = 20; cols <= 120; cols += 7) {
		screen_free(&s);
		tm_top_help(&t, cols, capture, &s);
		for (size_t i = 0; i < s.n; i++)
			ASSERT_TRUE(check_line(s.text[i], cols, &w));
	}
	ASSERT_TRUE(find(&s, TM_LINE_TEXT, "q Q Ctrl-C"));
	/* No frame yet: a title that says so, and an empty table. */
	render(&t, 80, 24, &s);
	ASSERT_TRUE(find(&s, TM_LINE_TITLE, "waiting for the first frame"));
	screen_free(&s);
	tm_top_free(&t);
	return true;
}
