// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Container / pod / service parsing against the paths that runtimes and
 * systemd create, and the id -> path cache against a real cgroup2 tree: a
 * cgroup of the test's own, on a private mount (needs root).
 */
#define _GNU_SOURCE /* CLONE_NEWNS */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cgroups.h"
#include "fixture.h"
#include "tm_test.h"

#define HEX "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define HEXU "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"
#define HEX2 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define UID "1b2c3d4e-5f60-4a1b-9c2d-3e4f5a6b7c8d"
#define UID_ "1b2c3d4e_5f60_4a1b_9c2d_3e4f5a6b7c8d"
#define KUBE_BURST "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_ ".slice"
#define USER_MGR "/user.slice/user-1000.slice/user@1000.service"

static const struct parse_case {
	const char *desc;
	const char *path;
	const char *id, *runtime, *pod_uid, *service;
} parse_cases[] = {
	{ "docker cgroupfs", "/docker/" HEX, HEX, "docker", "", "" },
	{ "docker systemd", "/system.slice/docker-" HEX ".scope", HEX, "docker", "", "" },
	{ "docker uppercase id", "/system.slice/docker-" HEXU ".scope", HEX, "docker", "", "" },
	{ "docker daemon", "/system.slice/docker.service", "", "", "", "docker.service" },
	{ "containerd systemd", "/system.slice/cri-containerd-" HEX ".scope", HEX, "containerd", "",
	  "" },
	{ "kubepods cgroupfs", "/kubepods/besteffort/pod" UID "/" HEX, HEX, "containerd", UID, "" },
	{ "kubepods cgroupfs pod", "/kubepods/besteffort/pod" UID, "", "kubepods", UID, "" },
	{ "kubepods systemd", KUBE_BURST "/cri-containerd-" HEX ".scope", HEX, "containerd", UID,
	  "" },
	{ "kubepods pod slice", KUBE_BURST, "", "kubepods", UID, "" },
	{ "kubepods qos slice", "/kubepods.slice/kubepods-burstable.slice", "", "kubepods", "", "" },
	{ "kubepods guaranteed", "/kubepods.slice/kubepods-pod" UID_ ".slice/crio-" HEX ".scope",
	  HEX, "cri-o", UID, "" },
	{ "cri-o systemd", "/machine.slice/crio-" HEX ".scope", HEX, "cri-o", "", "" },
	{ "cri-o conmon", KUBE_BURST "/crio-conmon-" HEX ".scope", "", "kubepods", UID, "" },
	{ "cri-o cgroupfs", "/kubepods/burstable/pod" UID "/crio-" HEX, HEX, "cri-o", UID, "" },
	{ "kind node", "/system.slice/docker-" HEX2 ".scope/kubelet.slice/kubelet-kubepods.slice"
	  "/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" UID_ ".slice"
	  "/cri-containerd-" HEX ".scope", HEX, "containerd", UID, "" },
	{ "podman", "/machine.slice/libpod-" HEX ".scope", HEX, "podman", "", "" },
	{ "podman nested", "/machine.slice/libpod-" HEX ".scope/container", HEX, "podman", "", "" },
	{ "podman conmon", "/machine.slice/libpod-conmon-" HEX ".scope", "", "", "", "" },
	{ "podman cgroupfs", "/libpod_parent/libpod-" HEX, HEX, "podman", "", "" },
	{ "podman rootless", USER_MGR "/user.slice/libpod-" HEX ".scope", HEX, "podman", "", "" },
	{ "docker in docker", "/docker/" HEX2 "/docker/" HEX, HEX, "docker", "", "" },
	{ "systemd in container", "/system.slice/docker-" HEX ".scope/system.slice/nginx.service",
	  HEX, "docker", "", "nginx.service" },
	{ "service", "/system.slice/nginx.service", "", "", "", "nginx.service" },
	{ "template service", "/system.slice/system-getty.slice/getty@tty1.service", "", "", "",
	  "getty@tty1.service" },
	{ "user service", USER_MGR "/app.slice/foo.service", "", "", "", "foo.service" },
	{ "user manager", USER_MGR "/init.scope", "", "", "", "user@1000.service" },
	{ "session scope", "/user.slice/user-1000.slice/session-3.scope", "", "", "", "" },
	{ "extra slashes", "//system.slice//nginx.service/", "", "", "", "nginx.service" },
	/* Negatives: nothing found, still 0. */
	{ "root", "/", "", "", "", "" },
	{ "docker alone", "/docker", "", "", "", "" },
	{ "63 hex", "/docker/" "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
	  "", "", "", "" },
	{ "63 hex only", "/system.slice/docker-" "0123456789abcdef0123456789abcdef0123456789abcdef"
	  "0123456789abcde.scope", "", "", "", "" },
	{ "65 hex", "/system.slice/docker-" HEX "0.scope", "", "", "", "" },
	{ "65 hex cgroupfs", "/docker/" HEX "0", "", "", "", "" },
	{ "not hex", "/system.slice/docker-xyz.scope", "", "", "", "" },
	{ "64 non-hex", "/docker/" "0123456789abcdeg0123456789abcdef0123456789abcdef0123456789abcdef",
	  "", "", "", "" },
	{ "bare id elsewhere", "/system.slice/" HEX, "", "", "", "" },
	{ "pod outside kubepods", "/pod" UID "/" HEX, "", "", "", "" },
	{ "bad pod uid", "/kubepods.slice/kubepods-podxyz.slice", "", "kubepods", "", "" },
	{ "bare .service", "/system.slice/.service", "", "", "", "" },
	{ "kubepodsfoo", "/kubepodsfoo/pod" UID, "", "", "", "" },
};

