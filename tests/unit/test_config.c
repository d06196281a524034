// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Config parser: defaults, a full file, every error class with its line. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "tm_test.h"

/*
 * config_equal() compares two configurations key by key, every key
 * configs/taskmeter.conf documents: config_equal_covers_every_key checks
 * this table against that file (not against the parser's own key table),
 * and that each comparison sees a change of its key.
 */
#define SAME_NUM(key, field)                                                         \
	static bool same_##key(const struct tm_config *a, const struct tm_config *b) \
	{                                                                            \
		return a->field == b->field;                                         \
	}
#define SAME_STR(key, field)                                                         \
	static bool same_##key(const struct tm_config *a, const struct tm_config *b) \
	{                                                                            \
		return !strcmp(a->field, b->field);                                  \
	}
#define SAME_LIST(key, items, n)                                                     \
	static bool same_##key(const struct tm_config *a, const struct tm_config *b) \
	{                                                                            \
		if (a->n != b->n)                                                    \
			return false;                                                \
		for (unsigned int i = 0; i < a->n; i++)                              \
			if (strcmp(a->items[i], b->items[i]))                        \
				return false;                                        \
		return true;                                                         \
	}

SAME_STR(cgroup, cgroup)
SAME_STR(socket_path, socket_path)
SAME_NUM(socket_mode, socket_mode)
SAME_STR(socket_group, socket_group)
SAME_NUM(max_subscribers, max_subscribers)
SAME_NUM(interval, interval_ms)
SAME_NUM(argv_max, argv_max)
SAME_NUM(env_max, env_max)
SAME_NUM(metadata, metadata_procfs)
SAME_LIST(env_allowlist, env_allow, n_env_allow)
SAME_NUM(subscriber_queue, subscriber_queue)
SAME_NUM(subscriber_queue_mib, subscriber_queue_mib)
SAME_NUM(counter_entries, max_owner_records)
SAME_NUM(meta_entries, meta_entries)
SAME_NUM(ringbuf_kib, ringbuf_kib)
SAME_NUM(exited_ttl, exited_ttl_s)
SAME_LIST(interfaces, ifaces, n_ifaces)
SAME_LIST(netns, netns, n_netns)
SAME_NUM(xdp_mode, xdp_mode)
SAME_NUM(tc_attach, tc_attach)
SAME_NUM(flow_entries, flow_entries)
SAME_NUM(log_level, log_level)
SAME_STR(instance, instance)
SAME_STR(pin_root, pin_root)
SAME_NUM(keep_state, keep_state)
SAME_STR(prom_listen, prom_listen)
SAME_NUM(prom_max_series, prom_max_series)
SAME_NUM(prom_series_idle, prom_series_idle_s)

static bool same_prom_labels(const struct tm_config *a, const struct tm_config *b)
{
	if (a->n_prom_labels != b->n_prom_labels)
		return false;
	for (unsigned int i = 0; i < a->n_prom_labels; i++)
		if (strcmp(a->prom_labels[i].name, b->prom_labels[i].name) ||
		    a->prom_labels[i].src != b->prom_labels[i].src)
			return false;
	return true;
}

/* Every key, with a value other than its default (to see that its
 * comparison notices a change). */
static const struct config_key {
	const char *key;
	bool (*same)(const struct tm_config *a, const struct tm_config *b);
	const char *other;
} config_keys[] = {
#define KEY(k, other) { #k, same_##k, other }
	KEY(cgroup, "a/b"),
	KEY(socket_path, "/tmp/other.sock"),
	KEY(socket_mode, "0600"),
	KEY(socket_group, "0"),
	KEY(max_subscribers, "2"),
	KEY(interval, "2s"),
	KEY(argv_max, "128"),
	KEY(env_max, "0"),
	KEY(metadata, "procfs"),
	KEY(env_allowlist, "SERVICE_NAME, FOO"),
	KEY(subscriber_queue, "2"),
	KEY(subscriber_queue_mib, "2"),
	KEY(counter_entries, "2048"),
	KEY(meta_entries, "2048"),
	KEY(ringbuf_kib, "64"),
	KEY(exited_ttl, "3"),
	KEY(interfaces, "eth0"),
	KEY(netns, "other"),
	KEY(xdp_mode, "skb"),
	KEY(tc_attach, "clsact"),
	KEY(flow_entries, "2048"),
	KEY(log_level, "debug"),
	KEY(instance, "other"),
	KEY(pin_root, "/tmp"),
	KEY(keep_state, "yes"),
	KEY(prom_listen, "127.0.0.1:1"),
	KEY(prom_labels, "service, container_id, cgroup"),
	KEY(prom_max_series, "5"),
	KEY(prom_series_idle, "60"),
#undef KEY
};

