// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* taskmeter prom's adapter: label values from records, frames in several
 * messages, which frames may drop absent records, collector counters. */
#include <stdlib.h>

#include "config.h"
#include "prom_adapt.h"
#include "tm_test.h"

/* A process record with one socket-layer transmit entry. */
struct rec {
	Taskmeter__ProcessRecord r;
	Taskmeter__Traffic t, *tp;
	Taskmeter__Counters c;
	Taskmeter__EnvVar e, *ep;
	char *argv[1];
};

static void rec_init(struct rec *x, uint32_t pid, const char *comm, uint64_t bytes)
{
	memset(x, 0, sizeof(*x));
	taskmeter__process_record__init(&x->r);
	taskmeter__traffic__init(&x->t);
	taskmeter__counters__init(&x->c);
	taskmeter__env_var__init(&x->e);
	x->r.has_kind = x->r.has_pid = x->r.has_start_time_ns = true;
	x->r.kind = TASKMETER__RECORD_KIND__PROCESS;
	x->r.pid = pid;
	x->r.start_time_ns = 1000 + pid;
	x->r.comm = (char *)comm;
	x->t.has_direction = x->t.has_protocol = x->t.has_family = true;
	x->t.direction = TASKMETER__DIRECTION__EGRESS;
	x->t.protocol = TASKMETER__L4_PROTOCOL__UDP;
	x->t.family = TASKMETER__IP_FAMILY__IPV4;
	x->c.has_bytes = x->c.has_packets = x->c.has_payload_bytes = true;
	x->c.bytes = bytes;
	x->c.packets = 1;
	x->c.payload_bytes = bytes - 28;
	x->t.total = &x->c;
	x->tp = &x->t;
	x->r.traffic = &x->tp;
	x->r.n_traffic = 1;
}

struct msg {
	Taskmeter__Frame f;
	Taskmeter__ProcessRecord *recs[4];
};

static Taskmeter__Frame *msg(struct msg *m, uint64_t seq, bool more, uint64_t dropped,
			     struct rec *a, struct rec *b)
{
	taskmeter__frame__init(&m->f);
	m->f.has_seq = m->f.has_more_parts = m->f.has_frames_dropped = m->f.has_counters_id = true;
	m->f.seq = seq;
	m->f.more_parts = more;
	m->f.frames_dropped = dropped;
	m->f.counters_id = 77;
	m->f.records = m->recs;
	if (a)
		m->recs[m->f.n_records++] = &a->r;
	if (b)
		m->recs[m->f.n_records++] = &b->r;
	return &m->f;
}

static struct tm_config cfg_with(const char *labels)
{
	struct tm_config c;
	char err[256];

	tm_config_defaults(&c);
	tm_config_set(&c, "prom_labels", labels, err, sizeof(err));
	tm_config_set(&c, "env_allowlist", "SERVICE_NAME", err, sizeof(err));
	return c;
}

static uint64_t total_bytes(const struct tm_pa *pa)
{
	const struct tm_ps *ps = tm_pa_series(pa);
	uint64_t sum = 0;

	for (size_t i = 0; i < tm_ps_count(ps, TM_PS_SOCKET); i++)
		sum += tm_ps_get(ps, TM_PS_SOCKET, i)->v.bytes;
	return sum;
}

static uint64_t records(const struct tm_pa *pa)
{
	struct tm_ps_stats st;

	tm_ps_stats(tm_pa_series(pa), &st);
	return st.records;
}