static bool check_parse(const struct parse_case *t)
{
	unsigned int before = tm_test_failures();
	struct tm_container ct;

	if (!ASSERT_EQ(tm_container_parse(t->path, &ct), 0))
		return false;
	ASSERT_STREQ(ct.id, t->id);
	ASSERT_STREQ(ct.runtime, t->runtime);
	ASSERT_STREQ(ct.pod_uid, t->pod_uid);
	ASSERT_STREQ(ct.service, t->service);
	return tm_test_failures() == before;
}

TM_TEST(container_parse)
{
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++)
		if (!check_parse(&parse_cases[i]))
			fprintf(stderr, "  case \"%s\": %s\n", parse_cases[i].desc,
				parse_cases[i].path);
	return true;
}

TM_TEST(container_parse_invalid)
{
	struct tm_container ct;

	ASSERT_EQ(tm_container_parse(NULL, &ct), -EINVAL);
	ASSERT_EQ(tm_container_parse("", &ct), -EINVAL);
	ASSERT_EQ(tm_container_parse("/", NULL), -EINVAL);
	return true;
}

/* ---- cache against a live cgroup2 tree ---------------------------------- */

/*
 * A cgroup of the test's own, T = <private cgroup2 mount>/taskmeter-tests/unit-<pid>,
 * bind-mounted on a directory of its own: the cache's root. So the walks see
 * T's subtree only, whatever the host's cgroup tree holds or where it is
 * mounted: T (the root, "/"), T/system.slice, T/system.slice/docker-<id>.scope
 * and, created after the first walk, T/late and T/late2.
 */
struct live {
	char top[64];           /* the whole hierarchy, mounted privately */
	char root[80];          /* T, bind-mounted: what the cache walks */
	char t[128], outer[160], inner[256], late[160], late2[160];
	uint64_t root_id, outer_id, inner_id;
};

#define LIVE_OUTER "/system.slice"
#define LIVE_INNER LIVE_OUTER "/docker-" HEX ".scope"

static uint64_t ino_of(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : st.st_ino;
}

static bool check_cached(struct tm_cgroups *c, const struct live *l)
{
	struct tm_container ct;
	uint64_t walks;

	if (!ASSERT_STREQ(tm_cgroups_path(c, l->inner_id), LIVE_INNER))
		return false;
	walks = tm_cgroups_walks(c);
	ASSERT_EQ(walks, 1);
	/* The one walk cached every directory of T: these are hits. */
	ASSERT_EQ(tm_cgroups_count(c), 3);
	ASSERT_STREQ(tm_cgroups_path(c, l->root_id), "/");
	ASSERT_STREQ(tm_cgroups_path(c, l->outer_id), LIVE_OUTER);
	ASSERT_STREQ(tm_cgroups_path(c, l->inner_id), LIVE_INNER);
	ASSERT_EQ(tm_cgroups_walks(c), walks);
	/* What the collector does with the path next. */
	ASSERT_EQ(tm_container_parse(tm_cgroups_path(c, l->inner_id), &ct), 0);
	ASSERT_STREQ(ct.id, HEX);
	ASSERT_STREQ(ct.runtime, "docker");
	return true;
}

/* Unknown ids: one walk, then remembered; rate limit; a later walk finds new dirs. */
static bool check_unknown(struct tm_cgroups *c, struct live *l)
{
	const uint64_t unknown = 1ull << 62;
	struct timespec wait = { 0, (TM_CGROUPS_WALK_INTERVAL_MS + 20) * 1000000L };
	uint64_t late_id;

	nanosleep(&wait, NULL);
	errno = 0;
	ASSERT_TRUE(!tm_cgroups_path(c, unknown));
	ASSERT_EQ(errno, ENOENT);
	ASSERT_EQ(tm_cgroups_walks(c), 2);
	ASSERT_TRUE(!tm_cgroups_path(c, unknown));
	ASSERT_EQ(errno, ENOENT);
	ASSERT_EQ(tm_cgroups_walks(c), 2);

	if (!ASSERT_EQ(mkdir(l->late, 0755), 0))
		return false;
	late_id = ino_of(l->late);
	if (!ASSERT_TRUE(late_id))
		return false;
	ASSERT_TRUE(!tm_cgroups_path(c, late_id));
	ASSERT_EQ(errno, EAGAIN);
	nanosleep(&wait, NULL);
	ASSERT_STREQ(tm_cgroups_path(c, late_id), "/late");
	ASSERT_EQ(tm_cgroups_walks(c), 3);

	/* A last frame does not wait out the rate limit: it has no next one. */
	if (!ASSERT_EQ(mkdir(l->late2, 0755), 0))
		return false;
	late_id = ino_of(l->late2);
	ASSERT_TRUE(!tm_cgroups_path(c, late_id));
	ASSERT_EQ(errno, EAGAIN);
	tm_cgroups_unthrottle(c);
	ASSERT_STREQ(tm_cgroups_path(c, late_id), "/late2");
	ASSERT_EQ(tm_cgroups_walks(c), 4);
	return true;
}

