/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * An instance's state on bpffs: <root>/taskmeter/<instance>/ holds its
 * pinned maps and links, so that the programs keep counting while no
 * collector runs and the next one adopts the counts. The directory is
 * flock()ed by the collector that uses it: one collector per instance.
 */
#ifndef TM_PIN_H
#define TM_PIN_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

struct tm_pin {
	char root[PATH_MAX];     /* the bpffs mount */
	char dir[PATH_MAX];      /* root/taskmeter/<instance> */
	int dir_fd;              /* holds the lock; -1 when closed */
	int mounted;             /* we mounted root (it was not mounted) */
};

/*
 * Lock the state directory of instance under root (a bpffs mount; "" = the
 * system's, mounted at /sys/fs/bpf if nothing is), creating it. -EBUSY:
 * another collector holds it; -ENOTDIR/-EINVAL: root is not on bpffs.
 */
int tm_pin_open(struct tm_pin *p, const char *root, const char *instance);
/* Release the lock; the pins stay. */
void tm_pin_close(struct tm_pin *p);

/* dir/name into buf. */
int tm_pin_path(const struct tm_pin *p, const char *name, char *buf, size_t len);

/* Calls fn for every pin (file name) in the directory; stops at an error. */
int tm_pin_each(const struct tm_pin *p, int (*fn)(const struct tm_pin *p, const char *name,
						  void *ctx), void *ctx);

/* Unpin everything (a link whose last reference was its pin detaches). */
int tm_pin_clear(struct tm_pin *p);
/* tm_pin_clear, then remove the directory (and taskmeter/ once empty). */
int tm_pin_remove(struct tm_pin *p);

/*
 * Ids of the pinned map called name in the state directory of every
 * instance under root (at most max): what tells a program of some
 * instance's from an orphan no instance will adopt.
 */
int tm_pin_map_ids(const char *root, const char *name, uint32_t *ids, size_t max);

#endif /* TM_PIN_H */