TM_TEST(prom_adapt_labels)
{
	struct tm_config c = cfg_with("comm exe uid user pid env_SERVICE_NAME service");
	struct tm_pa *pa = tm_pa_new(&c);
	struct rec a, u;
	struct msg m;
	const struct tm_ps_series *s;

	ASSERT_TRUE(pa);
	rec_init(&a, 42, "bad\xff", 100);
	a.argv[0] = "/usr/bin/python3";
	a.r.argv = a.argv;
	a.r.n_argv = 1;
	a.r.has_uid = true;
	a.r.uid = 0;
	a.e.name = "SERVICE_NAME";
	a.e.value = "billing";
	a.ep = &a.e;
	a.r.env = &a.ep;
	a.r.n_env = 1;
	rec_init(&u, 0, NULL, 60);
	u.r.kind = TASKMETER__RECORD_KIND__UNATTRIBUTED;
	u.r.has_pid = u.r.has_start_time_ns = false;
	tm_pa_connected(pa);
	ASSERT_EQ(tm_pa_message(pa, msg(&m, 1, false, 0, &a, &u), 1), 0);
	ASSERT_EQ(tm_ps_count(tm_pa_series(pa), TM_PS_SOCKET), 2);
	s = tm_ps_get(tm_pa_series(pa), TM_PS_SOCKET, 0);
	ASSERT_STREQ(s->ls->values[0], "bad\xef\xbf\xbd");
	ASSERT_STREQ(s->ls->values[1], "python3");
	ASSERT_STREQ(s->ls->values[2], "0");
	ASSERT_STREQ(s->ls->values[3], "root");
	ASSERT_STREQ(s->ls->values[4], "42");
	ASSERT_STREQ(s->ls->values[5], "billing");
	ASSERT_STREQ(s->ls->values[6], "");
	ASSERT_EQ(s->v.bytes, 100);
	ASSERT_EQ(s->transport, TM_PS_UDP);
	ASSERT_EQ(s->dir, TM_PS_TRANSMIT);
	/* Sockets without an owner are a label set of their own. */
	s = tm_ps_get(tm_pa_series(pa), TM_PS_SOCKET, 1);
	for (int i = 0; i < 7; i++)
		ASSERT_STREQ(s->ls->values[i], "unattributed");
	ASSERT_EQ(s->v.bytes, 60);
	ASSERT_STREQ(tm_pa_label_names(pa)[5], "env_SERVICE_NAME");
	tm_pa_free(pa);
	return true;
}

TM_TEST(prom_adapt_clean)
{
	char buf[TM_PA_VALUE_MAX + 4], big[1000];

	tm_pa_clean(buf, sizeof(buf), "ok \xc3\xa9");
	ASSERT_STREQ(buf, "ok \xc3\xa9");
	tm_pa_clean(buf, sizeof(buf), "\xc3");
	ASSERT_STREQ(buf, "\xef\xbf\xbd");
	/* Long values are cut, never inside a character. */
	memset(big, 'x', sizeof(big));
	big[TM_PA_VALUE_MAX - 1] = '\xc3';
	big[TM_PA_VALUE_MAX] = '\xa9';
	big[sizeof(big) - 1] = '\0';
	tm_pa_clean(buf, sizeof(buf), big);
	ASSERT_EQ(strlen(buf), TM_PA_VALUE_MAX - 1);
	tm_pa_clean(buf, 4, "abcdef");
	ASSERT_STREQ(buf, "abc");
	return true;
}

TM_TEST(prom_adapt_parts)
{
	struct tm_config c = cfg_with("comm");
	struct tm_pa *pa = tm_pa_new(&c);
	struct rec a, b;
	struct msg m;

	rec_init(&a, 1, "a", 100);
	rec_init(&b, 2, "b", 50);
	tm_pa_connected(pa);
	/* Frame 5 in two messages: the first after connecting is never
	 * trusted to be whole, so nothing is dropped at its end. */
	ASSERT_EQ(tm_pa_message(pa, msg(&m, 5, true, 0, &a, NULL), 1), 0);
	ASSERT_TRUE(!tm_pa_frame_done(pa));
	ASSERT_EQ(tm_pa_message(pa, msg(&m, 5, false, 0, &b, NULL), 1), 0);
	ASSERT_TRUE(tm_pa_frame_done(pa));
	ASSERT_EQ(total_bytes(pa), 150);
	/* Frame 6, whole, in two messages: a in the first, b in the second. */
	a.c.bytes = 110;
	ASSERT_EQ(tm_pa_message(pa, msg(&m, 6, true, 0, &a, NULL), 2), 0);
	ASSERT_EQ(tm_pa_message(pa, msg(&m, 6, false, 0, &b, NULL), 2), 0);
	ASSERT_EQ(records(pa), 2);
	ASSERT_EQ(total_bytes(pa), 160);
	/* Frame 7: the first message was dropped for us (frames_dropped went
	 * up): a is missing but may not be gone. */
	ASSERT_EQ(tm_pa_message(pa, msg(&m, 7, false, 1, &b, NULL), 3), 0);
	ASSERT_EQ(records(pa), 2);
	/* Frame 8 cut short by frame 9: neither may drop anything (9 did not
	 * start at a frame boundary), 10 may. */
	ASSERT_EQ(tm_pa_message(pa, msg(&m, 8, true, 1, &b, NULL), 4), 0);
	ASSERT_EQ(tm_pa_message(pa, msg(&m, 9, false, 1, &b, NULL), 5), 0);
	ASSERT_EQ(records(pa), 2);
	b.c.bytes = 70;
	ASSERT_EQ(tm_pa_message(pa, msg(&m, 10, false, 1, &b, NULL), 6), 0);
	ASSERT_EQ(records(pa), 1); /* a exited; its 110 bytes stay */
	ASSERT_EQ(total_bytes(pa), 180);
	/* A disconnect mid-frame ends it incomplete; after the reconnect the
	 * same counters_id continues the totals. */
	ASSERT_EQ(tm_pa_message(pa, msg(&m, 11, true, 1, &b, NULL), 7), 0);
	tm_pa_disconnected(pa);
	tm_pa_connected(pa);
	b.c.bytes = 75;
	ASSERT_EQ(tm_pa_message(pa, msg(&m, 1, false, 0, &b, NULL), 8), 0);
	ASSERT_EQ(total_bytes(pa), 185);
	tm_pa_free(pa);
	return true;
}

