// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * /proc readers against a child with a known argv and environment, mount
 * lookups and cgroup ids against mounts and a cgroup of the test's own (in
 * a private mount namespace; needs root), and the parsers against fixed
 * text.
 */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "procfs.h"
#include "tm_test.h"

#define CGROUP2_MAGIC 0x63677270
#define BPFFS_MAGIC 0xcafe4a11

/*
 * GNU sleep parses every argument as a duration, so the marker goes in
 * argv[0]: it also shows that argv[0] is whatever the exec'er passed, while
 * comm comes from the file name.
 */
static const char child_cmdline[] = "tm-marker-arg\0" "5\0" "0";
static const char child_environ[] = "SERVICE_NAME=svc-a\0SECRET_TOKEN=hunter2\0POD_NAME=p1";

static uint64_t boottime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* Fork a child that execs sleep; the pipe closes on a successful exec. */
static pid_t spawn_sleep(void)
{
	char *const argv[] = { "tm-marker-arg", "5", "0", NULL };
	char *const envp[] = { "SERVICE_NAME=svc-a", "SECRET_TOKEN=hunter2", "POD_NAME=p1", NULL };
	int fds[2], child_err = 0;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC))
		return -1;
	pid = fork();
	if (pid == 0) {
		execve("/bin/sleep", argv, envp);
		child_err = errno;
		if (write(fds[1], &child_err, sizeof(child_err)) < 0)
			_exit(126);
		_exit(127);
	}
	close(fds[1]);
	if (pid > 0 && read(fds[0], &child_err, sizeof(child_err)) != 0) {
		waitpid(pid, NULL, 0);
		pid = -1;
	}
	close(fds[0]);
	return pid;
}

/*
 * The exec has closed the pipe before the new argv is in place; state 'S'
 * means sleep reached nanosleep, so its memory is final.
 */
static bool wait_sleeping(pid_t pid)
{
	struct timespec ms = { 0, 1000000 };
	char stat[1024];
	size_t len;
	bool trunc;

	for (int i = 0; i < 5000; i++, nanosleep(&ms, NULL)) {
		if (tm_proc_read_file(pid, "stat", stat, sizeof(stat) - 1, &len, &trunc))
			return false;
		stat[len] = '\0';
		if (strstr(stat, ") S "))
			return true;
	}
	return false;
}

static bool check_read_file(pid_t pid)
{
	char buf[4096];
	size_t len;
	bool trunc;

	ASSERT_EQ(tm_proc_read_file(pid, "cmdline", buf, sizeof(buf), &len, &trunc), 0);
	ASSERT_EQ(len, sizeof(child_cmdline));
	ASSERT_TRUE(!memcmp(buf, child_cmdline, sizeof(child_cmdline)));
	ASSERT_EQ(trunc, false);
	/* Exactly full is not truncated; one byte short is. */
	ASSERT_EQ(tm_proc_read_file(pid, "cmdline", buf, 18, &len, &trunc), 0);
	ASSERT_EQ(len, 18);
	ASSERT_EQ(trunc, false);
	ASSERT_EQ(tm_proc_read_file(pid, "cmdline", buf, 17, &len, &trunc), 0);
	ASSERT_EQ(len, 17);
	ASSERT_EQ(trunc, true);
	ASSERT_EQ(tm_proc_read_file(pid, "environ", buf, sizeof(buf), &len, &trunc), 0);
	ASSERT_EQ(len, sizeof(child_environ));
	ASSERT_TRUE(!memcmp(buf, child_environ, sizeof(child_environ)));
	ASSERT_EQ(tm_proc_read_file(pid, "no-such-file", buf, sizeof(buf), &len, &trunc),
		  -ESRCH);
	return true;
}

