// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * taskmeter prom: reads the frame stream of taskmeterd and serves it as
 * Prometheus metrics over HTTP (libmicrohttpd).
 *
 * One thread, one epoll loop: the frame socket and libmicrohttpd's own epoll
 * fd (MHD_USE_EPOLL without an internal thread, driven by MHD_run). Sockets
 * are non-blocking on both sides, so a scraper that reads slowly or not at
 * all holds a connection (until its timeout), never the loop, and frames
 * keep being read. The exposition is rendered on the first scrape after a
 * change and shared by every response until the next one: libmicrohttpd
 * reference-counts responses, so one still being sent outlives our cache.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <systemd/sd-daemon.h>

#include "client.h"
#include "config.h"
#include "frame.h"
#include "log.h"
#include "prom.h"
#include "prom_adapt.h"
#include "prom_text.h"
#include "util.h"

#define PROM_DEFAULT_CONFIG "/etc/taskmeter/taskmeter.conf"
#define EXIT_CONFIG 2
#define OVERRIDES_MAX 64
/* Scrapers: how many at once, and how long one may sit idle. */
#define HTTP_CONNECTIONS 32
#define HTTP_TIMEOUT_S 15
#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 2000

enum { EV_HTTP = 1, EV_STREAM };

static volatile sig_atomic_t stop;

struct prom_args {
	const char *config;
	const char *keys[OVERRIDES_MAX];
	const char *values[OVERRIDES_MAX];
	char *owned[OVERRIDES_MAX];
	int n;
	int verbose;
};

struct prom {
	struct tm_config cfg;
	struct tm_pa *pa;
	struct MHD_Daemon *mhd;
	int epfd;
	int sock;                      /* -1 while disconnected */
	struct tm_frame_reader reader;
	uint64_t retry_at_ns;
	unsigned int retry_ms;
	bool warned;                   /* about the current outage */
	struct MHD_Response *cache[2]; /* per enum tm_pt_format */
	double render_s;
};

const char tm_prom_usage[] =
	"usage: taskmeter prom [--config FILE] [--listen ADDRESS:PORT] [--socket PATH]\n"
	"                      [--set KEY=VALUE]... [-v]\n"
	"\n"
	"Prometheus exporter: reads the frame stream of taskmeterd and serves\n"
	"GET /metrics (text format 0.0.4, or OpenMetrics 1.0 when the Accept header\n"
	"asks for application/openmetrics-text). It only needs to connect to the\n"
	"export socket: run it unprivileged. Counters never go backwards while it\n"
	"runs, across process exits and daemon restarts; restarting the exporter\n"
	"is one counter reset to Prometheus. Keys: the prom_* section of\n"
	"configs/taskmeter.conf (and socket_path).\n"
	"\n"
	"options:\n"
	"  -c, --config FILE     config file (default " PROM_DEFAULT_CONFIG " if it exists)\n"
	"  -l, --listen ADDR     HTTP address, IPV4:PORT or [IPV6]:PORT (prom_listen,\n"
	"                        default 127.0.0.1:9479; port 0 picks a free port)\n"
	"  -s, --socket PATH     collector socket (socket_path, default\n"
	"                        /run/taskmeter/taskmeter.sock)\n"
	"      --set KEY=VALUE   set any config key, e.g. prom_labels=service,comm\n"
	"                        (repeatable; applied after the file, in order)\n"
	"  -v, --verbose         more logging\n"
	"  -h, --help            this text\n"
	"\n"
	"Command-line settings override the file. Config errors exit with status 2.\n"
	"It keeps retrying the socket while the collector is away. SIGINT/SIGTERM: exit 0.\n";

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* ---- configuration ------------------------------------------------------------ */

static int add_override(struct prom_args *a, const char *key, const char *value)
{
	if (a->n == OVERRIDES_MAX) {
		fprintf(stderr, "taskmeter prom: too many overrides\n");
		return -E2BIG;
	}
	a->keys[a->n] = key;
	a->values[a->n++] = value;
	return 0;
}

static int add_set(struct prom_args *a, const char *kv)
{
	char *copy = strdup(kv), *eq;

	if (!copy)
		return -ENOMEM;
	eq = strchr(copy, '=');
	if (!eq) {
		fprintf(stderr, "taskmeter prom: --set %s: expected KEY=VALUE\n", kv);
		free(copy);
		return -EINVAL;
	}
	*eq = '\0';
	a->owned[a->n] = copy;
	return add_override(a, copy, eq + 1);
}

