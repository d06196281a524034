// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * taskmeterd: loads and attaches the BPF programs, folds their counters and
 * events into per-process records, and streams one protobuf frame per
 * interval to every subscriber of its UNIX socket.
 *
 * Lifecycle: config -> open/load -> attach -> poll loop -> detach.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/libxdp.h>

#include "args.h"
#include "bpfload.h"
#include "config.h"
#include "export.h"
#include "frame.h"
#include "ifaces.h"
#include "log.h"
#include "records.h"
#include "taskmeter.skel.h"

#define TM_DEFAULT_CONFIG "/etc/taskmeter/taskmeter.conf"
#define TM_EXIT_CONFIG 2

static volatile sig_atomic_t stop;
static int libbpf_debug; /* -vv */

struct tm_daemon {
	struct tm_config cfg;
	struct tm_bpf bpf;
	struct tm_records rec;
	struct ring_buffer *rb;
	struct tm_export *exp;
	struct tm_ifaces *ifs;
	struct tm_if_view *views;   /* this frame's interfaces */
	size_t n_views, cap_views;
	struct tm_watch rb_watch, timer_watch;
	int epfd;
	int config_error;       /* setup failed on the configuration: exit 2 */
	uint64_t seq;
	uint64_t last_read_ns;
	uint64_t counters_id;   /* Frame.counters_id: names this run's counter state */
	char hostname[256];
};

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	/* one level lower than libbpf's own: its warnings are our info */
	enum tm_log_level l = level == LIBBPF_WARN ? TM_LOG_INFO : TM_LOG_DEBUG;
	char msg[1024];

	if ((level == LIBBPF_DEBUG && !libbpf_debug) || l > tm_log_level)
		return 0;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	tm_log(l, "%s", msg); /* libbpf and libxdp name themselves */
	return 0;
}

static int libxdp_print(enum libxdp_print_level level, const char *fmt, va_list ap)
{
	return libbpf_print((enum libbpf_print_level)level, fmt, ap);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: taskmeterd [OPTIONS]\n"
		"Per-process network accounting: attaches BPF programs to a cgroup and\n"
		"streams per-process records as length-delimited protobuf frames\n"
		"(proto/taskmeter.proto) to every client of a UNIX socket.\n"
		"\n"
		"  -c, --config FILE     config file (default " TM_DEFAULT_CONFIG
		" if it exists;\n"
		"                        see configs/taskmeter.conf for every key)\n"
		"      --cgroup PATH     cgroup v2 to account (default: the root = whole host)\n"
		"      --socket PATH     export socket (default /run/taskmeter/taskmeter.sock)\n"
		"      --interval DUR    frame interval, e.g. 1s, 500ms (default 1s)\n"
		"      --metadata MODE   task_work (default) or procfs (the fallback for\n"
		"                        kernels without the task_work kfunc)\n"
		"      --set KEY=VALUE   set any config key (repeatable)\n"
		"      --check-config    validate the configuration and exit\n"
		"      --print-memory    print the BPF map memory this config may use, exit\n"
		"  -v, --verbose         more logging (-vv: libbpf debug output)\n"
		"  -h, --help            this text\n"
		"\n"
		"Command-line settings override the file. Config errors exit with status 2\n"
		"before anything is attached. SIGINT/SIGTERM: send a final frame, detach, exit 0.\n");
}

static int load_config(struct tm_config *cfg, const struct tm_args *a)
{
	const char *path = a->config;
	char err[512];
	int ret = 0;

	tm_config_defaults(cfg);
	if (!path && access(TM_DEFAULT_CONFIG, F_OK) == 0)
		path = TM_DEFAULT_CONFIG;
	if (path)
		ret = tm_config_load(cfg, path, err, sizeof(err));
	if (!ret)
		ret = tm_args_apply(a, cfg, err, sizeof(err));
	if (ret)
		fprintf(stderr, "taskmeterd: %s\n", err);
	return ret;
}

/* Exit status of the command line alone, or -1 to go on. */
static int parse_args(int argc, char **argv, struct tm_args *a)
{
	char err[512];
	int ret = tm_args_parse(a, argc, argv, err, sizeof(err));

	if (a->help) {
		usage(stdout);
		return 0;
	}
	if (a->usage)
		usage(stderr);
	else if (ret)
		fprintf(stderr, "taskmeterd: %s\n", err);
	return ret ? TM_EXIT_CONFIG : -1;
}

/* ---- one interval ---- */

