// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Config parser. One table row per key; every check reports the line, the
 * key and why, because the daemon refuses to start (exit 2) on any error
 * and the operator has to fix the file from the message alone.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <linux/types.h>

#include "taskmeter.h"
#include "config.h"

#define WHY_MAX 256
#define VALUE_MAX PATH_MAX
#define KEY_SHOW_MAX 64
/* A config file is a few KiB; anything bigger is a wrong path. */
#define FILE_MAX (1024 * 1024)

/* Key flags */
#define K_EMPTY_OK (1u << 0) /* "" means something (off, root, none) */
#define K_ABSOLUTE (1u << 1) /* path must start with '/' */
#define K_POW2 (1u << 2)
#define K_SECONDS (1u << 3) /* duration stored in whole seconds */

struct key;
typedef int (*parse_fn)(struct tm_config *c, const struct key *k, const char *v, char *why);

struct key {
	const char *name;
	parse_fn parse;
	size_t off;
	size_t size;
	unsigned long long min, max;
	unsigned int flags;
};

static const char *const default_env_allow[] = {
	"SERVICE_NAME", "OTEL_SERVICE_NAME", "POD_NAME", "POD_NAMESPACE", "CONTAINER_NAME",
};

static const char *const log_level_names[] = {
	[TM_LOG_ERROR] = "error",
	[TM_LOG_WARN] = "warn",
	[TM_LOG_INFO] = "info",
	[TM_LOG_DEBUG] = "debug",
};

static void prom_defaults(struct tm_config *c);

void tm_config_defaults(struct tm_config *c)
{
	/* Zero first so that configs compare equal byte for byte. */
	memset(c, 0, sizeof(*c));
	strcpy(c->socket_path, "/run/taskmeter/taskmeter.sock");
	c->socket_mode = 0660;
	c->interval_ms = 1000;
	c->argv_max = 4096;
	c->env_max = TM_ENV_CAP;
	c->metadata_procfs = false;
	for (size_t i = 0; i < sizeof(default_env_allow) / sizeof(default_env_allow[0]); i++)
		strcpy(c->env_allow[c->n_env_allow++], default_env_allow[i]);
	c->subscriber_queue = 16;
	c->max_owner_records = TM_DEFAULT_COUNTER_ENTRIES;
	c->meta_entries = TM_DEFAULT_META_ENTRIES;
	c->ringbuf_kib = TM_DEFAULT_RINGBUF_KIB;
	c->exited_ttl_s = 10;
	strcpy(c->ifaces[c->n_ifaces++], "*");
	c->xdp_mode = TM_XDP_AUTO;
	c->tc_attach = TM_TC_AUTO;
	c->flow_entries = TM_DEFAULT_FLOW_ENTRIES;
	c->log_level = TM_LOG_INFO;
	strcpy(c->instance, "default");
	c->keep_state = false;
	c->max_subscribers = 64;
	c->subscriber_queue_mib = 64;
	prom_defaults(c);
}

static unsigned int *field_uint(struct tm_config *c, const struct key *k)
{
	return (unsigned int *)((char *)c + k->off);
}

/*
 * Decimal or octal digits only: strtoull alone would accept a sign and
 * leading blanks, and "-1" would wrap to a huge value.
 */
static int parse_digits(const char *v, int base, unsigned long long *out, const char **end)
{
	char *e;

	if (!isdigit((unsigned char)v[0]))
		return -EINVAL;
	errno = 0;
	*out = strtoull(v, &e, base);
	*end = e;
	return errno == ERANGE ? -ERANGE : 0;
}

static int check_range(const struct key *k, const char *v, unsigned long long n, int err,
		       char *why)
{
	if (err == -ERANGE || n < k->min || n > k->max) {
		snprintf(why, WHY_MAX, "%.64s is out of range (%llu..%llu)", v, k->min, k->max);
		return -EINVAL;
	}
	return 0;
}

