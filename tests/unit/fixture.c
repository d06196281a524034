// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Private mounts and network namespaces for unit tests (see fixture.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "tm_test.h"

bool tm_fx_private_mounts(void)
{
	/* A shared "/" (systemd's default) would carry our mounts to the host. */
	return ASSERT_EQ(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
}

bool tm_fx_mount(const char *fstype, const char *suffix, char *dir, size_t len)
{
	char tmp[] = "/tmp/tm-unit-XXXXXX";
	int n;

	if (!ASSERT_TRUE(mkdtemp(tmp)))
		return false;
	n = snprintf(dir, len, "%s/%s", tmp, suffix);
	if (!ASSERT_TRUE(n > 0 && (size_t)n < len) || !ASSERT_EQ(mkdir(dir, 0700), 0)) {
		rmdir(tmp);
		return false;
	}
	if (mount(fstype, dir, fstype, 0, NULL)) {
		tm_test_skip("cannot mount %s: %s", fstype, strerror(errno));
		rmdir(dir);
		rmdir(tmp);
		return false;
	}
	return true;
}

bool tm_fx_unmount(const char *dir)
{
	char *parent = strdup(dir), *slash;
	bool ok;

	ok = ASSERT_EQ(umount2(dir, MNT_DETACH), 0) && ASSERT_EQ(rmdir(dir), 0);
	slash = parent ? strrchr(parent, '/') : NULL;
	if (slash) {
		*slash = '\0';
		ok = ASSERT_EQ(rmdir(parent), 0) && ok;
	}
	free(parent);
	return ok;
}

#define CGROUP_PARENT "taskmeter-tests"

bool tm_fx_cgroup(const char *top, const char *name, char *dir, size_t len)
{
	char parent[PATH_MAX];
	int n;

	snprintf(parent, sizeof(parent), "%s/" CGROUP_PARENT, top);
	n = snprintf(dir, len, "%s/%s", parent, name);
	if (!ASSERT_TRUE(n > 0 && (size_t)n < len))
		return false;
	/* Another suite may remove the parent between the two mkdirs: again. */
	for (int i = 0; i < 100; i++) {
		if (mkdir(parent, 0755) && errno != EEXIST)
			break;
		if (!mkdir(dir, 0755))
			return true;
		if (errno != ENOENT)
			break;
	}
	return TM_TEST_FAILED("mkdir %s: %s", dir, strerror(errno));
}

void tm_fx_cgroup_parent_remove(const char *dir)
{
	char parent[PATH_MAX], *slash;

	snprintf(parent, sizeof(parent), "%s", dir);
	slash = strrchr(parent, '/');
	if (slash) {
		*slash = '\0';
		rmdir(parent); /* busy while another test's cgroup is in it: theirs to remove */
	}
}

static bool sysctl_write(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	bool ok;

	if (!ASSERT_TRUE(fd >= 0))
		return false;
	ok = ASSERT_EQ(write(fd, value, strlen(value)), (ssize_t)strlen(value));
	close(fd);
	return ok;
}

static bool lo_up(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (!ASSERT_TRUE(fd >= 0))
		return false;
	ok = ASSERT_EQ(ioctl(fd, SIOCGIFFLAGS, &ifr), 0);
	ifr.ifr_flags |= IFF_UP;
	ok = ok && ASSERT_EQ(ioctl(fd, SIOCSIFFLAGS, &ifr), 0);
	close(fd);
	return ok;
}

bool tm_fx_netns_up(bool ipv6)
{
	static const char *const knobs[] = {
		"/proc/sys/net/ipv6/conf/all/disable_ipv6",
		"/proc/sys/net/ipv6/conf/default/disable_ipv6",
		"/proc/sys/net/ipv6/conf/lo/disable_ipv6",
	};

	if (ipv6 && access("/proc/sys/net/ipv6", F_OK)) {
		tm_test_skip("no IPv6 in this kernel (/proc/sys/net/ipv6: %s)", strerror(errno));
		return false;
	}
	if (ipv6 && getenv("TM_TEST_NO_IPV6")) {
		tm_test_skip("TM_TEST_NO_IPV6 is set: running as on a host without IPv6");
		return false;
	}
	/* Before lo goes up, so that it gets ::1 as it does. */
	for (size_t i = 0; ipv6 && i < sizeof(knobs) / sizeof(knobs[0]); i++)
		if (!sysctl_write(knobs[i], "0"))
			return false;
	return lo_up();
}
