// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The record store (collector/store.c): which record counts a class
 * (records_of), folding counter deltas into totals and interface sums
 * (add), the overflow and bucket records, exits and expiry after
 * exited_ttl, and a table that grows past its first buckets.
 */
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "tm_test.h"

#define SEC 1000000000ull

static const struct tm_owner owner_a = { .tgid = 4242, .start_ns = 1000 };
static const struct tm_owner owner_b = { .tgid = 4243, .start_ns = 2000 };

static struct tm_class sock_class(const struct tm_owner *o, __u32 exec_seq, __u8 dir, __u8 l4,
				  __u8 fam)
{
	return (struct tm_class){ .owner = *o, .exec_seq = exec_seq, .layer = TM_LAYER_CGROUP_SKB,
				  .dir = dir, .l4 = l4, .family = fam };
}

static struct tm_class if_class(const struct tm_owner *o, __u8 layer, __u8 dir, __u32 ifindex)
{
	return (struct tm_class){ .owner = *o, .layer = layer, .dir = dir, .l4 = TM_L4_TCP,
				  .family = TM_FAMILY_IPV4, .netns = 77, .ifindex = ifindex };
}

static struct tm_counter_val val(__u64 packets, __u64 bytes, __u64 payload)
{
	return (struct tm_counter_val){ .packets = packets, .bytes = bytes,
					.payload_bytes = payload };
}

TM_TEST(store_records_of)
{
	struct tm_class k = sock_class(&owner_a, 0, TM_DIR_EGRESS, TM_L4_TCP, TM_FAMILY_IPV4);
	struct tm_class k2 = sock_class(&owner_a, 1, TM_DIR_EGRESS, TM_L4_TCP, TM_FAMILY_IPV4);
	struct tm_record *a, *again, *exec1, *b;
	struct tm_store s;
	bool ok = false;

	if (!ASSERT_EQ(tm_store_init(&s), 0))
		return false;
	a = tm_store_record_of(&s, TM_KIND_PROCESS, &k);
	k.dir = TM_DIR_INGRESS; /* another class of the same identity */
	again = tm_store_record_of(&s, TM_KIND_PROCESS, &k);
	exec1 = tm_store_record_of(&s, TM_KIND_PROCESS, &k2);
	k.owner = owner_b;
	b = tm_store_record_of(&s, TM_KIND_PROCESS, &k);
	if (!ASSERT_TRUE(a && again && exec1 && b))
		goto out;
	ASSERT_TRUE(a == again);
	ASSERT_TRUE(a != exec1); /* an execve starts a new record */
	ASSERT_TRUE(a != b);
	ASSERT_EQ(a->key.kind, TM_KIND_PROCESS);
	ASSERT_EQ(a->key.owner.tgid, owner_a.tgid);
	ASSERT_EQ(exec1->key.exec_seq, 1);
	ASSERT_EQ(s.count, 3);
	ASSERT_EQ(s.processes, 3);
	ASSERT_TRUE(tm_store_process(&s, &owner_a, 1) == exec1);
	ASSERT_TRUE(a->changed); /* new: to be encoded */
	ok = true;
out:
	tm_store_free(&s);
	return ok;
}

