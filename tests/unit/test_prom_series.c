// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* taskmeter prom's series: growth, exits, counters_id, the cap, idle removal. */
#include <stdlib.h>

#include "prom_series.h"
#include "tm_test.h"

/* One process record with one socket-layer entry (transmit, UDP, IPv4). */
struct proc {
	const char *labels[2];
	struct tm_ps_entry e;
	struct tm_ps_record r;
};

static void proc_init(struct proc *p, uint64_t pid, const char *l0, const char *l1)
{
	memset(p, 0, sizeof(*p));
	p->labels[0] = l0;
	p->labels[1] = l1;
	p->e.group = TM_PS_SOCKET;
	p->e.dir = TM_PS_TRANSMIT;
	p->e.transport = TM_PS_UDP;
	p->e.type = TM_PS_IPV4;
	p->r.id[1] = pid;
	p->r.id[2] = 1000 + pid; /* start time */
	p->r.labels = p->labels;
	p->r.entries = &p->e;
	p->r.n_entries = 1;
}

static void set_total(struct proc *p, uint64_t bytes)
{
	p->e.total.bytes = bytes;
	p->e.total.packets = bytes / 10;
	p->e.total.payload = bytes / 2;
}

static struct tm_ps *new_ps(unsigned int max, uint64_t idle)
{
	struct tm_ps_config c = { .n_labels = 2, .max_label_sets = max, .idle_ns = idle };

	return tm_ps_new(&c);
}

/* One frame holding procs[0..n). */
static bool frame(struct tm_ps *ps, uint64_t id, uint64_t now, struct proc **procs, size_t n,
		  bool complete)
{
	tm_ps_frame_begin(ps, id, now);
	for (size_t i = 0; i < n; i++)
		ASSERT_EQ(tm_ps_add(ps, &procs[i]->r), 0);
	tm_ps_frame_end(ps, complete);
	return true;
}

/* The socket series whose first label is l0 (NULL if none). */
static const struct tm_ps_series *find(const struct tm_ps *ps, const char *l0)
{
	for (size_t i = 0; i < tm_ps_count(ps, TM_PS_SOCKET); i++) {
		const struct tm_ps_series *s = tm_ps_get(ps, TM_PS_SOCKET, i);

		if (!strcmp(s->ls->values[0], l0))
			return s;
	}
	return NULL;
}

static uint64_t bytes_of(const struct tm_ps *ps, const char *l0)
{
	const struct tm_ps_series *s = find(ps, l0);

	return s ? s->v.bytes : 0;
}

static uint64_t sum_bytes(const struct tm_ps *ps)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < tm_ps_count(ps, TM_PS_SOCKET); i++)
		sum += tm_ps_get(ps, TM_PS_SOCKET, i)->v.bytes;
	return sum;
}

TM_TEST(prom_series_growth)
{
	struct tm_ps *ps = new_ps(10, 0);
	struct proc a, *f[] = { &a };
	const struct tm_ps_series *s;

	ASSERT_TRUE(ps);
	proc_init(&a, 1, "web", "nginx");
	set_total(&a, 100);
	ASSERT_TRUE(frame(ps, 7, 1, f, 1, true));
	s = find(ps, "web");
	ASSERT_TRUE(s);
	ASSERT_STREQ(s->ls->values[1], "nginx");
	ASSERT_EQ(s->v.bytes, 100);
	ASSERT_EQ(s->v.packets, 10);
	ASSERT_EQ(s->v.payload, 50);
	set_total(&a, 250);
	ASSERT_TRUE(frame(ps, 7, 2, f, 1, true));
	ASSERT_EQ(s->v.bytes, 250);
	ASSERT_EQ(s->grew_ns, 2);
	/* Unchanged: no growth, and the series' growth time stays. */
	ASSERT_TRUE(frame(ps, 7, 3, f, 1, true));
	ASSERT_EQ(s->v.bytes, 250);
	ASSERT_EQ(s->grew_ns, 2);
	ASSERT_EQ(tm_ps_count(ps, TM_PS_SOCKET), 1);
	tm_ps_free(ps);
	return true;
}

