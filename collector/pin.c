// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* An instance's pinned state on bpffs (see pin.h). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <linux/magic.h>

#include "log.h"
#include "pin.h"
#include "procfs.h"

#define TM_BPFFS_DEFAULT "/sys/fs/bpf"
#define TM_PIN_TOP "taskmeter"

static bool on_bpffs(const char *path)
{
	struct statfs sfs;

	return !statfs(path, &sfs) && sfs.f_type == BPF_FS_MAGIC;
}

/* The system's bpffs: where it is mounted, or mounted now where it
 * belongs (a host without it mounted is common). */
static int system_bpffs(struct tm_pin *p)
{
	if (!tm_proc_bpffs_mount(p->root, sizeof(p->root)))
		return 0;
	snprintf(p->root, sizeof(p->root), "%s", TM_BPFFS_DEFAULT);
	if (mount("bpf", TM_BPFFS_DEFAULT, "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700"))
		return -errno;
	tm_info("mounted bpffs at %s (it was not mounted)\n", TM_BPFFS_DEFAULT);
	p->mounted = 1;
	return 0;
}

static int mkdir_in(const char *parent, const char *name, char *out, size_t len)
{
	if ((size_t)snprintf(out, len, "%s/%s", parent, name) >= len)
		return -ENAMETOOLONG;
	if (mkdir(out, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

/* Lock the directory; then make sure it is still the one at its path (a
 * collector removing it at exit may have raced with us). */
static int lock_dir(struct tm_pin *p)
{
	struct stat a, b;

	p->dir_fd = open(p->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p->dir_fd < 0)
		return -errno;
	if (flock(p->dir_fd, LOCK_EX | LOCK_NB))
		return errno == EWOULDBLOCK ? -EBUSY : -errno;
	if (fstat(p->dir_fd, &a) || stat(p->dir, &b) || a.st_ino != b.st_ino)
		return -EAGAIN;
	return 0;
}

int tm_pin_open(struct tm_pin *p, const char *root, const char *instance)
{
	char top[PATH_MAX + 16];
	int err, tries = 0;

	memset(p, 0, sizeof(*p));
	p->dir_fd = -1;
	if (root && *root)
		snprintf(p->root, sizeof(p->root), "%s", root);
	else if ((err = system_bpffs(p)))
		return err;
	if (!on_bpffs(p->root))
		return -EINVAL;
	do {
		if (p->dir_fd >= 0)
			close(p->dir_fd);
		err = mkdir_in(p->root, TM_PIN_TOP, top, sizeof(top));
		if (!err)
			err = mkdir_in(top, instance, p->dir, sizeof(p->dir));
		if (!err)
			err = lock_dir(p);
	} while (err == -EAGAIN && ++tries < 5);
	if (err) {
		if (p->dir_fd >= 0)
			close(p->dir_fd);
		p->dir_fd = -1;
	}
	return err;
}

void tm_pin_close(struct tm_pin *p)
{
	if (p->dir_fd >= 0)
		close(p->dir_fd); /* releases the lock */
	p->dir_fd = -1;
}

int tm_pin_path(const struct tm_pin *p, const char *name, char *buf, size_t len)
{
	return (size_t)snprintf(buf, len, "%s/%s", p->dir, name) >= len ? -ENAMETOOLONG : 0;
}

int tm_pin_each(const struct tm_pin *p, int (*fn)(const struct tm_pin *p, const char *name,
						  void *ctx), void *ctx)
{
	int fd = open(p->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), err = 0;
	struct dirent *de;
	DIR *d;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while (!err && (de = readdir(d)))
		if (de->d_name[0] != '.')
			err = fn(p, de->d_name, ctx);
	closedir(d);
	return err;
}

static int unpin_one(const struct tm_pin *p, const char *name, void *ctx)
{
	(void)ctx;
	if (unlinkat(p->dir_fd, name, 0) && errno != ENOENT)
		tm_warn("unpinning %s/%s: %s\n", p->dir, name, strerror(errno));
	return 0;
}

int tm_pin_clear(struct tm_pin *p)
{
	return tm_pin_each(p, unpin_one, NULL);
}

int tm_pin_remove(struct tm_pin *p)
{
	char top[PATH_MAX + 16];
	int err = tm_pin_clear(p);

	if (!err && rmdir(p->dir))
		err = -errno;
	snprintf(top, sizeof(top), "%s/%s", p->root, TM_PIN_TOP);
	rmdir(top); /* fails while another instance has state: fine */
	tm_pin_close(p);
	/* a bpffs we mounted stays: mounted is what a host normally has */
	return err;
}

/* The id of the map pinned at path, or 0. */
static uint32_t pinned_map_id(const char *path)
{
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);
	int fd = bpf_obj_get(path);
	uint32_t id = 0;

	if (fd < 0)
		return 0;
	if (!bpf_obj_get_info_by_fd(fd, &info, &len))
		id = info.id;
	close(fd);
	return id;
}

int tm_pin_map_ids(const char *root, const char *name, uint32_t *ids, size_t max)
{
	char top[PATH_MAX + 16], path[PATH_MAX * 3];
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(top, sizeof(top), "%s/%s", root, TM_PIN_TOP);
	d = opendir(top);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d)) && (size_t)n < max) {
		uint32_t id;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/%s", top, de->d_name, name);
		id = pinned_map_id(path);
		if (id)
			ids[n++] = id;
	}
	closedir(d);
	return n;
}
