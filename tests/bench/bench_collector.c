// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The collector's per-interval work at a scale real processes cannot reach
 * on the bench machine (100,000 live processes need pid_max raised
 * host-wide and ~10 GiB): the daemon's own modules (mapio.c, meta.c,
 * store.c, encode.c) on the real BPF maps, loaded but attached nowhere,
 * holding N synthetic owners' classes as the hooks would have made them
 * (one UDP egress class each, slot taken from tm_free). Their metadata
 * comes as the ring buffer's task_work events would, through
 * tm_resolver_on_event.
 *
 * Each interval, pct% of the owners send (their counters move: written
 * from here, not timed), then what taskmeterd's tick() does is timed:
 * read the maps into the store, resolve metadata, pack the changed
 * records (frame build, as Frame.stats.frame_build_ns counts it), assemble
 * the frame, expire. Not done here: the ring buffer, interface counters,
 * publishing to subscribers and the /proc liveness check of 256 records
 * (tm_resolver_reap), which would find the synthetic owners gone.
 *
 *   bench_collector N PCT[,PCT...] [FRAMES [--wait]]
 *
 * One JSON object per PCT on stdout. --wait: once set up, say "ready" on
 * stderr and wait for a line on stdin (a profiler attaches meanwhile).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpfload.h"
#include "cgroups.h"
#include "config.h"
#include "encode.h"
#include "log.h"
#include "mapio.h"
#include "meta.h"
#include "procfs.h"
#include "store.h"
#include "taskmeter.h"
#include "taskmeter.skel.h"

#define PART_MAX (8u << 20) /* taskmeterd's TM_PART_MAX */
#define WARM_FRAMES 3
#define DEF_FRAMES 11
#define MAX_FRAMES 101

/* What a swarm member's task_work event carries (tests/bench/bench_swarm). */
static const char member_argv[] = "/usr/local/src/taskmeter/build/bench_swarm\0"
				   "127.0.0.1\0" "7777\0" "100000";
static const char member_env[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin\0"
				 "HOME=/root\0" "LANG=C.UTF-8\0" "SHELL=/bin/bash\0"
				 "TERM=xterm-256color\0" "USER=root\0" "LOGNAME=root";

static struct {
	unsigned int n;
	int ncpus;
	struct tm_config cfg;
	struct taskmeter_bpf *skel;
	struct tm_bpf bpf;
	struct tm_mapio io;
	struct tm_store store;
	struct tm_resolver res;
	struct tm_encoder enc;
	__u32 *slots;                  /* owner i's slot */
	struct tm_counter_val *vals;   /* per CPU, for the slots written this interval */
	__u32 *keys;
	uint64_t cursor;               /* next owner to send */
	uint64_t seq;
	uint64_t cgroup_id;            /* ours: the members' */
} b;

static int fail(const char *what, int err)
{
	fprintf(stderr, "bench_collector: %s: %s\n", what, strerror(err < 0 ? -err : err));
	return err < 0 ? err : -err;
}

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Our cgroup's id (its directory's inode on cgroup v2): the members'
 * cgroup, so that resolving their cgroup path does what it does for real. */
static uint64_t own_cgroup_id(void)
{
	char mount[2048], line[4096], path[8192];
	struct stat st;
	FILE *f;

	if (tm_proc_cgroup2_mount(mount, sizeof(mount)))
		return 0;
	f = fopen("/proc/self/cgroup", "r");
	if (!f)
		return 0;
	path[0] = 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "0::", 3)) {
			line[strcspn(line, "\n")] = 0;
			snprintf(path, sizeof(path), "%s%s", mount, line + 3);
		}
	fclose(f);
	return path[0] && !stat(path, &st) ? (uint64_t)st.st_ino : 0;
}

/* The main object, sized as taskmeterd sizes it, loaded, attached nowhere;
 * the collector's own maps (retired sums, retiring slots) beside it. */
static int load(void)
{
	static const char *const sized[] = { "tm_counters", "tm_class_gen", "tm_classes", "tm_free" };
	int err;

	b.skel = taskmeter_bpf__open();
	if (!b.skel)
		return fail("open", -errno);
	for (size_t i = 0; i < sizeof(sized) / sizeof(sized[0]); i++) {
		struct bpf_map *m = bpf_object__find_map_by_name(b.skel->obj, sized[i]);

		err = m ? bpf_map__set_max_entries(m, b.cfg.max_owner_records) : -ENOENT;
		if (err)
			return fail(sized[i], err);
	}
	err = taskmeter_bpf__load(b.skel);
	if (err)
		return fail("load", err);
	b.bpf.skel = b.skel;
	b.bpf.retired_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "tm_retired",
					  sizeof(struct tm_iface_key) + sizeof(__u32),
					  sizeof(struct tm_counter_val), TM_IFACES_MAX * TM_DIR_MAX, NULL);
	b.bpf.retiring_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "tm_retiring", sizeof(__u32),
					   sizeof(__u32), b.cfg.max_owner_records, NULL);
	if (b.bpf.retired_fd < 0 || b.bpf.retiring_fd < 0)
		return fail("collector maps", -errno);
	return tm_mapio_init(&b.io, &b.bpf, b.ncpus, true);
}

