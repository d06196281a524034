/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Leveled logging to stderr; the format is checked by the compiler. */
#ifndef TM_LOG_H
#define TM_LOG_H

enum tm_log_level {
	TM_LOG_ERROR = 0,
	TM_LOG_WARN,
	TM_LOG_INFO,
	TM_LOG_DEBUG,
};

extern enum tm_log_level tm_log_level;

void tm_log(enum tm_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define tm_err(...) tm_log(TM_LOG_ERROR, __VA_ARGS__)
#define tm_warn(...) tm_log(TM_LOG_WARN, __VA_ARGS__)
#define tm_info(...) tm_log(TM_LOG_INFO, __VA_ARGS__)
#define tm_dbg(...) tm_log(TM_LOG_DEBUG, __VA_ARGS__)

#endif /* TM_LOG_H */
