// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `taskmeter top`: options, the plain-text batch mode and exit statuses.
 * What the rows and lines are is topview.c; the curses screen, topui.c.
 */
#include <errno.h>
#include <getopt.h>
#include <langinfo.h>
#include <locale.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "log.h"
#include "top.h"

#define DEFAULT_SOCKET "/run/taskmeter/taskmeter.sock"
#define BATCH_DEFAULT_COLS 80
/* Users named at most; more get their uid (a bound on a cache that
 * never shrinks). */
#define USERS_MAX 256

const char tm_top_usage[] =
	"usage: taskmeter top [OPTIONS]\n"
	"\n"
	"Live per-process bandwidth, redrawn in place at every frame: a header,\n"
	"one row per process (or per service, container, cgroup or user), their\n"
	"total, and on request the interfaces panel. Rates are each frame's delta\n"
	"over its interval; totals are cumulative. Byte columns say what they\n"
	"count: IP (IP headers and payload, the default) or PAY (L4 payload).\n"
	"Without a terminal (or with TERM=dumb) it prints plain-text snapshots.\n"
	"\n"
	"options:\n"
	"  -s, --socket PATH   collector socket (default " DEFAULT_SOCKET ")\n"
	"  -w, --wait SECONDS  retry connecting for up to SECONDS while the collector\n"
	"                      starts, and again whenever it goes away (a restart):\n"
	"                      top shows RECONNECTING meanwhile (default 0: no retry)\n"
	"  -n, --count N       exit after N frames (default: until the stream ends)\n"
	"      --once          print one snapshot as plain text and exit (after two\n"
	"                      frames with --interfaces, for the interface rates)\n"
	"  -b, --batch         a plain-text snapshot per frame, no curses\n"
	"  -W, --width COLS    width of the plain text (default: the terminal's,\n"
	"                      else $COLUMNS, else 80)\n"
	"      --sort KEY      rx, tx, total (rates; default total), cum-rx, cum-tx,\n"
	"                      cum (cumulative totals)\n"
	"      --group BY      process (default), service, container, cgroup, user\n"
	"      --filter TEXT   only processes whose pid, comm, command line, user,\n"
	"                      service, container or cgroup contains TEXT (any case)\n"
	"  -x, --exited        show processes that exited (hidden by default)\n"
	"  -p, --payload       count L4 payload bytes instead of IP bytes\n"
	"  -e, --exact         exact byte counts instead of KiB, MiB, ...\n"
	"  -i, --interfaces    show the interfaces panel\n"
	"      --no-color      no colors (also when NO_COLOR is set, or TERM=dumb)\n"
	"  -h, --help          this text\n"
	"\n"
	"keys:\n"
	"  q Q Ctrl-C   quit\n"
	"  r t b        sort by received, sent, or both\n"
	"  c            sort by rates or by cumulative totals\n"
	"  g G          group by process, service, container, cgroup, user (next,\n"
	"               previous)\n"
	"  /            filter (Enter keeps it, Esc restores the old one, empty: all)\n"
	"  x            show or hide exited processes\n"
	"  p            IP bytes or L4 payload bytes\n"
	"  u            human units or exact byte counts\n"
	"  i            interfaces panel: per interface the rx/tx rates, what the\n"
	"               records counted vs the kernel's counters since top connected\n"
	"               (REC-KERNEL \"ok\" when equal), and the buckets of traffic no\n"
	"               process owns: forwarded, local without owner, non-IP,\n"
	"               malformed, overflow, unattributed\n"
	"  arrows PgUp PgDn Home End   scroll the table\n"
	"  h ?          help screen\n"
	"\n"
	"exit status:\n"
	"  0  quit (q, Ctrl-C), or --count / --once done\n"
	"  1  cannot connect (or taskmeterd refused the connection: see its\n"
	"     log), a malformed stream, or an output error\n"
	"  2  bad usage\n"
	"  3  the stream ended: taskmeterd stopped or went away (and, with --wait,\n"
	"     did not come back in time); a message on stderr says which\n";

/* ---- User names --------------------------------------------------------- */

struct users {
	uint32_t uid[USERS_MAX];
	char *name[USERS_MAX];
	size_t n;
};