TM_TEST(store_fold_socket_layer)
{
	struct tm_class tx = sock_class(&owner_a, 0, TM_DIR_EGRESS, TM_L4_UDP, TM_FAMILY_IPV6);
	struct tm_class rx = sock_class(&owner_a, 0, TM_DIR_INGRESS, TM_L4_TCP, TM_FAMILY_IPV4);
	unsigned int itx = TM_OVERFLOW_IDX(TM_DIR_EGRESS, TM_L4_UDP, TM_FAMILY_IPV6);
	unsigned int irx = TM_OVERFLOW_IDX(TM_DIR_INGRESS, TM_L4_TCP, TM_FAMILY_IPV4);
	struct tm_counter_val d1 = val(2, 200, 144), d2 = val(1, 1500, 1448), zero = { 0 };
	struct tm_record *rec;
	struct tm_store s;
	bool ok = false;

	if (!ASSERT_EQ(tm_store_init(&s), 0))
		return false;
	rec = tm_store_record_of(&s, TM_KIND_PROCESS, &tx);
	if (!ASSERT_TRUE(rec))
		goto out;
	tm_store_add(&s, rec, &tx, &d1);
	tm_store_add(&s, rec, &tx, &d1);
	tm_store_add(&s, rec, &rx, &d2);
	ASSERT_EQ(rec->sock[itx].total.packets, 4);
	ASSERT_EQ(rec->sock[itx].total.bytes, 400);
	ASSERT_EQ(rec->sock[itx].total.payload_bytes, 288);
	ASSERT_EQ(rec->sock[irx].total.payload_bytes, 1448);
	ASSERT_EQ(rec->sock_used, (1u << itx) | (1u << irx));
	ASSERT_EQ(rec->n_ifs, 0); /* the socket layer has no interface slots */
	ASSERT_EQ(s.if_totals.len, 0);
	/* Nothing moved: the record is not marked changed. */
	rec->changed = false;
	tm_store_add(&s, rec, &tx, &zero);
	ASSERT_TRUE(!rec->changed);
	/* Out of range: ignored, not written out of bounds. */
	tx.l4 = TM_L4_MAX;
	tm_store_add(&s, rec, &tx, &d1);
	ASSERT_EQ(rec->sock[itx].total.packets, 4);
	ok = true;
out:
	tm_store_free(&s);
	return ok;
}

TM_TEST(store_fold_interface_layer)
{
	struct tm_class xdp = if_class(&owner_a, TM_LAYER_XDP, TM_DIR_INGRESS, 3);
	struct tm_class tc = if_class(&owner_a, TM_LAYER_TC, TM_DIR_EGRESS, 3);
	struct tm_class drop = if_class(&owner_a, TM_LAYER_DROP, TM_DIR_INGRESS, 3);
	struct tm_counter_val d = val(3, 300, 100);
	struct tm_if_total *t;
	struct tm_record *rec;
	struct tm_store s;
	bool ok = false;

	if (!ASSERT_EQ(tm_store_init(&s), 0))
		return false;
	rec = tm_store_record_of(&s, TM_KIND_PROCESS, &xdp);
	if (!ASSERT_TRUE(rec))
		goto out;
	tm_store_add(&s, rec, &xdp, &d);
	tm_store_add(&s, rec, &xdp, &d);
	tm_store_add(&s, rec, &tc, &d);
	tm_store_add(&s, rec, &drop, &d);
	if (!ASSERT_EQ(rec->n_ifs, 3))
		goto out;
	/* One slot per class; the record holds owner, exec_seq and bucket. */
	ASSERT_EQ(rec->ifs[0].key.layer, TM_LAYER_XDP);
	ASSERT_EQ(rec->ifs[0].key.owner.tgid, 0);
	ASSERT_EQ(rec->ifs[0].key.ifindex, 3);
	ASSERT_EQ(rec->ifs[0].s.total.bytes, 600);
	ASSERT_EQ(rec->sock_used, 0);
	/* The interface's sums: XDP and TC, not the drops. */
	t = tm_store_if_total(&s, 77, 3);
	if (!ASSERT_TRUE(t))
		goto out;
	ASSERT_EQ(t->dir[TM_DIR_INGRESS].bytes, 600);
	ASSERT_EQ(t->dir[TM_DIR_EGRESS].bytes, 300);
	ASSERT_EQ(s.if_totals.len, 1);
	ok = true;
out:
	tm_store_free(&s);
	return ok;
}

