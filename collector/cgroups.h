/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * cgroup v2 ids (what BPF sees) to paths (what people read), and the
 * container / pod / systemd service those paths name.
 */
#ifndef TM_CGROUPS_H
#define TM_CGROUPS_H

#include <stdint.h>

/* Walks of the tree on cache misses are at most this often. */
#define TM_CGROUPS_WALK_INTERVAL_MS 200
/* More cached ids than this and the cache starts over on the next walk. */
#define TM_CGROUPS_MAX 65536

struct tm_cgroups;

struct tm_container {
	char id[65];        /* container id (lowercase hex, 64 chars for docker/containerd/cri-o/podman); "" if none */
	char runtime[16];   /* "docker", "containerd", "cri-o", "podman", "kubepods" (pod slice, no container), "" */
	char pod_uid[37];   /* k8s pod UID when the path has one (kubepods...pod<uid>.slice, underscores -> dashes), else "" */
	char service[256];  /* systemd unit name ending in .service (the innermost one), else "" */
};

/*
 * A cache of id -> path relative to cgroup2_mount ("/" for the root). NULL
 * with errno set if cgroup2_mount is not a directory or memory runs out.
 */
struct tm_cgroups *tm_cgroups_new(const char *cgroup2_mount);
void tm_cgroups_free(struct tm_cgroups *c);

/*
 * The path of cgroup id. A miss walks the whole tree and caches every
 * directory in it, so a burst of new ids costs one walk. NULL with errno:
 *   ENOENT  not in the tree as of the last walk (remembered: asking again
 *           does not walk; a walk that another miss causes may find it),
 *   EAGAIN  a miss within TM_CGROUPS_WALK_INTERVAL_MS of the last walk:
 *           ask again later,
 *   other   the walk failed (e.g. EACCES, ENOMEM).
 * The string belongs to the cache and is valid until the next call.
 */
const char *tm_cgroups_path(struct tm_cgroups *c, uint64_t id);

/*
 * Lets the next miss walk even within TM_CGROUPS_WALK_INTERVAL_MS of the
 * last walk: for a last frame, after which no frame asks again.
 */
void tm_cgroups_unthrottle(struct tm_cgroups *c);

/* Number of walks so far and entries cached (negative ones included). */
uint64_t tm_cgroups_walks(const struct tm_cgroups *c);
uint32_t tm_cgroups_count(const struct tm_cgroups *c);

/*
 * Container, pod and service of a cgroup path; the innermost wins: a
 * container or kubepods component starts a new context, so of
 * "/system.slice/docker-<A>.scope/kubepods/..." only the pod counts and a
 * rootless container under "user@1000.service" has no service. conmon
 * scopes of cri-o and podman are not containers. 0 even if nothing is
 * found (all fields ""); -EINVAL for a NULL or empty path.
 */
int tm_container_parse(const char *path, struct tm_container *out);

#endif /* TM_CGROUPS_H */
