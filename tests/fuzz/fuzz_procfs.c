// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The /proc parsers on arbitrary file contents: one input is given to each
 * of them as the file it reads (status, stat, mountinfo as text; cmdline
 * and environ as NUL-separated bytes).
 *
 * Promises checked: status yields a NUL-terminated comm of at most 15
 * bytes and non-negative ids; mountinfo's result fits its buffer (one
 * byte less than the result needs is -ENAMETOOLONG); argv pieces tile
 * the buffer; the environment filter returns only allowlisted names, each
 * once, with values that end at a NUL inside the buffer.
 */
#include <errno.h>

#include "config.h"
#include "fuzz.h"
#include "procfs.h"

#define MAX_OUT 16

static struct tm_config cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];

	(void)argc;
	(void)argv;
	tm_log_level = TM_LOG_ERROR;
	tm_config_defaults(&cfg);
	/* Short names, so that mutations hit them: A, PATH, and the defaults. */
	FUZZ_CHECK(!tm_config_set(&cfg, "env_allowlist", "A PATH SERVICE_NAME POD_NAME POD_NAMESPACE",
				  err, sizeof(err)));
	return 0;
}

static void check_status(const char *text)
{
	struct tm_proc_status st;

	memset(&st, 0xa5, sizeof(st));
	if (tm_proc_status_parse(text, &st))
		return;
	FUZZ_CHECK(strnlen(st.comm, sizeof(st.comm)) < sizeof(st.comm));
	FUZZ_CHECK(st.tgid >= 0 && st.ppid >= 0);
}

static void check_stat(const char *text)
{
	uint64_t ticks;
	int err = tm_proc_stat_start_ticks(text, &ticks);

	FUZZ_CHECK(!err || err == -EPROTO);
}

/* Mount point of fstype in a buffer of exactly len bytes. */
static int find_mount(const uint8_t *data, size_t size, const char *fstype, char **buf,
		      size_t len)
{
	FILE *f = fmemopen((void *)data, size, "r");
	int err;

	FUZZ_CHECK(f);
	*buf = malloc(len);
	FUZZ_CHECK(*buf);
	err = tm_proc_mountinfo_find(f, fstype, *buf, len);
	fclose(f);
	return err;
}

static void check_mountinfo(const uint8_t *data, size_t size)
{
	char *buf, *exact;
	int err;
	size_t n;

	if (!size) /* fmemopen() wants a buffer */
		return;
	err = find_mount(data, size, "cgroup2", &buf, 4096);
	FUZZ_CHECK(!err || err == -ENOENT || err == -ENAMETOOLONG);
	if (!err) {
		n = strlen(buf);
		FUZZ_CHECK(find_mount(data, size, "cgroup2", &exact, n + 1) == 0);
		FUZZ_CHECK(!strcmp(buf, exact));
		free(exact);
		FUZZ_CHECK(find_mount(data, size, "cgroup2", &exact, n) == -ENAMETOOLONG);
		free(exact);
	}
	free(buf);
}

static void check_argv(const char *p, size_t size)
{
	const char *out[MAX_OUT];
	size_t len[MAX_OUT], n = tm_proc_argv_split(p, size, out, len, MAX_OUT), at = 0;

	FUZZ_CHECK(n <= MAX_OUT && (size == 0) == (n == 0));
	for (size_t i = 0; i < n; i++) {
		/* Each piece starts where the last one's NUL was, and holds none. */
		FUZZ_CHECK(out[i] == p + at && at + len[i] <= size);
		FUZZ_CHECK(!memchr(out[i], '\0', len[i]));
		at += len[i];
		FUZZ_CHECK(at == size || p[at] == '\0');
		at++;
	}
	FUZZ_CHECK(n == MAX_OUT || at >= size);
}

static void check_env(const char *p, size_t size)
{
	struct tm_env_pair out[MAX_OUT];
	size_t n = tm_proc_env_filter(&cfg, p, size, out, MAX_OUT);

	FUZZ_CHECK(n <= MAX_OUT);
	for (size_t i = 0; i < n; i++) {
		const struct tm_env_pair *e = &out[i];

		FUZZ_CHECK(e->name >= p && e->value == e->name + e->name_len + 1);
		FUZZ_CHECK(e->value + e->value_len < p + size && e->value[e->value_len] == '\0');
		FUZZ_CHECK(e->name[e->name_len] == '=' && tm_config_env_allowed(&cfg, e->name, e->name_len));
		FUZZ_CHECK(e->name == p || e->name[-1] == '\0');
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(out[j].name_len != e->name_len ||
				   memcmp(out[j].name, e->name, e->name_len));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstr(data, size), *bytes = fuzz_copy(data, size);

	check_status(text);
	check_stat(text);
	check_mountinfo(data, size);
	check_argv(bytes, size);
	check_env(bytes, size);
	free(bytes);
	free(text);
	return 0;
}
