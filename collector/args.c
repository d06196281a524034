// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* taskmeterd's options, see args.h. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"

void tm_args_usage(FILE *f)
{
	fprintf(f,
		"Usage: taskmeterd [OPTIONS]\n"
		"Per-process network accounting: attaches BPF programs to a cgroup and\n"
		"streams per-process records as length-delimited protobuf frames\n"
		"(proto/taskmeter.proto) to every client of a UNIX socket.\n"
		"\n"
		"  -c, --config FILE     config file (default " TM_DEFAULT_CONFIG " if it\n"
		"                        exists; see configs/taskmeter.conf for every key)\n"
		"      --cgroup PATH     cgroup v2 to account (default: the root = whole host)\n"
		"      --socket PATH     export socket (default /run/taskmeter/taskmeter.sock)\n"
		"      --interval DUR    frame interval, e.g. 1s, 500ms (default 1s)\n"
		"      --metadata MODE   task_work (default) or procfs (the fallback for\n"
		"                        kernels without the task_work kfunc)\n"
		"      --instance NAME   names the pinned state on bpffs (default \"default\");\n"
		"                        one taskmeterd per instance\n"
		"      --set KEY=VALUE   set any config key (repeatable, at most 64)\n"
		"      --keep-state      on SIGINT/SIGTERM leave the programs attached and\n"
		"                        counting, for the next taskmeterd (e.g. an upgrade)\n"
		"      --remove-state    detach and remove the pinned state of the instance\n"
		"                        (when no taskmeterd runs it), then exit\n"
		"      --check-config    validate the configuration and exit\n"
		"      --print-memory    print the BPF map memory this config may use, exit\n"
		"  -v, --verbose         more logging (-vv: libbpf debug output)\n"
		"  -V, --version         print the version and exit\n"
		"  -h, --help            this text\n"
		"\n"
		"Command-line settings override the file. Config errors exit with status 2\n"
		"before anything is attached.\n"
		"Signals: SIGINT/SIGTERM send a final frame, then detach everything and\n"
		"remove the pinned state (unless keep_state / --keep-state); SIGUSR2 does\n"
		"the same but keeps the state; SIGHUP reloads the config file (what cannot\n"
		"change without a restart is reported and kept). A taskmeterd killed any\n"
		"other way leaves its programs counting: the next one adopts the counts.\n"
		"Needs root, or CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN, CAP_SYS_ADMIN and\n"
		"CAP_SYS_RESOURCE; CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH to read other\n"
		"users' /proc entries; CAP_CHOWN for socket_group.\n");
}


enum {
	OPT_CGROUP = 256, OPT_SOCKET, OPT_INTERVAL, OPT_METADATA, OPT_INSTANCE, OPT_SET,
	OPT_CHECK, OPT_MEM, OPT_KEEP, OPT_REMOVE,
};

static int fail(char *err, size_t errlen, int ret, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return ret;
}

static int add_override(struct tm_args *a, const char *key, const char *value, char *owned,
			char *err, size_t errlen)
{
	if (a->n == TM_ARGS_MAX) {
		free(owned);
		return fail(err, errlen, -E2BIG, "too many overrides (at most %d)", TM_ARGS_MAX);
	}
	a->keys[a->n] = key;
	a->values[a->n] = value;
	a->owned[a->n++] = owned;
	return 0;
}

static int add_set(struct tm_args *a, const char *kv, char *err, size_t errlen)
{
	char *copy, *eq;

	if (!strchr(kv, '='))
		return fail(err, errlen, -EINVAL, "--set %s: expected KEY=VALUE", kv);
	copy = strdup(kv);
	if (!copy)
		return fail(err, errlen, -ENOMEM, "--set %s: out of memory", kv);
	eq = strchr(copy, '=');
	*eq = '\0';
	/* The copy is stored with its override, or freed if there is no room. */
	return add_override(a, copy, eq + 1, copy, err, errlen);
}

static int parse_one(struct tm_args *a, int c, char *err, size_t errlen)
{
	switch (c) {
	case 'c': a->config = optarg; return 0;
	case 'v': a->verbose++; return 0;
	case 'h': a->help = true; return 0;
	case 'V': a->version = true; return 0;
	case OPT_CGROUP: return add_override(a, "cgroup", optarg, NULL, err, errlen);
	case OPT_SOCKET: return add_override(a, "socket_path", optarg, NULL, err, errlen);
	case OPT_INTERVAL: return add_override(a, "interval", optarg, NULL, err, errlen);
	case OPT_METADATA: return add_override(a, "metadata", optarg, NULL, err, errlen);
	case OPT_INSTANCE: return add_override(a, "instance", optarg, NULL, err, errlen);
	case OPT_KEEP: a->keep_state = true; return 0;
	case OPT_REMOVE: a->remove_state = true; return 0;
	case OPT_SET: return add_set(a, optarg, err, errlen);
	case OPT_CHECK: a->check_only = true; return 0;
	case OPT_MEM: a->print_memory = true; return 0;
	default:
		/* getopt has said what is wrong (unless opterr is 0): err stays "" */
		a->usage = true;
		return -EINVAL;
	}
}

int tm_args_parse(struct tm_args *a, int argc, char **argv, char *err, size_t errlen)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "cgroup", required_argument, NULL, OPT_CGROUP },
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "interval", required_argument, NULL, OPT_INTERVAL },
		{ "metadata", required_argument, NULL, OPT_METADATA },
		{ "instance", required_argument, NULL, OPT_INSTANCE },
		{ "set", required_argument, NULL, OPT_SET },
		{ "keep-state", no_argument, NULL, OPT_KEEP },
		{ "remove-state", no_argument, NULL, OPT_REMOVE },
		{ "check-config", no_argument, NULL, OPT_CHECK },
		{ "print-memory", no_argument, NULL, OPT_MEM },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c, ret = 0;

	memset(a, 0, sizeof(*a));
	if (err && errlen)
		err[0] = '\0';
	optind = 0; /* glibc: start over, also after an earlier parse */
	while (!ret && !a->help && !a->version &&
	       (c = getopt_long(argc, argv, "c:vVh", opts, NULL)) != -1)
		ret = parse_one(a, c, err, errlen);
	if (!ret && !a->help && !a->version && optind < argc)
		ret = fail(err, errlen, -EINVAL, "unexpected argument '%s'", argv[optind]);
	return ret;
}

int tm_args_apply(const struct tm_args *a, struct tm_config *cfg, char *err, size_t errlen)
{
	int ret = 0;

	for (int i = 0; !ret && i < a->n; i++)
		ret = tm_config_set(cfg, a->keys[i], a->values[i], err, errlen);
	return ret;
}

void tm_args_free(struct tm_args *a)
{
	for (int i = 0; i < a->n; i++)
		free(a->owned[i]);
	a->n = 0;
}

int tm_args_config(const struct tm_args *a, struct tm_config *c, char *msg, size_t len)
{
	const char *path = a->config;
	int ret = 0;

	tm_config_defaults(c);
	if (!path && access(TM_DEFAULT_CONFIG, F_OK) == 0)
		path = TM_DEFAULT_CONFIG;
	if (path)
		ret = tm_config_load(c, path, msg, len);
	if (!ret)
		ret = tm_args_apply(a, c, msg, len);
	return ret;
}
