/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * taskmeterd's command line: its options and the config overrides they
 * carry (--set KEY=VALUE and the shorthands --cgroup, --socket, ...), kept
 * so that a reload (SIGHUP) applies them again. Kept out of taskmeterd.c so
 * that the unit tests and the fuzzer reach it.
 */
#ifndef TM_ARGS_H
#define TM_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config.h"

#define TM_DEFAULT_CONFIG "/etc/taskmeter/taskmeter.conf"
/* Overrides one command line may carry. */
#define TM_ARGS_MAX 64

struct tm_args {
	const char *config;     /* -c FILE, or NULL: TM_DEFAULT_CONFIG if it exists */
	int verbose;            /* how many -v */
	bool check_only;        /* --check-config */
	bool print_memory;      /* --print-memory */
	bool remove_state;      /* --remove-state */
	bool keep_state;        /* --keep-state */
	bool version;           /* -V: the caller prints the version, exits 0 */
	bool help;              /* -h: the caller prints the usage, exits 0 */
	bool usage;             /* bad option: the caller prints the usage to stderr */
	/* overrides, applied after the file in this order */
	const char *keys[TM_ARGS_MAX];
	const char *values[TM_ARGS_MAX];
	char *owned[TM_ARGS_MAX]; /* the copy a --set key points into, or NULL */
	int n;
};

/*
 * Parse argv into *a, which it zeroes first; argv strings must outlive *a
 * (values point into them). Returns 0 (also after -h or -V, which stop the
 * parse) or -EINVAL / -E2BIG / -ENOMEM with a message in err (errlen
 * bytes), "" when getopt has printed its own (then a->usage is set).
 * Resets getopt, so it may run more than once per process. Free *a with
 * tm_args_free() whatever it returned.
 */
int tm_args_parse(struct tm_args *a, int argc, char **argv, char *err, size_t errlen);

/*
 * Apply the overrides to *cfg in order, through tm_config_set(): the first
 * bad one stops it with its -errno and message, leaving *cfg as the ones
 * before it made it.
 */
int tm_args_apply(const struct tm_args *a, struct tm_config *cfg, char *err, size_t errlen);

/* Defaults, then the file (if any), then the overrides. 0, or -errno with
 * the "file:line: key: why" message in msg. */
int tm_args_config(const struct tm_args *a, struct tm_config *c, char *msg, size_t len);

void tm_args_free(struct tm_args *a);

void tm_args_usage(FILE *f);

#endif /* TM_ARGS_H */
