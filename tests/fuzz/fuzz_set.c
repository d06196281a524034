// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * taskmeterd's command line: tm_args_parse() on an argv made of the
 * input's lines, then tm_args_apply() of the overrides to the defaults.
 * A line that starts with '-' (an option) or follows an option that takes
 * an argument is passed as is; any other line becomes "--set LINE".
 *
 * Promises checked: never more than TM_ARGS_MAX overrides; a --set key
 * and value are the argument split at its first '='; an applied config is
 * in range; and a --set KEY=VALUE agrees with the file line
 * 'KEY = "VALUE"' wherever the file can say the same: same verdict, same
 * config, same reason.
 */
#include <errno.h>
#include <getopt.h>

#include "args.h"
#include "config_check.h"
#include "fuzz.h"

#define MAX_ARGS 512

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	tm_log_level = TM_LOG_ERROR;
	opterr = 0; /* getopt's complaints about our inputs */
	return 0;
}

/* Is the next argument opt's (as getopt_long would take it)? */
static bool takes_arg(const char *opt)
{
	static const char *const opts[] = { "-c", "--config", "--cgroup", "--socket",
					    "--interval", "--metadata", "--set" };

	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		if (!strcmp(opt, opts[i]))
			return true;
	return false;
}

/* Splits text in place into argv; returns argc. */
static int make_argv(char *text, char **argv)
{
	int argc = 0;

	argv[argc++] = "taskmeterd";
	for (char *line = text; line && argc < MAX_ARGS - 2;) {
		char *nl = strchr(line, '\n');

		if (nl)
			*nl = '\0';
		if (line[0] != '-' && !takes_arg(argv[argc - 1]))
			argv[argc++] = "--set";
		argv[argc++] = line;
		line = nl ? nl + 1 : NULL;
	}
	argv[argc] = NULL;
	return argc;
}

/* Can 'key = "value"' say in a file what --set key=value says? */
static bool file_can_say(const char *key, const char *value)
{
	return *key && !strpbrk(key, " \t\r\v\f=#\"") && !strchr(value, '"');
}

/* The reason of an error message: what follows "<origin>: <key>". */
static const char *reason(const char *msg, const char *origin, const char *key)
{
	size_t n = strlen(origin), k = strlen(key);

	if (strncmp(msg, origin, n) || strncmp(msg + n, key, k))
		return msg;
	return msg + n + k;
}

/* One override on its own: the command line and the file agree. */
static void check_against_file(const char *key, const char *value)
{
	struct tm_config a, b;
	char ea[512] = "", eb[512] = "", *line;
	int ra, rb;
	size_t len = strlen(key) + strlen(value) + 8;

	if (!file_can_say(key, value) || strlen(key) > 64 || len > 4096)
		return;
	line = malloc(len);
	FUZZ_CHECK(line);
	snprintf(line, len, "%s = \"%s\"", key, value);
	tm_config_defaults(&a);
	tm_config_defaults(&b);
	ra = tm_config_set(&a, key, value, ea, sizeof(ea));
	rb = tm_config_parse(&b, line, "f", eb, sizeof(eb));
	if (ra != rb || !fuzz_config_same(&a, &b) ||
	    strcmp(reason(ea, "command line: ", key), reason(eb, "f:1: ", key))) {
		fprintf(stderr, "--set: %d '%s'\nfile:  %d '%s'\n", ra, ea, rb, eb);
		FUZZ_CHECK(!"--set and the file agree");
	}
	free(line);
}

static void check_overrides(const struct tm_args *a)
{
	FUZZ_CHECK(a->n >= 0 && a->n <= TM_ARGS_MAX);
	for (int i = 0; i < a->n; i++) {
		FUZZ_CHECK(a->keys[i] && a->values[i]);
		/* a --set: a copy of the argument cut at its first '=' */
		if (a->owned[i]) {
			FUZZ_CHECK(a->keys[i] == a->owned[i] && !strchr(a->keys[i], '='));
			FUZZ_CHECK(a->values[i] == a->keys[i] + strlen(a->keys[i]) + 1);
		}
		check_against_file(a->keys[i], a->values[i]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text, *argv[MAX_ARGS], err[512];
	struct tm_config c;
	struct tm_args a;
	int ret;

	if (memchr(data, '\0', size))
		return -1; /* argv strings cannot hold NUL */
	text = fuzz_cstr(data, size);
	ret = tm_args_parse(&a, make_argv(text, argv), argv, err, sizeof(err));
	FUZZ_CHECK(!ret || ret == -EINVAL || ret == -E2BIG);
	FUZZ_CHECK(!ret || a.usage || err[0]);
	check_overrides(&a);
	if (!ret) {
		tm_config_defaults(&c);
		ret = tm_args_apply(&a, &c, err, sizeof(err));
		if (!ret)
			fuzz_config_check(&c);
		else
			FUZZ_CHECK(ret == -EINVAL && !strncmp(err, "command line: ", 14));
	}
	tm_args_free(&a);
	free(text);
	return 0;
}
