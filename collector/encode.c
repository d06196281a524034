// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Frame encoding (see encode.h). A Frame message is its header fields
 * followed by its records (field 4), each a length-delimited sub-message:
 * protobuf lets fields come in any order, so the cached bytes of unchanged
 * records are appended as they are. A record's own bytes are two messages
 * that decode as one (who it is, then its traffic): its counters move every
 * frame it sends, its metadata rarely.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "frame.h"
#include "taskmeter.fields.h"

#define TM_ARENA_CHUNK (64u << 10)
#define TM_WIRE_LEN 2

/* part_append() writes Frame.records' tag as one byte. */
_Static_assert(TM_PB_FRAME_RECORDS < 16, "the tag of Frame.records fits one byte");
/*
 * The wire contract consumers rely on (proto/taskmeter.proto's framing
 * notes, frames in parts, counting restarts): renumbering one of these in
 * the schema breaks every consumer built from the old one.
 */
_Static_assert(TM_PB_FRAME_RECORDS == 4 && TM_PB_FRAME_FRAMES_DROPPED == 6 &&
	       TM_PB_FRAME_MORE_PARTS == 10 && TM_PB_FRAME_COUNTERS_ID == 11,
	       "Frame field numbers are part of the wire format");

/* The C enums mirror the proto's (compared as ints: they are distinct types). */
#define TM_SAME(a, b) ((int)(a) == (int)(b))
_Static_assert(TM_SAME(TM_KIND_PROCESS, TASKMETER__RECORD_KIND__PROCESS) &&
	       TM_SAME(TM_KIND_UNATTRIBUTED, TASKMETER__RECORD_KIND__UNATTRIBUTED) &&
	       TM_SAME(TM_KIND_OVERFLOW, TASKMETER__RECORD_KIND__OVERFLOW) &&
	       TM_SAME(TM_KIND_FORWARDED, TASKMETER__RECORD_KIND__FORWARDED) &&
	       TM_SAME(TM_KIND_LOCAL_NO_OWNER, TASKMETER__RECORD_KIND__LOCAL_NO_OWNER) &&
	       TM_SAME(TM_KIND_NON_IP, TASKMETER__RECORD_KIND__NON_IP) &&
	       TM_SAME(TM_KIND_MALFORMED, TASKMETER__RECORD_KIND__MALFORMED),
	       "enum tm_kind mirrors RecordKind");
_Static_assert(TM_SAME(TM_SOURCE_NONE, TASKMETER__METADATA_SOURCE__SOURCE_NONE) &&
	       TM_SAME(TM_SOURCE_TASK_WORK, TASKMETER__METADATA_SOURCE__SOURCE_TASK_WORK) &&
	       TM_SAME(TM_SOURCE_PROCFS, TASKMETER__METADATA_SOURCE__SOURCE_PROCFS) &&
	       TM_SAME(TM_SOURCE_IN_PROCESS, TASKMETER__METADATA_SOURCE__SOURCE_IN_PROCESS) &&
	       TM_SAME(TM_SOURCE_AT_EXIT, TASKMETER__METADATA_SOURCE__SOURCE_AT_EXIT),
	       "enum tm_meta_source mirrors MetadataSource");
/* The kernel/user enums are the proto enums minus one. */
_Static_assert(TM_SAME(TM_DIR_INGRESS + 1, TASKMETER__DIRECTION__INGRESS) &&
	       TM_SAME(TM_DIR_EGRESS + 1, TASKMETER__DIRECTION__EGRESS), "tm_dir = Direction - 1");
_Static_assert(TM_SAME(TM_L4_TCP + 1, TASKMETER__L4_PROTOCOL__TCP) &&
	       TM_SAME(TM_L4_UDP + 1, TASKMETER__L4_PROTOCOL__UDP) &&
	       TM_SAME(TM_L4_ICMP + 1, TASKMETER__L4_PROTOCOL__ICMP) &&
	       TM_SAME(TM_L4_OTHER + 1, TASKMETER__L4_PROTOCOL__OTHER), "tm_l4 = L4Protocol - 1");