static bool check_environ(pid_t pid)
{
	struct tm_env_pair env[8];
	struct tm_config c;
	char buf[4096];
	size_t len, n;
	bool trunc;

	tm_config_defaults(&c);
	if (!ASSERT_EQ(tm_proc_read_file(pid, "environ", buf, sizeof(buf), &len, &trunc), 0))
		return false;
	n = tm_proc_env_filter(&c, buf, len, env, 8);
	if (!ASSERT_EQ(n, 2))
		return false;
	ASSERT_EQ(env[0].name_len, 12);
	ASSERT_TRUE(!memcmp(env[0].name, "SERVICE_NAME", 12));
	ASSERT_EQ(env[0].value_len, 5);
	ASSERT_TRUE(!memcmp(env[0].value, "svc-a", 5));
	ASSERT_EQ(env[1].name_len, 8);
	ASSERT_TRUE(!memcmp(env[1].name, "POD_NAME", 8));
	ASSERT_EQ(env[1].value_len, 2);
	ASSERT_TRUE(!memcmp(env[1].value, "p1", 2));
	return true;
}

static bool check_status(pid_t pid)
{
	struct tm_proc_status st;

	memset(&st, 0xff, sizeof(st));
	ASSERT_EQ(tm_proc_status(pid, &st), 0);
	ASSERT_STREQ(st.comm, "sleep");
	ASSERT_EQ(st.tgid, pid);
	ASSERT_EQ(st.ppid, getpid());
	ASSERT_EQ(st.uid, getuid());
	ASSERT_EQ(st.gid, getgid());
	return true;
}

/* start_boottime is taken inside fork(), between t0 and t1. */
static bool check_start(pid_t pid, uint64_t t0, uint64_t t1)
{
	uint64_t start, self_start, tick = tm_proc_tick_ns();

	if (!ASSERT_EQ(tm_proc_start_ns(pid, &start), 0))
		return false;
	ASSERT_EQ(start % tick, 0);
	ASSERT_TRUE(start >= t0 / tick * tick);
	ASSERT_TRUE(start <= t1);
	if (ASSERT_EQ(tm_proc_start_ns(getpid(), &self_start), 0))
		ASSERT_TRUE(self_start <= start);
	ASSERT_TRUE(tm_proc_start_matches(start, start));
	ASSERT_TRUE(tm_proc_start_matches(start + tick - 1, start));
	ASSERT_TRUE(!tm_proc_start_matches(start + tick, start));
	return true;
}

static bool check_child(pid_t pid, uint64_t t0, uint64_t t1)
{
	if (!ASSERT_TRUE(wait_sleeping(pid)))
		return false;
	check_read_file(pid);
	check_environ(pid);
	check_status(pid);
	check_start(pid, t0, t1);
	return true;
}

static bool check_gone(pid_t pid)
{
	struct tm_proc_status st;
	char buf[64];
	uint64_t u64;
	size_t len;
	bool trunc;

	ASSERT_EQ(tm_proc_read_file(pid, "cmdline", buf, sizeof(buf), &len, &trunc), -ESRCH);
	ASSERT_EQ(tm_proc_read_file(pid, "environ", buf, sizeof(buf), &len, &trunc), -ESRCH);
	ASSERT_EQ(tm_proc_status(pid, &st), -ESRCH);
	ASSERT_EQ(tm_proc_start_ns(pid, &u64), -ESRCH);
	/* /proc/<pid>/cgroup is gone before the mount matters. */
	ASSERT_EQ(tm_proc_cgroup_id(pid, "/sys/fs/cgroup", &u64), -ESRCH);
	return true;
}

TM_TEST(procfs_child)
{
	uint64_t t0 = boottime_ns(), t1;
	pid_t pid = spawn_sleep();
	int status;
	bool ok;

	t1 = boottime_ns();
	if (!ASSERT_TRUE(pid > 0))
		return false;
	ok = check_child(pid, t0, t1);
	kill(pid, SIGKILL);
	if (!ASSERT_EQ(waitpid(pid, &status, 0), pid))
		return false;
	ASSERT_TRUE(WIFSIGNALED(status));
	return ok && check_gone(pid);
}

