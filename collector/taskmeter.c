// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * taskmeter: client of the taskmeterd export stream. `top` redraws a live
 * table per frame, `dump` prints frames as text or JSON lines.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "log.h"
#include "prom.h"
#include "render.h"

#define DEFAULT_SOCKET "/run/taskmeter/taskmeter.sock"
#define CONNECT_RETRY_NS 100000000L
/* Lines of the table above the first process row. */
#define TOP_HEADER_ROWS 3
#define TOP_DEFAULT_COLS 120
#define TOP_MAX_COLS 1024
/* comm is at most 15 bytes in the kernel; leave room for " (exited)". */
#define COMM_COLS 16
#define COMM_COL_WIDTH 24
/* A code point takes at most 4 bytes; the rest is slack for padding. */
#define LINE_BUF (TOP_MAX_COLS * 4 + 64)

struct opts {
	const char *socket;
	double wait_s;
	unsigned long long count;  /* 0: until EOF */
	bool json;
	bool records;              /* dump: one JSON line per record */
};

struct command {
	const char *name;
	const char *usage;
	bool has_json;
	int (*on_frame)(Taskmeter__Frame *f, const struct opts *o);
};

static const char main_usage[] =
	"usage: taskmeter COMMAND [OPTIONS]\n"
	"\n"
	"Reads the frame stream of taskmeterd.\n"
	"\n"
	"commands:\n"
	"  top    live per-process bandwidth table, redrawn every frame\n"
	"  dump   print frames as text, or one JSON object per line with --json\n"
	"  prom   Prometheus exporter: serves /metrics over HTTP\n"
	"  help   this text; `taskmeter COMMAND --help` describes a command\n";

#define COMMON_OPTS                                                               \
	"  -s, --socket PATH   collector socket (default " DEFAULT_SOCKET ")\n" \
	"  -w, --wait SECONDS  retry connecting for up to SECONDS while the\n"    \
	"                      collector starts (default 0: try once)\n"          \
	"  -n, --count N       exit after N frames (default: until the stream ends)\n" \
	"  -h, --help          this text\n"

static const char top_usage[] =
	"usage: taskmeter top [--socket PATH] [--wait SECONDS] [--count N]\n"
	"\n"
	"Live table, one row per process, sorted by current rate. Rates are the\n"
	"frame's delta bytes over its interval; totals are cumulative.\n"
	"\n"
	"options:\n" COMMON_OPTS;

static const char dump_usage[] =
	"usage: taskmeter dump [--json [--records]] [--socket PATH] [--wait SECONDS] [--count N]\n"
	"\n"
	"Prints every frame: a short text block, or with --json one compact JSON\n"
	"object per line (proto field names, enums by name, only present fields).\n"
	"64-bit integers are decimal strings, 32-bit ones numbers, as in proto3's\n"
	"canonical JSON mapping, so that tools holding numbers as doubles (jq 1.6)\n"
	"keep them exact.\n"
	"\n"
	"options:\n"
	"  -j, --json          one JSON object per frame per line\n"
	"  -r, --records       with --json: one object per record per line instead,\n"
	"                      with its frame's seq, timestamp_ns and hostname\n" COMMON_OPTS;

/* ---- Connecting -------------------------------------------------------- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Returns a connected fd or -errno. */
static int connect_once(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, err;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	err = -errno;
	close(fd);
	return err;
}

/* What a collector that is still starting looks like from here. */
static bool not_up_yet(int err)
{
	return err == -ENOENT || err == -ECONNREFUSED || err == -EAGAIN;
}

static int connect_wait(const char *path, double wait_s)
{
	struct timespec pause = { .tv_nsec = CONNECT_RETRY_NS };
	double deadline = now_s() + wait_s;
	bool announced = false;
	int fd;

	for (;;) {
		fd = connect_once(path);
		if (fd >= 0 || !not_up_yet(fd) || now_s() >= deadline)
			return fd;
		if (!announced) {
			fprintf(stderr, "waiting for taskmeterd at %s...\n", path);
			announced = true;
		}
		nanosleep(&pause, NULL);
	}
}

/* ---- Shared formatting ------------------------------------------------- */

static const char *enum_name(const ProtobufCEnumDescriptor *d, int v, const char *absent)
{
	const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(d, v);

	return ev ? ev->name : absent;
}

static void format_time(uint64_t ns, char *buf, size_t len)
{
	time_t t = ns / 1000000000ull;
	struct tm tm;

	if (!localtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(buf, len, "?");
}

/* argv joined by spaces, terminal-safe, at most max_cols columns. */
static void format_argv(const Taskmeter__ProcessRecord *r, char *buf, size_t len,
			size_t max_cols)
{
	size_t at = 0, cols = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < r->n_argv && cols < max_cols && at + 1 < len; i++) {
		if (i) {
			buf[at++] = ' ';
			cols++;
		}
		cols += tm_term_text(buf + at, len - at, r->argv[i], max_cols - cols);
		at += strlen(buf + at);
	}
	if (r->has_argv_truncated && r->argv_truncated && cols + 4 <= max_cols &&
	    at + 5 <= len)
		strcpy(buf + at, " ...");
}