/* Returns 0, 1 after --help, or -errno after a message. */
static int parse_args(int argc, char **argv, struct prom_args *a)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "socket", required_argument, NULL, 's' },
		{ "set", required_argument, NULL, 'S' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c, err = 0;

	opterr = 0;
	optind = 1;
	while (!err && (c = getopt_long(argc, argv, "c:l:s:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': a->config = optarg; break;
		case 'l': err = add_override(a, "prom_listen", optarg); break;
		case 's': err = add_override(a, "socket_path", optarg); break;
		case 'S': err = add_set(a, optarg); break;
		case 'v': a->verbose++; break;
		case 'h': fputs(tm_prom_usage, stdout); return 1;
		default:
			fprintf(stderr, "taskmeter prom: %s '%s'\n",
				optopt && strchr("clsS", optopt) ? "option needs an argument:"
								 : "unknown option",
				argv[optind - 1]);
			err = -EINVAL;
		}
	}
	if (!err && optind < argc) {
		fprintf(stderr, "taskmeter prom: unexpected argument '%s'\n", argv[optind]);
		err = -EINVAL;
	}
	if (err)
		fprintf(stderr, "try 'taskmeter prom --help'\n");
	return err;
}

static int load_config(struct tm_config *cfg, const struct prom_args *a)
{
	const char *path = a->config;
	char err[512];
	int ret = 0;

	tm_config_defaults(cfg);
	if (!path && access(PROM_DEFAULT_CONFIG, F_OK) == 0)
		path = PROM_DEFAULT_CONFIG;
	if (path)
		ret = tm_config_load(cfg, path, err, sizeof(err));
	for (int i = 0; !ret && i < a->n; i++)
		ret = tm_config_set(cfg, a->keys[i], a->values[i], err, sizeof(err));
	if (ret)
		fprintf(stderr, "taskmeter prom: %s\n", err);
	return ret;
}

/* env_NAME labels can only ever be set for allowlisted names. */
static void check_env_labels(const struct tm_config *cfg)
{
	for (unsigned int i = 0; i < cfg->n_prom_labels; i++) {
		const char *name = cfg->prom_labels[i].name + 4;

		if (cfg->prom_labels[i].src == TM_PROM_ENV &&
		    !tm_config_env_allowed(cfg, name, strlen(name)))
			tm_warn("prom_labels: %s is not on env_allowlist: label %s stays empty "
				"unless the daemon's own allowlist has it\n",
				name, cfg->prom_labels[i].name);
	}
}

/* ---- the frame stream ------------------------------------------------------------ */

static void drop_cache(struct prom *p)
{
	for (int i = 0; i < 2; i++) {
		if (p->cache[i])
			MHD_destroy_response(p->cache[i]);
		p->cache[i] = NULL;
	}
}

static void retry_later(struct prom *p)
{
	p->retry_at_ns = tm_now_ns(CLOCK_MONOTONIC) + (uint64_t)p->retry_ms * 1000000ull;
	p->retry_ms = p->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : p->retry_ms * 2;
}

static void disconnect(struct prom *p, const char *why)
{
	tm_warn("lost %s: %s; reconnecting\n", p->cfg.socket_path, why);
	p->warned = true;
	epoll_ctl(p->epfd, EPOLL_CTL_DEL, p->sock, NULL);
	close(p->sock);
	p->sock = -1;
	tm_frame_reader_free(&p->reader);
	tm_pa_disconnected(p->pa);
	drop_cache(p);
	retry_later(p);
}

static void try_connect(struct prom *p)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = EV_STREAM };
	int fd = tm_client_connect_once(p->cfg.socket_path, true);

	if (fd >= 0 && epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		int err = -errno;

		close(fd);
		fd = err;
	}
	if (fd < 0) {
		if (!p->warned)
			tm_warn("cannot connect to %s: %s (is taskmeterd running?); retrying\n",
				p->cfg.socket_path, strerror(-fd));
		p->warned = true;
		retry_later(p);
		return;
	}
	tm_info("connected to %s\n", p->cfg.socket_path);
	p->sock = fd;
	p->warned = false;
	p->retry_ms = RETRY_MIN_MS;
	tm_frame_reader_init(&p->reader);
	tm_pa_connected(p->pa);
	drop_cache(p);
}