#define N_CONFIG_KEYS (sizeof(config_keys) / sizeof(config_keys[0]))

/* Every documented key the same in a and b; the keys that differ are named. */
static bool config_equal(const struct tm_config *a, const struct tm_config *b)
{
	bool same = true;

	for (size_t i = 0; i < N_CONFIG_KEYS; i++)
		if (!config_keys[i].same(a, b))
			same = TM_TEST_FAILED("configs differ in %s", config_keys[i].key);
	return same;
}

TM_TEST(config_defaults)
{
	struct tm_config c;

	tm_config_defaults(&c);
	ASSERT_STREQ(c.cgroup, "");
	ASSERT_STREQ(c.socket_path, "/run/taskmeter/taskmeter.sock");
	ASSERT_EQ(c.socket_mode, 0660);
	ASSERT_EQ(c.interval_ms, 1000);
	ASSERT_EQ(c.argv_max, 4096);
	ASSERT_EQ(c.env_max, 8192);
	ASSERT_EQ(c.metadata_procfs, false);
	ASSERT_EQ(c.n_env_allow, 5);
	ASSERT_STREQ(c.env_allow[0], "SERVICE_NAME");
	ASSERT_STREQ(c.env_allow[1], "OTEL_SERVICE_NAME");
	ASSERT_STREQ(c.env_allow[2], "POD_NAME");
	ASSERT_STREQ(c.env_allow[3], "POD_NAMESPACE");
	ASSERT_STREQ(c.env_allow[4], "CONTAINER_NAME");
	ASSERT_EQ(c.subscriber_queue, 16);
	ASSERT_EQ(c.max_owner_records, 65536);
	ASSERT_EQ(c.meta_entries, 16384);
	ASSERT_EQ(c.ringbuf_kib, 8192);
	ASSERT_EQ(c.exited_ttl_s, 10);
	ASSERT_EQ(c.log_level, TM_LOG_INFO);
	return true;
}

TM_TEST(config_full_file)
{
	/* CRLF line, tabs, trailing comments, quotes, no final newline. */
	static const char text[] =
		"# taskmeter test config\n"
		"\n"
		"cgroup = system.slice/web.service   # relative to the mount\n"
		"socket_path=\"/tmp/tm dir/tm.sock\"  # quoted, with a space\n"
		"\tsocket_mode = 0600\r\n"
		"interval = 250ms\n"
		"argv_max = 64\n"
		"env_max = 0\n"
		"metadata = procfs\n"
		"env_allowlist = APP, TEAM  REGION,_X1\n"
		"subscriber_queue = 1024\n"
		"counter_entries = 4194304\n"
		"meta_entries = 1024\n"
		"ringbuf_kib = 64\n"
		"exited_ttl = 0\n"
		"log_level = debug";
	struct tm_config c;
	char err[256] = "";

	tm_config_defaults(&c);
	if (!ASSERT_EQ(tm_config_parse(&c, text, "t.conf", err, sizeof(err)), 0))
		return false;
	ASSERT_STREQ(err, "");
	ASSERT_STREQ(c.cgroup, "system.slice/web.service");
	ASSERT_STREQ(c.socket_path, "/tmp/tm dir/tm.sock");
	ASSERT_EQ(c.socket_mode, 0600);
	ASSERT_EQ(c.interval_ms, 250);
	ASSERT_EQ(c.argv_max, 64);
	ASSERT_EQ(c.env_max, 0);
	ASSERT_EQ(c.metadata_procfs, true);
	ASSERT_EQ(c.n_env_allow, 4);
	ASSERT_STREQ(c.env_allow[0], "APP");
	ASSERT_STREQ(c.env_allow[1], "TEAM");
	ASSERT_STREQ(c.env_allow[2], "REGION");
	ASSERT_STREQ(c.env_allow[3], "_X1");
	ASSERT_STREQ(c.env_allow[4], "");
	ASSERT_EQ(c.subscriber_queue, 1024);
	ASSERT_EQ(c.max_owner_records, 4194304);
	ASSERT_EQ(c.meta_entries, 1024);
	ASSERT_EQ(c.ringbuf_kib, 64);
	ASSERT_EQ(c.exited_ttl_s, 0);
	ASSERT_EQ(c.log_level, TM_LOG_DEBUG);
	return true;
}