_Static_assert(TM_SAME(TM_FAMILY_IPV4 + 1, TASKMETER__IP_FAMILY__IPV4) &&
	       TM_SAME(TM_FAMILY_IPV6 + 1, TASKMETER__IP_FAMILY__IPV6) &&
	       TM_SAME(TM_FAMILY_NONE + 1, TASKMETER__IP_FAMILY__NOT_IP), "tm_family = IpFamily - 1");
_Static_assert(TM_SAME(TM_LAYER_CGROUP_SKB + 1, TASKMETER__LAYER__CGROUP_SKB) &&
	       TM_SAME(TM_LAYER_XDP + 1, TASKMETER__LAYER__XDP) && TM_SAME(TM_LAYER_TC + 1, TASKMETER__LAYER__TC) &&
	       TM_SAME(TM_LAYER_DROP + 1, TASKMETER__LAYER__DROP), "tm_layer = Layer - 1");

/* ---- scratch memory: reset per record, no allocation per field ---- */

struct tm_chunk {
	struct tm_chunk *next;
	size_t used, cap;
	char data[];
};

struct tm_arena {
	struct tm_chunk *head, *cur;
};

static void *arena_alloc(struct tm_arena *a, size_t n)
{
	struct tm_chunk *c = a->cur;

	n = (n + 7) & ~(size_t)7;
	while (c && c->used + n > c->cap)
		c = c->next;
	if (!c) {
		size_t cap = n > TM_ARENA_CHUNK ? n : TM_ARENA_CHUNK;

		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->used = 0;
		c->cap = cap;
		c->next = a->head;
		a->head = c;
	}
	a->cur = c;
	c->used += n;
	return c->data + c->used - n;
}

static void arena_reset(struct tm_arena *a)
{
	for (struct tm_chunk *c = a->head; c; c = c->next)
		c->used = 0;
	a->cur = a->head;
}

static void arena_free(struct tm_arena *a)
{
	struct tm_chunk *c, *next;

	for (c = a ? a->head : NULL; c; c = next) {
		next = c->next;
		free(c);
	}
	free(a);
}

/* ---- a record's cached encoding ---- */

struct tm_enc_cache {
	size_t len, cap;
	size_t who_len;         /* bytes[0..who_len): identity and metadata */
	bool had_delta;         /* its deltas were not all 0: encode again */
	uint8_t bytes[];
};

static void cache_free(void *enc)
{
	free(enc);
}

/* ---- one record ---- */

static Taskmeter__Counters *counters(struct tm_arena *a, const struct tm_counter_val *v,
				     bool payload)
{
	Taskmeter__Counters *c = arena_alloc(a, sizeof(*c));

	if (!c)
		return NULL;
	taskmeter__counters__init(c);
	c->has_packets = c->has_bytes = 1;
	c->has_payload_bytes = c->has_retrans_packets = c->has_retrans_bytes = payload;
	c->packets = v->packets;
	c->bytes = v->bytes;
	c->payload_bytes = v->payload_bytes;
	c->retrans_packets = v->retrans_packets;
	c->retrans_bytes = v->retrans_bytes;
	return c;
}

/* A slot's total and what it gained since the last frame, which it then
 * remembers as reported. */
static Taskmeter__Traffic *traffic(struct tm_arena *a, struct tm_slot *sl, unsigned int dir,
				   unsigned int l4, unsigned int family, unsigned int layer,
				   struct tm_counter_val *delta)
{
	Taskmeter__Traffic *t = arena_alloc(a, sizeof(*t));

	if (!t)
		return NULL;
	taskmeter__traffic__init(t);
	tm_store_val_sub(delta, &sl->total, &sl->reported);
	sl->reported = sl->total;
	t->has_direction = t->has_protocol = t->has_family = t->has_layer = 1;
	t->direction = (Taskmeter__Direction)(dir + 1);
	t->protocol = (Taskmeter__L4Protocol)(l4 + 1);
	t->family = (Taskmeter__IpFamily)(family + 1);
	t->layer = (Taskmeter__Layer)(layer + 1);
	t->total = counters(a, &sl->total, true);
	t->delta = counters(a, delta, true);
	return t->total && t->delta ? t : NULL;
}

static bool nonzero(const struct tm_counter_val *v)
{
	return v->packets || v->bytes || v->payload_bytes;
}

