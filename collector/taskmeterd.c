// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * taskmeterd: loads and attaches the BPF programs, folds their counters and
 * events into per-process records, and streams one protobuf frame per
 * interval to every subscriber of its UNIX socket.
 *
 * Lifecycle: config -> state (adopt or fresh) -> load -> attach -> poll
 * loop (ring buffer, timer, socket, netlink, signals) -> final frame ->
 * detach and unpin, or keep the state for the next collector.
 */
#define _GNU_SOURCE /* vasprintf */
#include <errno.h>
#include <grp.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/capability.h>
#include <systemd/sd-daemon.h>
#include <xdp/libxdp.h>

#include "args.h"
#include "bpfload.h"
#include "config.h"
#include "encode.h"
#include "export.h"
#include "frame.h"
#include "ifaces.h"
#include "log.h"
#include "mapio.h"
#include "mapsize.h"
#include "meta.h"
#include "store.h"
#include "taskmeter.skel.h"
#include "tm_build.h"
#include "util.h"

#define TM_EXIT_CONFIG 2
/* Bytes of records per message of a frame (Frame.more_parts). */
#define TM_PART_MAX (8u << 20)
/* Allocations from this size on are mmap()ed (glibc's default start). */
#define TM_MMAP_THRESHOLD (128 * 1024)
/* Records checked against /proc per interval for a missed exit. */
#define TM_REAP_PER_TICK 256

static int libbpf_debug; /* -vv */

