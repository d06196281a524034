/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Set-ups that make a unit test independent of the host: each runs in a
 * tm_test_in_child() child after the matching unshare(), so what it
 * creates ends with that child. They return false when the test cannot go
 * on, with the verdict already set: failed (an assertion) or skipped (the
 * host cannot provide it, with why). The test then just returns true.
 */
#ifndef TM_FIXTURE_H
#define TM_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>

/*
 * After unshare(CLONE_NEWNS): every mount becomes private, so that nothing
 * this process mounts or unmounts propagates to the host. Must succeed
 * before any mount(2) or umount(2) of a test: returns false (failing the
 * test) otherwise.
 */
bool tm_fx_private_mounts(void);

/*
 * Mounts a new fstype ("cgroup2", "bpf", ...) on a fresh directory under
 * /tmp whose name ends in suffix (may hold blanks: mountinfo escapes them),
 * written to dir. Only after tm_fx_private_mounts(). False with a skip if
 * the kernel refuses the mount.
 */
bool tm_fx_mount(const char *fstype, const char *suffix, char *dir, size_t len);

/* Unmounts and removes what tm_fx_mount() made; true if both worked. */
bool tm_fx_unmount(const char *dir);

/*
 * A cgroup of the test's own in the cgroup2 hierarchy mounted at top (by
 * tm_fx_mount()): <top>/taskmeter-tests/<name>, never a directory at the
 * hierarchy's root, which is the host's too. The parent is made when
 * missing and shared with other tests and suites running at once. The path
 * goes to dir. False, failing the test, if it cannot be made.
 */
bool tm_fx_cgroup(const char *top, const char *name, char *dir, size_t len);

/* After rmdir(dir) of a tm_fx_cgroup(): removes the parent if now empty. */
void tm_fx_cgroup_parent_remove(const char *dir);

/*
 * After unshare(CLONE_NEWNET): lo up and IPv6 enabled in this namespace
 * (whatever the host's defaults are). With ipv6 false only lo. False with
 * a skip if the kernel has no IPv6, or if TM_TEST_NO_IPV6 is set (the suite
 * runs as on a host without IPv6).
 */
bool tm_fx_netns_up(bool ipv6);

#endif /* TM_FIXTURE_H */