static const char *stream_error(int err)
{
	switch (err) {
	case 0: return "the collector closed the stream";
	case -EPROTO: return "stream ended inside a frame";
	case -EBADMSG: return "malformed frame";
	default: return strerror(-err);
	}
}

/* Reads every frame the socket has. */
static void stream_ready(struct prom *p)
{
	Taskmeter__Frame *f;
	int err;

	while ((err = tm_frame_read(&p->reader, p->sock, &f)) == 1) {
		int e = tm_pa_message(p->pa, f, tm_now_ns(CLOCK_MONOTONIC));

		if (e)
			tm_warn("frame %llu: %s\n", (unsigned long long)f->seq, strerror(-e));
		taskmeter__frame__free_unpacked(f, NULL);
	}
	if (tm_pa_frame_done(p->pa))
		drop_cache(p);
	if (err != -EAGAIN)
		disconnect(p, stream_error(err));
}

/* ---- HTTP ----------------------------------------------------------------------- */

static const char index_html[] =
	"<!DOCTYPE html>\n<html><head><title>taskmeter</title></head><body>\n"
	"<h1>taskmeter</h1>\n<p>Per-process network traffic: <a href=\"/metrics\">/metrics</a></p>\n"
	"</body></html>\n";

static enum MHD_Result respond_static(struct MHD_Connection *conn, unsigned int status,
				      const char *type, const char *body)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body,
								 MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* The exposition in format fmt, rendered now or taken from the cache. */
static struct MHD_Response *exposition(struct prom *p, enum tm_pt_format fmt)
{
	struct tm_pt_buf buf = { 0 };
	struct tm_pt_stats st;
	struct MHD_Response *r;
	uint64_t t0 = tm_now_ns(CLOCK_MONOTONIC);

	if (p->cache[fmt])
		return p->cache[fmt];
	tm_pa_stats(p->pa, &st);
	st.render_seconds = p->render_s;
	if (tm_pt_render(&buf, fmt, tm_pa_series(p->pa), tm_pa_label_names(p->pa),
			 tm_pa_n_labels(p->pa), &st)) {
		tm_pt_buf_free(&buf);
		return NULL;
	}
	r = MHD_create_response_from_buffer(buf.len, buf.p, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		tm_pt_buf_free(&buf);
		return NULL;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				fmt == TM_PT_OPENMETRICS ? TM_PT_CONTENT_TYPE_OPENMETRICS
							 : TM_PT_CONTENT_TYPE_TEXT);
	MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, MHD_HTTP_HEADER_ACCEPT);
	p->cache[fmt] = r;
	p->render_s = (tm_now_ns(CLOCK_MONOTONIC) - t0) / 1e9;
	return r;
}

static enum MHD_Result metrics(struct prom *p, struct MHD_Connection *conn)
{
	const char *accept = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							 MHD_HTTP_HEADER_ACCEPT);
	struct MHD_Response *r = exposition(p, tm_pt_negotiate(accept));

	if (!r)
		return respond_static(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain",
				      "out of memory\n");
	return MHD_queue_response(conn, MHD_HTTP_OK, r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size, void **req)
{
	(void)version;
	(void)upload_data;
	(void)req;
	/* A request body is read and ignored: nothing here takes input. */
	if (*upload_data_size) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return respond_static(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain",
				      "only GET and HEAD\n");
	if (!strcmp(url, "/metrics"))
		return metrics(cls, conn);
	if (!strcmp(url, "/"))
		return respond_static(conn, MHD_HTTP_OK, "text/html; charset=utf-8", index_html);
	return respond_static(conn, MHD_HTTP_NOT_FOUND, "text/plain", "not found: try /metrics\n");
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* libmicrohttpd's messages are about single connections: one level
	 * lower than ours */
	tm_info("http: %s%s", msg, msg[0] && msg[strlen(msg) - 1] == '\n' ? "" : "\n");
}

static void log_listening(struct prom *p, const struct sockaddr_storage *ss)
{
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(p->mhd, MHD_DAEMON_INFO_BIND_PORT);
	char host[INET6_ADDRSTRLEN];
	bool v6 = ss->ss_family == AF_INET6;
	const void *addr = v6 ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
			      : (const void *)&((const struct sockaddr_in *)ss)->sin_addr;

	inet_ntop(ss->ss_family, addr, host, sizeof(host));
	tm_info("serving http://%s%s%s:%u/metrics\n", v6 ? "[" : "", host, v6 ? "]" : "",
		info ? info->port : 0);
}