struct tm_daemon {
	struct tm_args args;
	struct tm_config cfg;
	struct tm_bpf bpf;
	struct tm_store store;
	struct tm_resolver res;
	struct tm_mapio io;
	struct tm_encoder enc;
	int ncpus;
	struct ring_buffer *rb;
	struct tm_export *exp;
	struct tm_ifaces *ifs;
	struct tm_if_view *views;   /* this frame's interfaces */
	size_t n_views, cap_views;
	struct tm_watch rb_watch, timer_watch, signal_watch;
	int epfd;
	int config_error;       /* setup failed on the configuration: exit 2 */
	int stop;               /* 0 running; 1 stop and clean up; 2 stop, keep state */
	uint64_t seq;
	uint64_t last_read_ns;
	uint64_t counters_id;   /* Frame.counters_id: the counting the totals are in */
	char hostname[256];
};

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	/* one level lower than libbpf's own: its warnings are our info */
	enum tm_log_level l = level == LIBBPF_WARN ? TM_LOG_INFO : TM_LOG_DEBUG;
	char *msg = NULL, *line, *save = NULL;

	if ((level == LIBBPF_DEBUG && !libbpf_debug) || l > tm_log_level)
		return 0;
	if (vasprintf(&msg, fmt, ap) < 0)
		return 0;
	/* a verifier log comes as one message: a log line per line of it */
	for (line = strtok_r(msg, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		tm_log(l, "%s\n", line); /* libbpf and libxdp name themselves */
	free(msg);
	return 0;
}

static int libxdp_print(enum libxdp_print_level level, const char *fmt, va_list ap)
{
	return libbpf_print((enum libbpf_print_level)level, fmt, ap);
}

/* ---- one interval ---- */

static void read_stats(struct tm_daemon *d, Taskmeter__CollectorStats *st)
{
	uint64_t v[TM_STAT_MAX];

	if (tm_mapio_stats(&d->io, v))
		memset(v, 0, sizeof(v));
	st->has_task_work_scheduled = st->has_task_work_failed = st->has_task_work_callbacks = 1;
	st->task_work_scheduled = v[TM_STAT_TW_SCHEDULED];
	st->task_work_failed = v[TM_STAT_TW_FAILED];
	st->task_work_callbacks = v[TM_STAT_TW_CALLBACKS];
	st->has_ringbuf_drops = st->has_counter_map_full = st->has_meta_map_full = 1;
	st->ringbuf_drops = v[TM_STAT_RINGBUF_DROPS];
	st->counter_map_full = v[TM_STAT_CLASS_FULL];
	st->meta_map_full = v[TM_STAT_META_MAP_FULL];
	st->has_malformed_packets = 1;
	st->malformed_packets = v[TM_STAT_MALFORMED];
	st->has_procfs_reads = st->has_procfs_failures = st->has_exits_inferred = 1;
	st->procfs_reads = d->res.procfs_reads;
	st->procfs_failures = d->res.procfs_failures;
	st->exits_inferred = d->res.exits_inferred;
	st->has_subscribers = st->has_frames_dropped = st->has_records_live = 1;
	st->subscribers = tm_export_subscribers(d->exp);
	st->frames_dropped = tm_export_dropped(d->exp);
	st->records_live = d->store.processes;
	st->has_subscribers_refused = 1;
	st->subscribers_refused = tm_export_refused(d->exp);
	st->has_counter_entries = 1;
	st->counter_entries = d->io.classes;
}

static void add_view(void *ctx, const struct tm_iface_info *info)
{
	struct tm_daemon *d = ctx;
	struct tm_if_view *v;

	if (tm_array_reserve(&d->views, &d->cap_views, sizeof(*d->views), d->n_views + 1, 16))
		return;
	v = &d->views[d->n_views++];
	memset(v, 0, sizeof(*v));
	v->netns = info->netns;
	v->ifindex = info->ifindex;
	snprintf(v->name, sizeof(v->name), "%s", info->name);
	snprintf(v->xdp, sizeof(v->xdp), "%s", info->xdp);
	snprintf(v->tc, sizeof(v->tc), "%s", info->tc);
	v->kernel[TM_DIR_INGRESS].packets = info->stats.rx_packets;
	v->kernel[TM_DIR_INGRESS].bytes = info->stats.rx_bytes;
	v->kernel[TM_DIR_EGRESS].packets = info->stats.tx_packets;
	v->kernel[TM_DIR_EGRESS].bytes = info->stats.tx_bytes;
	tm_store_if_name_set(&d->store, v->netns, v->ifindex, v->name);
}

/* Counters of both layers, then the kernel's interface counters at once. */
static void read_counters(struct tm_daemon *d)
{
	int err;

	err = tm_mapio_read(&d->io, &d->store);
	if (err)
		tm_warn("reading counters: %s\n", strerror(-err));
	d->n_views = 0;
	err = tm_ifaces_each(d->ifs, add_view, d);
	if (err)
		tm_warn("reading interface counters: %s\n", strerror(-err));
}

static bool drain_cb(void *ctx, struct tm_record *rec)
{
	struct tm_daemon *d = ctx;

	return tm_mapio_drain(&d->io, &d->store, rec);
}

static void forget_cb(void *ctx, const struct tm_owner *o)
{
	struct tm_daemon *d = ctx;

	tm_mapio_forget(&d->io, o);
}

static void drain_events(void *ctx)
{
	struct tm_daemon *d = ctx;

	ring_buffer__consume(d->rb);
}

static void frame_header(struct tm_daemon *d, Taskmeter__Frame *f, uint64_t t0)
{
	f->has_seq = f->has_timestamp_ns = f->has_interval_ns = f->has_metadata_mode = 1;
	f->seq = ++d->seq;
	f->timestamp_ns = tm_now_ns(CLOCK_REALTIME);
	f->interval_ns = d->last_read_ns ? t0 - d->last_read_ns : 0;
	d->last_read_ns = t0;
	f->metadata_mode = d->bpf.task_work ? TASKMETER__METADATA_MODE__MODE_TASK_WORK
					    : TASKMETER__METADATA_MODE__MODE_PROCFS;
	f->hostname = d->hostname;
	f->has_counters_id = 1;
	f->counters_id = d->counters_id;
}

static int tick(struct tm_daemon *d)
{
	Taskmeter__CollectorStats st = TASKMETER__COLLECTOR_STATS__INIT;
	Taskmeter__Frame f = TASKMETER__FRAME__INIT;
	uint64_t t0 = tm_now_ns(CLOCK_MONOTONIC), now;
	int err;

	/* Events first: metadata and exits that precede these counters. */
	ring_buffer__consume(d->rb);
	read_counters(d);
	tm_resolver_run(&d->res);
	err = tm_encode_records(&d->enc, &d->store);
	if (err)
		return err;
	frame_header(d, &f, t0);
	read_stats(d, &st);
	st.has_frame_build_ns = st.has_records_encoded = 1;
	st.frame_build_ns = tm_now_ns(CLOCK_MONOTONIC) - t0; /* all but the final copy */
	st.records_encoded = d->enc.encoded;
	f.stats = &st;
	err = tm_encode_frame(&d->enc, &d->store, &f, d->views, d->n_views);
	if (err)
		return err;
	err = tm_export_publish(d->exp, d->enc.parts.data, d->enc.parts.len);
	now = tm_now_ns(CLOCK_MONOTONIC);
	tm_store_expire(&d->store, now, drain_cb, forget_cb, d);
	tm_resolver_reap(&d->res, TM_REAP_PER_TICK, now, drain_events, d);
	tm_export_tick(d->exp);
	return err;
}

/* ---- set-up ---- */

static int watch(struct tm_daemon *d, struct tm_watch *w, enum tm_watch_kind kind, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = w };

	w->kind = kind;
	w->fd = fd;
	return epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static unsigned int l2_less(void *ctx, uint64_t netns, int ifindex, int dir)
{
	return tm_ifaces_l2_less(ctx, netns, ifindex, dir);
}

static int arm_timer(int fd, unsigned int ms)
{
	struct itimerspec its = {
		.it_interval = { ms / 1000, (long)(ms % 1000) * 1000000 },
		.it_value = { ms / 1000, (long)(ms % 1000) * 1000000 },
	};

	return timerfd_settime(fd, 0, &its, NULL) ? -errno : 0;
}

static int start_timer(struct tm_daemon *d)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC), err;

	if (fd < 0)
		return -errno;
	err = arm_timer(fd, d->cfg.interval_ms);
	if (!err)
		err = watch(d, &d->timer_watch, TM_WATCH_TIMER, fd);
	if (err)
		close(fd);
	return err;
}

