// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cgroup v2 id -> path cache, and what container runtimes and systemd write
 * into cgroup paths.
 *
 * On 64-bit kernels a cgroup's id is its kernfs node id, which is both the
 * inode number of its directory under the cgroup2 mount and never reused
 * before reboot. So a cached path stays right until the cgroup is renamed
 * (rare; the next walk corrects it), and an id that a walk did not find
 * belongs to a cgroup that is gone for good.
 */
#define _GNU_SOURCE /* fdopendir, O_DIRECTORY, O_NOFOLLOW, O_CLOEXEC */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cgroups.h"
#include "log.h"
#include "util.h"

#define INITIAL_BUCKETS 1024
/* Each level of the walk holds one fd; real trees are under 10 deep. */
#define MAX_DEPTH 64

struct entry {
	struct tm_hnode node;   /* hash: of id */
	uint64_t id;
	char *path;             /* NULL: not in the tree as of the last walk */
};

struct tm_cgroups {
	char *mount;
	struct tm_htab ids;     /* struct entry */
	uint64_t walks;
	uint64_t last_walk_ns;
};

struct walk {
	struct tm_cgroups *c;
	dev_t dev;
	uint32_t skipped;       /* too deep, too long or the cache was full */
	char path[PATH_MAX];
};

/* ---- the cache ------------------------------------------------------- */

static bool entry_is(const struct tm_hnode *x, const void *id)
{
	return TM_CONTAINER_OF(x, struct entry, node)->id == *(const uint64_t *)id;
}

static struct entry *entry_find(const struct tm_cgroups *c, uint64_t id)
{
	struct tm_hnode *x = tm_htab_find(&c->ids, tm_hash64(id), entry_is, &id);

	return x ? TM_CONTAINER_OF(x, struct entry, node) : NULL;
}

static void table_clear(struct tm_cgroups *c)
{
	for (size_t i = 0; i < c->ids.n_b; i++) {
		struct tm_hnode *x = c->ids.b[i], *next;

		for (; x; x = next) {
			struct entry *e = TM_CONTAINER_OF(x, struct entry, node);

			next = x->next;
			free(e->path);
			free(e);
		}
		c->ids.b[i] = NULL;
	}
	c->ids.count = 0;
}

/* A new entry for id; -ENOSPC when the cache holds TM_CGROUPS_MAX ids. */
static int table_add(struct tm_cgroups *c, uint64_t id, struct entry **e)
{
	if (c->ids.count >= TM_CGROUPS_MAX)
		return -ENOSPC;
	*e = calloc(1, sizeof(**e));
	if (!*e)
		return -ENOMEM;
	(*e)->id = id;
	(*e)->node.hash = tm_hash64(id);
	tm_htab_insert(&c->ids, &(*e)->node);
	return 0;
}

/* Remember id at path, or as unknown when path is NULL. */
static int table_set(struct tm_cgroups *c, uint64_t id, const char *path)
{
	struct entry *e = entry_find(c, id);
	char *dup = NULL;
	int err;

	if (e && (e->path == path || (e->path && path && !strcmp(e->path, path))))
		return 0;
	if (path && !(dup = strdup(path)))
		return -ENOMEM;
	if (!e && (err = table_add(c, id, &e))) {
		free(dup);
		return err;
	}
	free(e->path);
	e->path = dup;
	return 0;
}

/* ---- walk --------------------------------------------------------------- */

static int walk_record(struct walk *w, uint64_t id, const char *path)
{
	int err = table_set(w->c, id, path);

	/* A full cache still lets the walk refresh the paths it holds. */
	if (err == -ENOSPC) {
		w->skipped++;
		return 0;
	}
	return err;
}

static int walk_dir(struct walk *w, int fd, size_t len, int depth);

/*
 * Record and descend into name in parent, whose path is w->path[0, len).
 * Not following symlinks and not leaving the cgroup2 filesystem; what
 * vanished or cannot be opened meanwhile is skipped, not an error.
 */
static int walk_child(struct walk *w, int parent, const char *name, size_t len, int depth)
{
	size_t n = strlen(name);
	struct stat st;
	int fd, err;

	if (depth >= MAX_DEPTH || len + 1 + n >= sizeof(w->path)) {
		w->skipped++;
		return 0;
	}
	fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == EMFILE || errno == ENFILE || errno == ENOMEM ? -errno : 0;
	if (fstat(fd, &st) || st.st_dev != w->dev) {
		close(fd);
		return 0;
	}
	w->path[len] = '/';
	memcpy(w->path + len + 1, name, n + 1);
	err = walk_record(w, st.st_ino, w->path);
	if (err) {
		close(fd);
		return err;
	}
	return walk_dir(w, fd, len + 1 + n, depth + 1);
}