static int parse_uint(struct tm_config *c, const struct key *k, const char *v, char *why)
{
	unsigned long long n;
	const char *end;
	int err;

	err = parse_digits(v, 10, &n, &end);
	if (err == -EINVAL || (!err && *end)) {
		snprintf(why, WHY_MAX, "'%.64s' is not a number", v);
		return -EINVAL;
	}
	if (check_range(k, v, n, err, why))
		return -EINVAL;
	if ((k->flags & K_POW2) && (n & (n - 1))) {
		snprintf(why, WHY_MAX, "%llu is not a power of two", n);
		return -EINVAL;
	}
	*field_uint(c, k) = n;
	return 0;
}

static int parse_mode(struct tm_config *c, const struct key *k, const char *v, char *why)
{
	unsigned long long n;
	const char *end;
	int err;

	err = parse_digits(v, 8, &n, &end);
	if (err == -EINVAL || (!err && *end)) {
		snprintf(why, WHY_MAX, "'%.64s' is not an octal mode (e.g. 0660)", v);
		return -EINVAL;
	}
	if (err || n > k->max) {
		snprintf(why, WHY_MAX, "%.64s is out of range (0..0%llo)", v, k->max);
		return -EINVAL;
	}
	*field_uint(c, k) = n;
	return 0;
}

/* "500ms", "2s" or "2" (seconds) to milliseconds. */
static int duration_ms(const char *v, unsigned long long *ms)
{
	unsigned long long n;
	const char *end;
	int err;

	err = parse_digits(v, 10, &n, &end);
	if (err == -EINVAL)
		return -EINVAL;
	if (!strcmp(end, "ms")) {
		*ms = n;
	} else if (!*end || !strcmp(end, "s")) {
		*ms = n * 1000;
		if (n > ULLONG_MAX / 1000)
			err = -ERANGE;
	} else {
		return -EINVAL;
	}
	return err;
}

static int parse_duration(struct tm_config *c, const struct key *k, const char *v, char *why)
{
	unsigned long long ms;
	unsigned int unit = k->flags & K_SECONDS ? 1000 : 1;
	int err;

	err = duration_ms(v, &ms);
	if (err == -EINVAL) {
		snprintf(why, WHY_MAX,
			 "'%.64s' is not a duration (use 500ms, 2s or a number of seconds)", v);
		return -EINVAL;
	}
	if (err || ms < k->min || ms > k->max) {
		if (unit == 1000)
			snprintf(why, WHY_MAX, "%.64s is out of range (%llus..%llus)", v,
				 k->min / 1000, k->max / 1000);
		else
			snprintf(why, WHY_MAX, "%.64s is out of range (%llums..%llus)", v, k->min,
				 k->max / 1000);
		return -EINVAL;
	}
	if (ms % unit) {
		snprintf(why, WHY_MAX, "%.64s is not a whole number of seconds", v);
		return -EINVAL;
	}
	*field_uint(c, k) = ms / unit;
	return 0;
}

static int parse_path(struct tm_config *c, const struct key *k, const char *v, char *why)
{
	size_t len = strlen(v);

	if (len >= k->size) {
		snprintf(why, WHY_MAX, "path is too long (%zu bytes, max %zu)", len, k->size - 1);
		return -EINVAL;
	}
	if ((k->flags & K_ABSOLUTE) && len && v[0] != '/') {
		snprintf(why, WHY_MAX, "'%.64s' is not an absolute path", v);
		return -EINVAL;
	}
	/* strncpy zero-fills, keeping the struct comparable with memcmp. */
	strncpy((char *)c + k->off, v, k->size);
	return 0;
}

static int parse_enum(const char *v, const char *const *names, size_t n, const char *name_list,
		      char *why)
{
	for (size_t i = 0; i < n; i++)
		if (names[i] && !strcmp(v, names[i]))
			return i;
	snprintf(why, WHY_MAX, "'%.64s' is not one of %s", v, name_list);
	return -EINVAL;
}