TM_TEST(config_values)
{
	static const struct {
		const char *text;
		unsigned int interval_ms, exited_ttl_s, socket_mode;
		const char *cgroup;
	} cases[] = {
		{ "interval = 2", 2000, 10, 0660, "" },
		{ "interval = 1s", 1000, 10, 0660, "" },
		{ "interval = 100ms", 100, 10, 0660, "" },
		{ "interval = 3600s", 3600000, 10, 0660, "" },
		{ "interval = \"500ms\"", 500, 10, 0660, "" },
		{ "exited_ttl = 3600", 1000, 3600, 0660, "" },
		{ "exited_ttl = 2000ms", 1000, 2, 0660, "" },
		{ "exited_ttl = 30s", 1000, 30, 0660, "" },
		{ "socket_mode = 666", 1000, 10, 0666, "" },
		{ "socket_mode = 0", 1000, 10, 0, "" },
		{ "cgroup = \"\"", 1000, 10, 0660, "" },
		{ "cgroup = /sys/fs/cgroup/x", 1000, 10, 0660, "/sys/fs/cgroup/x" },
		{ "cgroup = \"a # b\" # c", 1000, 10, 0660, "a # b" },
		{ "cgroup = \"q\"#c", 1000, 10, 0660, "q" },
		{ "  cgroup\t=\tx\t", 1000, 10, 0660, "x" },
		{ "# only = a comment\n   # indented", 1000, 10, 0660, "" },
		{ "", 1000, 10, 0660, "" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tm_config c;
		char err[256] = "";

		tm_config_defaults(&c);
		if (tm_config_parse(&c, cases[i].text, "t.conf", err, sizeof(err))) {
			fprintf(stderr, "  case %zu: %s\n", i, err);
			return false;
		}
		ASSERT_EQ(c.interval_ms, cases[i].interval_ms);
		ASSERT_EQ(c.exited_ttl_s, cases[i].exited_ttl_s);
		ASSERT_EQ(c.socket_mode, cases[i].socket_mode);
		ASSERT_STREQ(c.cgroup, cases[i].cgroup);
	}
	return true;
}

#define LONG_121 "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static const struct {
	const char *text;
	const char *msg;
} bad_files[] = {
	/* syntax */
	{ "interval 1s", "t.conf:1: expected 'key = value'" },
	{ "\n\n  = 5", "t.conf:3: missing key before '='" },
	{ "# c\ncgroup = \"abc\n", "t.conf:2: cgroup: unterminated quote" },
	{ "cgroup = \"a\" b", "t.conf:1: cgroup: unexpected text after the closing quote" },
	/* unknown and duplicate keys */
	{ "\n\nfoo = 1\n", "t.conf:3: foo: unknown key" },
	{ "Interval = 1s", "t.conf:1: Interval: unknown key" },
	{ "interval = 1s\n# c\n\ninterval = 2s",
	  "t.conf:4: interval: set twice (first on line 1)" },
	/* empty values: only an explicit "" on keys where empty means something */
	{ "\n\nargv_max =\n", "t.conf:3: argv_max: empty value" },
	{ "argv_max = # no value", "t.conf:1: argv_max: empty value" },
	{ "socket_path = \"\"", "t.conf:1: socket_path: empty value" },
	{ "cgroup =", "t.conf:1: cgroup: empty value" },
	{ "metadata = \"\"", "t.conf:1: metadata: empty value" },
	/* numbers: garbage and range */
	{ "argv_max = 100x", "t.conf:1: argv_max: '100x' is not a number" },
	{ "argv_max = -1", "t.conf:1: argv_max: '-1' is not a number" },
	{ "argv_max = +64", "t.conf:1: argv_max: '+64' is not a number" },
	{ "argv_max = 1 000", "t.conf:1: argv_max: '1 000' is not a number" },
	{ "argv_max = 0x100", "t.conf:1: argv_max: '0x100' is not a number" },
	{ "argv_max = 63", "t.conf:1: argv_max: 63 is out of range (64..8192)" },
	{ "argv_max = 8193", "t.conf:1: argv_max: 8193 is out of range (64..8192)" },
	{ "argv_max = 99999999999999999999999",
	  "t.conf:1: argv_max: 99999999999999999999999 is out of range (64..8192)" },
	{ "env_max = 8193", "t.conf:1: env_max: 8193 is out of range (0..8192)" },
	{ "subscriber_queue = 0", "t.conf:1: subscriber_queue: 0 is out of range (1..1024)" },
	{ "counter_entries = 4194305",
	  "t.conf:1: counter_entries: 4194305 is out of range (1024..4194304)" },
	{ "meta_entries = 1023", "t.conf:1: meta_entries: 1023 is out of range (1024..1048576)" },
	{ "ringbuf_kib = 32", "t.conf:1: ringbuf_kib: 32 is out of range (64..262144)" },
	{ "ringbuf_kib = 100", "t.conf:1: ringbuf_kib: 100 is not a power of two" },
	{ "ringbuf_kib = 524288", "t.conf:1: ringbuf_kib: 524288 is out of range (64..262144)" },
	/* durations */
	{ "\n\n\n\n\n\ninterval = 5x",
	  "t.conf:7: interval: '5x' is not a duration (use 500ms, 2s or a number of seconds)" },
	{ "interval = 1.5s",
	  "t.conf:1: interval: '1.5s' is not a duration (use 500ms, 2s or a number of seconds)" },
	{ "interval = 1m",
	  "t.conf:1: interval: '1m' is not a duration (use 500ms, 2s or a number of seconds)" },
	{ "interval = 99ms", "t.conf:1: interval: 99ms is out of range (100ms..3600s)" },
	{ "interval = 0", "t.conf:1: interval: 0 is out of range (100ms..3600s)" },
	{ "interval = 3601", "t.conf:1: interval: 3601 is out of range (100ms..3600s)" },
	{ "interval = 18446744073709551615s",
	  "t.conf:1: interval: 18446744073709551615s is out of range (100ms..3600s)" },
	{ "exited_ttl = 3601s", "t.conf:1: exited_ttl: 3601s is out of range (0s..3600s)" },
	{ "exited_ttl = 1500ms", "t.conf:1: exited_ttl: 1500ms is not a whole number of seconds" },
	/* octal mode */
	{ "socket_mode = 0668", "t.conf:1: socket_mode: '0668' is not an octal mode (e.g. 0660)" },
	{ "socket_mode = rw", "t.conf:1: socket_mode: 'rw' is not an octal mode (e.g. 0660)" },
	{ "socket_mode = 01777", "t.conf:1: socket_mode: 01777 is out of range (0..0777)" },
	/* paths */
	{ "socket_path = " LONG_121,
	  "t.conf:1: socket_path: path is too long (121 bytes, max 99)" },
	{ "socket_path = run/tm.sock", "t.conf:1: socket_path: 'run/tm.sock' is not an absolute path" },
	/* enums */
	{ "metadata = bpf", "t.conf:1: metadata: 'bpf' is not one of task_work, procfs" },
	{ "log_level = verbose",
	  "t.conf:1: log_level: 'verbose' is not one of error, warn, info, debug" },
	{ "log_level = INFO", "t.conf:1: log_level: 'INFO' is not one of error, warn, info, debug" },
	/* env allowlist */
	{ "env_allowlist = A, 1BAD",
	  "t.conf:1: env_allowlist: '1BAD' is not a variable name ([A-Za-z_][A-Za-z0-9_]*)" },
	{ "env_allowlist = A-B",
	  "t.conf:1: env_allowlist: 'A-B' is not a variable name ([A-Za-z_][A-Za-z0-9_]*)" },
	{ "env_allowlist = A012345678901234567890123456789012345678901234567890123456789012",
	  "t.conf:1: env_allowlist: 'A012345678901234567890123456789012345678901234567890123456789012' is too long (max 63 bytes)" },
	{ "env_allowlist = OK, A012345678901234567890123456789012345678901234567890123456789012345678",
	  "t.conf:1: env_allowlist: 'A012345678901234567890123456789012345678901234567890123456789012...' is too long (max 63 bytes)" },
	{ "env_allowlist = A0 A1 A2 A3 A4 A5 A6 A7 A8 A9 B0 B1 B2 B3 B4 B5 B6 B7 B8 B9 "
	  "C0 C1 C2 C3 C4 C5 C6 C7 C8 C9 D0 D1 D2",
	  "t.conf:1: env_allowlist: more than 32 names" },
};

