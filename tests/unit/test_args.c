// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* taskmeterd's command line: options, --set overrides, their limits. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>

#include "args.h"
#include "tm_test.h"

#define ARGV_MAX (2 * TM_ARGS_MAX + 8)

/* Parses argv[0..] (NULL-terminated, without the program name) quietly. */
static int parse(struct tm_args *a, const char *const *args, char *err, size_t errlen)
{
	char *argv[ARGV_MAX + 2] = { "taskmeterd" };
	int argc = 1, saved = opterr, ret;

	while (*args && argc <= ARGV_MAX)
		argv[argc++] = (char *)*args++;
	opterr = 0; /* getopt's own complaints would only be noise here */
	ret = tm_args_parse(a, argc, argv, err, errlen);
	opterr = saved;
	return ret;
}

TM_TEST(args_options)
{
	static const char *const argv[] = {
		"-c", "t.conf", "-v", "--verbose", "--check-config", "--print-memory",
		"--cgroup", "/sys/fs/cgroup/x", "--socket", "/tmp/s", "--interval", "2s",
		"--metadata", "procfs", "--set", "log_level=debug", "--set", "cgroup=a=b", NULL,
	};
	static const char *const keys[] = { "cgroup", "socket_path", "interval", "metadata",
					    "log_level", "cgroup" };
	static const char *const values[] = { "/sys/fs/cgroup/x", "/tmp/s", "2s", "procfs",
					      "debug", "a=b" };
	struct tm_args a;
	char err[256];

	if (!ASSERT_EQ(parse(&a, argv, err, sizeof(err)), 0))
		goto out;
	ASSERT_STREQ(a.config, "t.conf");
	ASSERT_EQ(a.verbose, 2);
	ASSERT_TRUE(a.check_only && a.print_memory && !a.help && !a.usage);
	if (!ASSERT_EQ(a.n, 6))
		goto out;
	for (int i = 0; i < 6; i++) {
		ASSERT_STREQ(a.keys[i], keys[i]);
		ASSERT_STREQ(a.values[i], values[i]);
		/* Only --set keys are copies of ours. */
		ASSERT_EQ(!!a.owned[i], i >= 4);
	}
out:
	tm_args_free(&a);
	return true;
}

static bool parse_fails(const char *const *argv, int want, const char *msg, bool usage)
{
	struct tm_args a;
	char err[256];
	bool ok;

	ok = ASSERT_EQ(parse(&a, argv, err, sizeof(err)), want) && ASSERT_STREQ(err, msg) &&
	     ASSERT_EQ(a.usage, usage);
	tm_args_free(&a);
	return ok;
}

TM_TEST(args_errors)
{
	static const char *const no_eq[] = { "--set", "interval", NULL };
	static const char *const extra[] = { "-v", "extra", NULL };
	static const char *const unknown[] = { "--bogus", NULL };
	static const char *const missing[] = { "--config", NULL };
	static const char *const help[] = { "-h", "--bogus", "extra", NULL };
	struct tm_args a;

	parse_fails(no_eq, -EINVAL, "--set interval: expected KEY=VALUE", false);
	parse_fails(extra, -EINVAL, "unexpected argument 'extra'", false);
	/* getopt has its say on stderr; the caller adds the usage. */
	parse_fails(unknown, -EINVAL, "", true);
	parse_fails(missing, -EINVAL, "", true);
	/* -h ends the parse: nothing after it matters. */
	ASSERT_EQ(parse(&a, help, NULL, 0), 0);
	ASSERT_TRUE(a.help && !a.usage);
	tm_args_free(&a);
	return true;
}

/*
 * Regression: the 65th --set stored its copy in owned[64], past the array,
 * before the bound was checked (it landed on n, and the next override on a
 * wild address). Now 64 fit and the 65th is refused with nothing written.
 */
TM_TEST(args_set_limit)
{
	const char *argv[2 * (TM_ARGS_MAX + 1) + 1];
	char kv[TM_ARGS_MAX + 1][24], err[256];
	struct tm_args a;

	for (int i = 0; i <= TM_ARGS_MAX; i++) {
		snprintf(kv[i], sizeof(kv[i]), "argv_max=%d", 64 + i);
		argv[2 * i] = "--set";
		argv[2 * i + 1] = kv[i];
	}
	argv[2 * TM_ARGS_MAX] = NULL;
	if (ASSERT_EQ(parse(&a, argv, err, sizeof(err)), 0))
		ASSERT_EQ(a.n, TM_ARGS_MAX);
	tm_args_free(&a);

	argv[2 * TM_ARGS_MAX] = "--set";
	argv[2 * TM_ARGS_MAX + 2] = NULL;
	ASSERT_EQ(parse(&a, argv, err, sizeof(err)), -E2BIG);
	ASSERT_STREQ(err, "too many overrides (at most 64)");
	if (ASSERT_EQ(a.n, TM_ARGS_MAX)) {
		ASSERT_STREQ(a.keys[TM_ARGS_MAX - 1], "argv_max");
		ASSERT_STREQ(a.values[TM_ARGS_MAX - 1], "127");
	}
	tm_args_free(&a);
	/* The shorthands count against the same limit. */
	for (int i = 0; i <= TM_ARGS_MAX; i++)
		argv[2 * i] = "--interval";
	ASSERT_EQ(parse(&a, argv, err, sizeof(err)), -E2BIG);
	ASSERT_EQ(a.n, TM_ARGS_MAX);
	tm_args_free(&a);
	return true;
}

TM_TEST(args_apply)
{
	static const char *const good[] = { "--interval", "2s", "--set", "interval=500ms",
					    "--set", "argv_max=64", NULL };
	static const char *const bad[] = { "--set", "argv_max=100", "--set", "argv_max=1",
					   "--set", "env_max=0", NULL };
	struct tm_config c;
	struct tm_args a;
	char err[256] = "";

	tm_config_defaults(&c);
	if (ASSERT_EQ(parse(&a, good, err, sizeof(err)), 0) &&
	    ASSERT_EQ(tm_args_apply(&a, &c, err, sizeof(err)), 0)) {
		/* In order: the later override wins. */
		ASSERT_EQ(c.interval_ms, 500);
		ASSERT_EQ(c.argv_max, 64);
	}
	tm_args_free(&a);
	if (ASSERT_EQ(parse(&a, bad, err, sizeof(err)), 0)) {
		ASSERT_EQ(tm_args_apply(&a, &c, err, sizeof(err)), -EINVAL);
		ASSERT_STREQ(err, "command line: argv_max: 1 is out of range (64..8192)");
		/* The ones before the bad one applied, none after it. */
		ASSERT_EQ(c.argv_max, 100);
		ASSERT_EQ(c.env_max, 8192);
	}
	tm_args_free(&a);
	return true;
}