static int parse_metadata(struct tm_config *c, const struct key *k, const char *v, char *why)
{
	static const char *const names[] = { "task_work", "procfs" };
	int i = parse_enum(v, names, 2, "task_work, procfs", why);

	(void)k;
	if (i < 0)
		return i;
	c->metadata_procfs = i == 1;
	return 0;
}

static int parse_log_level(struct tm_config *c, const struct key *k, const char *v, char *why)
{
	int i = parse_enum(v, log_level_names, 4, "error, warn, info, debug", why);

	(void)k;
	if (i < 0)
		return i;
	c->log_level = i;
	return 0;
}

static bool env_name_valid(const char *s, size_t len)
{
	if (!len || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
			return false;
	return true;
}

/* Add one name; a name listed twice is harmless, so it is kept once. */
static int env_add(struct tm_config *c, const char *s, size_t len, char *why)
{
	if (!env_name_valid(s, len)) {
		snprintf(why, WHY_MAX, "'%.*s' is not a variable name ([A-Za-z_][A-Za-z0-9_]*)",
			 (int)(len < 64 ? len : 64), s);
		return -EINVAL;
	}
	if (len >= TM_ENV_NAME_MAX) {
		snprintf(why, WHY_MAX, "'%.64s%s' is too long (max %d bytes)", s,
			 len > 64 ? "..." : "", TM_ENV_NAME_MAX - 1);
		return -EINVAL;
	}
	if (tm_config_env_allowed(c, s, len))
		return 0;
	if (c->n_env_allow == TM_ENV_ALLOW_MAX) {
		snprintf(why, WHY_MAX, "more than %d names", TM_ENV_ALLOW_MAX);
		return -EINVAL;
	}
	memcpy(c->env_allow[c->n_env_allow++], s, len);
	return 0;
}

static int parse_env_allow(struct tm_config *c, const struct key *k, const char *v, char *why)
{
	static const char seps[] = ", \t";

	(void)k;
	memset(c->env_allow, 0, sizeof(c->env_allow));
	c->n_env_allow = 0;
	for (v += strspn(v, seps); *v; v += strspn(v, seps)) {
		size_t len = strcspn(v, seps);

		if (env_add(c, v, len, why))
			return -EINVAL;
		v += len;
	}
	return 0;
}

/* A comma/blank separated list into char[TM_LIST_MAX][TM_LIST_ITEM_MAX]. */
static int parse_list(char (*items)[TM_LIST_ITEM_MAX], unsigned int *n, const char *v,
		      const char *bad_chars, char *why)
{
	static const char seps[] = ", \t";

	memset(items, 0, sizeof(char[TM_LIST_MAX][TM_LIST_ITEM_MAX]));
	*n = 0;
	for (v += strspn(v, seps); *v; v += strspn(v, seps)) {
		size_t len = strcspn(v, seps);

		if (len >= TM_LIST_ITEM_MAX || *n == TM_LIST_MAX) {
			snprintf(why, WHY_MAX, len >= TM_LIST_ITEM_MAX ? "'%.32s...' is too long"
								       : "more than 32 entries", v);
			return -EINVAL;
		}
		if (strcspn(v, bad_chars) < len) {
			snprintf(why, WHY_MAX, "'%.*s' has a character not allowed here (%s)",
				 (int)(len < 64 ? len : 64), v, bad_chars);
			return -EINVAL;
		}
		memcpy(items[(*n)++], v, len);
		v += len;
	}
	return 0;
}

static int parse_ifaces(struct tm_config *c, const struct key *k, const char *v, char *why)
{
	(void)k;
	return parse_list(c->ifaces, &c->n_ifaces, v, "/:\"'", why);
}

static int parse_netns(struct tm_config *c, const struct key *k, const char *v, char *why)
{
	(void)k;
	return parse_list(c->netns, &c->n_netns, v, "*?[\"'", why);
}

static int parse_xdp_mode(struct tm_config *c, const struct key *k, const char *v, char *why)
{
	static const char *const names[] = { "auto", "native", "skb", "off" };
	int i = parse_enum(v, names, 4, "auto, native, skb, off", why);

	(void)k;
	if (i < 0)
		return i;
	c->xdp_mode = i;
	return 0;
}

static int parse_tc_attach(struct tm_config *c, const struct key *k, const char *v, char *why)
{
	static const char *const names[] = { "auto", "tcx", "clsact", "off" };
	int i = parse_enum(v, names, 4, "auto, tcx, clsact, off", why);

	(void)k;
	if (i < 0)
		return i;
	c->tc_attach = i;
	return 0;
}

static int parse_bool(struct tm_config *c, const struct key *k, const char *v, char *why)
{
	static const char *const names[] = { "no", "yes", "false", "true", "off", "on", "0", "1" };
	int i = parse_enum(v, names, 8, "yes, no (or true/false, on/off, 1/0)", why);

	if (i < 0)
		return i;
	*(bool *)((char *)c + k->off) = i & 1;
	return 0;
}

/* A name that is also a path component and a unit name: [A-Za-z0-9_.-]. */
static int parse_name(struct tm_config *c, const struct key *k, const char *v, char *why)
{
	size_t len = strlen(v);

	if (len >= k->size) {
		snprintf(why, WHY_MAX, "'%.64s' is too long (max %zu bytes)", v, k->size - 1);
		return -EINVAL;
	}
	if (v[0] == '.' || strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				      "0123456789_.-") != len) {
		snprintf(why, WHY_MAX, "'%.64s' may only have letters, digits, '_', '-' and "
			 "'.' (not first)", v);
		return -EINVAL;
	}
	strncpy((char *)c + k->off, v, k->size);
	return 0;
}

