// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The frame encoder (collector/encode.c): the field numbers it writes by
 * hand against the schema, the wire layout of a Frame (header fields, then
 * each record's cached bytes as field 4), frames cut into parts with
 * more_parts and put together again, counters_id in every part, and the
 * per-record cache (a record is packed again only when it moved).
 */
#include <stdlib.h>

#include "encode.h"
#include "frame.h"
#include "store.h"
#include "taskmeter.fields.h"
#include "tm_test.h"

static const struct tm_owner owners[] = {
	{ .tgid = 501, .start_ns = 11 }, { .tgid = 502, .start_ns = 12 }, { .tgid = 503, .start_ns = 13 },
};

/* A comm as task_struct has it: TM_COMM_LEN bytes. */
static const char renamed[TM_COMM_LEN] = "renamed";

struct fx {
	struct tm_store s;
	struct tm_encoder e;
	Taskmeter__CollectorStats stats;
	Taskmeter__Frame hdr;
	struct tm_if_view view;
};

/* n processes, each with one socket-layer class that sent 1000 + i bytes,
 * the first also with XDP traffic on interface 3. */
static bool fx_init(struct fx *f, size_t n, size_t part_max)
{
	static const char comm[TM_COMM_LEN] = "worker"; /* as task_struct has it */

	memset(f, 0, sizeof(*f));
	if (!ASSERT_EQ(tm_store_init(&f->s), 0))
		return false;
	if (!ASSERT_EQ(tm_encoder_init(&f->e, &f->s, part_max), 0))
		return false;
	for (size_t i = 0; i < n; i++) {
		struct tm_class k = { .owner = owners[i], .layer = TM_LAYER_CGROUP_SKB,
				      .dir = TM_DIR_EGRESS, .l4 = TM_L4_TCP, .family = TM_FAMILY_IPV4 };
		struct tm_counter_val d = { .packets = 1, .bytes = 1000 + i, .payload_bytes = 948 + i };
		struct tm_record *rec = tm_store_record_of(&f->s, TM_KIND_PROCESS, &k);

		if (!ASSERT_TRUE(rec))
			return false;
		tm_store_add(&f->s, rec, &k, &d);
		tm_meta_set_comm(&rec->meta, comm);
		tm_meta_set_argv(&rec->meta, "worker\0--fast", 14, false);
		rec->meta.source = TM_SOURCE_TASK_WORK;
		if (i == 0) {
			k.layer = TM_LAYER_XDP;
			k.dir = TM_DIR_INGRESS;
			k.netns = 77;
			k.ifindex = 3;
			tm_store_add(&f->s, rec, &k, &d);
		}
	}
	tm_store_if_name_set(&f->s, 77, 3, "veth0");
	f->view = (struct tm_if_view){ .netns = 77, .ifindex = 3, .name = "veth0", .xdp = "skb",
				       .tc = "tcx" };
	taskmeter__collector_stats__init(&f->stats);
	f->stats.has_records_live = 1;
	f->stats.records_live = n;
	taskmeter__frame__init(&f->hdr);
	f->hdr.has_seq = f->hdr.has_counters_id = 1;
	f->hdr.seq = 7;
	f->hdr.counters_id = 0x1234567890abcdefull;
	f->hdr.hostname = "host";
	f->hdr.stats = &f->stats;
	return true;
}

static void fx_free(struct fx *f)
{
	tm_encoder_free(&f->e);
	tm_store_free(&f->s);
}

static int encode(struct fx *f)
{
	int err = tm_encode_records(&f->e, &f->s);

	return err ? err : tm_encode_frame(&f->e, &f->s, &f->hdr, &f->view, 1);
}

static struct tm_buf *part(const struct fx *f, size_t i)
{
	return ((struct tm_buf **)f->e.parts.data)[i];
}

static Taskmeter__Frame *unpack(const struct tm_buf *b)
{
	return taskmeter__frame__unpack(NULL, b->len, b->data);
}

/* The top-level fields of a packed message, in order: numbers[] and, for
 * varints, their values. Returns how many, or -1 if it does not parse. */
static int fields_of(const struct tm_buf *b, uint32_t *numbers, uint64_t *values, int max)
{
	size_t at = 0, used;
	uint64_t tag, v;
	int n = 0;

	while (at < b->len && n < max) {
		if (tm_frame_varint_decode(b->data + at, b->len - at, &tag, &used))
			return -1;
		at += used;
		numbers[n] = (uint32_t)(tag >> 3);
		values[n] = 0;
		switch (tag & 7) {
		case 0:
			if (tm_frame_varint_decode(b->data + at, b->len - at, &v, &used))
				return -1;
			values[n] = v;
			at += used;
			break;
		case 2:
			if (tm_frame_varint_decode(b->data + at, b->len - at, &v, &used) ||
			    v > b->len - at - used)
				return -1;
			at += used + v;
			break;
		default:
			return -1; /* a Frame has no fixed-width fields */
		}
		n++;
	}
	return at == b->len ? n : -1;
}

TM_TEST(encode_field_numbers_match_schema)
{
	static const struct {
		const char *name;
		unsigned int number;
	} hand[] = {
		{ "records", TM_PB_FRAME_RECORDS },
		{ "frames_dropped", TM_PB_FRAME_FRAMES_DROPPED },
		{ "more_parts", TM_PB_FRAME_MORE_PARTS },
		{ "counters_id", TM_PB_FRAME_COUNTERS_ID },
	};

	/* proto/fields.awk's reading of the schema against protoc-c's. */
	for (size_t i = 0; i < sizeof(hand) / sizeof(hand[0]); i++) {
		const ProtobufCFieldDescriptor *fd =
			protobuf_c_message_descriptor_get_field_by_name(&taskmeter__frame__descriptor,
									hand[i].name);

		if (ASSERT_TRUE(fd))
			ASSERT_EQ(fd->id, hand[i].number);
	}
	return true;
}

TM_TEST(encode_frame_wire_layout)
{
	uint32_t num[64];
	uint64_t val[64];
	int n, records = 0, first_record = -1, last_header = -1;
	struct fx f;
	bool ok = false;

	if (!fx_init(&f, 2, 1 << 20) || !ASSERT_EQ(encode(&f), 0))
		goto out;
	if (!ASSERT_EQ(f.e.parts.len, 1))
		goto out;
	n = fields_of(part(&f, 0), num, val, 64);
	if (!ASSERT_TRUE(n > 0))
		goto out;
	for (int i = 0; i < n; i++) {
		if (num[i] == TM_PB_FRAME_RECORDS) {
			records++;
			if (first_record < 0)
				first_record = i;
		} else {
			last_header = i;
		}
		/* frames_dropped is the export socket's, per subscriber; one part:
		 * no more_parts */
		ASSERT_TRUE(num[i] != TM_PB_FRAME_FRAMES_DROPPED && num[i] != TM_PB_FRAME_MORE_PARTS);
		if (num[i] == TM_PB_FRAME_COUNTERS_ID)
			ASSERT_TRUE(val[i] == 0x1234567890abcdefull);
		if (num[i] == TM_PB_FRAME_SEQ)
			ASSERT_EQ(val[i], 7);
	}
	ASSERT_EQ(records, 2);
	/* The header is packed first, the cached records are appended. */
	ASSERT_TRUE(last_header >= 0 && last_header < first_record);
	ok = true;
out:
	fx_free(&f);
	return ok;
}

/* The record of pid in m (NULL: not in it). */
static Taskmeter__ProcessRecord *find_pid(Taskmeter__Frame *m, uint32_t pid)
{
	for (size_t i = 0; m && i < m->n_records; i++)
		if (m->records[i]->pid == pid)
			return m->records[i];
	return NULL;
}

TM_TEST(encode_frame_decodes)
{
	Taskmeter__ProcessRecord *r = NULL;
	Taskmeter__Frame *m = NULL;
	struct fx f;
	bool ok = false;

	if (!fx_init(&f, 2, 1 << 20) || !ASSERT_EQ(encode(&f), 0) || !ASSERT_EQ(f.e.parts.len, 1))
		goto out;
	m = unpack(part(&f, 0));
	if (!ASSERT_TRUE(m) || !ASSERT_EQ(m->n_records, 2))
		goto out;
	ASSERT_EQ(m->seq, 7);
	ASSERT_TRUE(m->has_counters_id && m->counters_id == 0x1234567890abcdefull);
	ASSERT_TRUE(!m->has_more_parts || !m->more_parts);
	ASSERT_STREQ(m->hostname, "host");
	ASSERT_TRUE(m->stats && m->stats->records_live == 2);
	if (ASSERT_EQ(m->n_interfaces, 1)) {
		ASSERT_STREQ(m->interfaces[0]->name, "veth0");
		ASSERT_STREQ(m->interfaces[0]->xdp_mode, "skb");
		ASSERT_EQ(m->interfaces[0]->rx_records->bytes, 1000);
	}
	r = find_pid(m, owners[0].tgid);
	if (!ASSERT_TRUE(r))
		goto out;
	ASSERT_EQ(r->kind, TASKMETER__RECORD_KIND__PROCESS);
	ASSERT_EQ(r->start_time_ns, owners[0].start_ns);
	ASSERT_STREQ(r->comm, "worker");
	if (ASSERT_EQ(r->n_argv, 2))
		ASSERT_STREQ(r->argv[1], "--fast");
	ASSERT_EQ(r->metadata_source, TASKMETER__METADATA_SOURCE__SOURCE_TASK_WORK);
	/* socket layer first, then the interface layer; C enums + 1 on the wire */
	if (ASSERT_EQ(r->n_traffic, 2)) {
		ASSERT_EQ(r->traffic[0]->layer, TASKMETER__LAYER__CGROUP_SKB);
		ASSERT_EQ(r->traffic[0]->direction, TASKMETER__DIRECTION__EGRESS);
		ASSERT_EQ(r->traffic[0]->protocol, TASKMETER__L4_PROTOCOL__TCP);
		ASSERT_EQ(r->traffic[0]->family, TASKMETER__IP_FAMILY__IPV4);
		ASSERT_EQ(r->traffic[1]->layer, TASKMETER__LAYER__XDP);
		ASSERT_EQ(r->traffic[1]->ifindex, 3);
		ASSERT_STREQ(r->traffic[1]->ifname, "veth0");
	}
	/* first frame: the delta is the whole total */
	ASSERT_EQ(r->tx_total->bytes, 1000);
	ASSERT_EQ(r->tx_delta->bytes, 1000);
	ASSERT_EQ(r->tx_total->payload_bytes, 948);
	ASSERT_EQ(r->rx_total->bytes, 0); /* rx_total sums the socket layer only */
	ok = true;
out:
	if (m)
		taskmeter__frame__free_unpacked(m, NULL);
	fx_free(&f);
	return ok;
}

TM_TEST(encode_frame_in_parts)
{
	Taskmeter__Frame *whole = NULL;
	struct tm_frame_parts fp;
	struct fx f;
	bool ok = false;
	int got = 0;

	tm_frame_parts_init(&fp);
	/* a byte per message: each record gets a message of its own */
	if (!fx_init(&f, 3, 1) || !ASSERT_EQ(encode(&f), 0) || !ASSERT_EQ(f.e.parts.len, 3))
		goto out;
	for (size_t i = 0; i < f.e.parts.len; i++) {
		Taskmeter__Frame *m = unpack(part(&f, i));
		bool last = i + 1 == f.e.parts.len;

		if (!ASSERT_TRUE(m))
			goto out;
		ASSERT_EQ(m->seq, 7);
		ASSERT_EQ(m->n_records, 1);
		ASSERT_TRUE(m->has_counters_id && m->counters_id == 0x1234567890abcdefull);
		ASSERT_EQ(m->has_more_parts && m->more_parts, !last);
		/* stats and interfaces come with the last part only */
		ASSERT_EQ(m->stats != NULL, last);
		ASSERT_EQ(m->n_interfaces, last ? 1 : 0);
		got = tm_frame_parts_add(&fp, m, &whole); /* takes m */
		ASSERT_EQ(got, last ? 1 : 0);
	}
	if (!ASSERT_EQ(got, 1))
		goto out;
	ASSERT_EQ(whole->n_records, 3);
	ASSERT_TRUE(whole->stats && whole->stats->records_live == 3);
	ASSERT_EQ(whole->n_interfaces, 1);
	ok = true;
out:
	tm_frame_parts_free(&fp);
	fx_free(&f);
	return ok;
}

TM_TEST(encode_cache_follows_changes)
{
	struct tm_class k = { .owner = owners[1], .layer = TM_LAYER_CGROUP_SKB,
			      .dir = TM_DIR_EGRESS, .l4 = TM_L4_TCP, .family = TM_FAMILY_IPV4 };
	struct tm_counter_val d = { .packets = 1, .bytes = 10 };
	Taskmeter__Frame *m = NULL;
	struct fx f;
	bool ok = false;

	if (!fx_init(&f, 3, 1 << 20) || !ASSERT_EQ(encode(&f), 0))
		goto out;
	ASSERT_EQ(f.e.encoded, 3);
	/* Their deltas were not 0: packed again, with deltas of 0 now. */
	if (!ASSERT_EQ(encode(&f), 0))
		goto out;
	ASSERT_EQ(f.e.encoded, 3);
	m = unpack(part(&f, 0));
	if (ASSERT_TRUE(m) && ASSERT_EQ(m->n_records, 3))
		for (size_t i = 0; i < m->n_records; i++)
			ASSERT_EQ(m->records[i]->tx_delta->bytes, 0);
	/* Nothing moved: the cached bytes serve. */
	if (!ASSERT_EQ(encode(&f), 0))
		goto out;
	ASSERT_EQ(f.e.encoded, 0);
	ASSERT_EQ(f.e.records, 3);
	/* One record moved: only it is packed. */
	tm_store_add(&f.s, tm_store_process(&f.s, &owners[1], 0), &k, &d);
	if (!ASSERT_EQ(encode(&f), 0))
		goto out;
	ASSERT_EQ(f.e.encoded, 1);
	ok = true;
out:
	if (m)
		taskmeter__frame__free_unpacked(m, NULL);
	fx_free(&f);
	return ok;
}

/* The encoder looks at the records the store marked (s->dirty) only: one
 * changed twice is packed once, the unchanged are not packed, and a
 * record whose first counts come after tm_encode_records() waits for the
 * next frame. */
TM_TEST(encode_packs_what_changed)
{
	struct tm_class k = { .owner = owners[2], .layer = TM_LAYER_CGROUP_SKB,
			      .dir = TM_DIR_INGRESS, .l4 = TM_L4_UDP, .family = TM_FAMILY_IPV6 };
	struct tm_counter_val d = { .packets = 2, .bytes = 20 };
	struct tm_owner late = { .tgid = 999, .start_ns = 9 };
	struct tm_record *rec, *other, *fresh;
	struct fx f;
	bool ok = false;

	/* two frames: packed, then packed with deltas of 0 */
	if (!fx_init(&f, 3, 1 << 20) || !ASSERT_EQ(encode(&f), 0) || !ASSERT_EQ(encode(&f), 0))
		goto out;
	ASSERT_TRUE(tm_list_empty(&f.s.dirty));
	rec = tm_store_process(&f.s, &owners[2], 0);
	other = tm_store_process(&f.s, &owners[0], 0);
	if (!ASSERT_TRUE(rec && other))
		goto out;
	tm_store_add(&f.s, rec, &k, &d);
	tm_store_add(&f.s, rec, &k, &d);
	other->changed = true; /* not through tm_store_changed: not looked at */
	if (!ASSERT_EQ(encode(&f), 0))
		goto out;
	ASSERT_EQ(f.e.encoded, 1);
	ASSERT_EQ(f.e.records, 3);
	/* its delta was not 0: once more, then it is off the list */
	ASSERT_TRUE(tm_list_linked(&rec->dirty));
	if (!ASSERT_EQ(encode(&f), 0))
		goto out;
	ASSERT_EQ(f.e.encoded, 1);
	ASSERT_TRUE(!tm_list_linked(&rec->dirty));
	/* metadata alone marks it too */
	tm_meta_set_comm(&rec->meta, renamed);
	tm_store_changed(&f.s, rec);
	if (!ASSERT_EQ(encode(&f), 0))
		goto out;
	ASSERT_EQ(f.e.encoded, 1);
	/* first counts between the records' packing and the frame */
	if (!ASSERT_EQ(tm_encode_records(&f.e, &f.s), 0))
		goto out;
	k.owner = late;
	fresh = tm_store_record_of(&f.s, TM_KIND_PROCESS, &k);
	if (!ASSERT_TRUE(fresh))
		goto out;
	tm_store_add(&f.s, fresh, &k, &d);
	if (!ASSERT_EQ(tm_encode_frame(&f.e, &f.s, &f.hdr, &f.view, 1), 0))
		goto out;
	ASSERT_EQ(f.e.records, 3);
	if (!ASSERT_EQ(encode(&f), 0))
		goto out;
	ASSERT_EQ(f.e.encoded, 1);
	ASSERT_EQ(f.e.records, 4);
	ok = true;
out:
	fx_free(&f);
	return ok;
}

/* A record's bytes are who it is, packed when that moves, then its
 * traffic: counters alone leave the first part as it was, and the two
 * decode as one record. */
TM_TEST(encode_who_apart_from_traffic)
{
	struct tm_class k = { .owner = owners[0], .layer = TM_LAYER_CGROUP_SKB,
			      .dir = TM_DIR_EGRESS, .l4 = TM_L4_TCP, .family = TM_FAMILY_IPV4 };
	struct tm_counter_val d = { .packets = 1, .bytes = 5 };
	Taskmeter__Frame *m = NULL;
	struct tm_record *rec;
	struct fx f;
	bool ok = false;

	if (!fx_init(&f, 1, 1 << 20) || !ASSERT_EQ(encode(&f), 0))
		goto out;
	rec = tm_store_process(&f.s, &owners[0], 0);
	/* behind the store's back: not packed again until marked */
	tm_meta_set_comm(&rec->meta, renamed);
	tm_store_add(&f.s, rec, &k, &d);
	if (!ASSERT_EQ(encode(&f), 0))
		goto out;
	m = unpack(part(&f, 0));
	if (!ASSERT_TRUE(m) || !ASSERT_EQ(m->n_records, 1))
		goto out;
	ASSERT_TRUE(m->records[0]->comm && !strcmp(m->records[0]->comm, "worker"));
	ASSERT_EQ(m->records[0]->pid, owners[0].tgid);
	ASSERT_EQ(m->records[0]->n_argv, 2);
	ASSERT_EQ(m->records[0]->tx_total->bytes, 1005);
	ASSERT_EQ(m->records[0]->tx_delta->bytes, 5);
	taskmeter__frame__free_unpacked(m, NULL);
	/* marked: who it is is packed again, its counters stay */
	tm_store_changed(&f.s, rec);
	m = NULL;
	if (!ASSERT_EQ(encode(&f), 0))
		goto out;
	m = unpack(part(&f, 0));
	if (!ASSERT_TRUE(m) || !ASSERT_EQ(m->n_records, 1))
		goto out;
	ASSERT_TRUE(m->records[0]->comm && !strcmp(m->records[0]->comm, "renamed"));
	ASSERT_EQ(m->records[0]->tx_total->bytes, 1005);
	ASSERT_EQ(m->records[0]->tx_delta->bytes, 0);
	ASSERT_EQ(m->records[0]->n_traffic, 2);
	ok = true;
out:
	if (m)
		taskmeter__frame__free_unpacked(m, NULL);
	fx_free(&f);
	return ok;
}

static bool keep(void *ctx, struct tm_record *rec)
{
	(void)ctx;
	(void)rec;
	return false;
}

static void forget(void *ctx, const struct tm_owner *o)
{
	(void)ctx;
	(void)o;
}

/*
 * Frames after a record moved and another was freed: the one packed anew,
 * the unchanged ones as they were though the frame is cut elsewhere now,
 * the freed one gone, and a frame in which nothing moved is the last one
 * again, byte for byte.
 */
TM_TEST(encode_frames_after_a_free)
{
	struct tm_class k = { .owner = owners[1], .layer = TM_LAYER_CGROUP_SKB,
			      .dir = TM_DIR_EGRESS, .l4 = TM_L4_TCP, .family = TM_FAMILY_IPV4 };
	struct tm_counter_val d = { .packets = 3, .bytes = 30 };
	Taskmeter__Frame *m = NULL;
	Taskmeter__ProcessRecord *r;
	struct tm_buf *last = NULL;
	struct fx f;
	bool ok = false;

	/* a message per record, then deltas of 0 */
	if (!fx_init(&f, 3, 1) || !ASSERT_EQ(encode(&f), 0) || !ASSERT_EQ(encode(&f), 0) ||
	    !ASSERT_EQ(f.e.parts.len, 3))
		goto out;
	tm_store_add(&f.s, tm_store_process(&f.s, &owners[1], 0), &k, &d);
	tm_store_exit(&f.s, &owners[0], true, 0, 0, 0);
	tm_store_expire(&f.s, 1, keep, forget, NULL);
	if (!ASSERT_EQ(f.s.count, 2))
		goto out;
	f.e.part_max = 1 << 20; /* one message now */
	if (!ASSERT_EQ(encode(&f), 0) || !ASSERT_EQ(f.e.parts.len, 1))
		goto out;
	ASSERT_EQ(f.e.encoded, 1);
	ASSERT_EQ(f.e.records, 2);
	m = unpack(part(&f, 0));
	if (!ASSERT_TRUE(m) || !ASSERT_EQ(m->n_records, 2))
		goto out;
	ASSERT_TRUE(!find_pid(m, owners[0].tgid));
	r = find_pid(m, owners[1].tgid);
	if (ASSERT_TRUE(r)) {
		ASSERT_EQ(r->tx_total->bytes, 1001 + 30);
		ASSERT_EQ(r->tx_delta->bytes, 30);
		ASSERT_STREQ(r->comm, "worker");
	}
	r = find_pid(m, owners[2].tgid);
	if (ASSERT_TRUE(r)) {
		ASSERT_EQ(r->tx_total->bytes, 1002);
		ASSERT_EQ(r->tx_delta->bytes, 0);
		if (ASSERT_EQ(r->n_argv, 2))
			ASSERT_STREQ(r->argv[1], "--fast");
	}
	/* its delta back to 0, then nothing moves: the same frame again */
	if (!ASSERT_EQ(encode(&f), 0) || !ASSERT_EQ(f.e.encoded, 1))
		goto out;
	last = part(&f, 0);
	last->refs++;
	if (!ASSERT_EQ(encode(&f), 0) || !ASSERT_EQ(f.e.encoded, 0))
		goto out;
	ASSERT_TRUE(part(&f, 0) != last);
	ASSERT_TRUE(part(&f, 0)->len == last->len &&
		    !memcmp(part(&f, 0)->data, last->data, last->len));
	ok = true;
out:
	if (last)
		tm_buf_put(last);
	if (m)
		taskmeter__frame__free_unpacked(m, NULL);
	fx_free(&f);
	return ok;
}