TM_TEST(procfs_env_filter)
{
#define E(s) s, sizeof(s) - 1
	static const struct {
		const char *env;
		size_t len;
		const char *want; /* returned pairs as NAME=value;... */
	} cases[] = {
		{ NULL, 0, "" },
		{ E("SERVICE_NAME=a\0POD_NAME=b\0"), "SERVICE_NAME=a;POD_NAME=b" },
		{ E("SERVICE_NAME=a\0SECRET_TOKEN=hunter2\0POD_NAME=b\0"),
		  "SERVICE_NAME=a;POD_NAME=b" },
		/* cut copy: the last value may be incomplete */
		{ E("SERVICE_NAME=a\0POD_NAME=bc"), "SERVICE_NAME=a" },
		{ E("SERVICE_NAME=a\0POD_NA"), "SERVICE_NAME=a" },
		{ E("SERVICE_NAME"), "" },
		{ E("SERVICE_NAME\0POD_NAME=x\0"), "POD_NAME=x" },
		{ E("SERVICE_NAMEX=1\0SERVICE_NAM=2\0XSERVICE_NAME=3\0service_name=4\0"), "" },
		{ E("POD_NAMESPACE=ns\0POD_NAME=p\0"), "POD_NAMESPACE=ns;POD_NAME=p" },
		{ E("POD_NAME=\0"), "POD_NAME=" },
		{ E("POD_NAME=a=b\0"), "POD_NAME=a=b" },
		{ E("POD_NAME=first\0POD_NAME=second\0"), "POD_NAME=first" },
		{ E("=x\0\0\0POD_NAME=p\0\0"), "POD_NAME=p" },
		{ E("\0"), "" },
	};
#undef E
	struct tm_config c;

	tm_config_defaults(&c);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *env = cases[i].env;
		struct tm_env_pair out[8];
		char got[256] = "";
		size_t n = tm_proc_env_filter(&c, env, cases[i].len, out, 8);

		for (size_t j = 0; j < n; j++) {
			ASSERT_TRUE(out[j].name >= env && out[j].value + out[j].value_len <=
								  env + cases[i].len);
			snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%.*s=%.*s",
				 j ? ";" : "", (int)out[j].name_len, out[j].name,
				 (int)out[j].value_len, out[j].value);
		}
		if (strcmp(got, cases[i].want)) {
			fprintf(stderr, "  case %zu: got \"%s\", want \"%s\"\n", i, got,
				cases[i].want);
			return false;
		}
	}
	return true;
}

TM_TEST(procfs_env_filter_limits)
{
	static const char env[] = "POD_NAME=a\0SERVICE_NAME=b\0";
	struct tm_env_pair out[2];
	struct tm_config c;

	tm_config_defaults(&c);
	ASSERT_EQ(tm_proc_env_filter(&c, env, sizeof(env) - 1, out, 1), 1);
	ASSERT_EQ(out[0].name_len, 8);
	ASSERT_EQ(tm_proc_env_filter(&c, env, sizeof(env) - 1, out, 0), 0);
	/* An empty allowlist lets nothing through. */
	c.n_env_allow = 0;
	ASSERT_EQ(tm_proc_env_filter(&c, env, sizeof(env) - 1, out, 2), 0);
	return true;
}

TM_TEST(procfs_argv_split)
{
#define A(s) s, sizeof(s) - 1
	static const struct {
		const char *buf;
		size_t len;
		size_t max_out;
		size_t n;
		const char *want; /* args joined with '|' */
	} cases[] = {
		{ NULL, 0, 8, 0, "" },
		{ A("a\0"), 8, 1, "a" },
		{ A("a"), 8, 1, "a" },
		{ A("/bin/sleep\0" "5\0"), 8, 2, "/bin/sleep|5" },
		{ A("/bin/sleep\0" "5\0" "tm-mark"), 8, 3, "/bin/sleep|5|tm-mark" },
		{ A("\0"), 8, 1, "" },
		{ A("a\0\0b\0"), 8, 3, "a||b" },
		{ A("a\0\0"), 8, 2, "a|" },
		{ A("a\0b\0c\0"), 2, 2, "a|b" },
		{ A("a\0b\0"), 0, 0, "" },
	};
#undef A
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *out[8];
		size_t out_len[8], n;
		char got[256] = "";

		n = tm_proc_argv_split(cases[i].buf, cases[i].len, out, out_len, cases[i].max_out);
		ASSERT_EQ(n, cases[i].n);
		for (size_t j = 0; j < n; j++)
			snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%.*s",
				 j ? "|" : "", (int)out_len[j], out[j]);
		if (strcmp(got, cases[i].want)) {
			fprintf(stderr, "  case %zu: got \"%s\", want \"%s\"\n", i, got,
				cases[i].want);
			return false;
		}
	}
	return true;
}