/* A group name or number; whether it exists is checked when the socket is
 * made (the file may be read where the group is not defined). */
static int parse_group(struct tm_config *c, const struct key *k, const char *v, char *why)
{
	if (*v && strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			    "0123456789_.-$") != strlen(v)) {
		snprintf(why, WHY_MAX, "'%.64s' is not a group name or number", v);
		return -EINVAL;
	}
	return parse_path(c, k, v, why);
}

/* ---- taskmeter prom ---------------------------------------------------- */

static const char *const prom_label_names[] = {
	[TM_PROM_SERVICE] = "service",
	[TM_PROM_CONTAINER_ID] = "container_id",
	[TM_PROM_CONTAINER_RUNTIME] = "container_runtime",
	[TM_PROM_POD_UID] = "pod_uid",
	[TM_PROM_CGROUP] = "cgroup",
	[TM_PROM_COMM] = "comm",
	[TM_PROM_EXE] = "exe",
	[TM_PROM_UID] = "uid",
	[TM_PROM_USER] = "user",
	[TM_PROM_PID] = "pid",
};
#define N_PROM_NAMED (sizeof(prom_label_names) / sizeof(prom_label_names[0]))
/* Every source has its name but env_NAME, which is the last. */
_Static_assert(N_PROM_NAMED == TM_PROM_ENV, "a label name for every tm_prom_label_src");

/* Low cardinality: one series per service / container / command, never
 * per pid unless asked for. */
static const char default_prom_labels[] = "service, container_id, comm";

#define TM_PROM_DEFAULT_LISTEN "127.0.0.1:9479"

static int listen_v6(const char *host, unsigned int port, struct sockaddr_storage *ss,
		     unsigned int *len)
{
	struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

	if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
		return -EINVAL;
	a->sin6_family = AF_INET6;
	a->sin6_port = htons((uint16_t)port);
	*len = sizeof(*a);
	return 0;
}

static int listen_v4(const char *host, unsigned int port, struct sockaddr_storage *ss,
		     unsigned int *len)
{
	struct sockaddr_in *a = (struct sockaddr_in *)ss;

	if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
		return -EINVAL;
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	*len = sizeof(*a);
	return 0;
}