static const char *user_name(uint32_t uid, void *ctx)
{
	struct users *u = ctx;
	struct passwd *pw;

	for (size_t i = 0; i < u->n; i++)
		if (u->uid[i] == uid)
			return u->name[i];
	if (u->n == USERS_MAX)
		return NULL;
	/* NULL is remembered too: no lookup per frame for unnamed uids. */
	pw = getpwuid(uid);
	u->uid[u->n] = uid;
	u->name[u->n] = pw ? strdup(pw->pw_name) : NULL;
	return u->name[u->n++];
}

static void users_free(struct users *u)
{
	for (size_t i = 0; i < u->n; i++)
		free(u->name[i]);
}

/* ---- Options -------------------------------------------------------------- */

enum { OPT_ONCE = 256, OPT_SORT, OPT_GROUP, OPT_FILTER, OPT_NO_COLOR };

static int bad_arg(const char *opt, const char *arg)
{
	fprintf(stderr, "taskmeter top: bad %s '%s'\n", opt, arg);
	return -EINVAL;
}

static int parse_width(const char *arg, size_t *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < TM_TOP_MIN_COLS || v > TM_TOP_MAX_COLS) {
		fprintf(stderr, "taskmeter top: --width wants %d..%d, not '%s'\n",
			TM_TOP_MIN_COLS, TM_TOP_MAX_COLS, arg);
		return -EINVAL;
	}
	*out = (size_t)v;
	return 0;
}

static int parse_filter(const char *arg, struct tm_top_view *v)
{
	if (strlen(arg) >= sizeof(v->filter))
		return bad_arg("--filter (too long)", arg);
	strcpy(v->filter, arg);
	return 0;
}

static int one_opt(int c, const char *arg, struct tm_top_opts *o)
{
	switch (c) {
	case 's': o->socket = arg; return 0;
	case 'w': return tm_client_parse_wait(arg, &o->wait_s);
	case 'n': return tm_client_parse_count(arg, &o->count);
	case OPT_ONCE: o->once = true; return 0;
	case 'b': o->batch = true; return 0;
	case 'W': return parse_width(arg, &o->width);
	case OPT_SORT:
		return tm_top_parse_sort(arg, &o->view) ? bad_arg("--sort", arg) : 0;
	case OPT_GROUP:
		return tm_top_parse_group(arg, &o->view) ? bad_arg("--group", arg) : 0;
	case OPT_FILTER: return parse_filter(arg, &o->view);
	case 'x': o->view.exited = true; return 0;
	case 'p': o->view.payload = true; return 0;
	case 'e': o->view.exact = true; return 0;
	case 'i': o->view.interfaces = true; return 0;
	case OPT_NO_COLOR: o->color = false; return 0;
	default: return -EINVAL;
	}
}

/* Returns 0, 1 when --help was printed, or -EINVAL after a message. */
static int parse_opts(int argc, char **argv, struct tm_top_opts *o)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "wait", required_argument, NULL, 'w' },
		{ "count", required_argument, NULL, 'n' },
		{ "once", no_argument, NULL, OPT_ONCE },
		{ "batch", no_argument, NULL, 'b' },
		{ "width", required_argument, NULL, 'W' },
		{ "sort", required_argument, NULL, OPT_SORT },
		{ "group", required_argument, NULL, OPT_GROUP },
		{ "filter", required_argument, NULL, OPT_FILTER },
		{ "exited", no_argument, NULL, 'x' },
		{ "payload", no_argument, NULL, 'p' },
		{ "exact", no_argument, NULL, 'e' },
		{ "interfaces", no_argument, NULL, 'i' },
		{ "no-color", no_argument, NULL, OPT_NO_COLOR },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c, err = 0;

	opterr = 0;
	optind = 1;
	while (!err && (c = getopt_long(argc, argv, "s:w:n:bW:xpeih", longopts, NULL)) != -1) {
		if (c == 'h') {
			fputs(tm_top_usage, stdout);
			return 1;
		}
		if (c == '?') {
			fprintf(stderr, "taskmeter top: %s option '%s'\n",
				optopt && strchr("swnW", optopt) ? "missing argument of" : "unknown",
				argv[optind - 1]);
			err = -EINVAL;
			break;
		}
		err = one_opt(c, optarg, o);
	}
	if (!err && optind < argc) {
		fprintf(stderr, "taskmeter top: unexpected argument '%s'\n", argv[optind]);
		err = -EINVAL;
	}
	if (err)
		fprintf(stderr, "try 'taskmeter top --help'\n");
	return err;
}