static const char sample_mountinfo[] =
	"22 27 0:21 / /proc rw,relatime - proc proc rw\n"
	"garbage line\n"
	"31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
	"32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
	"33 27 0:30 / /cgroup2 rw - tmpfs cgroup2 rw\n"
	"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw\n"
	"50 27 0:40 / /mnt/my\\040bpf\\011dir\\134x rw,relatime shared:1 master:2 - bpf bpf rw\n"
	"51 27 0:41 / /sys/fs/bpf rw - bpf bpf rw\n"
	"52 27 0:42 / /a\\400b\\000c\\377 rw - fuzzfs x rw\n";

static int find_in_sample(const char *fstype, char *buf, size_t len)
{
	FILE *f = fmemopen((void *)sample_mountinfo, sizeof(sample_mountinfo) - 1, "r");
	int err;

	if (!f)
		return -errno;
	err = tm_proc_mountinfo_find(f, fstype, buf, len);
	fclose(f);
	return err;
}

TM_TEST(procfs_mountinfo)
{
	char buf[256];

	ASSERT_EQ(find_in_sample("cgroup2", buf, sizeof(buf)), 0);
	ASSERT_STREQ(buf, "/sys/fs/cgroup/unified");
	ASSERT_EQ(find_in_sample("cgroup", buf, sizeof(buf)), 0);
	ASSERT_STREQ(buf, "/sys/fs/cgroup/cpu");
	ASSERT_EQ(find_in_sample("bpf", buf, sizeof(buf)), 0);
	ASSERT_STREQ(buf, "/mnt/my bpf\tdir\\x");
	ASSERT_EQ(find_in_sample("bpf", buf, 18), 0);
	ASSERT_EQ(find_in_sample("bpf", buf, 17), -ENAMETOOLONG);
	ASSERT_EQ(find_in_sample("ext4", buf, sizeof(buf)), -ENOENT);
	/* Regression (fuzz_procfs): \400 and \000 made a NUL and cut the path
	 * short; they are no escapes, and \377 is the last one. */
	ASSERT_EQ(find_in_sample("fuzzfs", buf, sizeof(buf)), 0);
	ASSERT_STREQ(buf, "/a\\400b\\000c\377");
	ASSERT_EQ(find_in_sample("rw", buf, sizeof(buf)), -ENOENT);
	return true;
}

/* ---- mounts and cgroups of our own, in a private mount namespace ---- */

/*
 * Unmounts (in our private namespace only) every mount of fstype that
 * tm_proc_mountinfo_find() returns ahead of ours, until it returns ours.
 */
static bool find_ours(int (*find)(char *, size_t), const char *ours)
{
	char buf[4096];

	for (int i = 0; i < 16; i++) {
		if (!ASSERT_EQ(find(buf, sizeof(buf)), 0))
			return false;
		if (!strcmp(buf, ours))
			return true;
		if (!ASSERT_EQ(umount2(buf, MNT_DETACH), 0))
			return false;
	}
	return TM_TEST_FAILED("%s not found in /proc/self/mountinfo", ours);
}

static bool check_magic(const char *dir, long magic)
{
	struct statfs sfs;

	return ASSERT_EQ(statfs(dir, &sfs), 0) && ASSERT_EQ(sfs.f_type, magic);
}