int tm_config_listen_addr(const char *s, struct sockaddr_storage *ss, unsigned int *len)
{
	const char *colon = strrchr(s, ':');
	char host[INET6_ADDRSTRLEN + 2];
	unsigned long long port;
	const char *end;
	size_t hlen;

	if (!colon || parse_digits(colon + 1, 10, &port, &end) || *end || port > 65535)
		return -EINVAL;
	hlen = colon - s;
	if (hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	memset(ss, 0, sizeof(*ss));
	/* IPv6 needs its brackets: "::1:80" would be ambiguous. */
	if (hlen > 2 && host[0] == '[' && host[hlen - 1] == ']') {
		host[hlen - 1] = '\0';
		return listen_v6(host + 1, port, ss, len);
	}
	return listen_v4(host, port, ss, len);
}

static int parse_prom_listen(struct tm_config *c, const struct key *k, const char *v, char *why)
{
	struct sockaddr_storage ss;
	unsigned int len;

	if (strlen(v) >= k->size || tm_config_listen_addr(v, &ss, &len)) {
		snprintf(why, WHY_MAX,
			 "'%.64s' is not ADDRESS:PORT (e.g. 127.0.0.1:9479, [::1]:9479, 0.0.0.0:9479)",
			 v);
		return -EINVAL;
	}
	strncpy(c->prom_listen, v, k->size);
	return 0;
}

/* One prom_labels entry: a field name, or env_NAME for an allowlisted
 * variable (checked against env_allowlist by taskmeter prom: the two keys
 * may come in either order). */
static int prom_label_add(struct tm_prom_label *l, const char *s, size_t len, char *why)
{
	for (size_t i = 0; i < N_PROM_NAMED; i++)
		if (strlen(prom_label_names[i]) == len && !memcmp(prom_label_names[i], s, len)) {
			l->src = i;
			memcpy(l->name, s, len);
			return 0;
		}
	if (len > 4 && !memcmp(s, "env_", 4) && env_name_valid(s + 4, len - 4) &&
	    len < sizeof(l->name)) {
		l->src = TM_PROM_ENV;
		memcpy(l->name, s, len);
		return 0;
	}
	snprintf(why, WHY_MAX,
		 "'%.*s' is not a label (service, container_id, container_runtime, pod_uid, "
		 "cgroup, comm, exe, uid, user, pid, env_NAME)", (int)(len < 64 ? len : 64), s);
	return -EINVAL;
}

static bool prom_label_listed(const struct tm_config *c, const char *s, size_t len)
{
	for (unsigned int i = 0; i < c->n_prom_labels; i++)
		if (strlen(c->prom_labels[i].name) == len && !memcmp(c->prom_labels[i].name, s, len))
			return true;
	return false;
}

static int parse_prom_labels(struct tm_config *c, const struct key *k, const char *v, char *why)
{
	static const char seps[] = ", \t";

	(void)k;
	memset(c->prom_labels, 0, sizeof(c->prom_labels));
	c->n_prom_labels = 0;
	for (v += strspn(v, seps); *v; v += strspn(v, seps)) {
		size_t len = strcspn(v, seps);

		if (prom_label_listed(c, v, len)) {
			snprintf(why, WHY_MAX, "'%.*s' is listed twice", (int)(len < 64 ? len : 64), v);
			return -EINVAL;
		}
		if (c->n_prom_labels == TM_PROM_LABELS_MAX) {
			snprintf(why, WHY_MAX, "more than %d labels", TM_PROM_LABELS_MAX);
			return -EINVAL;
		}
		if (prom_label_add(&c->prom_labels[c->n_prom_labels], v, len, why))
			return -EINVAL;
		c->n_prom_labels++;
		v += len;
	}
	return 0;
}

static void prom_defaults(struct tm_config *c)
{
	char why[WHY_MAX];

	strcpy(c->prom_listen, TM_PROM_DEFAULT_LISTEN);
	parse_prom_labels(c, NULL, default_prom_labels, why);
	c->prom_max_series = 1000;
	c->prom_series_idle_s = 3600;
}

#define F(field) offsetof(struct tm_config, field), sizeof(((struct tm_config *)0)->field)

static const struct key keys[] = {
	{ "cgroup", parse_path, F(cgroup), 0, 0, K_EMPTY_OK },
	{ "socket_path", parse_path, F(socket_path), 0, 0, K_ABSOLUTE },
	{ "socket_mode", parse_mode, F(socket_mode), 0, 0777, 0 },
	{ "interval", parse_duration, F(interval_ms), 100, 3600 * 1000, 0 },
	{ "argv_max", parse_uint, F(argv_max), 64, TM_ARGV_CAP, 0 },
	{ "env_max", parse_uint, F(env_max), 0, TM_ENV_CAP, 0 },
	{ "metadata", parse_metadata, F(metadata_procfs), 0, 0, 0 },
	{ "env_allowlist", parse_env_allow, F(env_allow), 0, 0, K_EMPTY_OK },
	{ "subscriber_queue", parse_uint, F(subscriber_queue), 1, 1024, 0 },
	{ "counter_entries", parse_uint, F(max_owner_records), 1024, 4194304, 0 },
	{ "meta_entries", parse_uint, F(meta_entries), 1024, 1048576, 0 },
	{ "ringbuf_kib", parse_uint, F(ringbuf_kib), 64, 262144, K_POW2 },
	{ "exited_ttl", parse_duration, F(exited_ttl_s), 0, 3600 * 1000, K_SECONDS },
	{ "interfaces", parse_ifaces, F(ifaces), 0, 0, K_EMPTY_OK },
	{ "netns", parse_netns, F(netns), 0, 0, K_EMPTY_OK },
	{ "xdp_mode", parse_xdp_mode, F(xdp_mode), 0, 0, 0 },
	{ "tc_attach", parse_tc_attach, F(tc_attach), 0, 0, 0 },
	{ "flow_entries", parse_uint, F(flow_entries), 1024, 4194304, 0 },
	{ "log_level", parse_log_level, F(log_level), 0, 0, 0 },
	{ "instance", parse_name, F(instance), 0, 0, 0 },
	{ "keep_state", parse_bool, F(keep_state), 0, 0, 0 },
	{ "pin_root", parse_path, F(pin_root), 0, 0, K_EMPTY_OK | K_ABSOLUTE },
	{ "socket_group", parse_group, F(socket_group), 0, 0, K_EMPTY_OK },
	{ "max_subscribers", parse_uint, F(max_subscribers), 1, 1024, 0 },
	{ "subscriber_queue_mib", parse_uint, F(subscriber_queue_mib), 1, 4096, 0 },
	/* taskmeter prom */
	{ "prom_listen", parse_prom_listen, F(prom_listen), 0, 0, 0 },
	{ "prom_labels", parse_prom_labels, F(prom_labels), 0, 0, K_EMPTY_OK },
	{ "prom_max_series", parse_uint, F(prom_max_series), 1, 1000000, 0 },
	{ "prom_series_idle", parse_duration, F(prom_series_idle_s), 0, 30ull * 86400 * 1000,
	  K_SECONDS },
};

#define N_KEYS (sizeof(keys) / sizeof(keys[0]))
_Static_assert(N_KEYS <= TM_CONFIG_KEYS_MAX, "tm_config.key_line has a line per key");


static const struct key *key_find(const char *name, size_t len)
{
	for (size_t i = 0; i < N_KEYS; i++)
		if (strlen(keys[i].name) == len && !memcmp(keys[i].name, name, len))
			return &keys[i];
	return NULL;
}

const char *tm_config_where(const struct tm_config *c, const char *key, char *buf, size_t len)
{
	const struct key *k = key_find(key, strlen(key));
	unsigned int line = k ? c->key_line[k - keys] : 0;

	if (line == TM_CONFIG_CMDLINE)
		snprintf(buf, len, "command line: %s", key);
	else if (line)
		snprintf(buf, len, "%s:%u: %s", c->origin, line, key);
	else
		snprintf(buf, len, "%s (default)", key);
	return buf;
}

bool tm_config_env_allowed(const struct tm_config *c, const char *name, size_t name_len)
{
	if (name_len >= TM_ENV_NAME_MAX)
		return false;
	for (unsigned int i = 0; i < c->n_env_allow; i++)
		if (!strncmp(c->env_allow[i], name, name_len) && !c->env_allow[i][name_len])
			return true;
	return false;
}

/* Parser state of one file. */
struct parse_ctx {
	struct tm_config *c;
	const char *origin;
	unsigned int line;
	unsigned int seen[N_KEYS]; /* line where each key was set, 0 = not yet */
	char *err;
	size_t errlen;
};

static int fail(struct parse_ctx *p, const char *key, size_t key_len, const char *why)
{
	if (!p->err || !p->errlen)
		return -EINVAL;
	if (key)
		snprintf(p->err, p->errlen, "%s:%u: %.*s: %s", p->origin, p->line,
			 (int)(key_len < KEY_SHOW_MAX ? key_len : KEY_SHOW_MAX), key, why);
	else
		snprintf(p->err, p->errlen, "%s:%u: %s", p->origin, p->line, why);
	return -EINVAL;
}

static bool is_blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f';
}