TM_TEST(prom_series_exited_records)
{
	struct tm_ps *ps = new_ps(10, 0);
	struct proc a, b, *both[] = { &a, &b }, *only_b[] = { &b };
	struct tm_ps_stats st;

	proc_init(&a, 1, "web", "nginx");
	proc_init(&b, 2, "web", "nginx");
	set_total(&a, 100);
	set_total(&b, 50);
	ASSERT_TRUE(frame(ps, 1, 1, both, 2, true));
	ASSERT_EQ(bytes_of(ps, "web"), 150);
	/* An incomplete frame (a part was missed) proves nothing about the
	 * records absent from it: a keeps its base. */
	set_total(&b, 60);
	ASSERT_TRUE(frame(ps, 1, 2, only_b, 1, false));
	tm_ps_stats(ps, &st);
	ASSERT_EQ(st.records, 2);
	set_total(&a, 120);
	ASSERT_TRUE(frame(ps, 1, 3, both, 2, true));
	ASSERT_EQ(bytes_of(ps, "web"), 180); /* +20 for a, not +120 */
	/* a exited: gone from a complete frame, its bytes stay in the series. */
	set_total(&b, 70);
	ASSERT_TRUE(frame(ps, 1, 4, only_b, 1, true));
	ASSERT_EQ(bytes_of(ps, "web"), 190);
	tm_ps_stats(ps, &st);
	ASSERT_EQ(st.records, 1);
	tm_ps_free(ps);
	return true;
}

TM_TEST(prom_series_counters_id)
{
	struct tm_ps *ps = new_ps(10, 0);
	struct proc a, *f[] = { &a };
	struct tm_ps_stats st;

	proc_init(&a, 1, "web", "nginx");
	set_total(&a, 100);
	ASSERT_TRUE(frame(ps, 1, 1, f, 1, true));
	/* Same counters_id after a reconnect: totals continue. */
	set_total(&a, 120);
	ASSERT_TRUE(frame(ps, 1, 2, f, 1, true));
	ASSERT_EQ(bytes_of(ps, "web"), 120);
	/* New counters_id: counting restarted, the whole total is new. */
	set_total(&a, 30);
	ASSERT_TRUE(frame(ps, 2, 3, f, 1, true));
	ASSERT_EQ(bytes_of(ps, "web"), 150);
	tm_ps_stats(ps, &st);
	ASSERT_EQ(st.counters_resets, 1);
	/* Same id but lower: no growth, a new base; never backwards. */
	set_total(&a, 10);
	ASSERT_TRUE(frame(ps, 2, 4, f, 1, true));
	ASSERT_EQ(bytes_of(ps, "web"), 150);
	set_total(&a, 25);
	ASSERT_TRUE(frame(ps, 2, 5, f, 1, true));
	ASSERT_EQ(bytes_of(ps, "web"), 165);
	tm_ps_free(ps);
	return true;
}

TM_TEST(prom_series_kernel_outside_counters_id)
{
	struct tm_ps *ps = new_ps(10, 0);
	struct tm_ps_entry e = { .group = TM_PS_KERNEL, .dir = TM_PS_RECEIVE, .ifindex = 3,
				 .netns = 42, .ifname = "eth0", .total = { 1000, 10, 0 } };
	struct tm_ps_record r = { .id = { 99, 3, 42 }, .outside_counters_id = true,
				  .entries = &e, .n_entries = 1 };
	const struct tm_ps_series *s;

	tm_ps_frame_begin(ps, 1, 1);
	ASSERT_EQ(tm_ps_add(ps, &r), 0);
	tm_ps_frame_end(ps, true);
	e.total.bytes = 1010;
	tm_ps_frame_begin(ps, 2, 2); /* the daemon restarted, the device did not */
	ASSERT_EQ(tm_ps_add(ps, &r), 0);
	tm_ps_frame_end(ps, true);
	ASSERT_EQ(tm_ps_count(ps, TM_PS_KERNEL), 1);
	s = tm_ps_get(ps, TM_PS_KERNEL, 0);
	ASSERT_EQ(s->v.bytes, 1010);
	ASSERT_STREQ(s->ifname, "eth0");
	ASSERT_EQ(s->netns, 42);
	/* Not a per-process series: no label set taken. */
	ASSERT_TRUE(s->ls == NULL);
	tm_ps_free(ps);
	return true;
}

