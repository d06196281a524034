// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>

#include "log.h"
#include "procfs.h"
#include "records.h"

#define TM_BATCH 4096
#define TM_ARENA_CHUNK (1u << 20)
#define TM_ENV_PAIRS_MAX TM_ENV_ALLOW_MAX

/* ---- frame scratch memory: reset per frame, no allocation per record ---- */

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
	struct tm_chunk *c = a->head, *next;

	for (; c; c = next) {
		next = c->next;
		free(c);
	}
	free(a);
}

/* ---- the table ---- */

static size_t owner_hash(const struct tm_owner *o)
{
	uint64_t h = ((uint64_t)o->tgid * 0x9e3779b97f4a7c15ull) ^ o->start_ns;

	h ^= h >> 29;
	return (size_t)(h * 0xbf58476d1ce4e5b9ull);
}

static bool same_owner(const struct tm_owner *a, const struct tm_owner *b)
{
	return a->tgid == b->tgid && a->start_ns == b->start_ns;
}

static int grow(struct tm_records *r)
{
	size_t n = r->n_buckets * 2;
	struct tm_record **b = calloc(n, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < r->n_buckets; i++) {
		struct tm_record *rec = r->buckets[i], *next;

		for (; rec; rec = next) {
			size_t h = owner_hash(&rec->owner) & (n - 1);

			next = rec->next;
			rec->next = b[h];
			b[h] = rec;
		}
	}
	free(r->buckets);
	r->buckets = b;
	r->n_buckets = n;
	return 0;
}

static struct tm_record *find(struct tm_records *r, const struct tm_owner *o, uint32_t exec_seq)
{
	struct tm_record *rec = r->buckets[owner_hash(o) & (r->n_buckets - 1)];

	for (; rec; rec = rec->next)
		if (same_owner(&rec->owner, o) && rec->exec_seq == exec_seq)
			return rec;
	return NULL;
}

/* tgid 0 is not a process: start_ns then names the bucket (enum tm_bucket). */
static int record_kind(const struct tm_owner *o)
{
	static const int kinds[TM_BUCKET_MAX] = {
		[TM_BUCKET_OWNER] = TASKMETER__RECORD_KIND__UNATTRIBUTED,
		[TM_BUCKET_FORWARDED] = TASKMETER__RECORD_KIND__FORWARDED,
		[TM_BUCKET_LOCAL] = TASKMETER__RECORD_KIND__LOCAL_NO_OWNER,
		[TM_BUCKET_NON_IP] = TASKMETER__RECORD_KIND__NON_IP,
		[TM_BUCKET_MALFORMED] = TASKMETER__RECORD_KIND__MALFORMED,
	};

	if (o->tgid)
		return TASKMETER__RECORD_KIND__PROCESS;
	return o->start_ns < TM_BUCKET_MAX ? kinds[o->start_ns]
					   : TASKMETER__RECORD_KIND__UNATTRIBUTED;
}

static struct tm_record *find_or_add(struct tm_records *r, const struct tm_owner *o,
				     uint32_t exec_seq)
{
	struct tm_record *rec = find(r, o, exec_seq);
	size_t h;

	if (rec)
		return rec;
	if (r->count >= r->n_buckets && grow(r))
		return NULL;
	rec = calloc(1, sizeof(*rec));
	if (!rec)
		return NULL;
	rec->owner = *o;
	rec->exec_seq = exec_seq;
	rec->kind = record_kind(o);
	rec->source = TASKMETER__METADATA_SOURCE__SOURCE_NONE;
	rec->first_frame = r->frame_seq;
	h = owner_hash(o) & (r->n_buckets - 1);
	rec->next = r->buckets[h];
	r->buckets[h] = rec;
	r->count++;
	return rec;
}

static void record_free(struct tm_record *rec)
{
	free(rec->argvp);
	free(rec->envv);
	free(rec->envp);
	free(rec->ifs);
	free(rec->cgroup_path);
	free(rec->argv);
	free(rec->env);
	free(rec);
}

int tm_records_init(struct tm_records *r, const struct tm_config *c, int ncpus)
{
	memset(r, 0, sizeof(*r));
	r->cfg = c;
	r->ncpus = ncpus;
	r->n_buckets = 1024;
	r->buckets = calloc(r->n_buckets, sizeof(*r->buckets));
	r->arena = calloc(1, sizeof(*r->arena));
	r->batch_cap = TM_BATCH;
	r->batch_keys = calloc(TM_BATCH, sizeof(struct tm_if_key)); /* the larger key */
	r->batch_vals = calloc(TM_BATCH, sizeof(struct tm_counter_val) * (size_t)ncpus);
	if (!r->buckets || !r->arena || !r->batch_keys || !r->batch_vals) {
		tm_records_free(r);
		return -ENOMEM;
	}
	r->overflow.kind = TASKMETER__RECORD_KIND__OVERFLOW;
	if (tm_cgroup2_mount(r->cgroup2_mount, sizeof(r->cgroup2_mount)))
		r->cgroup2_mount[0] = '\0';
	else
		r->cgroups = tm_cgroups_new(r->cgroup2_mount);
	return 0;
}