static void trim(const char **s, size_t *len)
{
	while (*len && is_blank(**s))
		(*s)++, (*len)--;
	while (*len && is_blank((*s)[*len - 1]))
		(*len)--;
}

/*
 * Cut the value of a line out of its quotes or trailing comment. A '#' only
 * starts a comment after blanks, so "a#b" stays a value (paths may hold '#').
 */
static int unquote(const char **v, size_t *len, bool *quoted, const char **why)
{
	const char *s = *v, *close;
	size_t rest;

	*quoted = *len && s[0] == '"';
	if (!*quoted) {
		for (size_t i = 0; i < *len; i++)
			if (s[i] == '#' && (!i || is_blank(s[i - 1])))
				*len = i;
		trim(v, len);
		return 0;
	}
	close = memchr(s + 1, '"', *len - 1);
	if (!close) {
		*why = "unterminated quote";
		return -EINVAL;
	}
	rest = *len - (close + 1 - s);
	*v = s + 1;
	*len = close - *v;
	s = close + 1;
	trim(&s, &rest);
	if (rest && s[0] != '#') {
		*why = "unexpected text after the closing quote";
		return -EINVAL;
	}
	return 0;
}

/* Check and apply one key; shared by the file parser and tm_config_set. */
static int apply(struct tm_config *c, const struct key *k, const char *v, bool empty_ok,
		 char *why)
{
	if (!*v && !(empty_ok && (k->flags & K_EMPTY_OK))) {
		snprintf(why, WHY_MAX, "empty value");
		return -EINVAL;
	}
	return k->parse(c, k, v, why);
}