TM_TEST(prom_series_cap_and_other)
{
	struct tm_ps *ps = new_ps(2, 0);
	struct proc p[6], *f[6];
	static const char *const names[] = { "a", "b", "c", "d", "c", "other" };
	struct tm_ps_stats st;
	uint64_t want = 0;

	for (int i = 0; i < 6; i++) {
		proc_init(&p[i], i + 1, "svc", names[i]);
		p[i].labels[0] = names[i];
		p[i].labels[1] = names[i];
		set_total(&p[i], 100 * (i + 1));
		want += 100 * (i + 1);
		f[i] = &p[i];
	}
	ASSERT_TRUE(frame(ps, 1, 1, f, 6, true));
	/* a and b have series, c and d went to other (c counted once for its
	 * two records), and the literal "other" process shares that series. */
	ASSERT_EQ(tm_ps_count(ps, TM_PS_SOCKET), 3);
	ASSERT_EQ(bytes_of(ps, "a"), 100);
	ASSERT_EQ(bytes_of(ps, "b"), 200);
	ASSERT_EQ(bytes_of(ps, TM_PS_OTHER), 300 + 400 + 500 + 600);
	ASSERT_STREQ(find(ps, TM_PS_OTHER)->ls->values[1], TM_PS_OTHER);
	ASSERT_EQ(sum_bytes(ps), want);
	tm_ps_stats(ps, &st);
	ASSERT_EQ(st.label_sets, 2);
	ASSERT_EQ(st.folded, 2);
	/* The same records again: nothing folded anew, growth still exact. */
	for (int i = 0; i < 6; i++)
		set_total(&p[i], 100 * (i + 1) + 1);
	ASSERT_TRUE(frame(ps, 1, 2, f, 6, true));
	ASSERT_EQ(sum_bytes(ps), want + 6);
	tm_ps_stats(ps, &st);
	ASSERT_EQ(st.folded, 2);
	/* c and d gone; a new label set while a and b hold the places: folded. */
	proc_init(&p[2], 50, "e", "e");
	set_total(&p[2], 7);
	ASSERT_TRUE(frame(ps, 1, 3, f, 3, true));
	tm_ps_stats(ps, &st);
	ASSERT_EQ(st.folded, 3);
	ASSERT_EQ(sum_bytes(ps), want + 6 + 7);
	ASSERT_EQ(tm_ps_count(ps, TM_PS_SOCKET), 3);
	tm_ps_free(ps);
	return true;
}

TM_TEST(prom_series_idle_removal)
{
	struct tm_ps *ps = new_ps(1, 10);
	struct proc a, b, *fa[] = { &a }, *fb[] = { &b };
	struct tm_ps_stats st;

	proc_init(&a, 1, "a", "x");
	proc_init(&b, 2, "b", "x");
	set_total(&a, 100);
	ASSERT_TRUE(frame(ps, 1, 100, fa, 1, true));
	/* A live record keeps its series however long it is quiet. */
	ASSERT_TRUE(frame(ps, 1, 190, fa, 1, true));
	set_total(&a, 150);
	ASSERT_TRUE(frame(ps, 1, 200, fa, 1, true));
	ASSERT_EQ(bytes_of(ps, "a"), 150);
	/* a exited after 200; b arrives while a's label set holds the only
	 * place, so b goes to other. */
	set_total(&b, 5);
	ASSERT_TRUE(frame(ps, 1, 205, fb, 1, true));
	ASSERT_EQ(bytes_of(ps, "a"), 150);
	ASSERT_EQ(bytes_of(ps, TM_PS_OTHER), 5);
	/* Idle for 10 since its last growth and fed by no record: removed,
	 * and its label set's place is free again. */
	set_total(&b, 8);
	ASSERT_TRUE(frame(ps, 1, 210, fb, 1, true));
	ASSERT_TRUE(find(ps, "a") == NULL);
	tm_ps_stats(ps, &st);
	ASSERT_EQ(st.label_sets, 0);
	/* b keeps its folded label set while it lives. */
	ASSERT_EQ(bytes_of(ps, TM_PS_OTHER), 8);
	/* A new process now gets a place of its own; b is gone. */
	proc_init(&a, 3, "c", "x");
	set_total(&a, 1);
	ASSERT_TRUE(frame(ps, 1, 211, fa, 1, true));
	ASSERT_EQ(bytes_of(ps, "c"), 1);
	tm_ps_stats(ps, &st);
	ASSERT_EQ(st.label_sets, 1);
	/* other idles out like any series (if it comes back it starts from 0:
	 * a reset, as configs/taskmeter.conf documents); c is live and stays. */
	ASSERT_TRUE(frame(ps, 1, 300, fa, 1, true));
	ASSERT_TRUE(find(ps, TM_PS_OTHER) == NULL);
	ASSERT_EQ(bytes_of(ps, "c"), 1);
	tm_ps_free(ps);
	return true;
}

