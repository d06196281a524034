/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * taskmeterd's command line: options, and the overrides (--set KEY=VALUE and
 * their shorthands) applied on top of the config file, kept so that a reload
 * (SIGHUP) applies them again.
 */
#ifndef TM_ARGS_H
#define TM_ARGS_H

#include <stdbool.h>
#include <stdio.h>

#include "config.h"

#define TM_DEFAULT_CONFIG "/etc/taskmeter/taskmeter.conf"
#define TM_OVERRIDES_MAX 64

enum tm_action {
	TM_RUN = 0,
	TM_CHECK_CONFIG,
	TM_PRINT_MEMORY,
	TM_REMOVE_STATE,
	TM_SHOW_HELP,
	TM_SHOW_VERSION,
};

struct tm_args {
	const char *config;      /* NULL: TM_DEFAULT_CONFIG if it exists */
	int verbose;
	enum tm_action action;
	bool keep_state;         /* --keep-state */
	/* overrides applied after the file, in order; key and value point into
	 * owned[i] (a copy of "KEY=VALUE") or into argv */
	const char *keys[TM_OVERRIDES_MAX];
	const char *values[TM_OVERRIDES_MAX];
	char *owned[TM_OVERRIDES_MAX];
	int n;
};

/* Parse argv into a (zeroed by the caller). 0, or -EINVAL / -E2BIG /
 * -ENOMEM after a message on err. */
int tm_args_parse(struct tm_args *a, int argc, char **argv, FILE *err);
void tm_args_free(struct tm_args *a);

/* Defaults, then the file (if any), then the overrides. 0, or -errno with
 * the "file:line: key: why" message in msg. */
int tm_args_config(const struct tm_args *a, struct tm_config *c, char *msg, size_t len);

void tm_args_usage(FILE *f);

#endif /* TM_ARGS_H */
