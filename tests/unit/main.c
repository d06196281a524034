// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Runs every registered TM_TEST, or those whose name contains argv[1]. */
#include <stdlib.h>

#include "log.h"
#include "tm_test.h"

#define TM_TESTS_MAX 256

static struct {
	const char *name;
	tm_test_fn fn;
} tests[TM_TESTS_MAX];
static int n_tests;

void tm_test_register(const char *name, tm_test_fn fn)
{
	if (n_tests == TM_TESTS_MAX) {
		fprintf(stderr, "too many tests\n");
		exit(2);
	}
	tests[n_tests].name = name;
	tests[n_tests].fn = fn;
	n_tests++;
}

int main(int argc, char **argv)
{
	int passed = 0, failed = 0, n = 0;

	/* Several tests provoke warnings on purpose (lost netlink events, a
	 * qdisc in the way): only errors print, unless TM_TEST_LOG is set. */
	tm_log_level = getenv("TM_TEST_LOG") ? TM_LOG_DEBUG : TM_LOG_ERROR;

	for (int i = 0; i < n_tests; i++) {
		if (argc > 1 && !strstr(tests[i].name, argv[1]))
			continue;
		bool ok = tests[i].fn();
		printf("#%d %s:%s\n", ++n, tests[i].name, ok ? "OK" : "FAIL");
		fflush(stdout);
		ok ? passed++ : failed++;
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