TM_TEST(config_errors)
{
	for (size_t i = 0; i < sizeof(bad_files) / sizeof(bad_files[0]); i++) {
		struct tm_config c, orig;
		char err[512] = "";

		tm_config_defaults(&c);
		orig = c;
		if (!ASSERT_EQ(tm_config_parse(&c, bad_files[i].text, "t.conf", err, sizeof(err)),
			       -EINVAL) ||
		    !ASSERT_STREQ(err, bad_files[i].msg) ||
		    /* A bad file changes nothing. */
		    !config_equal(&c, &orig))
			fprintf(stderr, "  case %zu: %s\n", i, bad_files[i].text);
	}
	return true;
}

TM_TEST(config_error_keeps_config)
{
	struct tm_config c, orig;
	char err[8];

	tm_config_defaults(&c);
	orig = c;
	/* Line 1 is valid and applied to the copy only; a tiny err buffer is
	 * truncated, not overrun. */
	ASSERT_EQ(tm_config_parse(&c, "interval = 2s\nargv_max = 1\n", "t", err, sizeof(err)),
		  -EINVAL);
	ASSERT_STREQ(err, "t:2: ar");
	ASSERT_EQ(c.interval_ms, 1000);
	ASSERT_EQ(tm_config_parse(&c, "foo = 1", "t", NULL, 0), -EINVAL);
	return config_equal(&c, &orig);
}