static int parse_value(struct parse_ctx *p, const char *key, size_t key_len, const char *v,
		       size_t len)
{
	const struct key *k = key_find(key, key_len);
	char value[VALUE_MAX], why[WHY_MAX];
	const char *msg = NULL;
	bool quoted;

	if (!k)
		return fail(p, key, key_len, "unknown key");
	if (p->seen[k - keys]) {
		snprintf(why, sizeof(why), "set twice (first on line %u)", p->seen[k - keys]);
		return fail(p, key, key_len, why);
	}
	p->seen[k - keys] = p->line;
	p->c->key_line[k - keys] = (unsigned short)(p->line < 65535 ? p->line : 65535);
	if (unquote(&v, &len, &quoted, &msg))
		return fail(p, key, key_len, msg);
	if (len >= sizeof(value)) {
		snprintf(why, sizeof(why), "value is too long (max %zu bytes)", sizeof(value) - 1);
		return fail(p, key, key_len, why);
	}
	memcpy(value, v, len);
	value[len] = '\0';
	/* Only an explicit "" may be empty: a bare "key =" is a half-edited line. */
	if (apply(p->c, k, value, quoted, why))
		return fail(p, key, key_len, why);
	return 0;
}

static int parse_line(struct parse_ctx *p, const char *s, size_t len)
{
	const char *eq, *key, *v;
	size_t key_len;

	trim(&s, &len);
	if (!len || s[0] == '#')
		return 0;
	eq = memchr(s, '=', len);
	if (!eq)
		return fail(p, NULL, 0, "expected 'key = value'");
	key = s;
	key_len = eq - s;
	trim(&key, &key_len);
	if (!key_len)
		return fail(p, NULL, 0, "missing key before '='");
	v = eq + 1;
	len -= v - s;
	trim(&v, &len);
	return parse_value(p, key, key_len, v, len);
}

