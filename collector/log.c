// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "log.h"

enum tm_log_level tm_log_level = TM_LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void tm_log(enum tm_log_level level, const char *fmt, ...)
{
	struct timespec ts;
	va_list ap;

	if (level > tm_log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	fprintf(stderr, "%ld.%03ld taskmeter %s: ", (long)ts.tv_sec, ts.tv_nsec / 1000000,
		level_names[level]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}