/* Signals arrive as events of the poll loop: a reload or a stop happens
 * between two steps, never inside one. Blocked from the start, so that a
 * SIGTERM during set-up is a stop once set-up is done, not a death with
 * half of it attached. */
static int block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR2);
	return sigprocmask(SIG_BLOCK, set, NULL) ? -errno : 0;
}

static int start_signals(struct tm_daemon *d)
{
	sigset_t set;
	int fd, err = block_signals(&set);

	if (err)
		return err;
	fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	return watch(d, &d->signal_watch, TM_WATCH_SIGNAL, fd);
}

static const char *export_error(int err)
{
	switch (err) {
	case -EADDRINUSE: return " (another taskmeterd is serving it)";
	case -ENOTSOCK: return " (a file that is not a socket is in the way: not removed)";
	case -EISDIR: return " (a directory is in the way)";
	default: return "";
	}
}

/* socket_group: a group name or number; -1 when not set. */
static int socket_gid(const struct tm_config *c, int *gid)
{
	char buf[4096], where[128], *end;
	struct group gr, *res = NULL;
	unsigned long n;

	*gid = -1;
	if (!c->socket_group[0])
		return 0;
	n = strtoul(c->socket_group, &end, 10);
	if (!*end && n < 0x7fffffff) {
		*gid = (int)n;
		return 0;
	}
	if (getgrnam_r(c->socket_group, &gr, buf, sizeof(buf), &res) || !res) {
		tm_err("%s: no group named '%s'\n",
		       tm_config_where(c, "socket_group", where, sizeof(where)), c->socket_group);
		return -EINVAL;
	}
	*gid = (int)res->gr_gid;
	return 0;
}

static void export_opts(const struct tm_config *c, struct tm_export_opts *o, int gid)
{
	o->path = c->socket_path;
	o->mode = c->socket_mode;
	o->gid = gid;
	o->queue_frames = c->subscriber_queue;
	o->queue_bytes = (size_t)c->subscriber_queue_mib << 20;
	o->max_subscribers = c->max_subscribers;
}

static int open_export(struct tm_daemon *d)
{
	struct tm_export_opts o;
	char where[128];
	int err, gid;

	err = socket_gid(&d->cfg, &gid);
	if (err) {
		d->config_error = 1;
		return err;
	}
	export_opts(&d->cfg, &o, gid);
	d->exp = tm_export_open(&o, d->epfd);
	if (d->exp)
		return 0;
	err = -errno;
	tm_err("%s: %s: %s%s\n", tm_config_where(&d->cfg, "socket_path", where, sizeof(where)),
	       d->cfg.socket_path, strerror(-err), export_error(err));
	/* a path that cannot be a socket is the configuration's fault */
	d->config_error = err == -ENOTSOCK || err == -EISDIR || err == -ENOTDIR ||
			  err == -ENAMETOOLONG;
	return err;
}

/* Capabilities, as linux/capability.h numbers them (CAP_BPF and
 * CAP_PERFMON are newer than some libc headers). */