void tm_records_free(struct tm_records *r)
{
	for (size_t i = 0; r->buckets && i < r->n_buckets; i++) {
		struct tm_record *rec = r->buckets[i], *next;

		for (; rec; rec = next) {
			next = rec->next;
			record_free(rec);
		}
	}
	free(r->buckets);
	if (r->cgroups)
		tm_cgroups_free(r->cgroups);
	if (r->arena)
		arena_free(r->arena);
	free(r->batch_keys);
	free(r->batch_vals);
	free(r->if_totals);
	free(r->names);
	free(r->overflow.ifs);
	memset(r, 0, sizeof(*r));
}

/* ---- metadata ---- */

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

/* Protobuf strings must be UTF-8: replace what is not with '?'. */
static void utf8_sanitize(char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t l = utf8_len((unsigned char *)s + i, n - i);

		if (!l) {
			s[i++] = '?';
			continue;
		}
		i += l;
	}
}

static void comm_set(char *dst, const char *src)
{
	memcpy(dst, src, TM_COMM_LEN);
	dst[TM_COMM_LEN - 1] = '\0';
	utf8_sanitize(dst, strlen(dst));
}

/* Copy argv as NUL-terminated UTF-8 strings, one per argument. */
static size_t count_nuls(const char *s, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += s[i] == '\0';
	return n;
}

/* argv[] as frames want it, built once per metadata update. */
static int index_argv(struct tm_record *rec)
{
	size_t n = count_nuls(rec->argv, rec->argv_len), k = 0;
	char **v = malloc(n * sizeof(*v) + 1);

	free(rec->argvp); /* points into the argv just replaced */
	rec->argvp = NULL;
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < rec->argv_len; i += strlen(rec->argv + i) + 1)
		v[k++] = rec->argv + i;
	rec->argvp = v;
	rec->n_argv = k;
	return 0;
}

/* env[] as frames want it: EnvVar messages pointing into rec->env. */
static int index_env(struct tm_record *rec)
{
	size_t n = count_nuls(rec->env, rec->env_len) / 2;
	Taskmeter__EnvVar *ev = malloc(n * sizeof(*ev) + 1), **ep = malloc(n * sizeof(*ep) + 1);
	const char *p = rec->env;

	free(rec->envv); /* they point into the env just replaced */
	free(rec->envp);
	rec->envv = NULL;
	rec->envp = NULL;
	if (!ev || !ep) {
		free(ev);
		free(ep);
		return -ENOMEM;
	}
	for (size_t j = 0; j < n; j++) {
		taskmeter__env_var__init(&ev[j]);
		ev[j].name = (char *)p;
		p += strlen(p) + 1;
		ev[j].value = (char *)p;
		p += strlen(p) + 1;
		ep[j] = &ev[j];
	}
	rec->envv = ev;
	rec->envp = ep;
	rec->n_env = n;
	return 0;
}

static int set_argv(struct tm_record *rec, const char *buf, size_t len, bool truncated)
{
	char *a = malloc(len + 1);

	if (!a)
		return -ENOMEM;
	memcpy(a, buf, len);
	if (len && a[len - 1] != '\0')
		a[len++] = '\0';
	utf8_sanitize(a, len);
	free(rec->argv);
	rec->argv = a;
	rec->argv_len = len;
	rec->argv_truncated = truncated;
	return index_argv(rec);
}

/* Keep only the allowlisted variables; nothing else of buf is retained. */
static int set_env(struct tm_records *r, struct tm_record *rec, const char *buf, size_t len)
{
	struct tm_env_pair pairs[TM_ENV_PAIRS_MAX];
	size_t n = tm_env_filter(r->cfg, buf, len, pairs, TM_ENV_PAIRS_MAX), size = 0, off = 0;
	char *e;

	for (size_t i = 0; i < n; i++)
		size += pairs[i].name_len + pairs[i].value_len + 2;
	e = size ? malloc(size) : NULL;
	if (size && !e)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		memcpy(e + off, pairs[i].name, pairs[i].name_len);
		off += pairs[i].name_len;
		e[off++] = '\0';
		memcpy(e + off, pairs[i].value, pairs[i].value_len);
		utf8_sanitize(e + off, pairs[i].value_len);
		off += pairs[i].value_len;
		e[off++] = '\0';
	}
	free(rec->env);
	rec->env = e;
	rec->env_len = size;
	return index_env(rec);
}

static void on_meta(struct tm_records *r, const struct tm_meta_event *ev)
{
	struct tm_record *rec = find_or_add(r, &ev->hdr.owner, ev->hdr.exec_seq);

	if (!rec)
		return;
	comm_set(rec->comm, ev->hdr.comm);
	rec->uid = ev->uid;
	rec->gid = ev->gid;
	rec->ppid = ev->ppid;
	rec->cgroup_id = ev->cgroup_id;
	rec->netns = ev->netns;
	rec->mntns = ev->mntns;
	rec->pidns = ev->pidns;
	rec->has_ids = true;
	set_argv(rec, ev->argv, ev->argv_len < TM_ARGV_CAP ? ev->argv_len : TM_ARGV_CAP,
		 ev->flags & TM_META_ARGV_TRUNCATED);
	set_env(r, rec, ev->env, ev->env_len < TM_ENV_CAP ? ev->env_len : TM_ENV_CAP);
	rec->source = TASKMETER__METADATA_SOURCE__SOURCE_TASK_WORK;
}