/* Walk the subdirectories of fd (which this closes), at w->path[0, len). */
static int walk_dir(struct walk *w, int fd, size_t len, int depth)
{
	DIR *d = fdopendir(fd);
	struct dirent *de;
	int err = 0;

	if (!d) {
		err = -errno;
		close(fd);
		return err;
	}
	while (!err && (de = readdir(d))) {
		/* kernfs fills d_type: the many control files cost no syscall. */
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		err = walk_child(w, dirfd(d), de->d_name, len, depth);
	}
	closedir(d);
	return err;
}

static int walk_tree(struct tm_cgroups *c)
{
	struct walk *w;
	struct stat st;
	int fd, err;

	c->walks++;
	c->last_walk_ns = tm_now_ns(CLOCK_MONOTONIC);
	if (c->ids.count >= TM_CGROUPS_MAX)
		table_clear(c);
	fd = open(c->mount, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* PATH_MAX is too much for the stack of a library call. */
	w = calloc(1, sizeof(*w));
	if (!w || fstat(fd, &st)) {
		err = w ? -errno : -ENOMEM;
		close(fd);
		free(w);
		return err;
	}
	w->c = c;
	w->dev = st.st_dev;
	err = walk_record(w, st.st_ino, "/");
	if (err)
		close(fd);
	else
		err = walk_dir(w, fd, 0, 0);
	if (w->skipped)
		tm_dbg("cgroups: walk %llu skipped %u directories\n",
		       (unsigned long long)c->walks, w->skipped);
	free(w);
	return err;
}

/* ---- cache API ---------------------------------------------------------- */

struct tm_cgroups *tm_cgroups_new(const char *cgroup2_mount)
{
	struct tm_cgroups *c;
	struct stat st;

	if (!cgroup2_mount || !*cgroup2_mount) {
		errno = EINVAL;
		return NULL;
	}
	if (stat(cgroup2_mount, &st))
		return NULL;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->mount = strdup(cgroup2_mount);
	if (!c->mount || tm_htab_init(&c->ids, INITIAL_BUCKETS)) {
		tm_cgroups_free(c);
		errno = ENOMEM;
		return NULL;
	}
	return c;
}

void tm_cgroups_free(struct tm_cgroups *c)
{
	if (!c)
		return;
	if (c->ids.b)
		table_clear(c);
	tm_htab_free(&c->ids);
	free(c->mount);
	free(c);
}

/* Walk for a miss, then remember the id as unknown if the walk missed it. */
static const char *lookup_miss(struct tm_cgroups *c, uint64_t id)
{
	struct entry *e;
	int err;

	if (c->walks && tm_now_ns(CLOCK_MONOTONIC) - c->last_walk_ns < TM_CGROUPS_WALK_INTERVAL_MS * 1000000ull) {
		errno = EAGAIN;
		return NULL;
	}
	err = walk_tree(c);
	if (err) {
		errno = -err;
		return NULL;
	}
	e = entry_find(c, id);
	if (e && e->path)
		return e->path;
	/* Best effort: if it cannot be remembered, the rate limit still holds. */
	table_set(c, id, NULL);
	errno = ENOENT;
	return NULL;
}

const char *tm_cgroups_path(struct tm_cgroups *c, uint64_t id)
{
	struct entry *e;

	if (!c || !id) {
		errno = !c ? EINVAL : ENOENT;
		return NULL;
	}
	e = entry_find(c, id);
	if (!e)
		return lookup_miss(c, id);
	if (!e->path)
		errno = ENOENT;
	return e->path;
}

void tm_cgroups_unthrottle(struct tm_cgroups *c)
{
	if (c)
		c->last_walk_ns = 0;
}

uint64_t tm_cgroups_walks(const struct tm_cgroups *c)
{
	return c->walks;
}

uint32_t tm_cgroups_count(const struct tm_cgroups *c)
{
	return c->ids.count;
}

/* ---- path parsing ------------------------------------------------------- */

struct component {
	const char *s;
	size_t n;
};

/* Prefixes runtimes put before the id, with or without ".scope" after it. */
static const struct {
	const char *prefix;
	const char *runtime;
} id_prefixes[] = {
	{ "docker-", "docker" },
	{ "cri-containerd-", "containerd" },
	{ "nerdctl-", "containerd" },
	{ "crio-", "cri-o" },       /* "crio-conmon-<id>" fails the hex check */
	{ "libpod-", "podman" },    /* so does "libpod-conmon-<id>" */
};

static bool comp_is(struct component c, const char *s)
{
	return c.n == strlen(s) && !memcmp(c.s, s, c.n);
}

static bool has_prefix(struct component c, const char *p)
{
	size_t n = strlen(p);

	return c.n >= n && !memcmp(c.s, p, n);
}

static bool has_suffix(struct component c, const char *sfx)
{
	size_t n = strlen(sfx);

	return c.n >= n && !memcmp(c.s + c.n - n, sfx, n);
}

/* Exactly 64 hex digits, copied lowercased to id. */
static bool copy_hex64(const char *s, size_t n, char id[65])
{
	if (n != 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	for (size_t i = 0; i < n; i++)
		id[i] = (char)tolower((unsigned char)s[i]);
	id[n] = '\0';
	return true;
}

/* A UUID with '-' or (systemd's escaping) '_', copied as lowercase with '-'. */
static bool copy_uid(const char *s, size_t n, char uid[37])
{
	if (n != 36)
		return false;
	for (size_t i = 0; i < n; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != '-' && s[i] != '_' : !isxdigit((unsigned char)s[i]))
			return false;
	}
	for (size_t i = 0; i < n; i++)
		uid[i] = s[i] == '_' ? '-' : (char)tolower((unsigned char)s[i]);
	uid[n] = '\0';
	return true;
}

/* "<prefix><id>" or "<prefix><id>.scope": the runtime, or NULL. */
static const char *prefixed_id(struct component c, char id[65])
{
	for (size_t i = 0; i < sizeof(id_prefixes) / sizeof(id_prefixes[0]); i++) {
		struct component rest;

		if (!has_prefix(c, id_prefixes[i].prefix))
			continue;
		rest.s = c.s + strlen(id_prefixes[i].prefix);
		rest.n = c.n - strlen(id_prefixes[i].prefix);
		if (has_suffix(rest, ".scope"))
			rest.n -= strlen(".scope");
		if (copy_hex64(rest.s, rest.n, id))
			return id_prefixes[i].runtime;
	}
	return NULL;
}

/*
 * A container of the component, given the previous one: a prefixed id, or
 * a bare id under cgroupfs "docker" or a kubepods "pod<uid>" (where
 * kubelet's cgroupfs driver does not say which runtime; containerd is by
 * far the most common).
 */
static const char *container_of(struct component c, struct component prev, bool in_pod,
				char id[65])
{
	const char *runtime = prefixed_id(c, id);

	if (runtime || !copy_hex64(c.s, c.n, id))
		return runtime;
	if (comp_is(prev, "docker"))
		return "docker";
	return in_pod ? "containerd" : NULL;
}

/* "kubepods", "kubepods.slice", "kubepods-...", and kind's "kubelet-kubepods...". */
static bool is_kubepods(struct component c)
{
	static const char *const roots[] = { "kubepods", "kubelet-kubepods" };

	for (size_t i = 0; i < 2; i++) {
		size_t n = strlen(roots[i]);

		if (has_prefix(c, roots[i]) && (c.n == n || c.s[n] == '.' || c.s[n] == '-'))
			return true;
	}
	return false;
}

/* Pod UID of systemd's "kubepods-<qos>-pod<uid>.slice" or cgroupfs "pod<uid>". */
static bool pod_uid_of(struct component c, bool in_kube, char uid[37])
{
	if (in_kube && c.n == 3 + 36 && has_prefix(c, "pod"))
		return copy_uid(c.s + 3, 36, uid);
	if (!is_kubepods(c) || !has_suffix(c, ".slice") || c.n < 4 + 36 + 6)
		return false;
	c.n -= strlen(".slice");
	return !memcmp(c.s + c.n - 40, "-pod", 4) && copy_uid(c.s + c.n - 36, 36, uid);
}

/* A new innermost context: what was found outside it no longer applies. */
static void enter(struct tm_container *out, const char *runtime, bool keep_pod)
{
	out->id[0] = '\0';
	out->service[0] = '\0';
	if (!keep_pod)
		out->pod_uid[0] = '\0';
	snprintf(out->runtime, sizeof(out->runtime), "%s", runtime);
}

static void parse_component(struct tm_container *out, struct component c,
			    struct component prev, bool *in_kube)
{
	char id[65], uid[37];
	const char *runtime;
	bool pod = pod_uid_of(c, *in_kube, uid);

	if (pod || is_kubepods(c)) {
		*in_kube = true;
		enter(out, "kubepods", false);
		if (pod)
			memcpy(out->pod_uid, uid, sizeof(uid));
	} else if ((runtime = container_of(c, prev, *in_kube && out->pod_uid[0], id))) {
		enter(out, runtime, *in_kube);
		memcpy(out->id, id, sizeof(id));
	} else if (has_suffix(c, ".service") && c.n > strlen(".service") &&
		   c.n < sizeof(out->service)) {
		memcpy(out->service, c.s, c.n);
		out->service[c.n] = '\0';
	}
}

int tm_container_parse(const char *path, struct tm_container *out)
{
	struct component prev = { "", 0 }, c;
	bool in_kube = false;

	if (!path || !*path || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	for (const char *p = path; *p; p = c.s + c.n) {
		while (*p == '/')
			p++;
		c.s = p;
		c.n = strcspn(p, "/");
		if (!c.n)
			break;
		parse_component(out, c, prev, &in_kube);
		prev = c;
	}
	return 0;
}