/* ---- Batch mode ------------------------------------------------------------ */

static void print_line(void *ctx, const struct tm_top_line *line)
{
	fprintf(ctx, "%s\n", line->text);
}

static size_t batch_width(const struct tm_top_opts *o)
{
	const char *env = getenv("COLUMNS");
	struct winsize ws;
	long v;

	if (o->width)
		return o->width;
	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col)
		return ws.ws_col;
	v = env ? strtol(env, NULL, 10) : 0;
	return v > 0 ? (size_t)v : BATCH_DEFAULT_COLS;
}

static int print_snapshot(struct tm_top *t, size_t width, bool gap)
{
	struct tm_top_screen s = { .cols = width };

	if (gap)
		putchar('\n');
	tm_top_render(t, &s, print_line, stdout);
	fflush(stdout);
	return ferror(stdout) ? -EIO : 0;
}

static int run_batch(struct tm_top *t, struct tm_client *c, const struct tm_top_opts *o)
{
	/* Interface rates need two frames. */
	unsigned long long skip = o->once && o->view.interfaces ? 1 : 0, n = 0;
	unsigned long long want = o->once ? 1 : o->count;
	size_t width = batch_width(o);
	unsigned reconnects = 0;
	Taskmeter__Frame *f;
	int status;

	while (tm_client_next_blocking(c, &f, &status)) {
		if (c->reconnects != reconnects) {
			reconnects = c->reconnects;
			tm_top_forget(t);
		}
		if (tm_top_set_frame(t, f)) {
			tm_err("out of memory\n");
			return TM_EXIT_FAIL;
		}
		if (skip) {
			skip--;
			continue;
		}
		if (print_snapshot(t, width, n > 0)) {
			tm_err("writing the output: %s\n", strerror(errno));
			return TM_EXIT_FAIL;
		}
		if (want && ++n >= want)
			return TM_EXIT_OK;
	}
	return status;
}

/* ---- The command ----------------------------------------------------------- */

static bool dumb_terminal(void)
{
	const char *term = getenv("TERM");

	return !term || !*term || !strcmp(term, "dumb");
}

static bool no_color_env(void)
{
	const char *v = getenv("NO_COLOR");

	return v && *v;
}

static int run(struct tm_top_opts *o)
{
	bool plain = o->once || o->batch || dumb_terminal() || !isatty(STDIN_FILENO) ||
		     !isatty(STDOUT_FILENO);
	struct users users = { .n = 0 };
	struct tm_client c;
	struct tm_top t;
	int err, status = -1;

	tm_client_init(&c, o->socket, o->wait_s, !plain);
	err = tm_client_connect(&c);
	if (err) {
		tm_client_warn_connect(&c, err);
		tm_client_free(&c);
		return TM_EXIT_FAIL;
	}
	tm_top_init(&t);
	t.view = o->view;
	t.user_name = user_name;
	t.user_ctx = &users;
	if (!plain)
		status = tm_topui_run(&t, &c, o);
	if (status < 0) {
		/* curses cannot drive this terminal: plain text it is. */
		if (!plain) {
			tm_client_free(&c);
			tm_client_init(&c, o->socket, o->wait_s, false);
			err = tm_client_connect(&c);
		}
		status = err ? TM_EXIT_FAIL : run_batch(&t, &c, o);
	}
	tm_top_free(&t);
	tm_client_free(&c);
	users_free(&users);
	return status;
}

int tm_top_main(int argc, char **argv)
{
	struct tm_top_opts o = { .socket = DEFAULT_SOCKET, .color = true };
	int err;

	/* The terminal's character set: UTF-8 names are shown as they are only
	 * where the terminal takes UTF-8. */
	setlocale(LC_ALL, "");
	o.view.ascii = strcmp(nl_langinfo(CODESET), "UTF-8") != 0;
	o.view.sort_dir = TM_TOP_BOTH;
	err = parse_opts(argc, argv, &o);
	if (err)
		return err > 0 ? TM_EXIT_OK : TM_EXIT_USAGE;
	if (no_color_env() || dumb_terminal())
		o.color = false;
	return run(&o);
}