static const struct { int cap; const char *name; bool must; const char *without; } caps[] = {
	{ 39, "CAP_BPF", true, NULL },        /* load programs, create maps */
	{ 38, "CAP_PERFMON", true, NULL },    /* tracepoints, pointer reads */
	{ 12, "CAP_NET_ADMIN", true, NULL },  /* cgroup_skb, XDP, TC */
	{ 21, "CAP_SYS_ADMIN", true, NULL },  /* setns into watched netns, bpffs, BTF */
	{ 19, "CAP_SYS_PTRACE", false, "other users' /proc entries (metadata, old sockets) "
					 "and their network namespaces" },
	{ 2, "CAP_DAC_READ_SEARCH", false, "other users' sockets older than the collector" },
	{ 24, "CAP_SYS_RESOURCE", false, "RLIMIT_MEMLOCK not raised (kernels before 5.11 "
					   "charge BPF maps to it)" },
};

static bool have_cap(const struct __user_cap_data_struct *c, int cap)
{
	return c[cap / 32].effective & (1u << (cap % 32));
}

/* Say which privileges are missing, instead of letting the first failed
 * bpf() call (libbpf: "Couldn't load trivial BPF program") say it badly. */
static int check_privileges(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct c[2] = { 0 };
	char missing[256] = "";
	size_t at = 0;

	if (syscall(SYS_capget, &h, c))
		return 0; /* cannot tell: let the kernel decide */
	for (size_t i = 0; i < TM_ARRAY_SIZE(caps); i++)
		if (caps[i].must && !have_cap(c, caps[i].cap))
			at += (size_t)snprintf(missing + at, sizeof(missing) - at, " %s", caps[i].name);
	for (size_t i = 0; !missing[0] && i < TM_ARRAY_SIZE(caps); i++)
		if (!caps[i].must && !have_cap(c, caps[i].cap))
			tm_warn("without %s: %s\n", caps[i].name, caps[i].without);
	if (!missing[0])
		return 0;
	tm_err("taskmeterd needs root, or the capabilities CAP_BPF, CAP_PERFMON, "
	       "CAP_NET_ADMIN, CAP_SYS_ADMIN (and CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH, "
	       "CAP_SYS_RESOURCE); "
	       "missing:%s\n", missing);
	return -EPERM;
}

/* Subscribers and netns fds add up: take what the hard limit allows. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int setup_store(struct tm_daemon *d)
{
	int err;

	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	err = d->epfd < 0 ? -errno : tm_store_init(&d->store);
	if (!err)
		err = tm_resolver_init(&d->res, &d->cfg, &d->store);
	if (!err)
		err = tm_encoder_init(&d->enc, &d->store, TM_PART_MAX);
	if (err)
		tm_err("setting up: %s\n", strerror(-err));
	return err;
}

/* The BPF side: state, programs, the maps' reader and the ring buffer. */
static int setup_bpf(struct tm_daemon *d)
{
	int err;

	err = tm_bpf_open_state(&d->bpf, &d->cfg);
	if (err)
		return err;
	d->counters_id = d->bpf.state.counters_id;
	err = tm_bpf_load(&d->bpf, &d->cfg);
	if (err)
		return err;
	err = tm_mapio_init(&d->io, &d->bpf, d->ncpus, d->bpf.start != TM_START_ADOPTED);
	if (!err && d->bpf.start == TM_START_ADOPTED)
		err = tm_mapio_load_retired(&d->io, &d->store);
	if (err) {
		tm_err("setting up: %s\n", strerror(-err));
		return err;
	}
	d->rb = ring_buffer__new(bpf_map__fd(d->bpf.skel->maps.tm_events), tm_resolver_on_event,
				 &d->res, NULL);
	err = d->rb ? watch(d, &d->rb_watch, TM_WATCH_RINGBUF, ring_buffer__epoll_fd(d->rb))
		    : -errno;
	if (err)
		tm_err("ring buffer: %s\n", strerror(-err));
	tm_info("ring buffer: %u KiB, room for %llu metadata events of %zu bytes (argv and "
		"environment of 512), %llu at their largest (argv_max, env_max)\n",
		d->cfg.ringbuf_kib, tm_mapsize_ringbuf_events(&d->cfg, sizeof(struct tm_meta_event) + 512),
		sizeof(struct tm_meta_event) + 512,
		tm_mapsize_ringbuf_events(&d->cfg, sizeof(struct tm_meta_event) + d->cfg.argv_max +
						 d->cfg.env_max));
	return err;
}