TM_TEST(prom_series_labels_change)
{
	struct tm_ps *ps = new_ps(10, 0);
	struct proc a, *f[] = { &a };

	/* First frame before the metadata arrived, then with it. */
	proc_init(&a, 1, NULL, "tm_traffic");
	set_total(&a, 100);
	ASSERT_TRUE(frame(ps, 1, 1, f, 1, true));
	a.labels[0] = "web";
	set_total(&a, 130);
	ASSERT_TRUE(frame(ps, 1, 2, f, 1, true));
	ASSERT_EQ(bytes_of(ps, ""), 100);
	ASSERT_EQ(bytes_of(ps, "web"), 30);
	ASSERT_EQ(sum_bytes(ps), 130);
	tm_ps_free(ps);
	return true;
}

TM_TEST(prom_series_interface_layer)
{
	struct tm_ps *ps = new_ps(1, 0);
	struct tm_ps_entry e[2] = {
		{ .group = TM_PS_IFACE, .dir = TM_PS_RECEIVE, .layer = TM_PS_TC, .ifindex = 2,
		  .netns = 5, .ifname = "veth0", .transport = TM_PS_TCP, .total = { 60, 1, 0 } },
		{ .group = TM_PS_IFACE, .dir = TM_PS_RECEIVE, .layer = TM_PS_TC, .ifindex = 2,
		  .netns = 5, .ifname = "veth0", .transport = TM_PS_UDP, .total = { 40, 1, 0 } },
	};
	struct tm_ps_record r = { .id = { 4 }, .owner = TM_PS_FORWARDED, .entries = e,
				  .n_entries = 2 };
	const struct tm_ps_series *s;
	struct tm_ps_stats st;

	tm_ps_frame_begin(ps, 1, 1);
	ASSERT_EQ(tm_ps_add(ps, &r), 0);
	tm_ps_frame_end(ps, true);
	/* Per interface x direction x layer x owner: the protocols add up. */
	ASSERT_EQ(tm_ps_count(ps, TM_PS_IFACE), 1);
	s = tm_ps_get(ps, TM_PS_IFACE, 0);
	ASSERT_EQ(s->v.bytes, 100);
	ASSERT_EQ(s->v.packets, 2);
	ASSERT_EQ(s->owner, TM_PS_FORWARDED);
	ASSERT_EQ(s->layer, TM_PS_TC);
	tm_ps_stats(ps, &st);
	ASSERT_EQ(st.label_sets, 0); /* buckets take no place under the cap */
	tm_ps_free(ps);
	return true;
}

TM_TEST(prom_series_many)
{
	/* Enough records, label sets and series to grow every table. */
	struct tm_ps *ps = new_ps(500, 5);
	struct proc *p = calloc(2000, sizeof(*p));
	struct proc **f = calloc(2000, sizeof(*f));
	char (*names)[16] = calloc(2000, 16);
	struct tm_ps_stats st;

	ASSERT_TRUE(ps && p && f && names);
	for (int i = 0; i < 2000; i++) {
		snprintf(names[i], 16, "n%d", i);
		proc_init(&p[i], i + 1, names[i], "x");
		set_total(&p[i], i + 1);
		f[i] = &p[i];
	}
	ASSERT_TRUE(frame(ps, 1, 1, f, 2000, true));
	ASSERT_EQ(tm_ps_count(ps, TM_PS_SOCKET), 501);
	ASSERT_EQ(sum_bytes(ps), 2000 * 2001 / 2);
	tm_ps_stats(ps, &st);
	ASSERT_EQ(st.folded, 1500);
	ASSERT_EQ(st.records, 2000);
	/* All exit; after the idle time everything but nothing is left. */
	ASSERT_TRUE(frame(ps, 1, 2, f, 0, true));
	ASSERT_EQ(sum_bytes(ps), 2000 * 2001 / 2);
	ASSERT_TRUE(frame(ps, 1, 10, f, 0, true));
	ASSERT_EQ(tm_ps_count(ps, TM_PS_SOCKET), 0);
	tm_ps_stats(ps, &st);
	ASSERT_EQ(st.records, 0);
	ASSERT_EQ(st.label_sets, 0);
	tm_ps_free(ps);
	free(p);
	free(f);
	free(names);
	return true;
}
