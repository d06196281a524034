/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What every accepted configuration satisfies, whichever way it came in
 * (file, --set), and a writer of the file form of a configuration, for
 * the config harnesses.
 */
#ifndef TM_FUZZ_CONFIG_CHECK_H
#define TM_FUZZ_CONFIG_CHECK_H

#include <ctype.h>
#include <string.h>

#include <linux/types.h>

#include "config.h"
#include "fuzz.h"
#include "taskmeter.h"

static inline bool fuzz_in(unsigned long long v, unsigned long long lo, unsigned long long hi)
{
	return v >= lo && v <= hi;
}

static inline bool fuzz_env_name_ok(const struct tm_config *c, unsigned int i)
{
	const char *s = c->env_allow[i];
	size_t len = strnlen(s, TM_ENV_NAME_MAX);

	if (!len || len >= TM_ENV_NAME_MAX || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (size_t k = 1; k < len; k++)
		if (!isalnum((unsigned char)s[k]) && s[k] != '_')
			return false;
	for (unsigned int j = 0; j < i; j++)
		if (!strcmp(c->env_allow[j], s))
			return false; /* kept once */
	return tm_config_env_allowed(c, s, len);
}

static inline bool fuzz_items_ok(const char (*items)[TM_LIST_ITEM_MAX], unsigned int n,
				 const char *bad)
{
	if (n > TM_LIST_MAX)
		return false;
	for (unsigned int i = 0; i < n; i++) {
		size_t len = strnlen(items[i], TM_LIST_ITEM_MAX);

		if (!len || len == TM_LIST_ITEM_MAX || strcspn(items[i], ", \t") < len ||
		    strcspn(items[i], bad) < len)
			return false;
	}
	return true;
}

/* The ranges configs/taskmeter.conf documents, and well-formed strings. */
static inline void fuzz_config_check(const struct tm_config *c)
{
	size_t sp = strnlen(c->socket_path, sizeof(c->socket_path));

	FUZZ_CHECK(strnlen(c->cgroup, sizeof(c->cgroup)) < sizeof(c->cgroup));
	FUZZ_CHECK(sp > 0 && sp < sizeof(c->socket_path) && c->socket_path[0] == '/');
	FUZZ_CHECK(c->socket_mode <= 0777);
	FUZZ_CHECK(fuzz_in(c->interval_ms, 100, 3600 * 1000));
	FUZZ_CHECK(fuzz_in(c->argv_max, 64, TM_ARGV_CAP));
	FUZZ_CHECK(c->env_max <= TM_ENV_CAP);
	FUZZ_CHECK(c->n_env_allow <= TM_ENV_ALLOW_MAX);
	for (unsigned int i = 0; i < c->n_env_allow; i++)
		FUZZ_CHECK(fuzz_env_name_ok(c, i));
	FUZZ_CHECK(fuzz_in(c->subscriber_queue, 1, 1024));
	FUZZ_CHECK(fuzz_in(c->max_owner_records, 1024, 4194304));
	FUZZ_CHECK(fuzz_in(c->meta_entries, 1024, 1048576));
	FUZZ_CHECK(fuzz_in(c->ringbuf_kib, 64, 262144) && !(c->ringbuf_kib & (c->ringbuf_kib - 1)));
	FUZZ_CHECK(c->exited_ttl_s <= 3600);
	FUZZ_CHECK(fuzz_items_ok(c->ifaces, c->n_ifaces, "/:\"'"));
	FUZZ_CHECK(fuzz_items_ok(c->netns, c->n_netns, "*?[\"'"));
	FUZZ_CHECK(c->xdp_mode <= TM_XDP_OFF && c->tc_attach <= TM_TC_OFF);
	FUZZ_CHECK(fuzz_in(c->flow_entries, 1024, 4194304));
	FUZZ_CHECK(c->log_level <= TM_LOG_DEBUG);
	FUZZ_CHECK(c->instance[0] && c->instance[0] != '.' &&
		   strnlen(c->instance, sizeof(c->instance)) < sizeof(c->instance) &&
		   !strchr(c->instance, '/'));
	FUZZ_CHECK(!c->pin_root[0] || c->pin_root[0] == '/');
	FUZZ_CHECK(strnlen(c->socket_group, sizeof(c->socket_group)) < sizeof(c->socket_group));
	FUZZ_CHECK(fuzz_in(c->max_subscribers, 1, 1024));
	FUZZ_CHECK(fuzz_in(c->subscriber_queue_mib, 1, 4096));
	FUZZ_CHECK(strnlen(c->prom_listen, sizeof(c->prom_listen)) < sizeof(c->prom_listen) &&
		   strchr(c->prom_listen, ':'));
	FUZZ_CHECK(c->n_prom_labels <= TM_PROM_LABELS_MAX);
	for (unsigned int i = 0; i < c->n_prom_labels; i++)
		FUZZ_CHECK(c->prom_labels[i].name[0] && c->prom_labels[i].src <= TM_PROM_ENV);
	FUZZ_CHECK(fuzz_in(c->prom_max_series, 1, 1000000));
	FUZZ_CHECK(c->prom_series_idle_s <= 30u * 86400);
}

/* Same settings, wherever each came from (origin and key_line aside). */
static inline bool fuzz_config_same(const struct tm_config *a, const struct tm_config *b)
{
	struct tm_config x = *a;

	memcpy(x.origin, b->origin, sizeof(x.origin));
	memcpy(x.key_line, b->key_line, sizeof(x.key_line));
	return !memcmp(&x, b, sizeof(x));
}

/* A value in file form: quoted, unless it holds '"' (then it came unquoted). */
static inline void fuzz_put_value(FILE *f, const char *key, const char *v)
{
	fprintf(f, strchr(v, '"') ? "%s = %s\n" : "%s = \"%s\"\n", key, v);
}

static inline void fuzz_put_list(FILE *f, const char *key, const char (*items)[TM_LIST_ITEM_MAX],
				 unsigned int n)
{
	fprintf(f, "%s = \"", key);
	for (unsigned int i = 0; i < n; i++)
		fprintf(f, "%s%s", i ? "," : "", items[i]);
	fputs("\"\n", f);
}

/* *c as a config file that parses back to *c. Returns a malloc'd string. */
static inline char *fuzz_config_write(const struct tm_config *c)
{
	static const char *const xdp[] = { "auto", "native", "skb", "off" };
	static const char *const tc[] = { "auto", "tcx", "clsact", "off" };
	static const char *const lvl[] = { "error", "warn", "info", "debug" };
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	FUZZ_CHECK(f);
	fuzz_put_value(f, "cgroup", c->cgroup);
	fuzz_put_value(f, "socket_path", c->socket_path);
	fprintf(f, "socket_mode = 0%o\ninterval = %ums\nargv_max = %u\nenv_max = %u\n",
		c->socket_mode, c->interval_ms, c->argv_max, c->env_max);
	fprintf(f, "metadata = %s\n", c->metadata_procfs ? "procfs" : "task_work");
	fputs("env_allowlist = \"", f);
	for (unsigned int i = 0; i < c->n_env_allow; i++)
		fprintf(f, "%s%s", i ? " " : "", c->env_allow[i]);
	fputs("\"\n", f);
	fprintf(f, "subscriber_queue = %u\ncounter_entries = %u\nmeta_entries = %u\n",
		c->subscriber_queue, c->max_owner_records, c->meta_entries);
	fprintf(f, "ringbuf_kib = %u\nexited_ttl = %us\n", c->ringbuf_kib, c->exited_ttl_s);
	fuzz_put_list(f, "interfaces", c->ifaces, c->n_ifaces);
	fuzz_put_list(f, "netns", c->netns, c->n_netns);
	fprintf(f, "xdp_mode = %s\ntc_attach = %s\n", xdp[c->xdp_mode], tc[c->tc_attach]);
	fprintf(f, "flow_entries = %u\nlog_level = %s\n", c->flow_entries, lvl[c->log_level]);
	fuzz_put_value(f, "instance", c->instance);
	fprintf(f, "keep_state = %s\n", c->keep_state ? "yes" : "no");
	fuzz_put_value(f, "pin_root", c->pin_root);
	fuzz_put_value(f, "socket_group", c->socket_group);
	fprintf(f, "max_subscribers = %u\nsubscriber_queue_mib = %u\n", c->max_subscribers,
		c->subscriber_queue_mib);
	fuzz_put_value(f, "prom_listen", c->prom_listen);
	fputs("prom_labels = \"", f);
	for (unsigned int i = 0; i < c->n_prom_labels; i++)
		fprintf(f, "%s%s", i ? "," : "", c->prom_labels[i].name);
	fputs("\"\n", f);
	fprintf(f, "prom_max_series = %u\nprom_series_idle = %us\n", c->prom_max_series,
		c->prom_series_idle_s);
	FUZZ_CHECK(!fclose(f));
	return text;
}

/* *c, written out and parsed again on top of the defaults, is *c. */
static inline void fuzz_config_roundtrip(const struct tm_config *c)
{
	char *text = fuzz_config_write(c), err[512];
	struct tm_config back;

	tm_config_defaults(&back);
	if (tm_config_parse(&back, text, "roundtrip", err, sizeof(err))) {
		fprintf(stderr, "%s\n---\n%s", err, text);
		FUZZ_CHECK(!"the written config parses");
	}
	FUZZ_CHECK(fuzz_config_same(&back, c));
	free(text);
}

#endif /* TM_FUZZ_CONFIG_CHECK_H */