TM_TEST(prom_adapt_interfaces_and_stats)
{
	struct tm_config c = cfg_with("comm");
	struct tm_pa *pa = tm_pa_new(&c);
	Taskmeter__Interface in = TASKMETER__INTERFACE__INIT, *inp = &in;
	Taskmeter__Counters rx = TASKMETER__COUNTERS__INIT, tx = TASKMETER__COUNTERS__INIT;
	Taskmeter__CollectorStats st = TASKMETER__COLLECTOR_STATS__INIT;
	struct tm_pt_stats out;
	struct msg m;
	Taskmeter__Frame *f;

	in.has_netns = in.has_ifindex = true;
	in.netns = 9;
	in.ifindex = 3;
	in.name = "veth\xfe";
	rx.has_bytes = rx.has_packets = tx.has_bytes = true;
	rx.bytes = 5000;
	rx.packets = 5;
	tx.bytes = 7000;
	in.rx_kernel = &rx;
	in.tx_kernel = &tx;
	st.has_procfs_reads = st.has_ringbuf_drops = true;
	st.procfs_reads = 10;
	st.ringbuf_drops = 4;
	st.records_live = 12;
	st.frame_build_ns = 1500000;
	tm_pa_connected(pa);
	f = msg(&m, 3, false, 0, NULL, NULL);
	f->n_interfaces = 1;
	f->interfaces = &inp;
	f->stats = &st;
	f->has_timestamp_ns = true;
	f->timestamp_ns = 1700000000500000000ull;
	ASSERT_EQ(tm_pa_message(pa, f, 1), 0);
	ASSERT_EQ(tm_ps_count(tm_pa_series(pa), TM_PS_KERNEL), 2);
	ASSERT_STREQ(tm_ps_get(tm_pa_series(pa), TM_PS_KERNEL, 0)->ifname, "veth\xef\xbf\xbd");
	ASSERT_EQ(tm_ps_get(tm_pa_series(pa), TM_PS_KERNEL, 0)->v.bytes, 5000);
	ASSERT_EQ(tm_ps_get(tm_pa_series(pa), TM_PS_KERNEL, 1)->v.bytes, 7000);
	/* The daemon restarts with new counter state: its procfs_reads and
	 * ringbuf_drops start over, the interface's counters do not. */
	tm_pa_disconnected(pa);
	tm_pa_connected(pa);
	f = msg(&m, 1, false, 0, NULL, NULL);
	f->counters_id = 78;
	f->n_interfaces = 1;
	f->interfaces = &inp;
	f->stats = &st;
	st.procfs_reads = 3;
	st.ringbuf_drops = 6; /* above the old value: only counters_id tells */
	rx.bytes = 5100;
	ASSERT_EQ(tm_pa_message(pa, f, 2), 0);
	ASSERT_EQ(tm_ps_get(tm_pa_series(pa), TM_PS_KERNEL, 0)->v.bytes, 5100);
	tm_pa_stats(pa, &out);
	ASSERT_EQ(out.collector[TM_PT_PROCFS_READS], 13);
	ASSERT_EQ(out.collector[TM_PT_RINGBUF_DROPS], 10);
	ASSERT_EQ(out.gauge[TM_PT_RECORDS_LIVE], 12);
	ASSERT_TRUE(out.gauge[TM_PT_FRAME_BUILD_SECONDS] > 0.0014 &&
		    out.gauge[TM_PT_FRAME_BUILD_SECONDS] < 0.0016);
	ASSERT_EQ(out.frames_read, 2);
	ASSERT_EQ(out.reconnects, 1);
	ASSERT_EQ(out.counters_resets, 1);
	ASSERT_TRUE(out.connected);
	tm_pa_free(pa);
	return true;
}