TM_TEST(store_overflow_and_buckets)
{
	struct tm_class k = sock_class(&owner_a, 5, TM_DIR_EGRESS, TM_L4_TCP, TM_FAMILY_IPV4);
	struct tm_record *ovf, *ovf2, *unattr, *fwd, *proc;
	struct tm_counter_val d = val(1, 60, 0);
	struct tm_store s;
	bool ok = false;

	if (!ASSERT_EQ(tm_store_init(&s), 0))
		return false;
	/* The overflow record is one, whoever's class overflowed. */
	ovf = tm_store_record_of(&s, TM_KIND_OVERFLOW, &k);
	k.owner = owner_b;
	ovf2 = tm_store_record_of(&s, TM_KIND_OVERFLOW, &k);
	unattr = tm_store_record_of(&s, TM_KIND_UNATTRIBUTED, &k);
	fwd = tm_store_record_of(&s, TM_KIND_FORWARDED, &k);
	proc = tm_store_record_of(&s, TM_KIND_PROCESS, &k);
	if (!ASSERT_TRUE(ovf && ovf2 && unattr && fwd && proc))
		goto out;
	ASSERT_TRUE(ovf == ovf2);
	ASSERT_TRUE(ovf != unattr && ovf != fwd && ovf != proc && unattr != fwd);
	ASSERT_EQ(ovf->key.owner.tgid, 0);
	ASSERT_EQ(ovf->key.exec_seq, 0);
	ASSERT_EQ(ovf->key.kind, TM_KIND_OVERFLOW);
	ASSERT_EQ(s.count, 4);
	ASSERT_EQ(s.processes, 1);
	tm_store_add(&s, ovf, &k, &d);
	tm_store_add(&s, ovf2, &k, &d);
	ASSERT_EQ(ovf->sock[TM_OVERFLOW_IDX(TM_DIR_EGRESS, TM_L4_TCP, TM_FAMILY_IPV4)].total.bytes,
		  120);
	/* Buckets never exit: an owner's exit leaves them alone. */
	tm_store_exit(&s, &owner_b, true, 0, 0, SEC);
	ASSERT_TRUE(!ovf->exited && !fwd->exited && proc->exited);
	ok = true;
out:
	tm_store_free(&s);
	return ok;
}

struct expiry {
	unsigned int drained, forgotten;
	bool keep;                  /* what drain answers */
	struct tm_owner last_forgotten;
};

static bool drain(void *ctx, struct tm_record *rec)
{
	struct expiry *e = ctx;

	(void)rec;
	e->drained++;
	return e->keep;
}

static void forget(void *ctx, const struct tm_owner *o)
{
	struct expiry *e = ctx;

	e->forgotten++;
	e->last_forgotten = *o;
}

TM_TEST(store_expiry_after_ttl)
{
	struct tm_record *r0, *r1, *other;
	struct expiry e = { 0 };
	struct tm_store s;
	bool ok = false;

	if (!ASSERT_EQ(tm_store_init(&s), 0))
		return false;
	r0 = tm_store_process(&s, &owner_a, 0);
	r1 = tm_store_process(&s, &owner_a, 1);
	other = tm_store_process(&s, &owner_b, 0);
	if (!ASSERT_TRUE(r0 && r1 && other))
		goto out;
	/* The exit marks every exec generation final, expiring a ttl later. */
	tm_store_exit(&s, &owner_a, true, 9, 100 * SEC, 30 * SEC);
	ASSERT_TRUE(r0->exited && r1->exited && !other->exited);
	ASSERT_TRUE(r0->has_exit_code && r0->exit_code == 9);
	ASSERT_EQ(r1->expire_ns, 130 * SEC);
	/* Before the ttl: nothing is even looked at. */
	tm_store_expire(&s, 129 * SEC, drain, forget, &e);
	ASSERT_EQ(e.drained, 0);
	ASSERT_EQ(s.count, 3);
	/* Counters still draining: the records stay. */
	e.keep = true;
	tm_store_expire(&s, 130 * SEC, drain, forget, &e);
	ASSERT_EQ(e.drained, 2);
	ASSERT_EQ(s.count, 3);
	ASSERT_EQ(e.forgotten, 0);
	/* Drained: both go, and the owner is forgotten once, after the last. */
	e.keep = false;
	tm_store_expire(&s, 131 * SEC, drain, forget, &e);
	ASSERT_EQ(s.count, 1);
	ASSERT_EQ(s.processes, 1);
	ASSERT_EQ(e.forgotten, 1);
	ASSERT_EQ(e.last_forgotten.tgid, owner_a.tgid);
	ASSERT_TRUE(!tm_store_owner_has_records(&s, &owner_a));
	ASSERT_TRUE(tm_store_owner_has_records(&s, &owner_b));
	ASSERT_TRUE(tm_store_process(&s, &owner_b, 0) == other);
	ok = true;
out:
	tm_store_free(&s);
	return ok;
}