int tm_config_parse(struct tm_config *c, const char *text, const char *origin, char *err,
		    size_t errlen)
{
	/* Parse into a copy so that a bad file changes nothing. */
	struct tm_config tmp = *c;
	struct parse_ctx p = { .c = &tmp, .origin = origin, .err = err, .errlen = errlen };

	snprintf(tmp.origin, sizeof(tmp.origin), "%s", origin);

	while (*text) {
		const char *nl = strchr(text, '\n');
		int ret;

		if (!nl)
			nl = text + strlen(text);

		p.line++;
		ret = parse_line(&p, text, nl - text);
		if (ret)
			return ret;
		text = *nl ? nl + 1 : nl;
	}
	*c = tmp;
	return 0;
}

static int io_fail(const char *path, int err, char *errbuf, size_t errlen)
{
	const char *why = strerror(-err);

	if (err == -EFBIG)
		why = "not a config file (over 1 MiB or contains NUL bytes)";
	if (errbuf && errlen)
		snprintf(errbuf, errlen, "%s: %s", path, why);
	return err;
}

/* Read a whole small file into a NUL-terminated malloc'ed buffer. */
static int read_small_file(int fd, char **out)
{
	size_t len = 0;
	char *buf = malloc(FILE_MAX + 1);
	ssize_t n;

	if (!buf)
		return -ENOMEM;
	while (len <= FILE_MAX && (n = read(fd, buf + len, FILE_MAX + 1 - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = -errno;

			free(buf);
			return err;
		}
		len += n;
	}
	if (len > FILE_MAX || memchr(buf, '\0', len)) {
		free(buf);
		return -EFBIG;
	}
	buf[len] = '\0';
	*out = buf;
	return 0;
}

int tm_config_load(struct tm_config *c, const char *path, char *err, size_t errlen)
{
	char *text = NULL;
	int fd, ret;

	struct stat st;

	/* O_NONBLOCK: a FIFO named as the config must not hang the daemon */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return io_fail(path, -errno, err, errlen);
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		ret = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		close(fd);
		if (ret == -EINVAL && err && errlen) {
			snprintf(err, errlen, "%s: not a regular file", path);
			return ret;
		}
		return io_fail(path, ret, err, errlen);
	}
	ret = read_small_file(fd, &text);
	close(fd);
	if (ret)
		return io_fail(path, ret, err, errlen);
	ret = tm_config_parse(c, text, path, err, errlen);
	free(text);
	return ret;
}

int tm_config_set(struct tm_config *c, const char *key, const char *value, char *err,
		  size_t errlen)
{
	const struct key *k = key_find(key, strlen(key));
	struct tm_config tmp = *c;
	char why[WHY_MAX];

	if (!k)
		snprintf(why, sizeof(why), "unknown key");
	else if (strlen(value) >= VALUE_MAX)
		snprintf(why, sizeof(why), "value is too long (max %d bytes)", VALUE_MAX - 1);
	else if (!apply(&tmp, k, value, true, why)) {
		tmp.key_line[k - keys] = TM_CONFIG_CMDLINE;
		*c = tmp;
		return 0;
	}
	if (err && errlen)
		snprintf(err, errlen, "command line: %.*s: %s", KEY_SHOW_MAX, key, why);
	return -EINVAL;
}
