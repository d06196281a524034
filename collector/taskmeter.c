// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * taskmeter: client of the taskmeterd export stream. `top` (top.c) shows a
 * live table, `dump` prints frames as text or JSON lines.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "log.h"
#include "prom.h"
#include "render.h"
#include "top.h"

#define DEFAULT_SOCKET "/run/taskmeter/taskmeter.sock"
/* comm is at most 15 bytes; bucket labels ("(local without owner)") are longer. */
#define COMM_COLS 24
#define ARGV_COLS 1024
/* A code point takes at most 4 bytes; the rest is slack for padding. */
#define LINE_BUF (ARGV_COLS * 4 + 64)

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

/* A command with options and a loop of its own: gets argv from its name
 * on, returns the exit status. */
struct own_command {
	const char *name;
	const char *usage;
	int (*main)(int argc, char **argv);
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
	"                      collector starts, and again whenever it goes\n"    \
	"                      away (default 0: try once)\n"                      \
	"  -n, --count N       exit after N frames (default: until the stream ends)\n" \
	"  -h, --help          this text\n"

#define EXIT_STATUS                                                               \
	"\n"                                                                      \
	"exit status:\n"                                                          \
	"  0  --count frames done\n"                                              \
	"  1  cannot connect (or taskmeterd refused the connection: see its\n"   \
	"     log), a malformed stream, or an output error\n"                    \
	"  2  bad usage\n"                                                        \
	"  3  the stream ended: taskmeterd stopped or went away (and, with\n"     \
	"     --wait, did not come back in time); a message on stderr says which\n"

static const char dump_usage[] =
	"usage: taskmeter dump [--json [--records]] [--socket PATH] [--wait SECONDS] [--count N]\n"
	"\n"
	"Prints every frame: a short text block, or with --json one compact JSON\n"
	"object per line (proto field names, enums by name, only present fields).\n"
	"64-bit integers are decimal strings, 32-bit ones numbers, as in proto3's\n"
	"canonical JSON mapping, so that tools holding numbers as doubles (jq 1.6)\n"
	"keep them exact.\n"
	"\n"
	"A frame sent in several parts (more_parts) is printed once, whole.\n"
	"\n"
	"options:\n"
	"  -j, --json          one JSON object per frame per line\n"
	"  -r, --records       with --json: one object per record per line instead,\n"
	"                      with its frame's seq, timestamp_ns and hostname\n" COMMON_OPTS EXIT_STATUS;

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
		cols += tm_render_term_text(buf + at, len - at, r->argv[i], max_cols - cols);
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
	char comm[COMM_COLS * 4 + 1], label[32];
	size_t cols;