static uint64_t ns_inode(int pid, const char *ns)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, ns);
	return stat(path, &st) ? 0 : (uint64_t)st.st_ino;
}

/* Fallback metadata: read /proc/<pid>, if pid is still the same process. */
static int read_procfs(struct tm_records *r, struct tm_record *rec)
{
	static char buf[TM_ARGV_CAP > TM_ENV_CAP ? TM_ARGV_CAP : TM_ENV_CAP];
	struct tm_proc_status st;
	uint64_t start;
	size_t len;
	bool trunc;
	int pid = (int)rec->owner.tgid, err;

	rec->procfs_tried = true;
	err = tm_proc_start_ns(pid, &start);
	if (!err && !tm_start_matches(rec->owner.start_ns, start))
		err = -ESRCH; /* pid reused */
	if (!err)
		err = tm_proc_status(pid, &st);
	if (!err)
		err = tm_proc_read_file(pid, "cmdline", buf, r->cfg->argv_max, &len, &trunc);
	if (!err)
		err = set_argv(rec, buf, len, trunc);
	if (!err && r->cfg->env_max)
		err = tm_proc_read_file(pid, "environ", buf, r->cfg->env_max, &len, &trunc);
	if (!err && r->cfg->env_max)
		err = set_env(r, rec, buf, len);
	if (err) {
		r->procfs_failures++;
		tm_dbg("metadata of pid %d from /proc: %s\n", pid, strerror(-err));
		return err;
	}
	r->procfs_reads++;
	memcpy(rec->comm, st.comm, TM_COMM_LEN);
	utf8_sanitize(rec->comm, strlen(rec->comm));
	rec->uid = st.uid;
	rec->gid = st.gid;
	rec->ppid = (uint32_t)st.ppid;
	if (r->cgroup2_mount[0])
		tm_proc_cgroup_id(pid, r->cgroup2_mount, &rec->cgroup_id);
	rec->netns = ns_inode(pid, "net");
	rec->mntns = ns_inode(pid, "mnt");
	rec->pidns = ns_inode(pid, "pid");
	rec->has_ids = true;
	rec->source = TASKMETER__METADATA_SOURCE__SOURCE_PROCFS;
	return 0;
}