static int setup(struct tm_daemon *d)
{
	int err;

	err = check_privileges();
	if (err)
		return err;
	d->ncpus = libbpf_num_possible_cpus();
	if (d->ncpus < 0) {
		tm_err("counting CPUs: %s\n", strerror(-d->ncpus));
		return d->ncpus;
	}
	raise_nofile();
	err = tm_bpf_open_cgroup(&d->bpf, &d->cfg);
	if (!err)
		err = tm_ifaces_check(&d->cfg);
	if (err) {
		d->config_error = 1;
		return err;
	}
	gethostname(d->hostname, sizeof(d->hostname) - 1);
	/* any bytes but NUL may name a host; Frame.hostname is a string */
	tm_utf8_sanitize(d->hostname, strlen(d->hostname));
	err = setup_store(d);
	if (!err)
		err = open_export(d); /* first: a socket in use is found before loading */
	if (!err)
		err = setup_bpf(d);
	if (!err)
		err = tm_bpf_attach(&d->bpf, &d->cfg);
	if (err)
		return err;
	err = tm_bpf_seed_sockets(&d->bpf);
	if (err == -ENOTRECOVERABLE) /* stuck in another network namespace */
		return err;
	d->ifs = tm_ifaces_open(&d->cfg, &d->bpf, d->epfd);
	if (!d->ifs) {
		err = -errno;
		d->config_error = err == -ENOENT || err == -ENOTDIR; /* a netns that is not there */
		return err;
	}
	d->io.l2_less = l2_less;
	d->io.l2_less_ctx = d->ifs;
	err = start_timer(d);
	if (!err)
		err = start_signals(d);
	if (err) {
		tm_err("timer and signals: %s\n", strerror(-err));
		return err;
	}
	err = tm_export_start(d->exp);
	if (err) {
		tm_err("%s: %s\n", d->cfg.socket_path, err == -EADDRINUSE ?
		       "taken over by another collector while this one started" : strerror(-err));
		return err;
	}
	tm_info("streaming to %s every %u ms (metadata: %s)\n", d->cfg.socket_path,
		d->cfg.interval_ms, d->bpf.task_work ? "task_work" : "procfs");
	/* Type=notify: units ordered after us start once the programs count
	 * and the socket takes clients (a no-op outside systemd). */
	sd_notifyf(0, "READY=1\nSTATUS=streaming to %s (%s)", d->cfg.socket_path,
		   d->bpf.start == TM_START_ADOPTED ? "adopted the pinned state" : "new state");
	return 0;
}

static void teardown(struct tm_daemon *d, bool keep)
{
	/* reverse of setup: detach first so nothing new arrives */
	tm_ifaces_close(d->ifs, keep);
	tm_bpf_destroy(&d->bpf, keep);
	free(d->views);
	if (d->timer_watch.fd > 0)
		close(d->timer_watch.fd);
	if (d->signal_watch.fd > 0)
		close(d->signal_watch.fd);
	tm_export_close(d->exp);
	ring_buffer__free(d->rb);
	tm_mapio_free(&d->io);
	tm_encoder_free(&d->enc);
	tm_resolver_free(&d->res);
	tm_store_free(&d->store);
	if (d->epfd >= 0)
		close(d->epfd);
}

/* ---- reload (SIGHUP) ---- */

#define SAME(field) (!memcmp(&a->field, &b->field, sizeof(a->field)))

/* Keys whose value the running programs, maps or socket were made with:
 * a reload reports them and keeps the running value. */