/* traffic[] (socket layer, then interface layer) and the rx/tx sums of
 * the socket layer. Returns -ENOMEM, else 0; *moved says a delta was set. */
static int build_traffic(struct tm_arena *a, const struct tm_store *s, struct tm_record *rec,
			 Taskmeter__ProcessRecord *pr, bool *moved)
{
	struct tm_counter_val sums[TM_DIR_MAX][2] = { 0 }, d; /* [dir][total, delta] */
	size_t n = (size_t)__builtin_popcount(rec->sock_used) + rec->n_ifs, k = 0;

	pr->traffic = arena_alloc(a, n * sizeof(*pr->traffic) + 1);
	if (!pr->traffic)
		return -ENOMEM;
	for (unsigned int i = 0; i < TM_SOCK_SLOTS; i++) {
		unsigned int dir = i / (TM_L4_MAX * TM_FAMILY_MAX);

		if (!(rec->sock_used & (1u << i)))
			continue;
		pr->traffic[k] = traffic(a, &rec->sock[i], dir, (i / TM_FAMILY_MAX) % TM_L4_MAX,
					 i % TM_FAMILY_MAX, TM_LAYER_CGROUP_SKB, &d);
		if (!pr->traffic[k++])
			return -ENOMEM;
		tm_store_val_add(&sums[dir][0], &rec->sock[i].total);
		tm_store_val_add(&sums[dir][1], &d);
		*moved |= nonzero(&d);
	}
	for (uint32_t i = 0; i < rec->n_ifs; i++, k++) {
		struct tm_ifslot *x = &rec->ifs[i];
		Taskmeter__Traffic *t = traffic(a, &x->s, x->key.dir, x->key.l4, x->key.family,
						x->key.layer, &d);

		if (!t)
			return -ENOMEM;
		t->has_ifindex = t->has_netns = x->key.ifindex != 0;
		t->ifindex = x->key.ifindex;
		t->netns = x->key.netns;
		t->ifname = (char *)tm_store_if_name(s, x->key.netns, (int)x->key.ifindex);
		pr->traffic[k] = t;
		*moved |= nonzero(&d);
	}
	pr->n_traffic = k;
	pr->rx_total = counters(a, &sums[TM_DIR_INGRESS][0], true);
	pr->tx_total = counters(a, &sums[TM_DIR_EGRESS][0], true);
	pr->rx_delta = counters(a, &sums[TM_DIR_INGRESS][1], true);
	pr->tx_delta = counters(a, &sums[TM_DIR_EGRESS][1], true);
	return pr->rx_total && pr->tx_total && pr->rx_delta && pr->tx_delta ? 0 : -ENOMEM;
}

/* argv[] and env[] point into the metadata's own buffers. */
static int build_strings(struct tm_arena *a, const struct tm_meta *m, Taskmeter__ProcessRecord *pr)
{
	size_t n = 0;

	for (size_t i = 0; i < m->argv_len; i++)
		n += m->argv[i] == '\0';
	pr->argv = arena_alloc(a, n * sizeof(*pr->argv) + 1);
	for (size_t i = 0; pr->argv && i < m->argv_len; i += strlen(m->argv + i) + 1)
		pr->argv[pr->n_argv++] = m->argv + i;
	pr->has_argv_truncated = m->argv != NULL;
	pr->argv_truncated = m->argv_truncated;
	n = 0;
	for (size_t i = 0; i < m->env_len; i++)
		n += m->env[i] == '\0';
	n /= 2;
	pr->env = arena_alloc(a, n * sizeof(*pr->env) + 1);
	for (const char *p = m->env; pr->env && pr->n_env < n; pr->n_env++) {
		Taskmeter__EnvVar *ev = arena_alloc(a, sizeof(*ev));

		if (!ev)
			return -ENOMEM;
		taskmeter__env_var__init(ev);
		ev->name = (char *)p;
		p += strlen(p) + 1;
		ev->value = (char *)p;
		p += strlen(p) + 1;
		pr->env[pr->n_env] = ev;
	}
	return pr->argv && pr->env ? 0 : -ENOMEM;
}