static void on_owner(struct tm_records *r, const struct tm_owner_event *ev)
{
	struct tm_record *rec = find_or_add(r, &ev->hdr.owner, ev->hdr.exec_seq);

	if (ev->reason)
		tm_dbg("task_work for pid %u failed (%d): reading /proc\n", ev->hdr.owner.tgid,
		       ev->reason);
	if (rec && rec->source == TASKMETER__METADATA_SOURCE__SOURCE_NONE)
		read_procfs(r, rec);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void on_exit_ev(struct tm_records *r, const struct tm_exit_event *ev)
{
	struct tm_record *rec;
	uint64_t expire = now_ns() + (uint64_t)r->cfg->exited_ttl_s * 1000000000ull;

	/* An exit before any counter read still gets its (final) record. */
	if (!find(r, &ev->hdr.owner, ev->hdr.exec_seq))
		find_or_add(r, &ev->hdr.owner, ev->hdr.exec_seq);
	rec = r->buckets[owner_hash(&ev->hdr.owner) & (r->n_buckets - 1)];
	for (; rec; rec = rec->next) {
		if (!same_owner(&rec->owner, &ev->hdr.owner))
			continue;
		rec->exited = true;
		rec->exit_code = ev->exit_code;
		rec->expire_ns = expire;
		if (!rec->comm[0])
			comm_set(rec->comm, ev->hdr.comm);
	}
}

int tm_records_on_event(void *ctx, void *data, size_t len)
{
	const struct tm_event_hdr *hdr = data;
	struct tm_records *r = ctx;

	if (len < sizeof(*hdr))
		return 0;
	switch (hdr->type) {
	case TM_EV_META:
		if (len >= sizeof(struct tm_meta_event))
			on_meta(r, data);
		break;
	case TM_EV_OWNER:
		if (len >= sizeof(struct tm_owner_event))
			on_owner(r, data);
		break;
	case TM_EV_EXIT:
		if (len >= sizeof(struct tm_exit_event))
			on_exit_ev(r, data);
		break;
	}
	return 0;
}

/* ---- counters ---- */

static void sum_cpus(const struct tm_counter_val *v, int ncpus, struct tm_counter_val *sum)
{
	memset(sum, 0, sizeof(*sum));
	for (int i = 0; i < ncpus; i++) {
		sum->packets += v[i].packets;
		sum->bytes += v[i].bytes;
		sum->payload_bytes += v[i].payload_bytes;
	}
}

/* Fold a map value into a slot; *d gets what was added. A value below the
 * last one means the entry was deleted and created anew: all of it is new. */
static void slot_update(struct tm_slot *s, const struct tm_counter_val *now,
			struct tm_counter_val *d)
{
	const struct tm_counter_val *base = &s->last;
	struct tm_counter_val zero = { 0 }, dd;

	if (now->packets < s->last.packets || now->bytes < s->last.bytes)
		base = &zero;
	if (!d)
		d = &dd;
	d->packets = now->packets - base->packets;
	d->bytes = now->bytes - base->bytes;
	d->payload_bytes = now->payload_bytes - base->payload_bytes;
	s->total.packets += d->packets;
	s->total.bytes += d->bytes;
	s->total.payload_bytes += d->payload_bytes;
	s->last = *now;
}

static void fold(struct tm_records *r, const struct tm_counter_key *k,
		 const struct tm_counter_val *vals)
{
	struct tm_counter_val sum;
	struct tm_record *rec;
	unsigned int idx;

	if (k->dir >= TM_DIR_MAX || k->l4 >= TM_L4_MAX || k->family >= TM_FAMILY_MAX)
		return;
	rec = find_or_add(r, &k->owner, k->exec_seq);
	if (!rec)
		return;
	idx = TM_OVERFLOW_IDX(k->dir, k->l4, k->family);
	sum_cpus(vals, r->ncpus, &sum);
	slot_update(&rec->slots[idx], &sum, NULL);
	rec->slots_used |= 1u << idx;
}

static int read_overflow(struct tm_records *r, int fd)
{
	struct tm_counter_val *vals = r->batch_vals, sum;

	for (__u32 i = 0; i < TM_OVERFLOW_SLOTS; i++) {
		if (bpf_map_lookup_elem(fd, &i, vals))
			return -errno;
		sum_cpus(vals, r->ncpus, &sum);
		slot_update(&r->overflow.slots[i], &sum, NULL);
		if (sum.packets)
			r->overflow.slots_used |= 1u << i;
	}
	return 0;
}

/* Batch-read a per-CPU hash, calling fn per entry; returns entries or -errno. */
static long read_map(struct tm_records *r, int fd, size_t key_size,
		     void (*fn)(struct tm_records *, const void *, const struct tm_counter_val *))
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	size_t vsz = sizeof(struct tm_counter_val) * (size_t)r->ncpus;
	__u32 in = 0, out = 0, count;
	bool first = true;
	long n = 0;
	int err;

	do {
		count = (__u32)r->batch_cap;
		err = bpf_map_lookup_batch(fd, first ? NULL : &in, &out, r->batch_keys,
					   r->batch_vals, &count, &opts);
		if (err && errno != ENOENT)
			return -errno;
		n += count;
		for (__u32 i = 0; i < count; i++)
			fn(r, (char *)r->batch_keys + i * key_size,
			   (struct tm_counter_val *)((char *)r->batch_vals + i * vsz));
		in = out;
		first = false;
	} while (!err);
	return n;
}

static void fold_cb(struct tm_records *r, const void *k, const struct tm_counter_val *v)
{
	fold(r, k, v);
}

int tm_records_read(struct tm_records *r, int counters_fd, int overflow_fd)
{
	long n = read_map(r, counters_fd, sizeof(struct tm_counter_key), fold_cb);

	if (n < 0)
		return (int)n;
	r->counter_entries = (uint64_t)n;
	return read_overflow(r, overflow_fd);
}

/* ---- the interface layer ---- */

static void val_add(struct tm_counter_val *a, const struct tm_counter_val *b)
{
	a->packets += b->packets;
	a->bytes += b->bytes;
	a->payload_bytes += b->payload_bytes;
}

static struct tm_if_total *if_total(struct tm_records *r, uint32_t netns, uint32_t ifindex)
{
	struct tm_if_total *t;

	for (size_t i = 0; i < r->n_if_totals; i++)
		if (r->if_totals[i].netns == netns && r->if_totals[i].ifindex == ifindex)
			return &r->if_totals[i];
	if (r->n_if_totals == r->cap_if_totals) {
		size_t cap = r->cap_if_totals ? 2 * r->cap_if_totals : 16;

		t = realloc(r->if_totals, cap * sizeof(*t));
		if (!t)
			return NULL;
		r->if_totals = t;
		r->cap_if_totals = cap;
	}
	t = &r->if_totals[r->n_if_totals++];
	memset(t, 0, sizeof(*t));
	t->netns = netns;
	t->ifindex = ifindex;
	return t;
}

static bool ifslot_is(const struct tm_ifslot *x, const struct tm_if_key *k)
{
	return x->netns == k->netns && x->ifindex == k->ifindex && x->dir == k->dir &&
	       x->l4 == k->l4 && x->family == k->family && x->layer == k->layer;
}

static struct tm_ifslot *ifslot(struct tm_record *rec, const struct tm_if_key *k)
{
	struct tm_ifslot *x;