static struct tm_owner owner_of(unsigned int i)
{
	return (struct tm_owner){ .tgid = 1000000 + i, .start_ns = 1000000000000ull + i };
}

/* What the hooks do for a new class: a slot from tm_free, the class in
 * tm_classes, TM_STAT_CLASSES_MADE moved (CPU 0's). */
static int make_classes(void)
{
	LIBBPF_OPTS(bpf_map_batch_opts, o);
	struct tm_class *k = calloc(b.n, sizeof(*k));
	__u32 count = b.n, stat = TM_STAT_CLASSES_MADE;
	uint64_t *made = calloc(b.ncpus, sizeof(*made));
	int err = k && made ? 0 : -ENOMEM;

	for (unsigned int i = 0; !err && i < b.n; i++) {
		if (bpf_map_lookup_and_delete_elem(b.io.free_fd, NULL, &b.slots[i]))
			err = -errno;
		k[i].owner = owner_of(i);
		k[i].layer = TM_LAYER_CGROUP_SKB;
		k[i].dir = TM_DIR_EGRESS;
		k[i].l4 = TM_L4_UDP;
		k[i].family = TM_FAMILY_IPV4;
	}
	if (!err && bpf_map_update_batch(b.io.classes_fd, k, b.slots, &count, &o))
		err = -errno;
	if (!err && bpf_map_lookup_elem(b.io.stats_fd, &stat, made))
		err = -errno;
	if (!err) {
		made[0] += b.n;
		if (bpf_map_update_elem(b.io.stats_fd, &stat, made, BPF_ANY))
			err = -errno;
	}
	free(k);
	free(made);
	return err ? fail("classes", err) : 0;
}

/* pct% of the owners send a 64-byte datagram (CPU 0's counter). */
static int send_some(unsigned int pct)
{
	LIBBPF_OPTS(bpf_map_batch_opts, o);
	unsigned int m = (unsigned int)((uint64_t)b.n * pct / 100);
	__u32 count = m;

	for (unsigned int j = 0; j < m; j++) {
		unsigned int i = (unsigned int)(b.cursor++ % b.n);
		struct tm_counter_val *v = &b.vals[(size_t)j * b.ncpus];

		b.keys[j] = b.slots[i];
		if (bpf_map_lookup_elem(b.io.counters_fd, &b.slots[i], v))
			return fail("counter", -errno);
		v[0].packets += 1;
		v[0].bytes += 92;
		v[0].payload_bytes += 64;
	}
	if (m && bpf_map_update_batch(b.io.counters_fd, b.keys, b.vals, &count, &o))
		return fail("counters", -errno);
	return 0;
}

/* Every owner's task_work event, as the ring buffer would bring it. */
static void feed_metadata(void)
{
	size_t len = sizeof(struct tm_meta_event) + sizeof(member_argv) + sizeof(member_env);
	struct tm_meta_event *ev = calloc(1, len);

	if (!ev)
		return;
	ev->hdr.type = TM_EV_META;
	snprintf(ev->hdr.comm, sizeof(ev->hdr.comm), "bench_swarm");
	ev->ids.ppid = (__u32)getpid();
	ev->ids.cgroup_id = b.cgroup_id;
	ev->ids.netns = ev->ids.mntns = ev->ids.pidns = 4026531840u;
	ev->argv_len = sizeof(member_argv);
	ev->env_len = sizeof(member_env);
	memcpy(ev->data, member_argv, sizeof(member_argv));
	memcpy(ev->data + sizeof(member_argv), member_env, sizeof(member_env));
	for (unsigned int i = 0; i < b.n; i++) {
		ev->hdr.owner = owner_of(i);
		tm_resolver_on_event(&b.res, ev, len);
	}
	free(ev);
}

static bool drain_cb(void *ctx, struct tm_record *rec)
{
	(void)ctx;
	return tm_mapio_drain(&b.io, &b.store, rec);
}

static void forget_cb(void *ctx, const struct tm_owner *o)
{
	(void)ctx;
	tm_mapio_forget(&b.io, o);
}

struct tick {
	double build_ms;   /* read + resolve + pack: Frame.stats.frame_build_ns */
	double total_ms;   /* + the frame's assembly and expiry: the interval's work */
	double cpu_ms;     /* CPU time of the same */
	uint64_t encoded;
	size_t bytes;
};