static void read_stats(struct tm_daemon *d, Taskmeter__CollectorStats *st)
{
	int fd = bpf_map__fd(d->bpf.skel->maps.tm_stats), ncpus = d->rec.ncpus;
	uint64_t v[TM_STAT_MAX] = { 0 }, percpu[512];

	for (__u32 i = 0; i < TM_STAT_MAX && ncpus <= 512; i++) {
		if (bpf_map_lookup_elem(fd, &i, percpu))
			continue;
		for (int c = 0; c < ncpus; c++)
			v[i] += percpu[c];
	}
	st->has_task_work_scheduled = st->has_task_work_failed = st->has_task_work_callbacks = 1;
	st->task_work_scheduled = v[TM_STAT_TW_SCHEDULED];
	st->task_work_failed = v[TM_STAT_TW_FAILED];
	st->task_work_callbacks = v[TM_STAT_TW_CALLBACKS];
	st->has_ringbuf_drops = st->has_counter_map_full = st->has_meta_map_full = 1;
	st->ringbuf_drops = v[TM_STAT_RINGBUF_DROPS];
	st->counter_map_full = v[TM_STAT_COUNTER_MAP_FULL];
	st->meta_map_full = v[TM_STAT_META_MAP_FULL];
	st->has_malformed_packets = 1;
	st->malformed_packets = v[TM_STAT_MALFORMED];
	st->has_procfs_reads = st->has_procfs_failures = 1;
	st->procfs_reads = d->rec.procfs_reads;
	st->procfs_failures = d->rec.procfs_failures;
	st->has_subscribers = st->has_frames_dropped = st->has_records_live = 1;
	st->subscribers = tm_export_subscribers(d->exp);
	st->frames_dropped = tm_export_dropped(d->exp);
	st->records_live = d->rec.count;
	st->has_counter_entries = 1;
	st->counter_entries = d->rec.counter_entries;
}

static int publish(struct tm_daemon *d, Taskmeter__Frame *f)
{
	size_t len = taskmeter__frame__get_packed_size(f);
	uint8_t *body = malloc(len ? len : 1);
	int err;

	if (!body)
		return -ENOMEM;
	taskmeter__frame__pack(f, body);
	err = tm_export_publish(d->exp, body, len);
	free(body);
	return err;
}

static void add_view(void *ctx, const struct tm_iface_info *info)
{
	struct tm_daemon *d = ctx;
	struct tm_if_view *v;

	if (d->n_views == d->cap_views) {
		size_t cap = d->cap_views ? 2 * d->cap_views : 16;

		v = realloc(d->views, cap * sizeof(*v));
		if (!v)
			return;
		d->views = v;
		d->cap_views = cap;
	}
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
}

/* Counters of both layers, then the kernel's interface counters at once. */
static void read_counters(struct tm_daemon *d)
{
	struct taskmeter_bpf *s = d->bpf.skel;
	int err;

	err = tm_records_read(&d->rec, bpf_map__fd(s->maps.tm_counters),
			      bpf_map__fd(s->maps.tm_overflow));
	if (!err)
		err = tm_records_read_if(&d->rec, bpf_map__fd(s->maps.tm_if_counters),
					 bpf_map__fd(s->maps.tm_if_overflow));
	if (err)
		tm_warn("reading counters: %s\n", strerror(-err));
	d->n_views = 0;
	err = tm_ifaces_each(d->ifs, add_view, d);
	if (err)
		tm_warn("reading interface counters: %s\n", strerror(-err));
}

static int tick(struct tm_daemon *d)
{
	Taskmeter__CollectorStats st = TASKMETER__COLLECTOR_STATS__INIT;
	Taskmeter__Frame f = TASKMETER__FRAME__INIT;
	uint64_t t0 = clock_ns(CLOCK_MONOTONIC);
	int err;

	/* Events first: metadata and exits that precede these counters. */
	ring_buffer__consume(d->rb);
	read_counters(d);
	err = tm_records_build(&d->rec, &f, d->views, d->n_views);
	if (err)
		return err;
	f.has_seq = f.has_timestamp_ns = f.has_interval_ns = f.has_metadata_mode = 1;
	f.seq = ++d->seq;
	f.timestamp_ns = clock_ns(CLOCK_REALTIME);
	f.interval_ns = d->last_read_ns ? t0 - d->last_read_ns : 0;
	d->last_read_ns = t0;
	f.metadata_mode = d->bpf.task_work ? TASKMETER__METADATA_MODE__MODE_TASK_WORK
					   : TASKMETER__METADATA_MODE__MODE_PROCFS;
	f.hostname = d->hostname;
	f.has_counters_id = 1;
	f.counters_id = d->counters_id;
	read_stats(d, &st);
	st.has_frame_build_ns = 1;
	st.frame_build_ns = clock_ns(CLOCK_MONOTONIC) - t0;
	f.stats = &st;
	err = publish(d, &f);
	tm_records_expire(&d->rec, bpf_map__fd(d->bpf.skel->maps.tm_counters),
			  bpf_map__fd(d->bpf.skel->maps.tm_if_counters),
			  bpf_map__fd(d->bpf.skel->maps.tm_meta), clock_ns(CLOCK_MONOTONIC));
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

static int start_timer(struct tm_daemon *d)
{
	unsigned int ms = d->cfg.interval_ms;
	struct itimerspec its = {
		.it_interval = { ms / 1000, (long)(ms % 1000) * 1000000 },
		.it_value = { ms / 1000, (long)(ms % 1000) * 1000000 },
	};
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC), err;

	if (fd < 0)
		return -errno;
	if (timerfd_settime(fd, 0, &its, NULL) || (err = watch(d, &d->timer_watch, TM_WATCH_TIMER, fd))) {
		err = -errno;
		close(fd);
		return err;
	}
	return 0;
}