	for (uint32_t i = 0; i < rec->n_ifs; i++)
		if (ifslot_is(&rec->ifs[i], k))
			return &rec->ifs[i];
	if (rec->n_ifs == rec->cap_ifs) {
		uint32_t cap = rec->cap_ifs ? 2 * rec->cap_ifs : 4;

		x = realloc(rec->ifs, cap * sizeof(*x));
		if (!x)
			return NULL;
		rec->ifs = x;
		rec->cap_ifs = cap;
	}
	x = &rec->ifs[rec->n_ifs++];
	memset(x, 0, sizeof(*x));
	x->netns = k->netns;
	x->ifindex = k->ifindex;
	x->dir = k->dir;
	x->l4 = k->l4;
	x->family = k->family;
	x->layer = k->layer;
	return x;
}

/* What an interface-layer slot gained also goes to its interface's sums
 * (drops are not traffic the interface carried twice: they are left out). */
static void if_fold(struct tm_records *r, struct tm_record *rec, const struct tm_if_key *k,
		    const struct tm_counter_val *sum)
{
	struct tm_ifslot *x = ifslot(rec, k);
	struct tm_counter_val d;
	struct tm_if_total *t;

	if (!x)
		return;
	slot_update(&x->s, sum, &d);
	if (k->layer == TM_LAYER_DROP || k->dir >= TM_DIR_MAX)
		return;
	t = if_total(r, k->netns, k->ifindex);
	if (t)
		val_add(&t->dir[k->dir], &d);
}

static void fold_if(struct tm_records *r, const struct tm_if_key *k,
		    const struct tm_counter_val *vals)
{
	struct tm_owner bucket = { .start_ns = k->bucket };
	struct tm_counter_val sum;
	struct tm_record *rec;

	if (k->layer >= TM_LAYER_MAX || k->bucket >= TM_BUCKET_MAX)
		return;
	rec = find_or_add(r, k->bucket == TM_BUCKET_OWNER ? &k->owner : &bucket,
			  k->bucket == TM_BUCKET_OWNER ? k->exec_seq : 0);
	if (!rec)
		return;
	sum_cpus(vals, r->ncpus, &sum);
	if (k->layer != TM_LAYER_DROP && r->l2_less) /* as the device counts */
		sum.bytes -= sum.packets * r->l2_less(r->l2_less_ctx, k->netns, (int)k->ifindex,
						      k->dir);
	if_fold(r, rec, k, &sum);
}

static int read_if_overflow(struct tm_records *r, int fd)
{
	struct tm_counter_val *vals = r->batch_vals, sum;
	struct tm_if_key k = { 0 };

	for (__u32 i = 0; i < TM_IF_OVERFLOW_SLOTS; i++) {
		if (bpf_map_lookup_elem(fd, &i, vals))
			return -errno;
		sum_cpus(vals, r->ncpus, &sum);
		if (!sum.packets)
			continue;
		k.layer = (__u8)(i / TM_DIR_MAX);
		k.dir = (__u8)(i % TM_DIR_MAX);
		k.l4 = TM_L4_OTHER;
		k.family = TM_FAMILY_NONE;
		if_fold(r, &r->overflow, &k, &sum); /* interface unknown: ifindex 0 */
	}
	return 0;
}

static void fold_if_cb(struct tm_records *r, const void *k, const struct tm_counter_val *v)
{
	fold_if(r, k, v);
}

int tm_records_read_if(struct tm_records *r, int if_fd, int if_overflow_fd)
{
	long n = read_map(r, if_fd, sizeof(struct tm_if_key), fold_if_cb);

	if (n < 0)
		return (int)n;
	r->if_entries = (uint64_t)n;
	return read_if_overflow(r, if_overflow_fd);
}

/* ---- frames ---- */

static void counters_init(Taskmeter__Counters *c, const struct tm_counter_val *v)
{
	taskmeter__counters__init(c);
	c->has_packets = c->has_bytes = c->has_payload_bytes = 1;
	c->packets = v->packets;
	c->bytes = v->bytes;
	c->payload_bytes = v->payload_bytes;
}

static void val_sub(struct tm_counter_val *d, const struct tm_counter_val *a,
		    const struct tm_counter_val *b)
{
	d->packets = a->packets - b->packets;
	d->bytes = a->bytes - b->bytes;
	d->payload_bytes = a->payload_bytes - b->payload_bytes;
}

static void traffic_init(Taskmeter__Traffic *t, unsigned int dir, unsigned int l4,
			 unsigned int family, unsigned int layer, Taskmeter__Counters *c)
{
	taskmeter__traffic__init(t);
	t->has_direction = t->has_protocol = t->has_family = t->has_layer = 1;
	t->direction = dir == TM_DIR_INGRESS ? TASKMETER__DIRECTION__INGRESS
					     : TASKMETER__DIRECTION__EGRESS;
	/* enum tm_l4 / tm_family / tm_layer are the proto enums minus one */
	t->protocol = (Taskmeter__L4Protocol)(l4 + 1);
	t->family = (Taskmeter__IpFamily)(family + 1);
	t->layer = (Taskmeter__Layer)(layer + 1);
	t->total = &c[0];
	t->delta = &c[1];
}

