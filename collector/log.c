// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Leveled logging to stderr. On a terminal or in a file each line starts
 * with a readable local time; under journald (JOURNAL_STREAM names our
 * stderr) it starts with the level as "<N>" instead, which journald turns
 * into the entry's priority, and journald adds the time itself.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

enum tm_log_level tm_log_level = TM_LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };
/* syslog priorities: err, warning, info, debug */
static const int level_prio[] = { 3, 4, 6, 7 };

/* Is stderr the stream journald gave us? JOURNAL_STREAM is "dev:inode". */
static int under_journald(void)
{
	static int cached = -1;
	unsigned long long dev, ino;
	const char *js;
	struct stat st;

	if (cached >= 0)
		return cached;
	js = getenv("JOURNAL_STREAM");
	cached = js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && !fstat(STDERR_FILENO, &st) &&
		 (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
	return cached;
}

void tm_log(enum tm_log_level level, const char *fmt, ...)
{
	char when[32] = "";
	struct timespec ts;
	struct tm tm;
	va_list ap;

	if (level > tm_log_level)
		return;
	if (under_journald()) {
		fprintf(stderr, "<%d>", level_prio[level]);
	} else {
		clock_gettime(CLOCK_REALTIME, &ts);
		if (localtime_r(&ts.tv_sec, &tm))
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ld ", when, ts.tv_nsec / 1000000);
	}
	fprintf(stderr, "taskmeter %s: ", level_names[level]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}
