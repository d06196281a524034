// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Runs every registered TM_TEST, or those whose name contains argv[1].
 * Exit status 1 if any failed. Selecting no test is not an error here
 * (a name may match tests of another runner only); tests/run.sh fails a
 * run that selects nothing anywhere.
 */
#define _GNU_SOURCE /* unshare */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "tm_test.h"

#define TM_TESTS_MAX 256
#define WHY_MAX 256

/* Exit statuses of a tm_test_in_child() child. */
enum { CHILD_PASS = 0, CHILD_FAIL = 1, CHILD_SKIP = 2 };

static struct {
	const char *name;
	tm_test_fn fn;
} tests[TM_TESTS_MAX];
static int n_tests;

/* Verdict of the running test so far. */
static struct {
	unsigned int failures;
	bool skipped;
	char why[WHY_MAX];
} cur;

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

void tm_test_fail(void)
{
	cur.failures++;
}

bool tm_test_failf(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "  %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cur.failures++;
	return false;
}

unsigned int tm_test_failures(void)
{
	return cur.failures;
}

void tm_test_skip(const char *fmt, ...)
{
	va_list ap;

	cur.skipped = true;
	va_start(ap, fmt);
	vsnprintf(cur.why, sizeof(cur.why), fmt, ap);
	va_end(ap);
}

static const char *ns_names(int flags)
{
	static char buf[128];

	snprintf(buf, sizeof(buf), "%s%s%s%s%s", flags & CLONE_NEWNET ? " CLONE_NEWNET" : "",
		 flags & CLONE_NEWNS ? " CLONE_NEWNS" : "",
		 flags & CLONE_NEWCGROUP ? " CLONE_NEWCGROUP" : "",
		 flags & CLONE_NEWPID ? " CLONE_NEWPID" : "",
		 flags & ~(CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWPID) ? " ..." : "");
	return buf;
}

/*
 * After unshare(CLONE_NEWPID) the caller stays where it was; its next child
 * is pid 1 of the new namespace. That child runs fn with a /proc of the new
 * namespace (mounts are private: CLONE_NEWNS is required), so it sees only
 * its own processes, and returns fn's result to child_run(), which exits
 * with the verdict; the caller waits and exits with that same status.
 */
static bool as_init(int unshare_flags, bool (*fn)(void *), void *ctx)
{
	int status;
	pid_t pid;

	if (!(unshare_flags & CLONE_NEWNS))
		return TM_TEST_FAILED("CLONE_NEWPID without CLONE_NEWNS");
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
		    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL))
			return TM_TEST_FAILED("a /proc of the new pid namespace: %s",
					      strerror(errno));
		return fn(ctx); /* child_run() exits with its verdict */
	}
	if (!ASSERT_TRUE(pid > 0) || !ASSERT_EQ(waitpid(pid, &status, 0), pid))
		return false;
	if (!WIFEXITED(status))
		return TM_TEST_FAILED("pid 1 of the test's pid namespace killed by signal %d",
				      WTERMSIG(status));
	/* Its verdict and a skip's reason (on the inherited pipe) are ours.
	 * _exit(): LeakSanitizer cannot check this process (its tracer would
	 * be born in the new pid namespace, where our threads have no pid);
	 * pid 1 ran the test and was checked on its way out. */
	fflush(NULL);
	_exit(WEXITSTATUS(status));
}

/* In the child: run fn, report a skip's reason on fd, exit with the verdict. */
static void child_run(int unshare_flags, bool (*fn)(void *), void *ctx, int fd)
{
	bool ok;
	int status;

	if (unshare_flags && unshare(unshare_flags)) {
		tm_test_skip("unshare(%s): %s", ns_names(unshare_flags) + 1, strerror(errno));
		ok = true;
	} else if (unshare_flags & CLONE_NEWPID) {
		ok = as_init(unshare_flags, fn, ctx);
	} else {
		ok = fn(ctx);
	}
	status = !ok || cur.failures ? CHILD_FAIL : cur.skipped ? CHILD_SKIP : CHILD_PASS;
	if (status == CHILD_SKIP && write(fd, cur.why, strlen(cur.why)) < 0)
		status = CHILD_FAIL;
	fflush(NULL);
	/* exit(), not _exit(): LeakSanitizer checks the child on its way out. */
	exit(status);
}

bool tm_test_in_child(int unshare_flags, bool (*fn)(void *ctx), void *ctx)
{
	char why[WHY_MAX] = "";
	int p[2], status;
	ssize_t n;
	pid_t pid;

	if (!ASSERT_EQ(pipe2(p, O_CLOEXEC), 0))
		return false;
	fflush(NULL); /* or the child writes out our buffered output again */
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		child_run(unshare_flags, fn, ctx, p[1]);
	}
	close(p[1]);
	if (!ASSERT_TRUE(pid > 0) || !ASSERT_EQ(waitpid(pid, &status, 0), pid)) {
		close(p[0]);
		return false;
	}
	/* After the wait: a process the child left behind may hold the pipe
	 * open, and the reason (< PIPE_BUF) is in it already. */
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	n = read(p[0], why, sizeof(why) - 1);
	close(p[0]);
	if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_SKIP) {
		why[n > 0 ? n : 0] = '\0';
		tm_test_skip("%s", why);
		return true;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_PASS)
		return true;
	if (WIFSIGNALED(status))
		return TM_TEST_FAILED("test child killed by signal %d", WTERMSIG(status));
	if (WEXITSTATUS(status) != CHILD_FAIL)
		return TM_TEST_FAILED("test child exited with status %d (a sanitizer report?)",
				      WEXITSTATUS(status));
	tm_test_fail();
	return false;
}

int main(int argc, char **argv)
{
	int passed = 0, failed = 0, skipped = 0, n = 0;
	const char *sel = argc > 1 ? argv[1] : NULL;

	if (argc > 2) {
		fprintf(stderr, "usage: %s [NAME-SUBSTRING]\n", argv[0]);
		return 2;
	}
	/* Several tests provoke warnings on purpose (lost netlink events, a
	 * qdisc in the way): only errors print, unless TM_TEST_LOG is set. */
	tm_log_level = getenv("TM_TEST_LOG") ? TM_LOG_DEBUG : TM_LOG_ERROR;

	for (int i = 0; i < n_tests; i++) {
		bool ok;

		if (sel && !strstr(tests[i].name, sel))
			continue;
		memset(&cur, 0, sizeof(cur));
		ok = tests[i].fn() && !cur.failures;
		printf("#%d %s:%s\n", ++n, tests[i].name, !ok ? "FAIL" : cur.skipped ? "SKIP" : "OK");
		if (ok && cur.skipped)
			printf("    skipped: %s\n", cur.why);
		fflush(stdout);
		if (!ok)
			failed++;
		else if (cur.skipped)
			skipped++;
		else
			passed++;
	}
	if (!n)
		fprintf(stderr, "%s: no test name contains '%s'\n", argv[0], sel ? sel : "");
	printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
	/* Out before LeakSanitizer's report, which decides the exit status. */
	fflush(stdout);
	return failed || (!n && !sel) ? 1 : 0;
}
