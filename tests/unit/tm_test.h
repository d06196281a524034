/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Minimal unit-test harness in the kernel selftests' shape: each TM_TEST()
 * registers itself; the runner prints "#N name:OK|FAIL|SKIP" and a summary
 * line "N passed, N failed, N skipped".
 *
 * The ASSERT_* macros evaluate to true, or print where and why, mark the
 * running test failed and evaluate to false. They never return on their
 * own, so a test decides what a failure stops:
 *
 *	ASSERT_EQ(st.uid, 0);                    a check: the test goes on
 *	if (!ASSERT_TRUE(f))                     a precondition: stop here,
 *		goto out;                        cleaning up on the way out
 *
 * A test (or a helper) that returns false fails too, assertion or not.
 */
#ifndef TM_TEST_H
#define TM_TEST_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

typedef bool (*tm_test_fn)(void);
void tm_test_register(const char *name, tm_test_fn fn);

/* Marks the running test failed (the ASSERT_* macros call it). */
void tm_test_fail(void);
/*
 * Failures of the running test so far: a table-driven test compares the
 * count before and after a row to tell which rows failed.
 */
unsigned int tm_test_failures(void);

/*
 * Marks the running test skipped, with why (shown under its SKIP line):
 * call it where a test cannot run on this host, then return true. A failed
 * assertion still makes the test FAIL.
 */
void tm_test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Runs fn(ctx) in a child process after unshare(unshare_flags) (0 for
 * none), so that namespaces, mounts and sysctls a test sets up end with
 * it. What the child found - failed assertions, a false return, a skip,
 * a crash or a sanitizer's exit status - becomes the calling test's.
 * Returns whether the child passed (a skip passes). An unshare() that the
 * kernel or the privileges refuse skips the test. With CLONE_NEWPID (and
 * CLONE_NEWNS, required) fn runs as pid 1 of the new pid namespace, with a
 * /proc of that namespace: it sees no process but its own and their children.
 */
bool tm_test_in_child(int unshare_flags, bool (*fn)(void *ctx), void *ctx);

#define TM_TEST(name)                                                        \
	static bool test_##name(void);                                       \
	__attribute__((constructor)) static void register_##name(void)       \
	{                                                                    \
		tm_test_register(#name, test_##name);                        \
	}                                                                    \
	static bool test_##name(void)

/* Prints "  file:line: why", marks the test failed, returns false. */
bool tm_test_failf(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define TM_TEST_FAILED(...) tm_test_failf(__FILE__, __LINE__, __VA_ARGS__)

#define ASSERT_TRUE(cond)                                                    \
	({                                                                   \
		bool ok_ = !!(cond);                                         \
		if (!ok_)                                                    \
			TM_TEST_FAILED("%s is false", #cond);                \
		ok_;                                                         \
	})

#define ASSERT_EQ(a, b)                                                      \
	({                                                                   \
		long long a_ = (long long)(a), b_ = (long long)(b);          \
		bool ok_ = a_ == b_;                                         \
		if (!ok_)                                                    \
			TM_TEST_FAILED("%s == %lld, want %s == %lld", #a, a_, #b, b_); \
		ok_;                                                         \
	})

#define ASSERT_STREQ(a, b)                                                   \
	({                                                                   \
		const char *a_ = (a), *b_ = (b);                             \
		bool ok_ = a_ && b_ && !strcmp(a_, b_);                      \
		if (!ok_)                                                    \
			TM_TEST_FAILED("%s == \"%s\", want \"%s\"", #a,      \
				       a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
		ok_;                                                         \
	})

#endif /* TM_TEST_H */