/* total and delta of one slot; the slot remembers what was reported. */
static void slot_report(struct tm_slot *s, Taskmeter__Counters *c, struct tm_counter_val *delta)
{
	val_sub(delta, &s->total, &s->reported);
	s->reported = s->total;
	counters_init(&c[0], &s->total);
	counters_init(&c[1], delta);
}

static struct tm_if_view *name_of(struct tm_records *r, uint64_t netns, int ifindex)
{
	for (size_t i = 0; i < r->n_names; i++)
		if (r->names[i].netns == netns && r->names[i].ifindex == ifindex)
			return &r->names[i];
	return NULL;
}

/* Remember every interface's name: records of a removed interface keep
 * being reported (cumulative counters) and must still say which it was. */
static void remember_names(struct tm_records *r)
{
	for (size_t i = 0; i < r->n_views; i++) {
		const struct tm_if_view *v = &r->views[i];
		struct tm_if_view *n = name_of(r, v->netns, v->ifindex);

		if (!n && r->n_names == r->cap_names) {
			size_t cap = r->cap_names ? 2 * r->cap_names : 16;

			n = realloc(r->names, cap * sizeof(*n));
			if (!n)
				return;
			r->names = n;
			r->cap_names = cap;
			n = NULL;
		}
		if (!n)
			n = &r->names[r->n_names++];
		*n = *v; /* an ifindex reused for another link takes its name */
	}
}

static const struct tm_if_view *view_of(struct tm_records *r, uint32_t netns, uint32_t ifindex)
{
	return name_of(r, netns, (int)ifindex);
}

static void traffic_if(struct tm_records *r, struct tm_ifslot *x, Taskmeter__Traffic *t,
		       Taskmeter__Counters *c)
{
	const struct tm_if_view *v = view_of(r, x->netns, x->ifindex);
	struct tm_counter_val delta;

	slot_report(&x->s, c, &delta);
	traffic_init(t, x->dir, x->l4, x->family, x->layer, c);
	t->has_ifindex = t->has_netns = x->ifindex != 0;
	t->ifindex = x->ifindex;
	t->netns = x->netns;
	if (v)
		t->ifname = (char *)v->name;
}

/* The traffic[] entries and the rx/tx sums of one record: socket layer
 * first, then the interface layer. */
static int build_traffic(struct tm_records *r, struct tm_record *rec, Taskmeter__ProcessRecord *pr)
{
	struct tm_counter_val sums[TM_DIR_MAX][2] = { 0 }; /* [dir][total, delta] */
	size_t n = (size_t)__builtin_popcount(rec->slots_used) + rec->n_ifs, k = 0;
	Taskmeter__Traffic *t;
	Taskmeter__Counters *c;

	pr->traffic = arena_alloc(r->arena, n * sizeof(*pr->traffic) + 1);
	t = arena_alloc(r->arena, n * sizeof(*t) + 1);
	c = arena_alloc(r->arena, (2 * n + 4) * sizeof(*c));
	if (!pr->traffic || !t || !c)
		return -ENOMEM;
	for (unsigned int i = 0; i < TM_SLOTS; i++) {
		unsigned int dir = i / (TM_L4_MAX * TM_FAMILY_MAX);
		struct tm_counter_val delta;

		if (!(rec->slots_used & (1u << i)))
			continue;
		slot_report(&rec->slots[i], &c[2 * k], &delta);
		traffic_init(&t[k], dir, (i / TM_FAMILY_MAX) % TM_L4_MAX, i % TM_FAMILY_MAX,
			     TM_LAYER_CGROUP_SKB, &c[2 * k]);
		val_add(&sums[dir][0], &rec->slots[i].total);
		val_add(&sums[dir][1], &delta);
		pr->traffic[k] = &t[k];
		k++;
	}
	for (uint32_t i = 0; i < rec->n_ifs; i++, k++) {
		traffic_if(r, &rec->ifs[i], &t[k], &c[2 * k]);
		pr->traffic[k] = &t[k];
	}
	pr->n_traffic = k;
	c += 2 * n;
	counters_init(&c[0], &sums[TM_DIR_INGRESS][0]);
	counters_init(&c[1], &sums[TM_DIR_EGRESS][0]);
	counters_init(&c[2], &sums[TM_DIR_INGRESS][1]);
	counters_init(&c[3], &sums[TM_DIR_EGRESS][1]);
	pr->rx_total = &c[0];
	pr->tx_total = &c[1];
	pr->rx_delta = &c[2];
	pr->tx_delta = &c[3];
	return 0;
}

/* argv[] and env[] point into the record's own buffers: nothing is copied. */
/* argv[] and env[] point into the record's own, indexed buffers. */
static void build_strings(struct tm_record *rec, Taskmeter__ProcessRecord *pr)
{
	pr->argv = rec->argvp;
	pr->n_argv = rec->argvp ? rec->n_argv : 0;
	pr->has_argv_truncated = rec->argv != NULL;
	pr->argv_truncated = rec->argv_truncated;
	pr->env = rec->envp;
	pr->n_env = rec->envp ? rec->n_env : 0;
}