/* Deadlines decide the order, not the order of the exits: a reload that
 * shortened exited_ttl lets a later exit expire first. */
TM_TEST(store_expiry_in_deadline_order)
{
	static const struct tm_owner o[3] = { { .tgid = 10, .start_ns = 1 },
					      { .tgid = 11, .start_ns = 2 },
					      { .tgid = 12, .start_ns = 3 } };
	struct expiry e = { 0 };
	struct tm_record *r[3];
	struct tm_store s;
	uint64_t last = 0;
	bool ok = false;

	if (!ASSERT_EQ(tm_store_init(&s), 0))
		return false;
	for (int i = 0; i < 3; i++)
		r[i] = tm_store_process(&s, &o[i], 0);
	if (!ASSERT_TRUE(r[0] && r[1] && r[2]))
		goto out;
	tm_store_exit(&s, &o[0], true, 0, 100 * SEC, 60 * SEC); /* 160 */
	tm_store_exit(&s, &o[1], true, 0, 101 * SEC, 10 * SEC); /* 111 */
	tm_store_exit(&s, &o[2], true, 0, 102 * SEC, 60 * SEC); /* 162 */
	tm_list_each(&s.expiring, x) {
		ASSERT_TRUE(tm_store_rec_on(x, expiring)->expire_ns >= last);
		last = tm_store_rec_on(x, expiring)->expire_ns;
	}
	ASSERT_TRUE(s.expiring.next == &r[1]->expiring);
	ASSERT_TRUE(s.expiring.prev == &r[2]->expiring);
	/* Only the records whose time is up are looked at. */
	tm_store_expire(&s, 111 * SEC, drain, forget, &e);
	ASSERT_EQ(e.drained, 1);
	ASSERT_EQ(e.last_forgotten.tgid, 11);
	ASSERT_EQ(s.count, 2);
	tm_store_expire(&s, 161 * SEC, drain, forget, &e);
	ASSERT_EQ(e.drained, 2);
	ASSERT_EQ(e.last_forgotten.tgid, 10);
	ASSERT_TRUE(s.expiring.next == &r[2]->expiring);
	ASSERT_EQ(s.count, 1);
	ok = true;
out:
	tm_store_free(&s);
	return ok;
}

static size_t list_len(const struct tm_list *head)
{
	size_t n = 0;

	tm_list_each(head, x)
		n++;
	return n;
}

/* What the next frame has to look at: records changed (once each however
 * often they changed), those with traffic, processes still unresolved. */
TM_TEST(store_lists_follow_changes)
{
	struct tm_class tx = sock_class(&owner_a, 0, TM_DIR_EGRESS, TM_L4_UDP, TM_FAMILY_IPV4);
	struct tm_counter_val d = val(1, 100, 72);
	struct tm_record *a, *b, *bucket;
	struct tm_rec_key bk = { .kind = TM_KIND_FORWARDED };
	struct tm_store s;
	bool ok = false;

	if (!ASSERT_EQ(tm_store_init(&s), 0))
		return false;
	a = tm_store_process(&s, &owner_a, 0);
	b = tm_store_process(&s, &owner_b, 0);
	bucket = tm_store_get(&s, &bk);
	if (!ASSERT_TRUE(a && b && bucket))
		goto out;
	ASSERT_EQ(list_len(&s.dirty), 3);      /* new: to be encoded */
	ASSERT_EQ(list_len(&s.unresolved), 2); /* processes only */
	ASSERT_EQ(s.reported.len, 0);          /* no traffic yet */
	/* The encoder takes them off; a's counters move twice, b's not. */
	while (!tm_list_empty(&s.dirty))
		tm_list_del(s.dirty.next);
	tm_store_add(&s, a, &tx, &d);
	tm_store_add(&s, a, &tx, &d);
	ASSERT_EQ(list_len(&s.dirty), 1);
	ASSERT_TRUE(s.dirty.next == &a->dirty);
	ASSERT_TRUE(!tm_list_linked(&b->dirty));
	ASSERT_EQ(s.reported.len, 1);
	ASSERT_EQ(a->reported, 1);
	/* Freed: off every list. */
	tm_store_exit(&s, &owner_a, true, 0, SEC, SEC);
	ASSERT_EQ(list_len(&s.expiring), 1);
	tm_store_expire(&s, 2 * SEC, drain, forget, &(struct expiry){ 0 });
	ASSERT_EQ(list_len(&s.dirty), 0);
	ASSERT_EQ(list_len(&s.expiring), 0);
	ASSERT_EQ(list_len(&s.unresolved), 1);
	ASSERT_EQ(s.reported.len, 0);
	ok = true;
out:
	tm_store_free(&s);
	return ok;
}