static void keep_fixed(struct tm_config *n, const struct tm_config *o, char *list, size_t len)
{
	const struct tm_config *a = o, *b = n;
	size_t at = 0;

#define FIXED(field, key)                                                            \
	do {                                                                         \
		if (!SAME(field)) {                                                  \
			at += (size_t)snprintf(list + at, at < len ? len - at : 0, "%s%s", \
					       at ? ", " : "", key);                  \
			memcpy(&n->field, &o->field, sizeof(n->field));              \
		}                                                                    \
	} while (0)
	FIXED(cgroup, "cgroup");
	FIXED(socket_path, "socket_path");
	FIXED(instance, "instance");
	FIXED(pin_root, "pin_root");
	FIXED(metadata_procfs, "metadata");
	FIXED(argv_max, "argv_max");
	FIXED(env_max, "env_max");
#undef FIXED
	/* every key that sizes a map (several maps may share one) */
	for (size_t i = 0; i < tm_mapsize_table_n; i++) {
		const struct tm_map_size *ms = &tm_mapsize_table[i];
		unsigned int *nv = (unsigned int *)((char *)n + ms->off);
		const unsigned int *ov = (const unsigned int *)((const char *)o + ms->off);

		if (*nv == *ov)
			continue;
		at += (size_t)snprintf(list + at, at < len ? len - at : 0, "%s%s", at ? ", " : "",
				       ms->key);
		*nv = *ov;
	}
}

static bool ifaces_differ(const struct tm_config *a, const struct tm_config *b)
{
	return !SAME(ifaces) || !SAME(n_ifaces) || !SAME(netns) || !SAME(n_netns) ||
	       !SAME(xdp_mode) || !SAME(tc_attach);
}

/* What can change live, changes. */
static void apply_live(struct tm_daemon *d, const struct tm_config *o)
{
	const struct tm_config *a = o, *b = &d->cfg;
	struct tm_export_opts eo;
	int err, gid;

	tm_log_level = d->args.verbose ? TM_LOG_DEBUG : d->cfg.log_level;
	if (!SAME(interval_ms) && arm_timer(d->timer_watch.fd, d->cfg.interval_ms))
		tm_warn("reload: interval: %s\n", strerror(errno));
	if (!socket_gid(&d->cfg, &gid)) {
		export_opts(&d->cfg, &eo, gid);
		err = tm_export_configure(d->exp, &eo);
		if (err)
			tm_warn("reload: socket: %s\n", strerror(-err));
	}
	if (ifaces_differ(a, b)) {
		tm_info("reload: interfaces changed: re-attaching XDP and TC\n");
		tm_ifaces_close(d->ifs, false);
		d->ifs = tm_ifaces_open(&d->cfg, &d->bpf, d->epfd);
		if (!d->ifs)
			tm_err("reload: interfaces: %s: none attached\n", strerror(errno));
		d->io.l2_less_ctx = d->ifs;
	}
}

static void reload(struct tm_daemon *d)
{
	struct tm_config n, old = d->cfg;
	char msg[512], fixed[512] = "";

	sd_notify(0, "RELOADING=1");
	if (tm_args_config(&d->args, &n, msg, sizeof(msg))) {
		tm_err("reload: %s: the running configuration stays\n", msg);
		sd_notifyf(0, "READY=1\nSTATUS=reload refused: %s", msg);
		return;
	}
	/* a netns that is not there would leave no interface attached */
	if (tm_ifaces_check(&n)) {
		tm_err("reload: the running configuration stays\n");
		sd_notify(0, "READY=1\nSTATUS=reload refused: a netns is not there");
		return;
	}
	keep_fixed(&n, &old, fixed, sizeof(fixed));
	d->cfg = n; /* the resolver and the interfaces point at d->cfg */
	apply_live(d, &old);
	tm_info("reloaded %s%s%s%s\n", d->args.config ? d->args.config : "the configuration",
		fixed[0] ? "; these need a restart and keep their running values: " : "",
		fixed, fixed[0] ? "" : "");
	sd_notifyf(0, "READY=1\nSTATUS=streaming to %s (reloaded)", d->cfg.socket_path);
}

static void on_signal(struct tm_daemon *d)
{
	struct signalfd_siginfo si;

	while (read(d->signal_watch.fd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGHUP:
			reload(d);
			break;
		case SIGUSR2:
			d->stop = 2;
			break;
		default:
			d->stop = 1;
			break;
		}
	}
}

/* ---- the loop ---- */