static int start_http(struct prom *p)
{
	const union MHD_DaemonInfo *info;
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = EV_HTTP };
	struct sockaddr_storage ss;
	unsigned int len;

	if (tm_config_listen_addr(p->cfg.prom_listen, &ss, &len))
		return -EINVAL; /* the config parser checked it already */
	p->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
				  (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
				  0, NULL, NULL, on_request, p,
				  /* first, or earlier options log on their own */
				  MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				  MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned int)HTTP_CONNECTIONS,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)HTTP_TIMEOUT_S,
				  MHD_OPTION_SIGPIPE_HANDLED_BY_APP, (int)1,
				  MHD_OPTION_END);
	if (!p->mhd) {
		tm_err("cannot serve HTTP on %s: %s\n", p->cfg.prom_listen, strerror(errno));
		return -EADDRNOTAVAIL;
	}
	info = MHD_get_daemon_info(p->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info || epoll_ctl(p->epfd, EPOLL_CTL_ADD, info->epoll_fd, &ev)) {
		tm_err("libmicrohttpd has no epoll fd to watch\n");
		return -ENOTSUP;
	}
	log_listening(p, &ss);
	sd_notify(0, "READY=1"); /* Type=notify: scrapes are answered from here on */
	return 0;
}

/* ---- the loop -------------------------------------------------------------------- */

/* What epoll_wait may sleep: libmicrohttpd's timeouts, the next retry. */
static int next_timeout_ms(struct prom *p)
{
	MHD_UNSIGNED_LONG_LONG mhd_ms;
	long long ms = -1;

	if (MHD_get_timeout(p->mhd, &mhd_ms) == MHD_YES)
		ms = mhd_ms > 60000 ? 60000 : (long long)mhd_ms;
	if (p->sock < 0) {
		uint64_t now = tm_now_ns(CLOCK_MONOTONIC);
		long long retry = now >= p->retry_at_ns ? 0 : (p->retry_at_ns - now) / 1000000 + 1;

		ms = ms < 0 || retry < ms ? retry : ms;
	}
	return (int)ms;
}

static int loop(struct prom *p)
{
	struct epoll_event evs[8];

	while (!stop) {
		int n = epoll_wait(p->epfd, evs, 8, next_timeout_ms(p));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		/* The stream first: a burst of scrapes must not delay frames. */
		for (int i = 0; i < n; i++)
			if (evs[i].data.u32 == EV_STREAM && p->sock >= 0)
				stream_ready(p);
		if (p->sock < 0 && tm_now_ns(CLOCK_MONOTONIC) >= p->retry_at_ns)
			try_connect(p);
		MHD_run(p->mhd);
	}
	return 0;
}

static int setup(struct prom *p)
{
	struct sigaction sa = { .sa_handler = on_signal };
	int err;

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* A scraper hanging up mid-response must cost a write error, not us. */
	signal(SIGPIPE, SIG_IGN);
	p->pa = tm_pa_new(&p->cfg);
	if (!p->pa)
		return -ENOMEM;
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (p->epfd < 0)
		return -errno;
	err = start_http(p);
	if (err)
		return err;
	p->retry_ms = RETRY_MIN_MS;
	try_connect(p);
	return 0;
}

static void teardown(struct prom *p)
{
	drop_cache(p);
	if (p->mhd)
		MHD_stop_daemon(p->mhd);
	if (p->sock >= 0)
		close(p->sock);
	tm_frame_reader_free(&p->reader);
	if (p->epfd >= 0)
		close(p->epfd);
	tm_pa_free(p->pa);
}

int tm_prom_main(int argc, char **argv)
{
	static struct prom p = { .epfd = -1, .sock = -1 };
	struct prom_args args = { 0 };
	int err;

	err = parse_args(argc, argv, &args);
	if (err)
		return err > 0 ? 0 : EXIT_CONFIG;
	err = load_config(&p.cfg, &args);
	for (int i = 0; i < args.n; i++)
		free(args.owned[i]);
	if (err)
		return EXIT_CONFIG;
	tm_log_level = args.verbose ? TM_LOG_DEBUG : p.cfg.log_level;
	check_env_labels(&p.cfg);
	err = setup(&p);
	if (!err) {
		err = loop(&p);
		if (err)
			tm_err("poll loop: %s\n", strerror(-err));
	}
	teardown(&p);
	return err ? 1 : 0;
}