/* COMM column text: comm, or what stands in for it, plus an exit mark.
 * Returns its width in columns. */
static size_t format_comm(const Taskmeter__ProcessRecord *r, char *buf, size_t len)
{
	const char *exited = r->has_exited && r->exited ? " (exited)" : "";
	const char *name = r->comm ? r->comm : "?";
	char comm[COMM_COLS * 4 + 1];
	size_t cols;

	if (r->kind == TASKMETER__RECORD_KIND__UNATTRIBUTED)
		name = "(unattributed)";
	else if (r->kind == TASKMETER__RECORD_KIND__OVERFLOW)
		name = "(overflow)";
	cols = tm_term_text(comm, sizeof(comm), name, COMM_COLS);
	snprintf(buf, len, "%s%s", comm, exited);
	return cols + strlen(exited);
}

static void format_pid(const Taskmeter__ProcessRecord *r, char *buf, size_t len)
{
	if (r->kind != TASKMETER__RECORD_KIND__PROCESS && r->has_kind)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%u", r->pid);
}

/* ---- top ----------------------------------------------------------------- */

struct term {
	bool tty;
	size_t cols;
	size_t rows;  /* 0: no limit */
};

static void term_size(struct term *t)
{
	struct winsize ws;

	t->tty = isatty(STDOUT_FILENO);
	t->cols = TOP_DEFAULT_COLS;
	t->rows = 0;
	if (t->tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col) {
		t->cols = ws.ws_col < TOP_MAX_COLS ? ws.ws_col : TOP_MAX_COLS;
		t->rows = ws.ws_row;
	}
}

/* Prints line cut to cols columns. */
static void put_line(const char *line, size_t cols)
{
	char cut[LINE_BUF];

	tm_term_text(cut, sizeof(cut), line, cols);
	printf("%s\n", cut);
}

static size_t count_processes(const Taskmeter__Frame *f)
{
	size_t n = 0;

	for (size_t i = 0; i < f->n_records; i++)
		n += f->records[i]->kind == TASKMETER__RECORD_KIND__PROCESS;
	return n;
}

static void top_header(const Taskmeter__Frame *f, size_t cols)
{
	const Taskmeter__CollectorStats *s = f->stats;
	char line[LINE_BUF], when[64], host[128];
	const char *mode = "?";

	format_time(f->timestamp_ns, when, sizeof(when));
	tm_term_text(host, sizeof(host), f->hostname ? f->hostname : "", 64);
	if (f->has_metadata_mode)
		mode = f->metadata_mode == TASKMETER__METADATA_MODE__MODE_TASK_WORK ? "task_work"
										      : "procfs";
	snprintf(line, sizeof(line), "taskmeter %s  %s  seq %llu  mode %s  processes %zu",
		 host, when, (unsigned long long)f->seq, mode, count_processes(f));
	put_line(line, cols);
	snprintf(line, sizeof(line),
		 "task_work sched %llu cb %llu failed %llu  ringbuf drops %llu  frames dropped %llu",
		 s ? (unsigned long long)s->task_work_scheduled : 0ull,
		 s ? (unsigned long long)s->task_work_callbacks : 0ull,
		 s ? (unsigned long long)s->task_work_failed : 0ull,
		 s ? (unsigned long long)s->ringbuf_drops : 0ull,
		 (unsigned long long)f->frames_dropped);
	put_line(line, cols);
	snprintf(line, sizeof(line), "%7s %-*s %12s %12s %10s %10s %-4s %s", "PID", COMM_COL_WIDTH, "COMM",
		 "RX/s", "TX/s", "RX TOTAL", "TX TOTAL", "SRC", "CMDLINE");
	put_line(line, cols);
}

static const char *source_tag(const Taskmeter__ProcessRecord *r)
{
	if (!r->has_metadata_source)
		return "-";
	switch (r->metadata_source) {
	case TASKMETER__METADATA_SOURCE__SOURCE_TASK_WORK: return "tw";
	case TASKMETER__METADATA_SOURCE__SOURCE_PROCFS: return "proc";
	default: return "-";
	}
}