/* One line per metadata field: where a new field is added. */
static void build_meta(const struct tm_meta *m, Taskmeter__ProcessRecord *pr)
{
	const struct tm_container *c = &m->container;

	pr->has_metadata_source = 1;
	pr->metadata_source = (Taskmeter__MetadataSource)m->source;
	if (m->comm[0])
		pr->comm = (char *)m->comm;
	if (m->has_ids) {
		pr->has_uid = pr->has_gid = pr->has_ppid = pr->has_cgroup_id = 1;
		pr->uid = m->ids.uid;
		pr->gid = m->ids.gid;
		pr->ppid = m->ids.ppid;
		pr->cgroup_id = m->ids.cgroup_id;
	}
	pr->has_netns = (pr->netns = m->ids.netns) != 0;
	pr->has_mntns = (pr->mntns = m->ids.mntns) != 0;
	pr->has_pidns = (pr->pidns = m->ids.pidns) != 0;
	pr->cgroup_path = m->cgroup_path;
	if (c->id[0])
		pr->container_id = (char *)c->id;
	if (c->runtime[0])
		pr->container_runtime = (char *)c->runtime;
	if (c->pod_uid[0])
		pr->pod_uid = (char *)c->pod_uid;
	if (c->service[0])
		pr->service = (char *)c->service;
}

static void build_ids(const struct tm_record *rec, Taskmeter__ProcessRecord *pr)
{
	pr->has_kind = 1;
	pr->kind = (Taskmeter__RecordKind)rec->key.kind;
	if (rec->key.kind != TM_KIND_PROCESS)
		return;
	pr->has_pid = pr->has_start_time_ns = pr->has_exec_seq = 1;
	pr->pid = rec->key.owner.tgid;
	pr->start_time_ns = rec->key.owner.start_ns;
	pr->exec_seq = rec->key.exec_seq;
	pr->has_exited = 1;
	pr->exited = rec->exited;
	pr->has_exit_code = rec->exited && rec->has_exit_code;
	pr->exit_code = rec->exit_code;
}

static int cache_reserve(struct tm_record *rec, size_t len)
{
	struct tm_enc_cache *c = rec->enc;
	size_t cap = c ? c->cap : 0;

	if (len <= cap)
		return 0;
	cap = cap ? cap : 256;
	while (cap < len)
		cap *= 2;
	c = realloc(c, sizeof(*c) + cap);
	if (!c)
		return -ENOMEM;
	if (!rec->enc)
		memset(c, 0, sizeof(*c));
	c->cap = cap;
	rec->enc = c;
	return 0;
}

static bool cache_fresh(const struct tm_record *rec)
{
	const struct tm_enc_cache *c = rec->enc;

	return c && !rec->changed && !c->had_delta;
}

/* Who the record is: identity, exit state, metadata. */
static int build_who(struct tm_arena *a, const struct tm_record *rec, Taskmeter__ProcessRecord *pr)
{
	build_ids(rec, pr);
	if (rec->key.kind == TM_KIND_PROCESS)
		build_meta(&rec->meta, pr);
	return build_strings(a, &rec->meta, pr);
}

/*
 * Pack rec into its cache unless the cached bytes still say the same. The
 * bytes are two ProcessRecord messages back to back, which protobuf reads
 * as one (they set no field in common): who the record is, packed again
 * only when that moved (rec->meta_changed), then its traffic.
 */
static int encode_record(struct tm_encoder *e, const struct tm_store *s, struct tm_record *rec)
{
	Taskmeter__ProcessRecord who = TASKMETER__PROCESS_RECORD__INIT;
	Taskmeter__ProcessRecord traffic = TASKMETER__PROCESS_RECORD__INIT;
	bool moved = false, repack_who = !rec->enc || rec->meta_changed;
	struct tm_enc_cache *c;
	size_t who_len;
	int err;

	if (cache_fresh(rec))
		return 0;
	arena_reset(e->arena);
	err = build_traffic(e->arena, s, rec, &traffic, &moved);
	if (!err && repack_who)
		err = build_who(e->arena, rec, &who);
	if (err)
		return err;
	who_len = repack_who ? taskmeter__process_record__get_packed_size(&who)
			     : ((struct tm_enc_cache *)rec->enc)->who_len;
	err = cache_reserve(rec, who_len + taskmeter__process_record__get_packed_size(&traffic));
	if (err)
		return err;
	c = rec->enc;
	if (repack_who)
		c->who_len = taskmeter__process_record__pack(&who, c->bytes);
	c->len = c->who_len + taskmeter__process_record__pack(&traffic, c->bytes + c->who_len);
	c->had_delta = moved;
	rec->changed = rec->meta_changed = false;
	e->encoded++;
	return 0;
}