TM_TEST(config_set)
{
	struct tm_config c;
	char err[256] = "";

	tm_config_defaults(&c);
	ASSERT_EQ(tm_config_set(&c, "interval", "250ms", err, sizeof(err)), 0);
	ASSERT_EQ(c.interval_ms, 250);
	ASSERT_EQ(tm_config_set(&c, "metadata", "procfs", err, sizeof(err)), 0);
	ASSERT_EQ(c.metadata_procfs, true);
	/* Later overrides win; there is no "set twice" on the command line. */
	ASSERT_EQ(tm_config_set(&c, "cgroup", "a", err, sizeof(err)), 0);
	ASSERT_EQ(tm_config_set(&c, "cgroup", "", err, sizeof(err)), 0);
	ASSERT_STREQ(c.cgroup, "");
	ASSERT_EQ(tm_config_set(&c, "env_allowlist", "", err, sizeof(err)), 0);
	ASSERT_EQ(c.n_env_allow, 0);
	ASSERT_EQ(tm_config_set(&c, "log_level", "warn", err, sizeof(err)), 0);
	ASSERT_EQ(c.log_level, TM_LOG_WARN);
	ASSERT_STREQ(err, "");

	ASSERT_EQ(tm_config_set(&c, "interval", "5x", err, sizeof(err)), -EINVAL);
	ASSERT_STREQ(err, "command line: interval: '5x' is not a duration "
			  "(use 500ms, 2s or a number of seconds)");
	ASSERT_EQ(c.interval_ms, 250);
	ASSERT_EQ(tm_config_set(&c, "nope", "1", err, sizeof(err)), -EINVAL);
	ASSERT_STREQ(err, "command line: nope: unknown key");
	ASSERT_EQ(tm_config_set(&c, "argv_max", "", err, sizeof(err)), -EINVAL);
	ASSERT_STREQ(err, "command line: argv_max: empty value");
	/* Taken literally: quotes are not stripped from command-line values. */
	ASSERT_EQ(tm_config_set(&c, "argv_max", "\"64\"", err, sizeof(err)), -EINVAL);
	ASSERT_STREQ(err, "command line: argv_max: '\"64\"' is not a number");
	/* A failed env_allowlist override keeps the old list. */
	ASSERT_EQ(tm_config_set(&c, "env_allowlist", "A B", err, sizeof(err)), 0);
	ASSERT_EQ(tm_config_set(&c, "env_allowlist", "C 9", err, sizeof(err)), -EINVAL);
	ASSERT_EQ(c.n_env_allow, 2);
	ASSERT_STREQ(c.env_allow[1], "B");
	return true;
}