/* taskmeterd's tick(), without the ring buffer, interfaces and sockets. */
static int tick(struct tick *t)
{
	Taskmeter__CollectorStats st = TASKMETER__COLLECTOR_STATS__INIT;
	Taskmeter__Frame f = TASKMETER__FRAME__INIT;
	uint64_t t0 = now_ns(CLOCK_MONOTONIC), c0 = now_ns(CLOCK_PROCESS_CPUTIME_ID), t1;
	int err = tm_mapio_read(&b.io, &b.store);

	if (!err) {
		tm_resolver_run(&b.res);
		err = tm_encode_records(&b.enc, &b.store);
	}
	t1 = now_ns(CLOCK_MONOTONIC);
	f.has_seq = f.has_timestamp_ns = 1;
	f.seq = ++b.seq;
	f.timestamp_ns = now_ns(CLOCK_REALTIME);
	st.has_records_live = st.has_frame_build_ns = 1;
	st.records_live = b.store.processes;
	st.frame_build_ns = t1 - t0;
	f.stats = &st;
	if (!err)
		err = tm_encode_frame(&b.enc, &b.store, &f, NULL, 0);
	tm_store_expire(&b.store, now_ns(CLOCK_MONOTONIC), drain_cb, forget_cb, NULL);
	t->build_ms = (t1 - t0) / 1e6;
	t->total_ms = (now_ns(CLOCK_MONOTONIC) - t0) / 1e6;
	t->cpu_ms = (now_ns(CLOCK_PROCESS_CPUTIME_ID) - c0) / 1e6;
	t->encoded = b.enc.encoded;
	t->bytes = 0;
	for (size_t i = 0; i < b.enc.parts.len; i++)
		t->bytes += ((struct tm_buf **)b.enc.parts.data)[i]->len;
	return err;
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, c = *(const double *)y;

	return a < c ? -1 : a > c;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double vmax(const double *v, int n)
{
	double m = v[0];

	for (int i = 1; i < n; i++)
		m = v[i] > m ? v[i] : m;
	return m;
}

static long status_kib(const char *key)
{
	char line[256];
	long v = 0;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			v = atol(line + strlen(key) + 1);
	if (f)
		fclose(f);
	return v;
}

static int run(unsigned int pct, int frames)
{
	double build[MAX_FRAMES], total[MAX_FRAMES], cpu[MAX_FRAMES], enc[MAX_FRAMES];
	struct tick t = { 0 };
	int err = 0;

	for (int i = -WARM_FRAMES; !err && i < frames; i++) {
		err = send_some(pct);
		if (!err)
			err = tick(&t);
		if (i < 0)
			continue;
		build[i] = t.build_ms;
		total[i] = t.total_ms;
		cpu[i] = t.cpu_ms;
		enc[i] = (double)t.encoded;
	}
	if (err)
		return fail("tick", err);
	printf("{\"n\": %u, \"changed_pct\": %u, \"records\": %zu, \"frames\": %d, "
	       "\"build_ms_median\": %.3f, \"build_ms_max\": %.3f, \"total_ms_median\": %.3f, "
	       "\"cpu_ms_median\": %.3f, \"encoded_median\": %.0f, \"frame_bytes\": %zu, "
	       "\"rss_mib\": %.1f, \"hwm_mib\": %.1f, \"counter_entries\": %u}\n",
	       b.n, pct, b.store.count, frames, median(build, frames), vmax(build, frames),
	       median(total, frames), median(cpu, frames), median(enc, frames), t.bytes,
	       status_kib("VmRSS:") / 1024.0, status_kib("VmHWM:") / 1024.0,
	       b.cfg.max_owner_records);
	fflush(stdout);
	return 0;
}

static int setup(void)
{
	unsigned int entries = 2 * b.n + 4096;
	int err;

	tm_config_defaults(&b.cfg);
	b.cfg.max_owner_records = entries < 65536 ? 65536 : entries;
	b.ncpus = libbpf_num_possible_cpus();
	b.slots = calloc(b.n, sizeof(*b.slots));
	b.keys = calloc(b.n, sizeof(*b.keys));
	b.vals = calloc((size_t)b.n * b.ncpus, sizeof(*b.vals));
	b.cgroup_id = own_cgroup_id();
	if (b.ncpus < 1 || !b.slots || !b.keys || !b.vals)
		return fail("memory", -ENOMEM);
	err = load();
	if (!err)
		err = tm_store_init(&b.store);
	if (!err)
		err = tm_resolver_init(&b.res, &b.cfg, &b.store);
	if (!err)
		err = tm_encoder_init(&b.enc, &b.store, PART_MAX);
	if (!err)
		err = make_classes();
	if (!err)
		err = send_some(100); /* every owner's first datagram: its record */
	if (!err)
		err = tm_mapio_read(&b.io, &b.store);
	if (!err)
		feed_metadata();
	return err;
}

int main(int argc, char **argv)
{
	int frames = argc > 3 ? atoi(argv[3]) : DEF_FRAMES, err;
	char *save = NULL, *tok;

	if (argc < 3 || atoi(argv[1]) < 1 || frames < 1 || frames > MAX_FRAMES) {
		fprintf(stderr, "usage: bench_collector N PCT[,PCT...] [FRAMES [--wait]]\n");
		return 2;
	}
	tm_log_level = TM_LOG_WARN;
	b.n = (unsigned int)atoi(argv[1]);
	err = setup();
	if (!err && argc > 4 && !strcmp(argv[4], "--wait")) {
		char line[16];

		fprintf(stderr, "ready\n");
		if (!fgets(line, sizeof(line), stdin))
			err = -EPIPE;
	}
	for (tok = strtok_r(argv[2], ",", &save); !err && tok; tok = strtok_r(NULL, ",", &save))
		err = run((unsigned int)atoi(tok), frames);
	return err ? 1 : 0;
}