/* ---- the frame ---- */

static Taskmeter__Interface *build_iface(struct tm_arena *a, struct tm_store *s,
					 const struct tm_if_view *v)
{
	Taskmeter__Interface *m = arena_alloc(a, sizeof(*m));
	struct tm_if_total *t = tm_store_if_total(s, (__u32)v->netns, (__u32)v->ifindex);

	if (!m || !t)
		return NULL;
	taskmeter__interface__init(m);
	m->has_netns = m->has_ifindex = 1;
	m->netns = v->netns;
	m->ifindex = (uint32_t)v->ifindex;
	m->name = (char *)tm_store_if_name(s, v->netns, v->ifindex);
	m->xdp_mode = (char *)v->xdp;
	m->tc_mode = (char *)v->tc;
	m->rx_records = counters(a, &t->dir[TM_DIR_INGRESS], true);
	m->tx_records = counters(a, &t->dir[TM_DIR_EGRESS], true);
	m->rx_kernel = counters(a, &v->kernel[TM_DIR_INGRESS], false);
	m->tx_kernel = counters(a, &v->kernel[TM_DIR_EGRESS], false);
	if (!m->rx_records || !m->tx_records || !m->rx_kernel || !m->tx_kernel)
		return NULL;
	return m;
}

/* The header fields of one message of the frame, packed. */
static struct tm_buf *part_start(struct tm_encoder *e, struct tm_store *s,
				 const Taskmeter__Frame *hdr, const struct tm_if_view *views,
				 size_t n_views, bool last, size_t records_len)
{
	Taskmeter__Frame f = *hdr;
	struct tm_buf *b;
	size_t len;

	arena_reset(e->arena);
	f.n_records = 0;
	f.records = NULL;
	f.has_more_parts = f.more_parts = !last;
	f.n_interfaces = 0;
	if (!last) {
		f.stats = NULL;
	} else {
		f.interfaces = arena_alloc(e->arena, n_views * sizeof(*f.interfaces) + 1);
		for (size_t i = 0; f.interfaces && i < n_views; i++) {
			f.interfaces[i] = build_iface(e->arena, s, &views[i]);
			if (!f.interfaces[i])
				return NULL;
			f.n_interfaces++;
		}
		if (!f.interfaces)
			return NULL;
	}
	len = taskmeter__frame__get_packed_size(&f);
	b = tm_buf_new(len + records_len);
	if (b)
		b->len = taskmeter__frame__pack(&f, b->data);
	return b;
}

static size_t record_field_len(const struct tm_record *rec)
{
	const struct tm_enc_cache *c = rec->enc;
	uint8_t tmp[TM_VARINT_MAX];

	return 1 + tm_frame_varint_encode(c->len, tmp) + c->len;
}

static void part_append(struct tm_buf *b, const struct tm_record *rec)
{
	const struct tm_enc_cache *c = rec->enc;

	b->data[b->len++] = TM_PB_FRAME_RECORDS << 3 | TM_WIRE_LEN;
	b->len += tm_frame_varint_encode(c->len, b->data + b->len);
	memcpy(b->data + b->len, c->bytes, c->len);
	b->len += c->len;
}

static void parts_clear(struct tm_encoder *e)
{
	struct tm_buf **p = e->parts.data;

	for (size_t i = 0; i < e->parts.len; i++)
		tm_buf_put(p[i]);
	e->parts.len = 0;
}

/* Records [from, to) of s->reported into one message; the last message
 * also gets stats and interfaces. Those tm_encode_records() did not pack
 * (they got their first counts since) wait for the next frame. */
