/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * taskmeterd configuration: a "key = value" file, overridable key by key
 * from the command line. configs/taskmeter.conf documents every key.
 */
#ifndef TM_CONFIG_H
#define TM_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "log.h"

#define TM_LIST_MAX 32     /* entries of interfaces / netns */
#define TM_LIST_ITEM_MAX 128
#define TM_ENV_ALLOW_MAX 32
#define TM_ENV_NAME_MAX 64
#define TM_INSTANCE_MAX 64
#define TM_CONFIG_KEYS_MAX 64
#define TM_CONFIG_CMDLINE 65535
#define TM_GROUP_MAX 64
/* sun_path (108 bytes; sys/un.h is not pulled in here) holds 107 and a NUL;
 * the socket is bound as "<path>.<pid>" first (export.c), a pid up to 7 digits */
#define TM_SOCKET_PATH_MAX (108 - 8)

/* taskmeter prom */
#define TM_PROM_LISTEN_MAX 64
#define TM_PROM_LABELS_MAX 16
#define TM_PROM_LABEL_NAME_MAX (4 + TM_ENV_NAME_MAX) /* "env_" NAME */

enum tm_xdp_mode { TM_XDP_AUTO = 0, TM_XDP_NATIVE, TM_XDP_SKB, TM_XDP_OFF };
enum tm_tc_attach { TM_TC_AUTO = 0, TM_TC_TCX, TM_TC_CLSACT, TM_TC_OFF };

/* Where an aggregation label of taskmeter prom takes its value from. */
enum tm_prom_label_src {
	TM_PROM_SERVICE,            /* ProcessRecord.service */
	TM_PROM_CONTAINER_ID,
	TM_PROM_CONTAINER_RUNTIME,
	TM_PROM_POD_UID,
	TM_PROM_CGROUP,             /* cgroup_path */
	TM_PROM_COMM,
	TM_PROM_EXE,                /* basename of argv[0] */
	TM_PROM_UID,
	TM_PROM_USER,               /* uid's name (getpwuid_r), numeric if unknown */
	TM_PROM_PID,
	TM_PROM_ENV,                /* env_NAME: an allowlisted variable */
};

struct tm_prom_label {
	enum tm_prom_label_src src;
	char name[TM_PROM_LABEL_NAME_MAX];   /* as exposed: "comm", "env_POD_NAME" */
};

struct tm_config {
	/* cgroup: cgroup v2 dir to attach to, absolute or relative to the
	 * cgroup2 mount; "" = the cgroup2 root */
	char cgroup[PATH_MAX];
	char socket_path[TM_SOCKET_PATH_MAX]; /* socket_path: absolute */
	unsigned int socket_mode;             /* socket_mode: octal, <= 0777 */
	unsigned int interval_ms;             /* interval: 100 ms .. 1 h */
	unsigned int argv_max;                /* argv_max: 64 .. TM_ARGV_CAP */
	unsigned int env_max;                 /* env_max: 0 .. TM_ENV_CAP */
	bool metadata_procfs;                 /* metadata: task_work | procfs */
	/* env_allowlist: the only environment variables ever exported */
	char env_allow[TM_ENV_ALLOW_MAX][TM_ENV_NAME_MAX];
	unsigned int n_env_allow;
	unsigned int subscriber_queue;        /* subscriber_queue: 1 .. 1024 */
	unsigned int max_owner_records;       /* counter_entries: 1024 .. 4194304 */
	unsigned int meta_entries;            /* meta_entries: 1024 .. 1048576 */
	unsigned int ringbuf_kib;             /* ringbuf_kib: power of 2, 64 .. 262144 */
	unsigned int exited_ttl_s;            /* exited_ttl: 0 .. 3600 s */
	/* interfaces: glob patterns of interfaces for XDP/TC; loopback only
	 * when named exactly; "" = none */
	char ifaces[TM_LIST_MAX][TM_LIST_ITEM_MAX];
	unsigned int n_ifaces;
	/* netns: network namespaces whose interfaces are watched (names in
	 * /run/netns or absolute paths); "" = the collector's own */
	char netns[TM_LIST_MAX][TM_LIST_ITEM_MAX];
	unsigned int n_netns;
	enum tm_xdp_mode xdp_mode;            /* xdp_mode: auto|native|skb|off */
	enum tm_tc_attach tc_attach;          /* tc_attach: auto|tcx|clsact|off */
	unsigned int flow_entries;            /* flow_entries: 1024 .. 4194304 */
	enum tm_log_level log_level;          /* log_level: error|warn|info|debug */
	/* instance: names the pinned state on bpffs (TM_INSTANCE_MAX) */
	char instance[TM_INSTANCE_MAX];
	bool keep_state;                      /* keep_state: yes|no */
	char pin_root[PATH_MAX];              /* pin_root: a bpffs mount; "" = the system's */
	char socket_group[TM_GROUP_MAX];      /* socket_group: name or gid; "" = as created */
	unsigned int max_subscribers;         /* max_subscribers: 1 .. 1024 */
	unsigned int subscriber_queue_mib;    /* subscriber_queue_mib: 1 .. 4096 */

	/* taskmeter prom, the Prometheus exporter (a client of the socket) */
	char prom_listen[TM_PROM_LISTEN_MAX]; /* prom_listen: ADDRESS:PORT, numeric */
	/* prom_labels: aggregation labels of the per-process series */
	struct tm_prom_label prom_labels[TM_PROM_LABELS_MAX];
	unsigned int n_prom_labels;
	unsigned int prom_max_series;         /* prom_max_series: label sets, 1 .. 1000000 */
	unsigned int prom_series_idle_s;      /* prom_series_idle: 0 (never) .. 30 days */

	/* where each key was set, for errors found after parsing */
	char origin[256];                     /* the file */
	unsigned short key_line[TM_CONFIG_KEYS_MAX]; /* 0 default, TM_CONFIG_CMDLINE */
};

void tm_config_defaults(struct tm_config *c);

/*
 * Parse text (the file contents) named origin (for messages) on top of *c.
 * On error return -EINVAL, leave *c unchanged and write to err (errlen bytes)
 * "<origin>:<line>: <key>: <why>", or "<origin>:<line>: <why>" when the line
 * has no key.
 */
int tm_config_parse(struct tm_config *c, const char *text, const char *origin, char *err,
		    size_t errlen);

/* Read the file at path and parse it; -errno and a message for I/O errors. */
int tm_config_load(struct tm_config *c, const char *path, char *err, size_t errlen);

/*
 * Apply one override from the command line; value is taken literally (no
 * quotes, no comments). Errors read "command line: <key>: <why>".
 */
int tm_config_set(struct tm_config *c, const char *key, const char *value, char *err,
		  size_t errlen);

/*
 * Where key got its value, for errors that only show once the daemon uses
 * it: "<file>:<line>: <key>", "command line: <key>" or "<key> (default)".
 */
const char *tm_config_where(const struct tm_config *c, const char *key, char *buf, size_t len);

/*
 * prom_listen's syntax, "IPV4:PORT" or "[IPV6]:PORT" (numeric; port 0 picks
 * a free one), into *ss and *len. Returns 0 or -EINVAL.
 */
struct sockaddr_storage;
int tm_config_listen_addr(const char *s, struct sockaddr_storage *ss, unsigned int *len);

/* Is the environment variable name[0..name_len) on the allowlist? */
bool tm_config_env_allowed(const struct tm_config *c, const char *name, size_t name_len);

#endif /* TM_CONFIG_H */