/* cgroup path and what it says about containers; a miss retries next frame. */
static void resolve_cgroup(struct tm_records *r, struct tm_record *rec)
{
	const char *path;

	if (rec->cgroup_path || !rec->has_ids || !rec->cgroup_id || !r->cgroups)
		return;
	path = tm_cgroups_path(r->cgroups, rec->cgroup_id);
	if (!path)
		return;
	rec->cgroup_path = strdup(path);
	if (!rec->cgroup_path)
		return;
	utf8_sanitize(rec->cgroup_path, strlen(rec->cgroup_path));
	tm_container_parse(rec->cgroup_path, &rec->container);
}

static void build_container(struct tm_record *rec, Taskmeter__ProcessRecord *pr)
{
	const struct tm_container *c = &rec->container;

	pr->cgroup_path = rec->cgroup_path;
	if (c->id[0])
		pr->container_id = (char *)c->id;
	if (c->runtime[0])
		pr->container_runtime = (char *)c->runtime;
	if (c->pod_uid[0])
		pr->pod_uid = (char *)c->pod_uid;
	if (c->service[0])
		pr->service = (char *)c->service;
}

static void build_ids(struct tm_record *rec, Taskmeter__ProcessRecord *pr)
{
	pr->has_kind = 1;
	pr->kind = (Taskmeter__RecordKind)rec->kind;
	if (rec->kind != TASKMETER__RECORD_KIND__PROCESS)
		return;
	pr->has_pid = pr->has_start_time_ns = pr->has_exec_seq = 1;
	pr->pid = rec->owner.tgid;
	pr->start_time_ns = rec->owner.start_ns;
	pr->exec_seq = rec->exec_seq;
	pr->has_metadata_source = 1;
	pr->metadata_source = (Taskmeter__MetadataSource)rec->source;
	if (rec->comm[0])
		pr->comm = rec->comm;
	if (rec->has_ids) {
		pr->has_uid = pr->has_gid = pr->has_ppid = pr->has_cgroup_id = 1;
		pr->uid = rec->uid;
		pr->gid = rec->gid;
		pr->ppid = rec->ppid;
		pr->cgroup_id = rec->cgroup_id;
	}
	pr->has_netns = rec->netns != 0;
	pr->netns = rec->netns;
	pr->has_mntns = rec->mntns != 0;
	pr->mntns = rec->mntns;
	pr->has_pidns = rec->pidns != 0;
	pr->pidns = rec->pidns;
	pr->has_exited = 1;
	pr->exited = rec->exited;
	if (rec->exited) {
		pr->has_exit_code = 1;
		pr->exit_code = rec->exit_code;
	}
}

static Taskmeter__ProcessRecord *build_one(struct tm_records *r, struct tm_record *rec)
{
	Taskmeter__ProcessRecord *pr = arena_alloc(r->arena, sizeof(*pr));

	if (!pr)
		return NULL;
	taskmeter__process_record__init(pr);
	resolve_cgroup(r, rec);
	build_ids(rec, pr);
	build_container(rec, pr);
	if (build_traffic(r, rec, pr))
		return NULL;
	build_strings(rec, pr);
	return pr;
}

/* A record still without metadata a frame after it appeared (its event was
 * lost, or the metadata map was full) gets one /proc read. */
static void backfill(struct tm_records *r, struct tm_record *rec)
{
	if (rec->kind == TASKMETER__RECORD_KIND__PROCESS && !rec->procfs_tried &&
	    rec->source == TASKMETER__METADATA_SOURCE__SOURCE_NONE &&
	    r->frame_seq > rec->first_frame + 1)
		read_procfs(r, rec);
}

static Taskmeter__Counters *counters_new(struct tm_records *r, const struct tm_counter_val *v,
					 bool payload)
{
	Taskmeter__Counters *c = arena_alloc(r->arena, sizeof(*c));

	if (c) {
		counters_init(c, v);
		c->has_payload_bytes = payload;
	}
	return c;
}

static Taskmeter__Interface *build_iface(struct tm_records *r, const struct tm_if_view *v)
{
	Taskmeter__Interface *m = arena_alloc(r->arena, sizeof(*m));
	struct tm_if_total *t = if_total(r, (uint32_t)v->netns, (uint32_t)v->ifindex);

	if (!m || !t)
		return NULL;
	taskmeter__interface__init(m);
	m->has_netns = m->has_ifindex = 1;
	m->netns = v->netns;
	m->ifindex = (uint32_t)v->ifindex;
	m->name = (char *)v->name;
	m->xdp_mode = (char *)v->xdp;
	m->tc_mode = (char *)v->tc;
	m->rx_records = counters_new(r, &t->dir[TM_DIR_INGRESS], true);
	m->tx_records = counters_new(r, &t->dir[TM_DIR_EGRESS], true);
	m->rx_kernel = counters_new(r, &v->kernel[TM_DIR_INGRESS], false);
	m->tx_kernel = counters_new(r, &v->kernel[TM_DIR_EGRESS], false);
	if (!m->rx_records || !m->tx_records || !m->rx_kernel || !m->tx_kernel)
		return NULL;
	return m;
}