static void dispatch(struct tm_daemon *d, struct epoll_event *ev)
{
	struct tm_watch *w = ev->data.ptr;
	uint64_t expirations;
	int err;

	switch (w->kind) {
	case TM_WATCH_RINGBUF:
		ring_buffer__consume(d->rb);
		break;
	case TM_WATCH_TIMER:
		if (read(w->fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
			tm_warn("timer: %s\n", strerror(errno));
		err = tick(d);
		if (err)
			tm_warn("frame %llu: %s\n", (unsigned long long)d->seq, strerror(-err));
		break;
	case TM_WATCH_LISTENER:
		tm_export_accept(d->exp);
		break;
	case TM_WATCH_SUBSCRIBER:
		tm_export_ready(d->exp, w, ev->events);
		break;
	case TM_WATCH_NETLINK:
		tm_ifaces_ready(d->ifs, w);
		break;
	case TM_WATCH_SIGNAL:
		on_signal(d);
		break;
	}
}

static int loop(struct tm_daemon *d)
{
	struct epoll_event evs[32];

	while (!d->stop) {
		int n = epoll_wait(d->epfd, evs, 32, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		for (int i = 0; i < n && !d->stop; i++)
			dispatch(d, &evs[i]);
	}
	/* one last frame: what happened since the previous one is not lost */
	tm_resolver_last_frame(&d->res);
	return tick(d);
}

static int run(struct tm_daemon *d)
{
	bool keep;
	int err;

	sigset_t set;

	libbpf_debug = d->args.verbose >= 2;
	libbpf_set_print(libbpf_print);
	libxdp_set_print(libxdp_print);
	signal(SIGPIPE, SIG_IGN);
	err = block_signals(&set);
	if (!err)
		err = setup(d);
	if (!err) {
		err = loop(d);
		if (err)
			tm_err("poll loop: %s\n", strerror(-err));
	}
	sd_notify(0, "STOPPING=1");
	/* a failed start leaves no state; a stop keeps it when asked to */
	keep = !err && (d->stop == 2 || d->cfg.keep_state || d->args.keep_state);
	if (err && d->bpf.start == TM_START_ADOPTED)
		keep = true; /* what we adopted was counting: leave it counting */
	teardown(d, keep);
	if (err)
		return d->config_error ? TM_EXIT_CONFIG : 1;
	tm_info(keep ? "exiting; state kept\n" : "detached, exiting\n");
	return 0;
}

/* The command line's own exit status, or -1 to go on. */
static int parse_args(struct tm_daemon *d, int argc, char **argv)
{
	char err[512];
	int ret = tm_args_parse(&d->args, argc, argv, err, sizeof(err));

	if (!ret && d->args.help) {
		tm_args_usage(stdout);
		return 0;
	}
	if (!ret && d->args.version) {
		printf("taskmeterd %s\n", TM_VERSION);
		return 0;
	}
	if (d->args.usage) /* getopt has named the option */
		fprintf(stderr, "Try 'taskmeterd --help' for the options.\n");
	else if (ret)
		fprintf(stderr, "taskmeterd: %s\n", err);
	if (!ret && tm_args_config(&d->args, &d->cfg, err, sizeof(err))) {
		fprintf(stderr, "taskmeterd: %s\n", err);
		ret = -EINVAL;
	}
	return ret ? TM_EXIT_CONFIG : -1;
}

int main(int argc, char **argv)
{
	static struct tm_daemon d = { .epfd = -1, .bpf.cgroup_fd = -1 };
	int err;

	/* A fixed threshold: frame buffers (MiBs) are mapped and given back
	 * each time; glibc's sliding one would move the first freed one into
	 * the heap for good, a step in memory at some frame. */
	mallopt(M_MMAP_THRESHOLD, TM_MMAP_THRESHOLD);
	err = parse_args(&d, argc, argv);
	if (err >= 0) {
		tm_args_free(&d.args);
		return err;
	}
	tm_log_level = d.args.verbose ? TM_LOG_DEBUG : d.cfg.log_level;
	if (d.args.check_only) {
		printf("configuration OK\n");
		err = 0;
	} else if (d.args.print_memory) {
		printf("BPF maps: at most %llu bytes (%d CPUs)\n",
		       tm_mapsize_print(&d.cfg, libbpf_num_possible_cpus(), stdout),
		       libbpf_num_possible_cpus());
		printf("ring buffer: room for %llu metadata events of 512 bytes of argv and "
		       "environment, %llu at their largest\n",
		       tm_mapsize_ringbuf_events(&d.cfg, sizeof(struct tm_meta_event) + 512),
		       tm_mapsize_ringbuf_events(&d.cfg, sizeof(struct tm_meta_event) + d.cfg.argv_max +
						       d.cfg.env_max));
		err = 0;
	} else if (d.args.remove_state) {
		err = tm_bpf_remove_state(&d.cfg) ? 1 : 0;
	} else {
		err = run(&d);
	}
	tm_args_free(&d.args);
	return err;
}
