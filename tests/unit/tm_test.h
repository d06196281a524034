/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Minimal unit-test harness in the kernel selftests' shape: each TM_TEST()
 * registers itself; the runner prints "#N name:OK|FAIL" and a summary line.
 * Assertions print where and why, then make the test return false.
 */
#ifndef TM_TEST_H
#define TM_TEST_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

typedef bool (*tm_test_fn)(void);
void tm_test_register(const char *name, tm_test_fn fn);

#define TM_TEST(name)                                                        \
	static bool test_##name(void);                                       \
	__attribute__((constructor)) static void register_##name(void)       \
	{                                                                    \
		tm_test_register(#name, test_##name);                        \
	}                                                                    \
	static bool test_##name(void)

#define ASSERT_TRUE(cond)                                                    \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "  %s:%d: %s is false\n", __FILE__,  \
				__LINE__, #cond);                            \
			return false;                                        \
		}                                                            \
	} while (0)

#define ASSERT_EQ(a, b)                                                      \
	do {                                                                 \
		long long _a = (long long)(a), _b = (long long)(b);          \
		if (_a != _b) {                                              \
			fprintf(stderr, "  %s:%d: %s == %lld, want %s == %lld\n", \
				__FILE__, __LINE__, #a, _a, #b, _b);         \
			return false;                                        \
		}                                                            \
	} while (0)

#define ASSERT_STREQ(a, b)                                                   \
	do {                                                                 \
		const char *_a = (a), *_b = (b);                             \
		if (!_a || !_b || strcmp(_a, _b)) {                          \
			fprintf(stderr, "  %s:%d: %s == \"%s\", want \"%s\"\n", \
				__FILE__, __LINE__, #a, _a ? _a : "(null)",  \
				_b ? _b : "(null)");                         \
			return false;                                        \
		}                                                            \
	} while (0)

#endif /* TM_TEST_H */