static bool mounts_child(void *ctx)
{
	char cg[128], bpf[128], buf[64];

	(void)ctx;
	/* Blanks and a backslash: mountinfo shows them as \040, \011, \134. */
	if (!tm_fx_private_mounts() || !tm_fx_mount("cgroup2", "cg 2\\x", cg, sizeof(cg)))
		return true; /* failed or skipped: the verdict is set */
	if (tm_fx_mount("bpf", "b\tpf", bpf, sizeof(bpf))) {
		if (find_ours(tm_proc_bpffs_mount, bpf))
			check_magic(bpf, BPFFS_MAGIC);
		tm_fx_unmount(bpf);
		ASSERT_EQ(tm_proc_bpffs_mount(buf, sizeof(buf)), -ENOENT);
	}
	if (find_ours(tm_proc_cgroup2_mount, cg)) {
		check_magic(cg, CGROUP2_MAGIC);
		/* The unescaped path and its NUL fit exactly, or not at all. */
		ASSERT_EQ(tm_proc_cgroup2_mount(buf, strlen(cg) + 1), 0);
		ASSERT_EQ(tm_proc_cgroup2_mount(buf, strlen(cg)), -ENAMETOOLONG);
	}
	return tm_fx_unmount(cg);
}

/* /proc/self/mountinfo as the kernel writes it, escapes included. */
TM_TEST(procfs_mounts)
{
	return tm_test_in_child(CLONE_NEWNS, mounts_child, NULL);
}

/* Lives in the cgroup it is moved to until it is killed. */
static pid_t spawn_pause(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		pause();
		_exit(0);
	}
	return pid;
}

static bool move_to(const char *cgroup, pid_t pid)
{
	char path[512], num[16];
	int fd, n = snprintf(num, sizeof(num), "%d", (int)pid);
	bool ok;

	snprintf(path, sizeof(path), "%s/cgroup.procs", cgroup);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (!ASSERT_TRUE(fd >= 0))
		return false;
	ok = ASSERT_EQ(write(fd, num, n), n);
	close(fd);
	return ok;
}

/* rmdir of a cgroup whose last task was just reaped may see it busy. */
static bool rmdir_cgroup(const char *dir)
{
	struct timespec ms = { 0, 1000000 };

	for (int i = 0; i < 1000 && rmdir(dir) && errno == EBUSY; i++)
		nanosleep(&ms, NULL);
	return ASSERT_EQ(access(dir, F_OK), -1);
}

/* A child moved into a cgroup of ours: its id is that directory's inode. */
static bool cgroup_id_run(const char *mnt, const char *cg)
{
	struct stat st;
	uint64_t id = 0;
	pid_t pid;
	int status;

	if (!ASSERT_EQ(stat(cg, &st), 0))
		return false;
	pid = spawn_pause();
	if (!ASSERT_TRUE(pid > 0))
		return false;
	if (move_to(cg, pid) && ASSERT_EQ(tm_proc_cgroup_id(pid, mnt, &id), 0))
		ASSERT_EQ(id, st.st_ino);
	ASSERT_EQ(tm_proc_cgroup_id(pid, "/nonexistent-cgroup2", &id), -ENOENT);
	kill(pid, SIGKILL);
	return ASSERT_EQ(waitpid(pid, &status, 0), pid);
}

static bool cgroup_id_child(void *ctx)
{
	char mnt[128], cg[192], name[32];

	(void)ctx;
	if (!tm_fx_private_mounts() || !tm_fx_mount("cgroup2", "cgroup2", mnt, sizeof(mnt)))
		return true; /* failed or skipped: the verdict is set */
	snprintf(name, sizeof(name), "unit-%d", (int)getppid());
	if (tm_fx_cgroup(mnt, name, cg, sizeof(cg))) {
		cgroup_id_run(mnt, cg);
		rmdir_cgroup(cg);
		tm_fx_cgroup_parent_remove(cg);
	}
	return tm_fx_unmount(mnt);
}

TM_TEST(procfs_cgroup_id)
{
	return tm_test_in_child(CLONE_NEWNS, cgroup_id_child, NULL);
}