static void top_row(const Taskmeter__ProcessRecord *r, uint64_t interval_ns, size_t cols)
{
	char pid[16], comm[96], rxr[TM_HUMAN_LEN], txr[TM_HUMAN_LEN];
	char rxt[TM_HUMAN_LEN], txt[TM_HUMAN_LEN], line[LINE_BUF];
	size_t comm_cols, used_cols;
	int used;

	format_pid(r, pid, sizeof(pid));
	comm_cols = format_comm(r, comm, sizeof(comm));
	tm_human_rate(tm_counter_bytes(r->rx_delta), interval_ns, rxr, sizeof(rxr));
	tm_human_rate(tm_counter_bytes(r->tx_delta), interval_ns, txr, sizeof(txr));
	tm_human_bytes(tm_counter_bytes(r->rx_total), rxt, sizeof(rxt));
	tm_human_bytes(tm_counter_bytes(r->tx_total), txt, sizeof(txt));
	/* printf pads by bytes; comm may hold multi-byte characters. */
	used = snprintf(line, sizeof(line), "%7s %s%*s %12s %12s %10s %10s %-4s ", pid, comm,
			(int)(COMM_COL_WIDTH - comm_cols), "", rxr, txr, rxt, txt,
			source_tag(r));
	used_cols = used - (strlen(comm) - comm_cols);
	if (used_cols < cols)
		format_argv(r, line + used, sizeof(line) - used, cols - used_cols);
	/* Rows without a command line would end in padding. */
	for (used = strlen(line); used && line[used - 1] == ' '; used--)
		line[used - 1] = '\0';
	printf("%s\n", line);
}

static int top_frame(Taskmeter__Frame *f, const struct opts *o)
{
	struct term t;
	size_t shown;

	(void)o;
	term_size(&t);
	tm_sort_records(f->records, f->n_records);
	if (t.tty)
		fputs("\033[H\033[2J", stdout);
	top_header(f, t.cols);
	shown = f->n_records;
	/* One spare line keeps the cursor from scrolling the header away. */
	if (t.rows && shown > t.rows - TOP_HEADER_ROWS - 1)
		shown = t.rows > TOP_HEADER_ROWS + 1 ? t.rows - TOP_HEADER_ROWS - 1 : 0;
	for (size_t i = 0; i < shown; i++)
		top_row(f->records[i], f->interval_ns, t.cols);
	if (!t.tty)
		putchar('\n');
	fflush(stdout);
	return ferror(stdout) ? -EIO : 0;
}

/* ---- dump ---------------------------------------------------------------- */

static void dump_text_record(const Taskmeter__ProcessRecord *r)
{
	char pid[16], comm[96], argv[LINE_BUF];

	format_pid(r, pid, sizeof(pid));
	format_comm(r, comm, sizeof(comm));
	format_argv(r, argv, sizeof(argv), TOP_MAX_COLS);
	printf("  %s %s rx %llu tx %llu%s%s\n", pid, comm,
	       (unsigned long long)tm_counter_bytes(r->rx_total),
	       (unsigned long long)tm_counter_bytes(r->tx_total), argv[0] ? " " : "", argv);
}

static void dump_text(const Taskmeter__Frame *f)
{
	char when[64];

	format_time(f->timestamp_ns, when, sizeof(when));
	printf("frame %llu at %s interval %.3fs mode %s records %zu\n",
	       (unsigned long long)f->seq, when, f->interval_ns / 1e9,
	       enum_name(&taskmeter__metadata_mode__descriptor, f->metadata_mode, "-"),
	       f->n_records);
	for (size_t i = 0; i < f->n_records; i++)
		dump_text_record(f->records[i]);
}

static int dump_frame(Taskmeter__Frame *f, const struct opts *o)
{
	if (o->records) {
		for (size_t i = 0; i < f->n_records; i++) {
			tm_json_record_line(stdout, f, f->records[i]);
			putchar('\n');
		}
	} else if (o->json) {
		tm_json_frame(stdout, f);
		putchar('\n');
	} else {
		dump_text(f);
	}
	fflush(stdout);
	return ferror(stdout) ? -EIO : 0;
}

/* ---- Main -------------------------------------------------------------- */

static const struct command commands[] = {
	{ "top", top_usage, false, top_frame },
	{ "dump", dump_usage, true, dump_frame },
};

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static int parse_number(const char *name, const char *arg, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(arg, &end);
	if (errno || end == arg || *end || *out < 0) {
		fprintf(stderr, "taskmeter: %s wants a non-negative number, not '%s'\n", name,
			arg);
		return -EINVAL;
	}
	return 0;
}

static int parse_count(const char *arg, unsigned long long *out)
{
	char *end;

	errno = 0;
	*out = strtoull(arg, &end, 10);
	if (errno || end == arg || *end || *out == 0 || arg[0] == '-') {
		fprintf(stderr, "taskmeter: --count wants a positive integer, not '%s'\n", arg);
		return -EINVAL;
	}
	return 0;
}