static bool live_run(struct live *l)
{
	struct tm_cgroups *c;

	if (!ASSERT_EQ(mkdir(l->outer, 0755), 0) || !ASSERT_EQ(mkdir(l->inner, 0755), 0) ||
	    !ASSERT_EQ(mount(l->t, l->root, NULL, MS_BIND, NULL), 0))
		return false;
	l->root_id = ino_of(l->root);
	l->outer_id = ino_of(l->outer);
	l->inner_id = ino_of(l->inner);
	if (!ASSERT_TRUE(l->root_id && l->outer_id && l->inner_id) ||
	    !ASSERT_EQ(l->root_id, ino_of(l->t)))
		return false;
	c = tm_cgroups_new(l->root);
	if (!ASSERT_TRUE(c))
		return false;
	if (check_cached(c, l))
		check_unknown(c, l);
	tm_cgroups_free(c);
	return true;
}

/* Whatever happened, leave no cgroup behind. */
static void live_cleanup(const struct live *l)
{
	const char *const dirs[] = { l->late2, l->late, l->inner, l->outer, l->t };

	umount2(l->root, MNT_DETACH);
	rmdir(l->root);
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		if (rmdir(dirs[i]) && errno != ENOENT)
			TM_TEST_FAILED("rmdir %s: %s", dirs[i], strerror(errno));
}

static bool live_child(void *ctx)
{
	struct live *l = ctx;
	char name[32];

	if (!tm_fx_private_mounts() || !tm_fx_mount("cgroup2", "cgroup2", l->top, sizeof(l->top)))
		return true; /* failed or skipped: the verdict is set */
	snprintf(l->root, sizeof(l->root), "%s-root", l->top);
	snprintf(name, sizeof(name), "unit-%d", (int)getppid());
	if (!tm_fx_cgroup(l->top, name, l->t, sizeof(l->t))) {
		tm_fx_unmount(l->top);
		return false;
	}
	snprintf(l->outer, sizeof(l->outer), "%s" LIVE_OUTER, l->t);
	snprintf(l->inner, sizeof(l->inner), "%s" LIVE_INNER, l->t);
	snprintf(l->late, sizeof(l->late), "%s/late", l->t);
	snprintf(l->late2, sizeof(l->late2), "%s/late2", l->t);
	if (ASSERT_EQ(mkdir(l->root, 0700), 0))
		live_run(l);
	live_cleanup(l);
	tm_fx_cgroup_parent_remove(l->t);
	return tm_fx_unmount(l->top);
}

TM_TEST(cgroups_path_live)
{
	struct live l = { 0 };

	return tm_test_in_child(CLONE_NEWNS, live_child, &l);
}

/* ---- walk rules on a plain directory tree -------------------------------- */

struct tree {
	char root[64], a[80], b[96], link[80];
};

static bool tree_check(const struct tree *t)
{
	struct tm_cgroups *c = tm_cgroups_new(t->root);

	if (!ASSERT_TRUE(c))
		return false;
	ASSERT_STREQ(tm_cgroups_path(c, ino_of(t->b)), "/a/b");
	/* root, a, a/b: the symlink to a was not followed. */
	ASSERT_EQ(tm_cgroups_count(c), 3);
	tm_cgroups_free(c);
	errno = 0;
	ASSERT_TRUE(!tm_cgroups_new("/nonexistent-taskmeter"));
	ASSERT_EQ(errno, ENOENT);
	ASSERT_TRUE(!tm_cgroups_new("/dev/null"));
	ASSERT_EQ(errno, ENOTDIR);
	return true;
}

TM_TEST(cgroups_walk_rules)
{
	struct tree t;
	bool ok;

	snprintf(t.root, sizeof(t.root), "/tmp/tm-unit-cgroups-XXXXXX");
	if (!ASSERT_TRUE(mkdtemp(t.root)))
		return false;
	snprintf(t.a, sizeof(t.a), "%s/a", t.root);
	snprintf(t.b, sizeof(t.b), "%s/a/b", t.root);
	snprintf(t.link, sizeof(t.link), "%s/l", t.root);
	ok = !mkdir(t.a, 0755) && !mkdir(t.b, 0755) && !symlink("a", t.link) && tree_check(&t);
	unlink(t.link);
	rmdir(t.b);
	rmdir(t.a);
	ASSERT_EQ(rmdir(t.root), 0);
	return ok;
}