TM_TEST(config_env_allowlist)
{
	struct tm_config c;
	char err[256] = "";

	tm_config_defaults(&c);
	ASSERT_EQ(tm_config_parse(&c, "env_allowlist = \" A,B ,, C\tA  D,\"", "t", err,
				  sizeof(err)), 0);
	ASSERT_EQ(c.n_env_allow, 4);
	ASSERT_STREQ(c.env_allow[0], "A");
	ASSERT_STREQ(c.env_allow[1], "B");
	ASSERT_STREQ(c.env_allow[2], "C");
	ASSERT_STREQ(c.env_allow[3], "D");
	ASSERT_EQ(tm_config_parse(&c, "env_allowlist = \"\"", "t", err, sizeof(err)), 0);
	ASSERT_EQ(c.n_env_allow, 0);
	ASSERT_EQ(tm_config_env_allowed(&c, "A", 1), false);
	return true;
}

TM_TEST(config_env_allowed)
{
	static const struct {
		const char *name;
		size_t len;
		bool allowed;
	} cases[] = {
		{ "SERVICE_NAME", 12, true },
		{ "SERVICE_NAME=svc", 12, true }, /* name_len, not strlen, decides */
		{ "SERVICE_NAMEX", 13, false },
		{ "SERVICE_NAM", 11, false },
		{ "SERVICE_NAME", 7, false },
		{ "service_name", 12, false },
		{ "POD_NAMESPACE", 13, true },
		{ "POD_NAME", 8, true },
		{ "", 0, false },
		{ "SECRET_TOKEN", 12, false },
	};
	struct tm_config c;

	tm_config_defaults(&c);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (tm_config_env_allowed(&c, cases[i].name, cases[i].len) != cases[i].allowed) {
			fprintf(stderr, "  case %zu: %.*s\n", i, (int)cases[i].len, cases[i].name);
			return false;
		}
	return true;
}

/* The shipped file documents the defaults: loading it must change nothing. */
TM_TEST(config_shipped_file_is_defaults)
{
	struct tm_config c, def;
	char err[512] = "";

	tm_config_defaults(&def);
	memset(&c, 0xa5, sizeof(c));
	tm_config_defaults(&c);
	if (tm_config_load(&c, "configs/taskmeter.conf", err, sizeof(err))) {
		fprintf(stderr, "  %s\n", err);
		return false;
	}
	return config_equal(&c, &def);
}

/* The keys configs/taskmeter.conf documents: lines "key = value". */
static int documented_keys(char keys[][64], int max)
{
	FILE *f = fopen("configs/taskmeter.conf", "re");
	char line[512];
	int n = 0;

	if (!f)
		return -errno;
	while (n < max && fgets(line, sizeof(line), f)) {
		size_t k = strspn(line, "abcdefghijklmnopqrstuvwxyz_");

		if (k && k < 64 && line[k + strspn(line + k, " \t")] == '=') {
			memcpy(keys[n], line, k);
			keys[n++][k] = '\0';
		}
	}
	fclose(f);
	return n;
}

/* config_equal() compares every documented key, and each comparison sees a
 * change of its key and of no other. */