/* optopt is the option whose argument is missing, else 0 or unknown. */
static int bad_option(const struct command *cmd, const char *arg, int optopt_)
{
	if (optopt_ && strchr("swn", optopt_))
		fprintf(stderr, "taskmeter %s: option '%s' needs an argument\n", cmd->name, arg);
	else
		fprintf(stderr, "taskmeter %s: unknown option '%s'\n", cmd->name, arg);
	return -EINVAL;
}

/* Returns 0, 1 when --help was printed, or -EINVAL after a message. */
static int parse_opts(const struct command *cmd, int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "wait", required_argument, NULL, 'w' },
		{ "count", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "records", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c, err = 0;

	/* Our own messages name the command, getopt's would not. */
	opterr = 0;
	optind = 1;
	while (!err && (c = getopt_long(argc, argv, "s:w:n:jrh", longopts, NULL)) != -1) {
		switch (c) {
		case 's': o->socket = optarg; break;
		case 'w': err = parse_number("--wait", optarg, &o->wait_s); break;
		case 'n': err = parse_count(optarg, &o->count); break;
		case 'j':
			o->json = true;
			err = cmd->has_json ? 0 : bad_option(cmd, argv[optind - 1], 0);
			break;
		case 'r':
			o->records = true;
			err = cmd->has_json ? 0 : bad_option(cmd, argv[optind - 1], 0);
			break;
		case 'h': fputs(cmd->usage, stdout); return 1;
		default: err = bad_option(cmd, argv[optind - 1], optopt); break;
		}
	}
	if (!err && optind < argc) {
		fprintf(stderr, "taskmeter %s: unexpected argument '%s'\n", cmd->name, argv[optind]);
		err = -EINVAL;
	}
	if (!err && o->records && !o->json) {
		fprintf(stderr, "taskmeter %s: --records needs --json\n", cmd->name);
		err = -EINVAL;
	}
	if (err)
		fprintf(stderr, "try 'taskmeter %s --help'\n", cmd->name);
	return err;
}

static const char *stream_error(int err)
{
	switch (err) {
	case -EPROTO: return "stream ended inside a frame";
	case -EBADMSG: return "malformed frame";
	default: return strerror(-err);
	}
}

/* Reads frames until EOF or o->count; returns 0 or -errno. */
static int stream(int fd, const struct command *cmd, const struct opts *o)
{
	struct tm_frame_reader r;
	Taskmeter__Frame *f;
	unsigned long long n = 0;
	int err = 0;

	tm_frame_reader_init(&r);
	while (!o->count || n < o->count) {
		err = tm_frame_read(&r, fd, &f);
		if (err <= 0)
			break;
		err = cmd->on_frame(f, o);
		taskmeter__frame__free_unpacked(f, NULL);
		if (err)
			break;
		n++;
	}
	tm_frame_reader_free(&r);
	return err < 0 ? err : 0;
}

static void on_sigint(int sig)
{
	ssize_t n;

	(void)sig;
	/* Leave the shell prompt on a line of its own; nothing else to undo.
	 * Only async-signal-safe calls here. */
	n = write(STDOUT_FILENO, "\n", 1);
	(void)n;
	_exit(0);
}

static int unknown_command(const char *name)
{
	fprintf(stderr, "taskmeter: unknown command '%s'\n%s", name, main_usage);
	return 2;
}

int main(int argc, char **argv)
{
	struct opts o = { .socket = DEFAULT_SOCKET };
	struct sigaction sa = { .sa_handler = on_sigint };
	const struct command *cmd;
	int fd, err;

	if (argc < 2) {
		fputs(main_usage, stderr);
		return 2;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		if (argc > 2 && !strcmp(argv[2], "prom")) {
			fputs(tm_prom_usage, stdout);
			return 0;
		}
		cmd = argc > 2 ? find_command(argv[2]) : NULL;
		if (argc > 2 && !cmd)
			return unknown_command(argv[2]);
		fputs(cmd ? cmd->usage : main_usage, stdout);
		return 0;
	}
	/* prom has a loop and options of its own (prom.c) */
	if (!strcmp(argv[1], "prom"))
		return tm_prom_main(argc - 1, argv + 1);
	cmd = find_command(argv[1]);
	if (!cmd)
		return unknown_command(argv[1]);
	err = parse_opts(cmd, argc - 1, argv + 1, &o);
	if (err)
		return err > 0 ? 0 : 2;
	sigaction(SIGINT, &sa, NULL);
	fd = connect_wait(o.socket, o.wait_s);
	if (fd < 0) {
		tm_err("cannot connect to %s: %s (is taskmeterd running?)\n", o.socket,
		       strerror(-fd));
		return 1;
	}
	err = stream(fd, cmd, &o);
	close(fd);
	if (err) {
		tm_err("reading %s: %s\n", o.socket, stream_error(err));
		return 1;
	}
	return 0;
}