TM_TEST(store_exit_before_counters)
{
	struct tm_record *rec;
	struct tm_store s;
	bool ok = false;

	if (!ASSERT_EQ(tm_store_init(&s), 0))
		return false;
	/* An exit inferred (no code) for an owner never counted: its final
	 * record exists, exited, without an exit code. */
	tm_store_exit(&s, &owner_a, false, 0, 5 * SEC, SEC);
	rec = tm_store_process(&s, &owner_a, 0);
	if (ASSERT_TRUE(rec)) {
		ASSERT_TRUE(rec->exited);
		ASSERT_TRUE(!rec->has_exit_code);
		ASSERT_EQ(rec->expire_ns, 6 * SEC);
		ASSERT_EQ(s.count, 1);
		ok = true;
	}
	tm_store_free(&s);
	return ok;
}

TM_TEST(store_grows)
{
	enum { N = 5000 }; /* past the first 1024 buckets, twice */
	struct tm_store s;
	size_t seen = 0;
	bool ok = true;

	if (!ASSERT_EQ(tm_store_init(&s), 0))
		return false;
	for (__u32 i = 0; i < N && ok; i++) {
		struct tm_owner o = { .tgid = 100 + i, .start_ns = i * 7 };

		ok = ASSERT_TRUE(tm_store_process(&s, &o, i % 3));
	}
	for (__u32 i = 0; i < N && ok; i++) {
		struct tm_rec_key k = { .owner = { .tgid = 100 + i, .start_ns = i * 7 },
					.exec_seq = i % 3, .kind = TM_KIND_PROCESS };
		struct tm_record *rec = tm_store_find(&s, &k);

		ok = ASSERT_TRUE(rec && rec->key.owner.tgid == 100 + i);
	}
	tm_store_each(&s, rec, i)
		seen += rec->key.kind == TM_KIND_PROCESS;
	ASSERT_EQ(seen, N);
	ASSERT_EQ(s.count, N);
	ASSERT_TRUE(s.records.n_b >= N);
	tm_store_free(&s);
	return ok;
}

TM_TEST(store_interface_names)
{
	struct tm_store s;
	uint64_t gen;

	if (!ASSERT_EQ(tm_store_init(&s), 0))
		return false;
	ASSERT_TRUE(!tm_store_if_name(&s, 1, 2));
	tm_store_if_name_set(&s, 1, 2, "eth0");
	gen = s.names_gen;
	tm_store_if_name_set(&s, 1, 2, "eth0"); /* the same: no new generation */
	ASSERT_EQ(s.names_gen, gen);
	ASSERT_STREQ(tm_store_if_name(&s, 1, 2), "eth0");
	tm_store_if_name_set(&s, 1, 2, "wan\xff"); /* a reused ifindex, a bad byte */
	ASSERT_TRUE(s.names_gen > gen);
	ASSERT_STREQ(tm_store_if_name(&s, 1, 2), "wan?");
	ASSERT_TRUE(!tm_store_if_name(&s, 2, 2)); /* per network namespace */
	tm_store_free(&s);
	return true;
}