static int setup(struct tm_daemon *d)
{
	int err, ncpus = libbpf_num_possible_cpus();

	err = tm_bpf_open_cgroup(&d->bpf, &d->cfg);
	if (err) {
		d->config_error = 1;
		return err;
	}
	if (ncpus < 0) {
		tm_err("counting CPUs: %s\n", strerror(-ncpus));
		return ncpus;
	}
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	err = d->epfd < 0 ? -errno : tm_records_init(&d->rec, &d->cfg, ncpus);
	if (err) {
		tm_err("setting up: %s\n", strerror(-err));
		return err;
	}
	gethostname(d->hostname, sizeof(d->hostname) - 1);
	if (getrandom(&d->counters_id, sizeof(d->counters_id), 0) != sizeof(d->counters_id))
		d->counters_id = clock_ns(CLOCK_REALTIME) ^ (uint64_t)getpid() << 32;
	err = tm_bpf_load(&d->bpf, &d->cfg);
	if (err)
		return err;
	d->rb = ring_buffer__new(bpf_map__fd(d->bpf.skel->maps.tm_events), tm_records_on_event,
				 &d->rec, NULL);
	err = d->rb ? watch(d, &d->rb_watch, TM_WATCH_RINGBUF, ring_buffer__epoll_fd(d->rb))
		    : -errno;
	if (err) {
		tm_err("ring buffer: %s\n", strerror(-err));
		return err;
	}
	d->exp = tm_export_open(d->cfg.socket_path, d->cfg.socket_mode, d->cfg.subscriber_queue,
				d->epfd, &err);
	if (!d->exp) {
		tm_err("export socket %s: %s%s\n", d->cfg.socket_path, strerror(-err),
		       err == -EADDRINUSE ? " (another taskmeterd is serving it)" : "");
		return err;
	}
	err = tm_bpf_attach(&d->bpf, &d->cfg);
	if (err)
		return err;
	err = tm_bpf_seed_sockets(&d->bpf);
	if (err == -ENOTRECOVERABLE) /* stuck in another network namespace */
		return err;
	d->ifs = tm_ifaces_open(&d->cfg, &d->bpf, d->epfd, &err);
	if (!d->ifs)
		return err;
	d->rec.l2_less = l2_less;
	d->rec.l2_less_ctx = d->ifs;
	err = start_timer(d);
	if (err) {
		tm_err("interval timer: %s\n", strerror(-err));
		return err;
	}
	tm_info("streaming to %s every %u ms (metadata: %s)\n", d->cfg.socket_path,
		d->cfg.interval_ms, d->bpf.task_work ? "task_work" : "procfs");
	return 0;
}

static void teardown(struct tm_daemon *d)
{
	/* reverse of setup: detach first so nothing new arrives */
	tm_ifaces_close(d->ifs);
	tm_bpf_destroy(&d->bpf);
	free(d->views);
	if (d->timer_watch.fd > 0)
		close(d->timer_watch.fd);
	tm_export_close(d->exp);
	ring_buffer__free(d->rb);
	tm_records_free(&d->rec);
	if (d->epfd >= 0)
		close(d->epfd);
}

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
	}
}

static int loop(struct tm_daemon *d)
{
	struct epoll_event evs[32];

	while (!stop) {
		int n = epoll_wait(d->epfd, evs, 32, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		for (int i = 0; i < n; i++)
			dispatch(d, &evs[i]);
	}
	/* one last frame: what happened since the previous one is not lost */
	return tick(d);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	static struct tm_daemon d = { .epfd = -1, .bpf.cgroup_fd = -1 };
	struct tm_args args;
	int err;

	err = parse_args(argc, argv, &args);
	if (err < 0)
		err = load_config(&d.cfg, &args) ? TM_EXIT_CONFIG : -1;
	tm_args_free(&args);
	if (err >= 0)
		return err;
	tm_log_level = args.verbose ? TM_LOG_DEBUG : d.cfg.log_level;
	if (args.check_only) {
		printf("configuration OK\n");
		return 0;
	}
	if (args.print_memory) {
		printf("BPF maps: at most %llu bytes (%d CPUs)\n",
		       tm_bpf_map_memory(&d.cfg, libbpf_num_possible_cpus()),
		       libbpf_num_possible_cpus());
		return 0;
	}
	libbpf_debug = args.verbose >= 2;
	libbpf_set_print(libbpf_print);
	libxdp_set_print(libxdp_print);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	err = setup(&d);
	if (!err) {
		err = loop(&d);
		if (err)
			tm_err("poll loop: %s\n", strerror(-err));
	}
	teardown(&d);
	if (err)
		return d.config_error ? TM_EXIT_CONFIG : 1;
	tm_info("detached, exiting\n");
	return 0;
}