	if (r->has_kind && r->kind != TASKMETER__RECORD_KIND__PROCESS) {
		name = tm_render_kind_label(r->kind);
		snprintf(label, sizeof(label), "(%s)", name ? name : "?");
		name = label;
	}
	cols = tm_render_term_text(comm, sizeof(comm), name, COMM_COLS);
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

/* ---- dump ---------------------------------------------------------------- */

/* Interface-layer sums of a record: all a bucket other than unattributed
 * and overflow has. */
static void iface_bytes(const Taskmeter__ProcessRecord *r, uint64_t *rx, uint64_t *tx)
{
	*rx = *tx = 0;
	for (size_t i = 0; i < r->n_traffic; i++) {
		const Taskmeter__Traffic *t = r->traffic[i];

		if (t->layer != TASKMETER__LAYER__XDP && t->layer != TASKMETER__LAYER__TC)
			continue;
		*(t->direction == TASKMETER__DIRECTION__EGRESS ? tx : rx) +=
			tm_render_counter_bytes(t->total);
	}
}

static void dump_text_record(const Taskmeter__ProcessRecord *r)
{
	char pid[16], comm[128], argv[LINE_BUF];
	uint64_t irx, itx;

	format_pid(r, pid, sizeof(pid));
	format_comm(r, comm, sizeof(comm));
	format_argv(r, argv, sizeof(argv), ARGV_COLS);
	iface_bytes(r, &irx, &itx);
	printf("  %s %s rx %" PRIu64 " tx %" PRIu64, pid, comm, tm_render_counter_bytes(r->rx_total),
	       tm_render_counter_bytes(r->tx_total));
	if (irx || itx)
		printf(" iface rx %" PRIu64 " tx %" PRIu64, irx, itx);
	printf("%s%s\n", argv[0] ? " " : "", argv);
}

static void dump_counters(const char *what, const Taskmeter__Counters *c)
{
	printf(" %s %" PRIu64 " pkts %" PRIu64 " B", what, c && c->has_packets ? c->packets : 0,
	       tm_render_counter_bytes(c));
}

/* Records (cumulative since the collector started) next to the kernel's
 * counters (absolute): their deltas over a quiet window are equal. */
static void dump_text_iface(const Taskmeter__Interface *i)
{
	char name[64];

	tm_render_term_text(name, sizeof(name), i->name ? i->name : "?", 16);
	printf("  interface %s netns %" PRIu64 " ifindex %" PRIu32 " xdp %s tc %s:", name,
	       i->netns, i->ifindex, i->xdp_mode ? i->xdp_mode : "-",
	       i->tc_mode ? i->tc_mode : "-");
	dump_counters("rx records", i->rx_records);
	dump_counters("kernel", i->rx_kernel);
	printf(",");
	dump_counters("tx records", i->tx_records);
	dump_counters("kernel", i->tx_kernel);
	printf("\n");
}

static void dump_text(const Taskmeter__Frame *f)
{
	char when[64];

	format_time(f->timestamp_ns, when, sizeof(when));
	printf("frame %llu at %s interval %.3fs mode %s records %zu interfaces %zu\n",
	       (unsigned long long)f->seq, when, f->interval_ns / 1e9,
	       enum_name(&taskmeter__metadata_mode__descriptor, f->metadata_mode, "-"),
	       f->n_records, f->n_interfaces);
	for (size_t i = 0; i < f->n_records; i++)
		dump_text_record(f->records[i]);
	for (size_t i = 0; i < f->n_interfaces; i++)
		dump_text_iface(f->interfaces[i]);
}

static int dump_frame(Taskmeter__Frame *f, const struct opts *o)
{
	if (o->records) {
		for (size_t i = 0; i < f->n_records; i++) {
			tm_render_json_record_line(stdout, f, f->records[i]);
			putchar('\n');
		}
	} else if (o->json) {
		tm_render_json_frame(stdout, f);
		putchar('\n');
	} else {
		dump_text(f);
	}
	fflush(stdout);
	return ferror(stdout) ? -EIO : 0;
}

/* ---- Main -------------------------------------------------------------- */

static const struct command commands[] = {
	{ "dump", dump_usage, true, dump_frame },
};

static const struct own_command own_commands[] = {
	{ "top", tm_top_usage, tm_top_main },
	{ "prom", tm_prom_usage, tm_prom_main }, /* a loop and options of its own (prom.c) */
};

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static const struct own_command *find_own_command(const char *name)
{
	for (size_t i = 0; i < sizeof(own_commands) / sizeof(own_commands[0]); i++)
		if (!strcmp(own_commands[i].name, name))
			return &own_commands[i];
	return NULL;
}

/* The usage text of either kind of command, or NULL. */
static const char *command_usage(const char *name)
{
	const struct own_command *own = find_own_command(name);
	const struct command *cmd = find_command(name);

	return own ? own->usage : cmd ? cmd->usage : NULL;
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
		case 'w': err = tm_client_parse_wait(optarg, &o->wait_s); break;
		case 'n': err = tm_client_parse_count(optarg, &o->count); break;
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

/* Whole frames until o->count or the stream's end (reconnecting as --wait
 * says); returns the exit status. */
static int stream(const struct command *cmd, const struct opts *o)
{
	Taskmeter__Frame *f;
	struct tm_client c;
	unsigned long long n = 0;
	int err, status = TM_EXIT_OK;

	tm_client_init(&c, o->socket, o->wait_s, false);
	err = tm_client_connect(&c);
	if (err) {
		tm_client_warn_connect(&c, err);
		status = TM_EXIT_FAIL;
	}
	while (!err && (!o->count || n < o->count) && tm_client_next_blocking(&c, &f, &status)) {
		err = cmd->on_frame(f, o);
		if (err) {
			tm_err("writing the output: %s\n", strerror(-err));
			status = TM_EXIT_FAIL;
		}
		n++;
	}
	tm_client_free(&c);
	return status;
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
	const struct own_command *own;
	const struct command *cmd;
	const char *usage;
	int err;

	if (argc < 2) {
		fputs(main_usage, stderr);
		return 2;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage = argc > 2 ? command_usage(argv[2]) : main_usage;
		if (!usage)
			return unknown_command(argv[2]);
		fputs(usage, stdout);
		return 0;
	}
	own = find_own_command(argv[1]);
	if (own)
		return own->main(argc - 1, argv + 1);
	cmd = find_command(argv[1]);
	if (!cmd)
		return unknown_command(argv[1]);
	err = parse_opts(cmd, argc - 1, argv + 1, &o);
	if (err)
		return err > 0 ? 0 : 2;
	sigaction(SIGINT, &sa, NULL);
	return stream(cmd, &o);
}