TM_TEST(store_val_arithmetic)
{
	struct tm_counter_val a = { 1, 2, 3, 4, 5 }, b = { 10, 20, 30, 40, 50 }, d;

	tm_store_val_add(&a, &b);
	ASSERT_TRUE(a.packets == 11 && a.bytes == 22 && a.payload_bytes == 33 &&
		    a.retrans_packets == 44 && a.retrans_bytes == 55);
	tm_store_val_sub(&d, &a, &b);
	ASSERT_TRUE(d.packets == 1 && d.bytes == 2 && d.payload_bytes == 3 &&
		    d.retrans_packets == 4 && d.retrans_bytes == 5);
	/* Per-CPU sums wrap: a delta of a counter that went back is modulo 2^64. */
	tm_store_val_sub(&d, &b, &a);
	ASSERT_TRUE(d.packets == (__u64)-1);
	return true;
}

/* Records' memory (tm_slab): zeroed, 64-byte aligned, never two alike, a
 * free one taken again, more than a chunk's worth, and every chunk given
 * back once its objects are free. */
TM_TEST(store_slab)
{
	size_t per = (TM_SLAB_CHUNK - 64 - 15 * 64) / 1984, n = 2 * per + 3;
	struct tm_slab sl = { 0 };
	uint8_t **v = calloc(n, sizeof(*v));
	bool ok = false;

	tm_slab_init(&sl, 1976); /* a record's size, rounded up to 1984 */
	if (!ASSERT_TRUE(v) || !ASSERT_EQ(sl.size, 1984))
		goto out;
	for (size_t i = 0; i < n; i++) {
		v[i] = tm_slab_alloc(&sl);
		if (!ASSERT_TRUE(v[i]))
			goto out;
		ASSERT_EQ((uintptr_t)v[i] % 64, 0);
		ASSERT_TRUE(v[i][0] == 0 && v[i][1983] == 0);
		memset(v[i], 0xa5, 1984); /* an overlap would show below */
	}
	ASSERT_EQ(sl.chunks, 3);
	for (size_t i = 0; i < n; i++)
		ASSERT_TRUE(v[i][0] == 0xa5 && v[i][1983] == 0xa5);
	/* one freed in a full chunk: taken again, zeroed */
	tm_slab_free(&sl, v[5]);
	v[5] = tm_slab_alloc(&sl);
	if (!ASSERT_TRUE(v[5]))
		goto out;
	ASSERT_TRUE(v[5][0] == 0 && v[5][1983] == 0);
	ASSERT_EQ(sl.chunks, 3);
	for (size_t i = 0; i < n; i++) {
		tm_slab_free(&sl, v[i]);
		v[i] = NULL;
	}
	ASSERT_EQ(sl.chunks, 0);
	ok = true;
out:
	for (size_t i = 0; v && i < n; i++)
		tm_slab_free(&sl, v[i]);
	free(v);
	return ok;
}

/* The store's records on the slab: expired records give their chunks back. */
TM_TEST(store_records_memory_given_back)
{
	struct expiry e = { 0 };
	struct tm_store s;
	size_t n = 3000;
	bool ok = false;

	if (!ASSERT_EQ(tm_store_init(&s), 0))
		return false;
	for (size_t i = 0; i < n; i++) {
		struct tm_owner o = { .tgid = 10000 + (uint32_t)i, .start_ns = i };

		if (!ASSERT_TRUE(tm_store_process(&s, &o, 0)))
			goto out;
		tm_store_exit(&s, &o, true, 0, 0, SEC);
	}
	ASSERT_TRUE(s.rec_mem.chunks >= 2);
	tm_store_expire(&s, 2 * SEC, drain, forget, &e);
	ASSERT_EQ(e.forgotten, n);
	ASSERT_EQ(s.count, 0);
	ASSERT_EQ(s.rec_mem.chunks, 0);
	ok = true;
out:
	tm_store_free(&s);
	return ok;
}