static int build_ifaces(struct tm_records *r, Taskmeter__Frame *f)
{
	f->interfaces = arena_alloc(r->arena, r->n_views * sizeof(*f->interfaces) + 1);
	if (!f->interfaces)
		return -ENOMEM;
	for (size_t i = 0; i < r->n_views; i++) {
		f->interfaces[i] = build_iface(r, &r->views[i]);
		if (!f->interfaces[i])
			return -ENOMEM;
	}
	f->n_interfaces = r->n_views;
	return 0;
}

int tm_records_build(struct tm_records *r, Taskmeter__Frame *f, const struct tm_if_view *views,
		     size_t n_views)
{
	size_t n = 0;

	r->frame_seq++;
	r->views = views;
	r->n_views = n_views;
	remember_names(r);
	arena_reset(r->arena);
	f->records = arena_alloc(r->arena, (r->count + 1) * sizeof(*f->records));
	if (!f->records)
		return -ENOMEM;
	for (size_t i = 0; i < r->n_buckets; i++) {
		for (struct tm_record *rec = r->buckets[i]; rec; rec = rec->next) {
			if (!rec->slots_used && !rec->n_ifs)
				continue;
			backfill(r, rec);
			f->records[n] = build_one(r, rec);
			if (!f->records[n++])
				return -ENOMEM;
		}
	}
	if (r->overflow.slots_used || r->overflow.n_ifs) {
		f->records[n] = build_one(r, &r->overflow);
		if (!f->records[n++])
			return -ENOMEM;
	}
	f->n_records = n;
	return build_ifaces(r, f);
}

/* ---- expiry of exited processes ---- */

static void key_of_slot(struct tm_counter_key *k, unsigned int slot)
{
	k->dir = (__u8)(slot / (TM_L4_MAX * TM_FAMILY_MAX));
	k->l4 = (__u8)((slot / TM_FAMILY_MAX) % TM_L4_MAX);
	k->family = (__u8)(slot % TM_FAMILY_MAX);
}

/* Take what is left of rec's entries out of the counter map. True if bytes
 * arrived after the last frame: rec must be reported once more. */
static bool drain_if(struct tm_records *r, struct tm_record *rec, int if_fd)
{
	struct tm_if_key key = { .owner = rec->owner, .exec_seq = rec->exec_seq };
	struct tm_counter_val sum;
	bool fresh = false;

	for (uint32_t i = 0; i < rec->n_ifs; i++) {
		struct tm_ifslot *x = &rec->ifs[i];

		key.netns = x->netns;
		key.ifindex = x->ifindex;
		key.dir = x->dir;
		key.l4 = x->l4;
		key.family = x->family;
		key.layer = x->layer;
		if (!bpf_map_lookup_and_delete_elem(if_fd, &key, r->batch_vals)) {
			sum_cpus(r->batch_vals, r->ncpus, &sum);
			if_fold(r, rec, &key, &sum);
			x->s.last = (struct tm_counter_val){ 0 };
		}
		fresh |= x->s.total.packets != x->s.reported.packets;
	}
	return fresh;
}

static bool drain(struct tm_records *r, struct tm_record *rec, int counters_fd, int if_fd)
{
	struct tm_counter_key key = { .owner = rec->owner, .exec_seq = rec->exec_seq };
	struct tm_counter_val sum;
	bool fresh = drain_if(r, rec, if_fd);

	for (unsigned int i = 0; i < TM_SLOTS; i++) {
		if (!(rec->slots_used & (1u << i)))
			continue;
		key_of_slot(&key, i);
		if (!bpf_map_lookup_and_delete_elem(counters_fd, &key, r->batch_vals)) {
			sum_cpus(r->batch_vals, r->ncpus, &sum);
			slot_update(&rec->slots[i], &sum, NULL);
			rec->slots[i].last = (struct tm_counter_val){ 0 };
		}
		fresh |= rec->slots[i].total.packets != rec->slots[i].reported.packets;
	}
	return fresh;
}

static bool owner_has_records(struct tm_records *r, const struct tm_owner *o)
{
	for (struct tm_record *rec = r->buckets[owner_hash(o) & (r->n_buckets - 1)]; rec;
	     rec = rec->next)
		if (same_owner(&rec->owner, o))
			return true;
	return false;
}

void tm_records_expire(struct tm_records *r, int counters_fd, int if_fd, int meta_fd,
		       uint64_t now)
{
	uint64_t ttl = (uint64_t)r->cfg->exited_ttl_s * 1000000000ull;

	for (size_t i = 0; i < r->n_buckets; i++) {
		struct tm_record **pp = &r->buckets[i], *rec;

		while ((rec = *pp)) {
			if (!rec->expire_ns || now < rec->expire_ns) {
				pp = &rec->next;
				continue;
			}
			if (drain(r, rec, counters_fd, if_fd)) {
				rec->expire_ns = now + ttl;
				pp = &rec->next;
				continue;
			}
			*pp = rec->next;
			r->count--;
			if (!owner_has_records(r, &rec->owner))
				bpf_map_delete_elem(meta_fd, &rec->owner);
			record_free(rec);
		}
	}
}