TM_TEST(config_equal_covers_every_key)
{
	static char keys[128][64];
	int n = documented_keys(keys, 128);
	struct tm_config def, c;
	char err[256];

	if (!ASSERT_TRUE(n > 0))
		return false;
	ASSERT_EQ(n, N_CONFIG_KEYS);
	for (int i = 0; i < n; i++) {
		size_t j = 0;

		while (j < N_CONFIG_KEYS && strcmp(config_keys[j].key, keys[i]))
			j++;
		if (j == N_CONFIG_KEYS)
			TM_TEST_FAILED("documented key %s is not compared by config_equal()", keys[i]);
	}
	tm_config_defaults(&def);
	for (size_t j = 0; j < N_CONFIG_KEYS; j++) {
		const struct config_key *k = &config_keys[j];

		c = def;
		err[0] = '\0';
		if (!ASSERT_EQ(tm_config_set(&c, k->key, k->other, err, sizeof(err)), 0)) {
			fprintf(stderr, "  %s = %s: %s\n", k->key, k->other, err);
			continue;
		}
		for (size_t o = 0; o < N_CONFIG_KEYS; o++)
			if (config_keys[o].same(&c, &def) != (o != j))
				TM_TEST_FAILED("%s = %s: the comparison of %s says %s", k->key, k->other,
					       config_keys[o].key, o == j ? "same" : "different");
	}
	return true;
}

TM_TEST(config_prom)
{
	struct tm_config c;
	char err[512] = "";

	tm_config_defaults(&c);
	ASSERT_STREQ(c.prom_listen, "127.0.0.1:9479");
	ASSERT_EQ(c.n_prom_labels, 3);
	ASSERT_STREQ(c.prom_labels[0].name, "service");
	ASSERT_EQ(c.prom_labels[1].src, TM_PROM_CONTAINER_ID);
	ASSERT_STREQ(c.prom_labels[2].name, "comm");
	ASSERT_EQ(c.prom_max_series, 1000);
	ASSERT_EQ(c.prom_series_idle_s, 3600);

	ASSERT_EQ(tm_config_parse(&c, "prom_listen = [::1]:0\n"
				  "prom_labels = exe,user env_POD_NAME pid\n"
				  "prom_max_series = 1\nprom_series_idle = 0\n", "t", err, sizeof(err)), 0);
	ASSERT_STREQ(c.prom_listen, "[::1]:0");
	ASSERT_EQ(c.n_prom_labels, 4);
	ASSERT_EQ(c.prom_labels[0].src, TM_PROM_EXE);
	ASSERT_EQ(c.prom_labels[1].src, TM_PROM_USER);
	ASSERT_EQ(c.prom_labels[2].src, TM_PROM_ENV);
	ASSERT_STREQ(c.prom_labels[2].name, "env_POD_NAME");
	ASSERT_EQ(c.prom_labels[3].src, TM_PROM_PID);
	ASSERT_EQ(c.prom_max_series, 1);
	ASSERT_EQ(c.prom_series_idle_s, 0);
	ASSERT_EQ(tm_config_set(&c, "prom_labels", "", err, sizeof(err)), 0);
	ASSERT_EQ(c.n_prom_labels, 0);
	ASSERT_EQ(tm_config_set(&c, "prom_listen", "0.0.0.0:65535", err, sizeof(err)), 0);
	return true;
}