static int emit_part(struct tm_encoder *e, struct tm_store *s, const Taskmeter__Frame *hdr,
		     const struct tm_if_view *views, size_t n_views, size_t from, size_t to,
		     size_t len)
{
	struct tm_record **recs = s->reported.data;
	struct tm_buf *b, **slot;

	b = part_start(e, s, hdr, views, n_views, to == s->reported.len, len);
	slot = b ? tm_vec_push(&e->parts, sizeof(*slot)) : NULL;
	if (!slot) {
		tm_buf_put(b);
		return -ENOMEM;
	}
	*slot = b;
	for (size_t i = from; i < to; i++)
		if (recs[i]->enc)
			part_append(b, recs[i]);
	return 0;
}

/*
 * A frame reads every record's cache, through the record, which is most
 * of its cost once nothing moved: records and caches are scattered over
 * the heap and each is a miss. The array of records says which comes
 * next: their first lines are asked for TM_AHEAD records ahead, their
 * caches (known by then) half as far.
 */
#define TM_AHEAD 16

static void prefetch_ahead(struct tm_record *const *recs, size_t i, size_t n)
{
	if (i + TM_AHEAD < n)
		__builtin_prefetch(recs[i + TM_AHEAD]);
	if (i + TM_AHEAD / 2 < n && recs[i + TM_AHEAD / 2]->enc)
		__builtin_prefetch(recs[i + TM_AHEAD / 2]->enc);
}

/* Cut the frame's records into messages of at most part_max bytes of
 * records each (a record bigger than that gets a message of its own). */
static int emit_parts(struct tm_encoder *e, struct tm_store *s, const Taskmeter__Frame *hdr,
		      const struct tm_if_view *views, size_t n_views)
{
	struct tm_record **recs = s->reported.data;
	size_t from = 0, len = 0;
	int err;

	e->records = 0;
	for (size_t i = 0; i < s->reported.len; i++) {
		size_t n;

		prefetch_ahead(recs, i, s->reported.len);
		if (!recs[i]->enc)
			continue;
		n = record_field_len(recs[i]);
		if (len && len + n > e->part_max) {
			err = emit_part(e, s, hdr, views, n_views, from, i, len);
			if (err)
				return err;
			from = i;
			len = 0;
		}
		len += n;
		e->records++;
	}
	return emit_part(e, s, hdr, views, n_views, from, s->reported.len, len);
}

/* Every record of s->reported once the interface names changed: its
 * traffic shows them. */
static void names_changed(struct tm_encoder *e, struct tm_store *s)
{
	if (e->names_gen == s->names_gen)
		return;
	e->names_gen = s->names_gen;
	for (size_t i = 0; i < s->reported.len; i++)
		tm_store_changed(s, ((struct tm_record **)s->reported.data)[i]);
}

/*
 * The records of s->dirty only. One that had deltas stays on it: its next
 * packing says they are 0 now. One without traffic leaves it:
 * tm_store_add() puts it back with its first counts.
 */
int tm_encode_records(struct tm_encoder *e, struct tm_store *s)
{
	struct tm_list *x, *next;
	int err;

	e->encoded = 0;
	s->frames++;
	names_changed(e, s);
	for (x = s->dirty.next; x != &s->dirty; x = next) {
		struct tm_record *rec = tm_store_rec_on(x, dirty);
		const struct tm_enc_cache *c;

		next = x->next;
		if (rec->reported) {
			err = encode_record(e, s, rec);
			if (err)
				return err;
		}
		c = rec->enc;
		if (!c || !c->had_delta || !rec->reported)
			tm_list_del(x);
	}
	return 0;
}

int tm_encode_frame(struct tm_encoder *e, struct tm_store *s, const Taskmeter__Frame *hdr,
		    const struct tm_if_view *views, size_t n_views)
{
	parts_clear(e);
	return emit_parts(e, s, hdr, views, n_views);
}

int tm_encoder_init(struct tm_encoder *e, struct tm_store *s, size_t part_max)
{
	memset(e, 0, sizeof(*e));
	e->arena = calloc(1, sizeof(*e->arena));
	e->part_max = part_max;
	s->free_enc = cache_free;
	return e->arena ? 0 : -ENOMEM;
}

void tm_encoder_free(struct tm_encoder *e)
{
	parts_clear(e);
	tm_vec_free(&e->parts);
	arena_free(e->arena);
	e->arena = NULL;
}