TM_TEST(procfs_status_parse)
{
	static const char ok[] = "Name:\tmy\\nproc\\\\x\n"
				 "Umask:\t0022\n"
				 "State:\tS (sleeping)\n"
				 "Tgid:\t42\n"
				 "Ngid:\t0\n"
				 "Pid:\t43\n"
				 "PPid:\t7\n"
				 "TracerPid:\t0\n"
				 "Uid:\t1000\t1001\t1002\t1003\n"
				 "Gid:\t100\t101\t102\t103\n"
				 "FDSize:\t64\n";
	struct tm_proc_status st;

	ASSERT_EQ(tm_proc_status_parse(ok, &st), 0);
	ASSERT_STREQ(st.comm, "my\nproc\\x");
	ASSERT_EQ(st.tgid, 42);
	ASSERT_EQ(st.ppid, 7);
	ASSERT_EQ(st.uid, 1000);
	ASSERT_EQ(st.gid, 100);
	ASSERT_EQ(tm_proc_status_parse("Name:\tx\nTgid:\t1\nPPid:\t0\nUid:\t0\n", &st), -EPROTO);
	ASSERT_EQ(tm_proc_status_parse("Name:\tx\nTgid:\t1\nPPid:\t-1\nUid:\t0\nGid:\t0\n", &st),
		  -EPROTO);
	ASSERT_EQ(tm_proc_status_parse("Name:\t0123456789abcdef\nTgid:\t1\nPPid:\t0\nUid:\t0\n"
				       "Gid:\t0\n", &st), -EPROTO);
	ASSERT_EQ(tm_proc_status_parse("Name:\t0123456789abcde\nTgid:\t1\nPPid:\t0\nUid:\t0\n"
				       "Gid:\t0\n", &st), 0);
	ASSERT_STREQ(st.comm, "0123456789abcde");
	ASSERT_EQ(tm_proc_status_parse("Name:\tx\\000y\nTgid:\t1\nPPid:\t0\nUid:\t0\nGid:\t0\n",
				       &st), 0);
	ASSERT_STREQ(st.comm, "x\\000y");
	ASSERT_EQ(tm_proc_status_parse("", &st), -EPROTO);
	return true;
}

TM_TEST(procfs_stat_start)
{
	static const struct {
		const char *text;
		int err;
		uint64_t ticks;
	} cases[] = {
		{ "123 (sleep) S 1 123 123 0 -1 4194304 100 0 0 0 5 6 0 0 20 0 1 0 987654 "
		  "12345 67 18446744073709551615\n", 0, 987654 },
		/* comm with spaces and parentheses: only the last ')' ends it */
		{ "123 (x) (y 1 2 3 z) S 1 123 123 0 -1 4194304 100 0 0 0 5 6 0 0 20 0 1 0 "
		  "42 12345\n", 0, 42 },
		{ "123 ()) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 7\n", 0, 7 },
		{ "123 (sleep) S 1 123 123 0 -1 4194304 100 0 0 0 5 6 0 0 20 0 1 0\n", -EPROTO, 0 },
		{ "123 (sleep) S 1 123 123 0 -1 4194304 100 0 0 0 5 6 0 0 20 0 1 0 9x 1\n",
		  -EPROTO, 0 },
		{ "123 sleep S 1", -EPROTO, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t ticks = 0;

		ASSERT_EQ(tm_proc_stat_start_ticks(cases[i].text, &ticks), cases[i].err);
		if (!cases[i].err)
			ASSERT_EQ(ticks, cases[i].ticks);
	}
	return true;
}

TM_TEST(procfs_start_matches)
{
	uint64_t tick = tm_proc_tick_ns(), proc = 123456 * tick;

	ASSERT_EQ(tick, 1000000000ull / sysconf(_SC_CLK_TCK));
	ASSERT_TRUE(tm_proc_start_matches(proc, proc));
	ASSERT_TRUE(tm_proc_start_matches(proc + 1, proc));
	ASSERT_TRUE(tm_proc_start_matches(proc + tick - 1, proc));
	ASSERT_TRUE(!tm_proc_start_matches(proc + tick, proc));
	ASSERT_TRUE(!tm_proc_start_matches(proc - 1, proc));
	return true;
}