static const struct {
	const char *text;
	const char *msg;
} bad_prom[] = {
	{ "prom_listen = 127.0.0.1", "t:1: prom_listen: '127.0.0.1' is not ADDRESS:PORT "
	  "(e.g. 127.0.0.1:9479, [::1]:9479, 0.0.0.0:9479)" },
	{ "prom_listen = localhost:9479", "t:1: prom_listen: 'localhost:9479' is not ADDRESS:PORT "
	  "(e.g. 127.0.0.1:9479, [::1]:9479, 0.0.0.0:9479)" },
	{ "prom_listen = ::1:9479", "t:1: prom_listen: '::1:9479' is not ADDRESS:PORT "
	  "(e.g. 127.0.0.1:9479, [::1]:9479, 0.0.0.0:9479)" },
	{ "prom_listen = 1.2.3.4:65536", "t:1: prom_listen: '1.2.3.4:65536' is not ADDRESS:PORT "
	  "(e.g. 127.0.0.1:9479, [::1]:9479, 0.0.0.0:9479)" },
	{ "prom_listen = \"\"", "t:1: prom_listen: empty value" },
	{ "prom_labels = comm, host", "t:1: prom_labels: 'host' is not a label (service, "
	  "container_id, container_runtime, pod_uid, cgroup, comm, exe, uid, user, pid, env_NAME)" },
	{ "prom_labels = env_", "t:1: prom_labels: 'env_' is not a label (service, "
	  "container_id, container_runtime, pod_uid, cgroup, comm, exe, uid, user, pid, env_NAME)" },
	{ "prom_labels = env_1X", "t:1: prom_labels: 'env_1X' is not a label (service, "
	  "container_id, container_runtime, pod_uid, cgroup, comm, exe, uid, user, pid, env_NAME)" },
	{ "prom_labels = comm pid comm", "t:1: prom_labels: 'comm' is listed twice" },
	{ "prom_labels = uid env_A env_B env_C env_D env_E env_F env_G env_H env_I env_J env_K "
	  "env_L env_M env_N env_O env_P", "t:1: prom_labels: more than 16 labels" },
	{ "prom_max_series = 0", "t:1: prom_max_series: 0 is out of range (1..1000000)" },
	{ "prom_series_idle = 2592001",
	  "t:1: prom_series_idle: 2592001 is out of range (0s..2592000s)" },
};

TM_TEST(config_prom_errors)
{
	for (size_t i = 0; i < sizeof(bad_prom) / sizeof(bad_prom[0]); i++) {
		struct tm_config c, orig;
		char err[512] = "";

		tm_config_defaults(&c);
		orig = c;
		ASSERT_EQ(tm_config_parse(&c, bad_prom[i].text, "t", err, sizeof(err)), -EINVAL);
		ASSERT_STREQ(err, bad_prom[i].msg);
		if (!config_equal(&c, &orig))
			return false;
	}
	return true;
}

TM_TEST(config_listen_addr)
{
	struct sockaddr_storage ss;
	unsigned int len;

	ASSERT_EQ(tm_config_listen_addr("127.0.0.1:9479", &ss, &len), 0);
	ASSERT_EQ(ss.ss_family, AF_INET);
	ASSERT_EQ(len, sizeof(struct sockaddr_in));
	ASSERT_EQ(ntohs(((struct sockaddr_in *)&ss)->sin_port), 9479);
	ASSERT_EQ(tm_config_listen_addr("[::]:1", &ss, &len), 0);
	ASSERT_EQ(ss.ss_family, AF_INET6);
	ASSERT_EQ(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 1);
	ASSERT_EQ(tm_config_listen_addr("[::1]", &ss, &len), -EINVAL);
	ASSERT_EQ(tm_config_listen_addr(":80", &ss, &len), -EINVAL);
	ASSERT_EQ(tm_config_listen_addr("[]:80", &ss, &len), -EINVAL);
	ASSERT_EQ(tm_config_listen_addr("1.2.3.4:-1", &ss, &len), -EINVAL);
	return true;
}

TM_TEST(config_load_errors)
{
	char path[] = "/tmp/tm-config-XXXXXX", want[512], err[512] = "";
	static const char text[] = "interval = 1s\n\nargv_max = 9000\n";
	struct tm_config c;
	int fd;

	tm_config_defaults(&c);
	ASSERT_EQ(tm_config_load(&c, "/nonexistent/tm.conf", err, sizeof(err)), -ENOENT);
	ASSERT_STREQ(err, "/nonexistent/tm.conf: No such file or directory");
	ASSERT_EQ(tm_config_load(&c, "/", err, sizeof(err)), -EISDIR);
	ASSERT_STREQ(err, "/: Is a directory");

	fd = mkstemp(path);
	if (!ASSERT_TRUE(fd >= 0))
		return false;
	ASSERT_EQ(write(fd, text, sizeof(text) - 1), sizeof(text) - 1);
	close(fd);
	ASSERT_EQ(tm_config_load(&c, path, err, sizeof(err)), -EINVAL);
	unlink(path);
	snprintf(want, sizeof(want), "%s:3: argv_max: 9000 is out of range (64..8192)", path);
	ASSERT_STREQ(err, want);
	return true;
}
